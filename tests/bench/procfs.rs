//! What `/proc` says about the machine and about a process's memory.

use serde::{Deserialize, Serialize};

/// A `kB` field of `/proc/<pid>/status` (`VmRSS`, `VmHWM`), in KiB; `None` once
/// the process is gone.
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        let value = line.strip_prefix(field)?.strip_prefix(':')?;
        value.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

/// Resident memory of `pid`, KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmRSS")
}

/// Peak resident memory of `pid`, KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmHWM")
}

/// The 1-minute load average.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// The machine a report was measured on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    /// `model name` of `/proc/cpuinfo`.
    pub cpu: String,
    /// Logical CPUs the process may use.
    pub cores: usize,
    /// `MemTotal`, KiB.
    pub memory_kib: u64,
    /// SIMD extensions that matter to ggml, from the CPU flags.
    pub simd: Vec<String>,
    /// `/proc/sys/kernel/osrelease`.
    pub kernel: String,
}

impl Machine {
    /// Reads `/proc`; unknown fields are left empty.
    pub fn read() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let field = |name: &str| {
            cpuinfo
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
                .unwrap_or_default()
        };
        let flags = field("flags");
        let simd = [
            "avx",
            "avx2",
            "fma",
            "f16c",
            "avx512f",
            "avx512_vnni",
            "avx512_bf16",
        ]
        .iter()
        .filter(|f| flags.split_whitespace().any(|x| x == **f))
        .map(|f| (*f).to_owned())
        .collect();
        let memory_kib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
            .unwrap_or(0);
        Self {
            cpu: field("model name"),
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            memory_kib,
            simd,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_has_resident_memory_and_the_machine_has_cores() {
        let pid = std::process::id();
        let rss = rss_kib(pid).expect("VmRSS of this process");
        assert!(rss > 0 && peak_rss_kib(pid).unwrap() >= rss);
        assert_eq!(status_kib(pid, "NoSuchField"), None);
        let machine = Machine::read();
        assert!(machine.cores >= 1 && machine.memory_kib > 0);
        assert!(load_average() >= 0.0);
    }
}
