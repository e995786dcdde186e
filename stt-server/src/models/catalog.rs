//! The catalog of known Whisper models: hyper-parameters, upstream file names and
//! checksums, exact file sizes per quantization, memory estimates, and the model
//! ids of the API (`<size>` or `<size>-<quant>`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use whisper_safe::ggml_file::{
    self, HParams, TensorType, N_FFT_BINS, QNT_VERSION, QNT_VERSION_FACTOR,
};

/// Weight type of a model file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Quant {
    /// 16-bit floats (upstream's published files).
    F16,
    /// 8-bit blocks (the default: fastest on CPU and as accurate as f16, see
    /// docs/benchmarks.md).
    #[default]
    Q8_0,
    /// 5-bit blocks with scale and minimum (smallest file that keeps accuracy).
    Q5_1,
    /// 5-bit blocks with scale.
    Q5_0,
    /// 4-bit blocks with scale.
    Q4_0,
    /// 4-bit non-linear blocks with scale (the size of q4_0).
    Iq4Nl,
}

impl Quant {
    /// Every quantization, in decreasing size (q4_0 and iq4_nl are the same size).
    pub const ALL: [Quant; 6] = [
        Self::F16,
        Self::Q8_0,
        Self::Q5_1,
        Self::Q5_0,
        Self::Q4_0,
        Self::Iq4Nl,
    ];

    /// The ggml tensor type of the 2-D weights.
    pub fn tensor_type(self) -> TensorType {
        match self {
            Self::F16 => TensorType::F16,
            Self::Q8_0 => TensorType::Q8_0,
            Self::Q5_1 => TensorType::Q5_1,
            Self::Q5_0 => TensorType::Q5_0,
            Self::Q4_0 => TensorType::Q4_0,
            Self::Iq4Nl => TensorType::Iq4Nl,
        }
    }

    /// The `ftype` hyper-parameter of a file of this type: the ggml file type,
    /// plus `QNT_VERSION × 1000` for quantized files (what upstream's quantizer writes).
    pub fn stored_ftype(self) -> i32 {
        let ftype = self.tensor_type().ftype();
        match self {
            Self::F16 => ftype,
            _ => QNT_VERSION * QNT_VERSION_FACTOR + ftype,
        }
    }

    /// Name as used in file names and model ids (`f16`, `q5_1`, …).
    pub fn as_str(self) -> &'static str {
        self.tensor_type().name()
    }
}

impl fmt::Display for Quant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Quant {
    type Err = CatalogError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|q| q.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| CatalogError::UnknownQuant {
                value: s.to_string(),
                known: Self::ALL.map(Quant::as_str).join(", "),
            })
    }
}

/// Bytes of the vocabulary section written for English-only models: 50,257 tokens
/// (GPT-2 ranks 0‥50255 plus `<|endoftext|>`, as in upstream's published files).
const VOCAB_BYTES_EN: u64 = 521_859;
/// Bytes of the vocabulary section of multilingual models: 50,257 tokens (the last
/// one empty).
const VOCAB_BYTES_MULTI: u64 = 508_089;

/// One known model size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownModel {
    /// Size id as upstream names it: `tiny`, `base.en`, `large-v3-turbo`, …
    pub id: &'static str,
    /// Hyper-parameters.
    pub hparams: HParams,
    /// SHA-1 of upstream's f16 file, as published in whisper.cpp's `models/README.md`.
    pub sha1_f16: Option<&'static str>,
    /// Run-time memory beyond the weights, MB: upstream README's "Mem" column minus
    /// the f16 file size (KV caches and compute buffers; an estimate).
    pub overhead_mb: u64,
}

impl KnownModel {
    /// Whether the model is multilingual (its id has no `.en`).
    pub fn multilingual(&self) -> bool {
        self.hparams.is_multilingual()
    }

    /// Upstream's file name: `ggml-<id>.bin` for f16, else `ggml-<id>-<quant>.bin`.
    pub fn file_name(&self, quant: Quant) -> String {
        match quant {
            Quant::F16 => format!("ggml-{}.bin", self.id),
            q => format!("ggml-{}-{q}.bin", self.id),
        }
    }

    /// Folder of this size in the artifact layout: `whisper_<id>_xeon`.
    pub fn dir_name(&self) -> String {
        format!("whisper_{}_xeon", self.id)
    }

