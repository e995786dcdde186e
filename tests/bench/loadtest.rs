//! `bench loadtest`: a bounded mix of valid audio, bad audio and oversized
//! bodies against one server; every answer is checked.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::clip::Clip;
use crate::error::{BenchError, Result};
use crate::http::{self, Multipart};
use crate::server::{metric_sum, response_text, Server, ServerOptions};
use crate::stats;

/// The upload limit the load test sets, bytes.
pub const UPLOAD_LIMIT: usize = 1 << 20;
/// How often the monitor samples the server's memory.
const RSS_PERIOD: Duration = Duration::from_millis(200);
/// A client's pause after a 429 before its next request (as a polite client
/// would; without it a full queue turns most of the run into instant 429s).
pub const PAUSE_AFTER_429: Duration = Duration::from_millis(250);

/// What a request carries, and the answers the API documents for it. A request
/// arriving while `workers + queue limit` are already admitted gets 429 before its
/// body is read, whatever it carries — except a declared oversized body, which the
/// headers alone refuse (413).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Kind {
    /// A clip: 200 (or 429).
    Valid,
    /// A text file: 415, no known audio format (or 429). Random bytes are not used:
    /// they often hold an MPEG frame sync and are then refused as corrupt (422).
    Garbage,
    /// A WAV of 61 ms of silence: 422, shorter than 0.1 s (or 429).
    Truncated,
    /// A declared body larger than the limit + 1 MiB: 413 before the body is read.
    OversizedDeclared,
    /// A file part just over the limit: 413 as soon as it passes (or 429).
    OversizedStreamed,
}

impl Kind {
    /// The kind of request `i` (7 valid, 1 of each bad kind, in 11).
    pub fn of(i: usize) -> Self {
        match i % 11 {
            7 => Self::Garbage,
            8 => Self::Truncated,
            9 => Self::OversizedDeclared,
            10 => Self::OversizedStreamed,
            _ => Self::Valid,
        }
    }

    /// The statuses `docs/api.md` documents for this input.
    pub fn expected(self) -> &'static [u16] {
        match self {
            Self::Valid => &[200, 429],
            Self::Garbage => &[415, 429],
            Self::Truncated => &[422, 429],
            Self::OversizedDeclared => &[413],
            Self::OversizedStreamed => &[413, 429],
        }
    }
}

/// Result of `bench loadtest`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadReport {
    /// Requests sent.
    pub requests: usize,
    /// Clients sending at once.
    pub concurrency: usize,
    /// Workers × threads of the server.
    pub workers: u32,
    /// Threads per worker.
    pub threads: u32,
    /// Wall time, seconds.
    pub wall_seconds: f64,
    /// Answers by kind, then status.
    pub statuses: BTreeMap<String, BTreeMap<u16, usize>>,
    /// Worst error rate of a 200 answer, per clip.
    pub worst_error_rate: BTreeMap<String, f64>,
    /// Bound every 200 transcript had to meet.
    pub error_rate_bound: f64,
    /// Median latency of 200 answers, seconds.
    pub p50_ok: f64,
    /// RSS when ready, KiB.
    pub rss_ready_kib: u64,
    /// RSS once warm (`max(8, requests / 40)` transcriptions done), KiB.
    pub rss_warm_kib: u64,
    /// RSS when half the requests were answered, KiB.
    pub rss_half_kib: u64,
    /// Highest RSS sampled after that, KiB.
    pub rss_max_kib: u64,
    /// RSS after the last answer, KiB.
    pub rss_end_kib: u64,
    /// Counts the server's `/metrics` reported, by series.
    pub server_counts: BTreeMap<String, f64>,
    /// Failed checks (empty when everything held).
    pub failures: Vec<String>,
}

