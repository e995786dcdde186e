//! Heap memory in use as the C allocator counts it: what whisper.cpp, ggml and Rust
//! code (through the system allocator) have allocated and not yet freed. Unlike the
//! resident set, it leaves out the freed memory an allocator keeps for reuse, whose
//! amount grows for a while and differs between machines, so a leak shows in it and
//! allocator warm-up does not.

/// Bytes allocated with `malloc` and friends and not freed, over every arena: glibc's
/// `mallinfo2` (`uordblks + hblkhd`). `None` on a C library without that count.
pub fn heap_in_use_bytes() -> Option<u64> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 takes no arguments, returns a plain struct by value and
        // only reads the allocator's statistics under the allocator's own locks.
        let info = unsafe { libc::mallinfo2() };
        Some(info.uordblks as u64 + info.hblkhd as u64)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::heap_in_use_bytes;

    #[test]
    fn an_allocation_is_counted_until_freed() {
        let before = heap_in_use_bytes().expect("glibc counts the heap");
        // black_box: an allocation nothing reads may be elided by the optimizer.
        let block = std::hint::black_box(vec![1u8; 64 << 20]);
        let during = heap_in_use_bytes().unwrap();
        drop(block);
        let after = heap_in_use_bytes().unwrap();
        // Other tests of this binary allocate meanwhile: a margin of 16 MiB.
        assert!(during >= before + (48 << 20), "{before} → {during}");
        assert!(after + (48 << 20) <= during, "{during} → {after}");
    }
}