    /// Bytes of the header (magic, hyper-parameters, mel filters, vocabulary).
    fn header_bytes(&self) -> u64 {
        let vocab = if self.multilingual() {
            VOCAB_BYTES_MULTI
        } else {
            VOCAB_BYTES_EN
        };
        4 + 11 * 4 + 8 + 4 * N_FFT_BINS as u64 * self.hparams.n_mels as u64 + vocab
    }

    /// Exact size of the model file with weights of type `quant` (as produced by
    /// upstream's converter and quantizer, and by this crate's import and quantize).
    pub fn file_bytes(&self, quant: Quant) -> u64 {
        ggml_file::file_size(self.header_bytes(), &self.hparams, quant.tensor_type())
    }

    /// Size of upstream's f16 file.
    pub fn f16_bytes(&self) -> u64 {
        self.file_bytes(Quant::F16)
    }

    /// Estimated resident memory, bytes, when serving with weights of type `quant`.
    pub fn memory_estimate(&self, quant: Quant) -> u64 {
        self.file_bytes(quant) + self.overhead_mb * 1_000_000
    }
}

const fn hp(
    n_vocab: i32,
    state: i32,
    heads: i32,
    audio_layers: i32,
    text_layers: i32,
    n_mels: i32,
) -> HParams {
    HParams {
        n_vocab,
        n_audio_ctx: 1500,
        n_audio_state: state,
        n_audio_head: heads,
        n_audio_layer: audio_layers,
        n_text_ctx: 448,
        n_text_state: state,
        n_text_head: heads,
        n_text_layer: text_layers,
        n_mels,
    }
}

const EN: i32 = 51864;
const MULTI: i32 = 51865;
const V3: i32 = 51866;

static MODELS: [KnownModel; 10] = [
    KnownModel {
        id: "tiny",
        hparams: hp(MULTI, 384, 6, 4, 4, 80),
        sha1_f16: Some("bd577a113a864445d4c299885e0cb97d4ba92b5f"),
        overhead_mb: 195,
    },
    KnownModel {
        id: "tiny.en",
        hparams: hp(EN, 384, 6, 4, 4, 80),
        sha1_f16: Some("c78c86eb1a8faa21b369bcd33207cc90d64ae9df"),
        overhead_mb: 195,
    },
    KnownModel {
        id: "base",
        hparams: hp(MULTI, 512, 8, 6, 6, 80),
        sha1_f16: Some("465707469ff3a37a2b9b8d8f89f2f99de7299dac"),
        overhead_mb: 240,
    },
    KnownModel {
        id: "base.en",
        hparams: hp(EN, 512, 8, 6, 6, 80),
        sha1_f16: Some("137c40403d78fd54d454da0f9bd998f78703390c"),
        overhead_mb: 240,
    },
    KnownModel {
        id: "small",
        hparams: hp(MULTI, 768, 12, 12, 12, 80),
        sha1_f16: Some("55356645c2b361a969dfd0ef2c5a50d530afd8d5"),
        overhead_mb: 365,
    },
    KnownModel {
        id: "small.en",
        hparams: hp(EN, 768, 12, 12, 12, 80),
        sha1_f16: Some("db8a495a91d927739e50b3fc1cc4c6b8f6c2d022"),
        overhead_mb: 365,
    },
    KnownModel {
        id: "medium",
        hparams: hp(MULTI, 1024, 16, 24, 24, 80),
        sha1_f16: Some("fd9727b6e1217c2f614f9b698455c4ffd82463b4"),
        overhead_mb: 570,
    },
    KnownModel {
        id: "medium.en",
        hparams: hp(EN, 1024, 16, 24, 24, 80),
        sha1_f16: Some("8c30f0e44ce9560643ebd10bbe50cd20eafd3723"),
        overhead_mb: 570,
    },
    KnownModel {
        id: "large-v3",
        hparams: hp(V3, 1280, 20, 32, 32, 128),
        sha1_f16: Some("ad82bf6a9043ceed055076d0fd39f5f186ff8062"),
        overhead_mb: 805,
    },
    KnownModel {
        id: "large-v3-turbo",
        hparams: hp(V3, 1280, 20, 32, 4, 128),
        sha1_f16: Some("4af2b29d7ec73d781377bfd1758ca957a807e941"),
        overhead_mb: 805,
    },
];

/// Every known model size.
pub fn models() -> &'static [KnownModel] {
    &MODELS
}