/// `bench loadtest`.
///
/// # Errors
/// [`BenchError::Checks`] listing every failed check (after printing nothing:
/// the caller prints the report first), or a start-up failure.
pub fn loadtest(
    options: &ServerOptions,
    clips: &[Clip],
    concurrency: usize,
    requests: usize,
    error_rate_bound: f64,
) -> Result<LoadReport> {
    let mut options = options.clone();
    options.max_upload = Some(UPLOAD_LIMIT.to_string());
    let mut server = Server::start(&options)?;
    let rss_ready_kib = server.rss_kib();
    let valid: Vec<(Clip, Vec<u8>)> = clips
        .iter()
        .map(|c| Ok((c.clone(), c.bytes()?)))
        .collect::<Result<_>>()?;
    let truncated = short_wav();
    let garbage = |i: usize| -> Vec<u8> {
        format!("request {i}: this is a text file, not audio.\n")
            .repeat(200 + i % 7)
            .into_bytes()
    };

    let next = AtomicUsize::new(0);
    let done = AtomicBool::new(false);
    let warm_after = (requests / 40).max(8);
    let succeeded = AtomicUsize::new(0);
    let rss_warm = AtomicU64::new(0);
    let answered = AtomicUsize::new(0);
    let rss_half = AtomicU64::new(0);
    let rss_max = AtomicU64::new(0);
    let failures = Mutex::new(Vec::new());
    let answers = Mutex::new(Vec::new());
    let started = Instant::now();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(Ordering::SeqCst) {
                if rss_warm.load(Ordering::SeqCst) > 0 {
                    rss_max.fetch_max(server.rss_kib(), Ordering::SeqCst);
                }
                std::thread::sleep(RSS_PERIOD);
            }
        });
        let clients: Vec<_> = (0..concurrency.max(1))
            .map(|_| {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= requests {
                        return;
                    }
                    let kind = Kind::of(i);
                    let clip = &valid[(i / 11 * 7 + i % 11) % valid.len()];
                    let sent = Instant::now();
                    let result = match kind {
                        Kind::Valid => server.transcribe(&clip.0.name(), &clip.1, &clip.0.language),
                        Kind::Garbage => server.transcribe("noise.wav", &garbage(i), "en"),
                        Kind::Truncated => server.transcribe("short.wav", &truncated, "en"),
                        Kind::OversizedDeclared => {
                            post_file(&server, &vec![0u8; UPLOAD_LIMIT * 2 + (1 << 20)])
                        }
                        Kind::OversizedStreamed => {
                            post_file(&server, &vec![0u8; UPLOAD_LIMIT + 4096])
                        }
                    };
                    let seconds = sent.elapsed().as_secs_f64();
                    let ok = matches!(&result, Ok(r) if r.status == 200);
                    if ok && succeeded.fetch_add(1, Ordering::SeqCst) + 1 == warm_after {
                        rss_warm.store(server.rss_kib(), Ordering::SeqCst);
                    }
                    if answered.fetch_add(1, Ordering::SeqCst) + 1 == requests.div_ceil(2) {
                        rss_half.store(server.rss_kib(), Ordering::SeqCst);
                    }
                    let fail = |m: String| failures.lock().expect("failures").push(m);
                    match result {
                        Err(e) => fail(format!("request {i} ({kind:?}): {e}")),
                        Ok(response) => {
                            let status = response.status;
                            if !kind.expected().contains(&status) {
                                fail(format!(
                                    "request {i} ({kind:?}) answered {status}, expected {:?}: {}",
                                    kind.expected(),
                                    response.text().chars().take(200).collect::<String>()
                                ));
                            }
                            if status == 429 && response.header("retry-after").is_none() {
                                fail(format!("request {i}: 429 without Retry-After"));
                            }
                            let error_rate = (kind == Kind::Valid && status == 200).then(|| {
                                response_text(&response).map_or(1.0, |t| clip.0.error_rate(&t))
                            });
                            if let Some(rate) = error_rate.filter(|r| *r > error_rate_bound) {
                                fail(format!(
                                    "request {i} ({}): {} {rate:.3} > {error_rate_bound}: {:?}",
                                    clip.0.name(),
                                    clip.0.metric(),
                                    response_text(&response)
                                ));
                            }
                            answers.lock().expect("answers").push((
                                kind,
                                status,
                                seconds,
                                error_rate.map(|r| (clip.0.name(), r)),
                            ));
                            if status == 429 {
                                std::thread::sleep(PAUSE_AFTER_429);
                            }
                        }
                    }
                })
            })
            .collect();
        for client in clients {
            client.join().expect("client thread panicked");
        }
        done.store(true, Ordering::SeqCst);
    });
    let wall_seconds = started.elapsed().as_secs_f64();
    let mut failures = failures.into_inner().expect("failures");
    let answers = answers.into_inner().expect("answers");

    let mut statuses: BTreeMap<String, BTreeMap<u16, usize>> = BTreeMap::new();
    let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
    let mut worst_error_rate: BTreeMap<String, f64> = BTreeMap::new();
    let mut ok_latencies = Vec::new();
    for (kind, status, seconds, error) in &answers {
        *statuses
            .entry(format!("{kind:?}"))
            .or_default()
            .entry(*status)
            .or_insert(0) += 1;
        *by_status.entry(*status).or_insert(0) += 1;
        if let Some((name, rate)) = error {
            let worst = worst_error_rate.entry(name.clone()).or_insert(0.0);
            *worst = worst.max(*rate);
            ok_latencies.push(*seconds);
        }
    }
    if answers.len() != requests {
        failures.push(format!("{} of {requests} requests answered", answers.len()));
    }
    if by_status.get(&200).copied().unwrap_or(0) == 0 {
        failures.push("no request succeeded".into());
    }
    if !server.is_running() {
        failures.push("the server is no longer running".into());
    }
    match http::get(server.addr, "/health", Duration::from_secs(10)) {
        Ok(r) if r.status == 200 => {}
        other => failures.push(format!("/health after the test: {other:?}")),
    }

    // /metrics must count exactly what was sent.
    let metrics = server.metrics()?;
    let route = ("route", "/v1/audio/transcriptions");
    let mut server_counts = BTreeMap::new();
    for (status, count) in &by_status {
        let status_text = status.to_string();
        let counted = metric_sum(
            &metrics,
            "stt_http_requests_total",
            &[route, ("status", status_text.as_str())],
        );
        server_counts.insert(
            format!("stt_http_requests_total{{status=\"{status}\"}}"),
            counted,
        );
        if counted != *count as f64 {
            failures.push(format!(
                "/metrics counts {counted} answers {status}, the client got {count}"
            ));
        }
    }
    let total = metric_sum(&metrics, "stt_http_requests_total", &[route]);
    if total != requests as f64 {
        failures.push(format!(
            "/metrics counts {total} requests, {requests} were sent"
        ));
    }
    let checks = [
        ("stt_queue_rejections_total", &[][..], 429),
        ("stt_jobs_total", &[("outcome", "ok")][..], 200),
    ];
    for (name, labels, status) in checks {
        let counted = metric_sum(&metrics, name, labels);
        let label = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .collect::<Vec<_>>()
            .join(",");
        server_counts.insert(format!("{name}{{{label}}}"), counted);
        let count = by_status.get(&status).copied().unwrap_or(0);
        if counted != count as f64 {
            failures.push(format!(
                "{name}{{{label}}} is {counted}, the client got {count} answers {status}"
            ));
        }
    }

    // Bounds: the peak, with uploads (1 MiB limit) and decoded audio of every client
    // in flight, within 1.5 × the size once warm (the first runs allocate the compute
    // buffers). A leak per request grows the second half of the run as much as the
    // first, while the allocator's own warm-up (how much freed memory it keeps) levels
    // off early by an amount that differs between machines: so the end is judged
    // against the half-way point (within 5 %), not against the early warm size.
    let rss_end_kib = server.rss_kib();
    let rss_half_kib = rss_half.load(Ordering::SeqCst);
    let rss_warm_kib = rss_warm.load(Ordering::SeqCst);
    let rss_max_kib = rss_max.load(Ordering::SeqCst).max(rss_end_kib);
    if rss_warm_kib == 0 {
        failures.push(format!(
            "fewer than {warm_after} transcriptions succeeded: memory could not be checked"
        ));
    } else if rss_max_kib as f64 > rss_warm_kib as f64 * 1.5 {
        failures.push(format!(
            "memory peaked at {rss_max_kib} KiB, over 1.5 × the {rss_warm_kib} KiB once warm"
        ));
    }
    if rss_end_kib as f64 > rss_half_kib as f64 * 1.05 {
        failures.push(format!(
            "memory grew from {rss_half_kib} KiB half-way to {rss_end_kib} KiB at the end, \
             over 5 % in the second half"
        ));
    }
    Ok(LoadReport {
        requests,
        concurrency,
        workers: options.workers,
        threads: options.threads,
        wall_seconds,
        statuses,
        worst_error_rate,
        error_rate_bound,
        p50_ok: stats::median(&ok_latencies),
        rss_ready_kib,
        rss_warm_kib,
        rss_half_kib,
        rss_max_kib,
        rss_end_kib,
        server_counts,
        failures,
    })
}

