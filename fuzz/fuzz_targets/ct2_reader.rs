//! The CTranslate2 `model.bin` reader on arbitrary bytes. `Ct2Model::open`
//! takes file paths, so each input is written to per-process files in
//! `$WHISPER_STT_FUZZ_SCRATCH` (else the temporary directory), split into up to
//! three parts to exercise the joined reading of `model.bin.partN` files.
//!
//! Input: byte 0 picks the part count (1 + b % 3), the rest is the model,
//! cut into near-equal parts.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use stt_server::models::ct2::Ct2Model;

fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = std::env::var_os("WHISPER_STT_FUZZ_SCRATCH")
            .map_or_else(std::env::temp_dir, PathBuf::from);
        let dir = base.join(format!("whisper-stt-fuzz-ct2-{}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, model)) = data.split_first() else {
        return;
    };
    let n_parts = 1 + usize::from(selector % 3);
    let size = model.len().div_ceil(n_parts).max(1);
    let mut parts = Vec::new();
    for (i, chunk) in model.chunks(size).enumerate() {
        let path = scratch().join(format!("model.bin.part{i}"));
        std::fs::write(&path, chunk)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        parts.push(path);
    }
    if parts.is_empty() {
        let path = scratch().join("model.bin.part0");
        std::fs::write(&path, b"")
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        parts.push(path);
    }
    let Ok(mut model_bin) = Ct2Model::open(&parts) else {
        return;
    };
    let len = model.len() as u64;
    let scalars: Vec<String> = model_bin
        .variables()
        .inspect(|v| {
            assert!(
                v.offset.checked_add(v.nbytes).is_some_and(|end| end <= len),
                "variable {v:?} extends past the {len}-byte file"
            );
        })
        .filter(|v| v.n_elements() == 1)
        .map(|v| v.name.clone())
        .collect();
    for name in scalars {
        let _ = model_bin.scalar_int(&name);
    }
});