fn known_ids() -> String {
    MODELS.iter().map(|m| m.id).collect::<Vec<_>>().join(", ")
}

/// The model size `id` (`tiny` … `large-v3-turbo`).
///
/// # Errors
/// [`CatalogError::UnknownModel`] listing the known ids.
pub fn lookup(id: &str) -> Result<&'static KnownModel, CatalogError> {
    MODELS
        .iter()
        .find(|m| m.id == id)
        .ok_or_else(|| CatalogError::UnknownModel {
            id: id.to_string(),
            known: known_ids(),
        })
}

/// The known size whose hyper-parameters are `hparams`, if any.
pub fn identify(hparams: &HParams) -> Option<&'static KnownModel> {
    MODELS.iter().find(|m| m.hparams == *hparams)
}

/// Path of a model in the artifact layout:
/// `<artifacts_dir>/whisper_<id>_xeon/ggml-<id>[-<quant>].bin`.
pub fn model_path(artifacts_dir: &Path, model: &KnownModel, quant: Quant) -> PathBuf {
    artifacts_dir
        .join(model.dir_name())
        .join(model.file_name(quant))
}

/// A model as the API names it: `<size>` (default quantization, q8_0) or
/// `<size>-<quant>`, e.g. `base`, `base.en-q8_0`, `small-f16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelSpec {
    /// The model size.
    pub model: &'static KnownModel,
    /// The weight type.
    pub quant: Quant,
}

impl ModelSpec {
    /// The spec of size `id` with quantization `quant`.
    ///
    /// # Errors
    /// [`CatalogError::UnknownModel`].
    pub fn new(id: &str, quant: Quant) -> Result<Self, CatalogError> {
        Ok(Self {
            model: lookup(id)?,
            quant,
        })
    }

    /// File name of this model (upstream naming).
    pub fn file_name(&self) -> String {
        self.model.file_name(self.quant)
    }

    /// Path of this model under `artifacts_dir` (see [`model_path`]).
    pub fn path(&self, artifacts_dir: &Path) -> PathBuf {
        model_path(artifacts_dir, self.model, self.quant)
    }
}

impl fmt::Display for ModelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.model.id, self.quant)
    }
}

impl FromStr for ModelSpec {
    type Err = CatalogError;

    /// A bare size means the default weight type (see [`ModelRequest`] for the
    /// rule that prefers a file already present).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let request: ModelRequest = s.parse()?;
        Ok(Self {
            model: request.model,
            quant: request.quant.unwrap_or_default(),
        })
    }
}

/// Weight types in the order a bare size picks among files already present: the
/// default first, then q5_1 (the type of the service this one replaces), then by
/// decreasing precision.
pub const PRESENT_ORDER: [Quant; 6] = [
    Quant::Q8_0,
    Quant::Q5_1,
    Quant::F16,
    Quant::Q5_0,
    Quant::Q4_0,
    Quant::Iq4Nl,
];

/// A model as asked for: a size, with a weight type unless the name was bare
/// (`base` → none, `base-q5_1` → q5_1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelRequest {
    /// The model size.
    pub model: &'static KnownModel,
    /// The weight type, when named.
    pub quant: Option<Quant>,
}

/// Why a request resolved to the file it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// The weight type was named.
    Named,
    /// A bare size, and this file was the first of [`PRESENT_ORDER`] present.
    Present,
    /// A bare size with no file of that size present: the default type, to fetch.
    Default,
}

/// The file a [`ModelRequest`] means in an artifact directory, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolved {
    /// The model file's size and weight type.
    pub spec: ModelSpec,
    /// Why this one.
    pub choice: Choice,
}

impl ModelRequest {
    /// The file this request means under `artifacts_dir`: the named weight type; for
    /// a bare size the first file of [`PRESENT_ORDER`] that exists, else the default
    /// type (which then has to be fetched).
    pub fn resolve(&self, artifacts_dir: &Path) -> Resolved {
        let model = self.model;
        if let Some(quant) = self.quant {
            return Resolved {
                spec: ModelSpec { model, quant },
                choice: Choice::Named,
            };
        }
        PRESENT_ORDER
            .into_iter()
            .map(|quant| ModelSpec { model, quant })
            .find(|spec| spec.path(artifacts_dir).is_file())
            .map_or(
                Resolved {
                    spec: ModelSpec {
                        model,
                        quant: Quant::default(),
                    },
                    choice: Choice::Default,
                },
                |spec| Resolved {
                    spec,
                    choice: Choice::Present,
                },
            )
    }
}