/// Posts `bytes` as the file part, declaring the whole body's length.
fn post_file(server: &Server, bytes: &[u8]) -> Result<http::Response> {
    let (content_type, body) = Multipart::new()
        .text("response_format", "json")
        .file("file", "big.wav", "audio/wav", bytes)
        .finish();
    Ok(http::post(
        server.addr,
        "/v1/audio/transcriptions",
        &content_type,
        &body,
        Duration::from_secs(120),
    )?)
}

/// The [`Kind::Truncated`] upload: 978 samples (61 ms) of silence, 16 kHz mono 16-bit.
fn short_wav() -> Vec<u8> {
    whisper_stt_tests::speech::wav_bytes(&[0.0; 978])
}

/// Fails with every failed check of `report`.
///
/// # Errors
/// [`BenchError::Checks`] when `report.failures` is not empty.
pub fn verdict(report: &LoadReport) -> Result<()> {
    if report.failures.is_empty() {
        Ok(())
    } else {
        Err(BenchError::Checks(report.failures.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_mix_seven_valid_in_eleven_and_expect_documented_statuses() {
        let kinds: Vec<Kind> = (0..11).map(Kind::of).collect();
        assert_eq!(kinds.iter().filter(|k| **k == Kind::Valid).count(), 7);
        assert_eq!(Kind::of(11), Kind::Valid);
        assert_eq!(Kind::OversizedDeclared.expected(), &[413]);
        assert!([
            Kind::Valid,
            Kind::Garbage,
            Kind::Truncated,
            Kind::OversizedStreamed
        ]
        .iter()
        .all(|k| k.expected().contains(&429)));
    }

    #[test]
    fn the_short_wav_decodes_to_less_than_the_shortest_audio_transcribed() {
        let audio = whisper_safe::audio::decode(short_wav(), &Default::default()).unwrap();
        assert_eq!(audio.samples.len(), 978);
        assert!(audio.samples.len() < whisper_safe::MIN_SAMPLES);
    }
}
