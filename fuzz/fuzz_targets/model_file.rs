//! `whisper_safe::ggml_file::verify_reader` (the check `Context::new` runs
//! before whisper.cpp reads a model) on arbitrary bytes: no panic, no allocation or
//! work out of proportion to the input (libFuzzer's `-malloc_limit_mb`,
//! `-rss_limit_mb` and `-timeout`), and a summary that agrees with the input.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use whisper_safe::ggml_file::verify_reader;

fuzz_target!(|data: &[u8]| {
    let len = data.len() as u64;
    if let Ok(summary) = verify_reader(Cursor::new(data), len) {
        assert_eq!(summary.file_bytes, len);
        assert!(summary.tensor_bytes <= len, "{summary:?}");
        assert_eq!(
            summary.type_counts.values().sum::<usize>(),
            summary.n_tensors,
            "{summary:?}"
        );
    }
});