impl fmt::Display for ModelRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.quant {
            Some(quant) => write!(f, "{}-{quant}", self.model.id),
            None => f.write_str(self.model.id),
        }
    }
}

impl fmt::Display for Resolved {
    /// The file and the reason, for the one log line that says which model is served.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let order = || PRESENT_ORDER.map(Quant::as_str).join(", ");
        match self.choice {
            Choice::Named => write!(f, "{} (weight type named)", self.spec),
            Choice::Present => write!(
                f,
                "{} (no weight type named; the first file of size {} present, in the order {})",
                self.spec,
                self.spec.model.id,
                order()
            ),
            Choice::Default => write!(
                f,
                "{} (no weight type named and no file of size {} present: the default type)",
                self.spec, self.spec.model.id
            ),
        }
    }
}

impl FromStr for ModelRequest {
    type Err = CatalogError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Ok(model) = lookup(s) {
            return Ok(Self { model, quant: None });
        }
        let unknown = || CatalogError::UnknownModel {
            id: s.to_string(),
            known: known_ids(),
        };
        let (id, quant) = s.rsplit_once('-').ok_or_else(unknown)?;
        let model = lookup(id).map_err(|_| unknown())?;
        Ok(Self {
            model,
            quant: Some(quant.parse()?),
        })
    }
}

/// A voice activity detection model: where its weights come from and what the
/// converted file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VadSpec {
    /// Name for `models pull`.
    pub id: &'static str,
    /// Folder in the artifact layout.
    pub dir_name: &'static str,
    /// File name in that folder.
    pub file_name: &'static str,
    /// The wheel on the Python package index holding the ONNX file.
    pub wheel: &'static str,
    /// Its exact version.
    pub wheel_version: &'static str,
    /// SHA-256 of the wheel file.
    pub wheel_sha256: &'static str,
    /// The ONNX file inside the wheel.
    pub member: &'static str,
    /// SHA-256 of the ONNX file.
    pub member_sha256: &'static str,
    /// Version written to the converted file's header.
    pub version: [i32; 3],
    /// SHA-256 of the converted file (the conversion is deterministic).
    pub converted_sha256: &'static str,
}

/// Silero VAD v6 as faster-whisper 1.2.1 ships it (the model faster-whisper's
/// `vad_filter` runs), converted to whisper.cpp's VAD format.
pub static SILERO_VAD: VadSpec = VadSpec {
    id: "silero-vad",
    dir_name: "silero-vad",
    file_name: "ggml-silero-v6.bin",
    wheel: "faster-whisper",
    wheel_version: "1.2.1",
    wheel_sha256: "79a66ad50688c0b794dd501dc340a736992a6342f7f95e5811be60b5224a26a7",
    member: "faster_whisper/assets/silero_vad_v6.onnx",
    member_sha256: "4cbf549b8326f60f80f2536d9eefeb450a9abe83365a098031c89719f1be17d2",
    version: [6, 0, 0],
    converted_sha256: "ab767b0a5eac7fd0c9499479f42c586f1c6f452538289dacf0869e53f95e1792",
};

/// A name the catalog does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// Unknown model size.
    #[error("unknown model `{id}`; known sizes: {known} (optionally suffixed with -<quant>)")]
    UnknownModel {
        /// The id asked for.
        id: String,
        /// The known ids, comma-separated.
        known: String,
    },
    /// Unknown quantization.
    #[error("unknown quantization `{value}`; known: {known}")]
    UnknownQuant {
        /// The value asked for.
        value: String,
        /// The known ones, comma-separated.
        known: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ftype_ids_follow_ggml() {
        // enum ggml_ftype: MOSTLY_F16 = 1, Q4_0 = 2, Q8_0 = 7, Q5_0 = 8, Q5_1 = 9,
        // IQ4_NL = 19;
        // quantized files store GGML_QNT_VERSION (2) * 1000 + ftype.
        let stored: Vec<_> = Quant::ALL.iter().map(|q| q.stored_ftype()).collect();
        assert_eq!(stored, [1, 2007, 2009, 2008, 2002, 2019]);
        let ids: Vec<_> = Quant::ALL.iter().map(|q| q.tensor_type().id()).collect();
        assert_eq!(ids, [1, 8, 7, 6, 2, 20]);
    }

    #[test]
    fn sizes_match_published_files() {
        // Sizes of upstream's published files (ggml-base.bin, ggml-base-q5_1.bin,
        // ggml-tiny.en.bin, ggml-large-v3.bin).
        let base = lookup("base").unwrap();
        assert_eq!(base.f16_bytes(), 147_951_465);
        assert_eq!(base.file_bytes(Quant::Q5_1), 59_707_625);
        assert_eq!(lookup("tiny.en").unwrap().f16_bytes(), 77_704_715);
        assert_eq!(lookup("large-v3").unwrap().f16_bytes(), 3_095_033_483);
        for m in models() {
            let sizes: Vec<_> = Quant::ALL.iter().map(|&q| m.file_bytes(q)).collect();
            assert!(
                sizes.windows(2).all(|w| w[0] >= w[1]),
                "{}: {sizes:?}",
                m.id
            );
            assert_eq!(m.file_bytes(Quant::Iq4Nl), m.file_bytes(Quant::Q4_0));
            assert!(m.memory_estimate(Quant::Q5_1) > m.file_bytes(Quant::Q5_1));
        }
    }

    #[test]
    fn model_ids_parse_and_print() {
        let spec: ModelSpec = "base".parse().unwrap();
        assert_eq!((spec.model.id, spec.quant), ("base", Quant::Q8_0));
        assert_eq!(spec.to_string(), "base-q8_0");
        let turbo: ModelSpec = "large-v3-turbo-q8_0".parse().unwrap();
        assert_eq!(
            (turbo.model.id, turbo.quant),
            ("large-v3-turbo", Quant::Q8_0)
        );
        assert_eq!(turbo.to_string().parse::<ModelSpec>().unwrap(), turbo);
        let v3: ModelSpec = "large-v3".parse().unwrap();
        assert_eq!(v3.model.id, "large-v3");
        let f16 = ModelSpec::new("small.en", Quant::F16).unwrap();
        assert_eq!(
            f16.path(Path::new("/a")),
            Path::new("/a/whisper_small.en_xeon/ggml-small.en.bin")
        );
        assert_eq!(
            "medium-q5_0"
                .parse::<ModelSpec>()
                .unwrap()
                .path(Path::new("/a")),
            Path::new("/a/whisper_medium_xeon/ggml-medium-q5_0.bin")
        );
    }

    #[test]
    fn a_bare_size_prefers_a_file_already_present() {
        let dir = tempfile::tempdir().unwrap();
        let put = |id: &str| {
            let path = id.parse::<ModelSpec>().unwrap().path(dir.path());
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, b"x").unwrap();
        };
        let resolve = |id: &str| {
            let resolved = id.parse::<ModelRequest>().unwrap().resolve(dir.path());
            (resolved.spec.to_string(), resolved.choice)
        };
        // Nothing present: the default type, to fetch.
        assert_eq!(resolve("base"), ("base-q8_0".into(), Choice::Default));
        // Only the old service's q5_1: served as it is.
        put("base-q5_1");
        assert_eq!(resolve("base"), ("base-q5_1".into(), Choice::Present));
        put("base-f16");
        assert_eq!(resolve("base"), ("base-q5_1".into(), Choice::Present));
        // Both: the default type first.
        put("base-q8_0");
        assert_eq!(resolve("base"), ("base-q8_0".into(), Choice::Present));
        // A named type is obeyed, present or not; other sizes do not count.
        assert_eq!(resolve("base-q4_0"), ("base-q4_0".into(), Choice::Named));
        assert_eq!(resolve("base.en"), ("base.en-q8_0".into(), Choice::Default));
        let line = "base"
            .parse::<ModelRequest>()
            .unwrap()
            .resolve(dir.path())
            .to_string();
        assert!(line.contains("q8_0, q5_1, f16"), "{line}");
    }

    #[test]
    fn unknown_names_list_the_known_ones() {
        let err = "huge".parse::<ModelSpec>().unwrap_err().to_string();
        assert!(
            err.contains("`huge`") && err.contains("tiny.en") && err.contains("large-v3-turbo"),
            "{err}"
        );
        let err = "base-q3_k".parse::<ModelSpec>().unwrap_err().to_string();
        assert!(err.contains("`q3_k`") && err.contains("q5_1"), "{err}");
        assert!(lookup("base.EN").is_err());
        assert_eq!(
            identify(&lookup("small").unwrap().hparams).unwrap().id,
            "small"
        );
    }
}
