//! `stt-server transcribe`: files in, transcripts out, through the same code as
//! the HTTP service — the same audio decoding, engine, options and formatters.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};
use whisper_safe::{AudioContext, Segment};

use crate::config::{ConfigError, ModelArgs, ModelConfig};
use crate::engine::{
    self, audio::InputError, Engine, EngineConfig, InvalidOption, JobSpec, RunError,
    TranscribeOptions, WhisperLoader,
};
use crate::server::formats::{self, Granularities, RenderOptions, ResponseFormat, Task};

/// Flags of `stt-server transcribe`.
#[derive(clap::Args, Debug, Clone)]
pub struct TranscribeArgs {
    /// Model and libraries.
    #[command(flatten)]
    pub model: ModelArgs,
    /// Audio files (WAV, MP3, FLAC, Ogg, M4A, …).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t = ResponseFormat::Text)]
    pub format: ResponseFormat,
    /// Spoken language, code or name [default: detect; English-only models: en]
    #[arg(long, short = 'l')]
    pub language: Option<String>,
    /// Translate to English.
    #[arg(long)]
    pub translate: bool,
    /// Text that conditions the decoder (spelling, style).
    #[arg(long)]
    pub prompt: Option<String>,
    /// Initial sampling temperature, 0..=1 [default: 0 with fallback]
    #[arg(long)]
    pub temperature: Option<f32>,
    /// Word timestamps (shown by `--format verbose_json`).
    #[arg(long)]
    pub words: bool,
    /// Compute threads [default: every core]
    #[arg(long, short = 't')]
    pub threads: Option<usize>,
    /// Compute threads of each piece of a long recording: threads ÷ this many
    /// pieces are decoded at once
    #[arg(long, default_value_t = 1)]
    pub threads_per_piece: usize,
    /// Decode with the model's full 30 s encoder context even for short audio.
    #[arg(long)]
    pub full_context: bool,
    /// Cut long audio at speech with the VAD model: `true`, `false` [default:
    /// on for audio over 30 s when the VAD model is present]
    #[arg(long, value_name = "BOOL")]
    pub vad_filter: Option<bool>,
    /// Print each segment's text to standard error as soon as it is decoded.
    #[arg(long)]
    pub live: bool,
    /// Show a progress bar on standard error [default: when it is a terminal]
    #[arg(long, value_name = "BOOL")]
    pub progress: Option<bool>,
}

/// Why `transcribe` failed.
#[derive(Debug, thiserror::Error)]
pub enum TranscribeError {
    /// A flag or variable is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The libraries cannot be found.
    #[error(transparent)]
    Libraries(#[from] whisper_safe::LoadError),
    /// The engine could not start.
    #[error(transparent)]
    Engine(#[from] engine::EngineError),
    /// The model could not be loaded.
    #[error(transparent)]
    Load(#[from] engine::ModelLoadError),
    /// An option does not suit the model.
    #[error(transparent)]
    Option(#[from] InvalidOption),
    /// Writing the output failed.
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
    /// Some files could not be transcribed (each is logged).
    #[error("{failed} of {total} files could not be transcribed")]
    Files {
        /// Files that failed.
        failed: usize,
        /// Files given.
        total: usize,
    },
}

/// A bar of 1000 steps for one file's audio done.
fn progress_bar(path: &std::path::Path) -> ProgressBar {
    let bar = ProgressBar::new(1000);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {percent:>3}% {elapsed} (eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(
        path.file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
    );
    bar
}

/// `h:mm:ss.cc`.
fn clock(seconds: f64) -> String {
    let centis = (seconds.max(0.0) * 100.0).round() as u64;
    format!(
        "{}:{:02}:{:02}.{:02}",
        centis / 360_000,
        centis / 6_000 % 60,
        centis / 100 % 60,
        centis % 100
    )
}

/// One file's failure.
#[derive(Debug, thiserror::Error)]
enum FileError {
    #[error("cannot read it: {0}")]
    Read(std::io::Error),
    #[error(transparent)]
    Audio(InputError),
    #[error(transparent)]
    Run(RunError),
    #[error("{0}")]
    Submit(engine::SubmitError),
}

/// Loads the libraries and the model, transcribes every file in order and
/// writes each transcript to `out` in `args.format` (preceded by a
/// `==> file <==` line when there are several files).
///
/// # Errors
/// [`TranscribeError`]; a file that fails is logged and the others still run.
pub fn transcribe_files(args: TranscribeArgs, out: &mut dyn Write) -> Result<(), TranscribeError> {
    let model_config = ModelConfig::from_args(args.model.clone());
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let registry = prometheus::Registry::new();
    let engine = Engine::start(
        EngineConfig {
            workers: 1,
            threads_per_worker: args.threads.unwrap_or(cores).clamp(1, 512),
            threads_per_piece: args.threads_per_piece.clamp(1, 512),
            queue_limit: 0,
            audio_context: if args.full_context {
                AudioContext::Full
            } else {
                AudioContext::Trimmed
            },
            memory_budget: u64::MAX,
        },
        Arc::new(WhisperLoader::new(
            model_config.loader_config()?,
            model_config.context_options(),
        )),
        &registry,
    )?;
    model_config.load_vad(&engine)?;
    let result = run(&engine, &model_config, &args, out);
    engine.shutdown();
    result
}

fn run(
    engine: &Engine,
    model_config: &ModelConfig,
    args: &TranscribeArgs,
    out: &mut dyn Write,
) -> Result<(), TranscribeError> {
    let model = engine.load(&model_config.initial_source())?;
    let options = TranscribeOptions {
        language: args.language.clone(),
        prompt: args.prompt.clone(),
        temperature: args.temperature,
        translate: args.translate,
        word_timestamps: args.words,
        vad_filter: args.vad_filter,
        ..TranscribeOptions::default()
    };
    let show_progress = args
        .progress
        .unwrap_or_else(|| std::io::stderr().is_terminal());
    let language = model.check(&options)?;
    let render = |transcript: &whisper_safe::Transcript| {
        formats::render(
            transcript,
            &RenderOptions {
                format: args.format,
                granularities: Granularities {
                    segment: true,
                    word: args.words,
                },
                task: if args.translate {
                    Task::Translate
                } else {
                    Task::Transcribe
                },
                language_name: transcript
                    .language
                    .as_deref()
                    .and_then(|code| model.language_name(code)),
                logprobs: false,
            },
        )
    };
    let mut failed = 0;
    for path in &args.files {
        let transcribed = (|| {
            let bytes = std::fs::read(path).map_err(FileError::Read)?;
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            let audio = engine::audio::decode(bytes.into(), name.as_deref(), None, f64::INFINITY)
                .map_err(FileError::Audio)?;
            let reservation = engine.reserve(0).map_err(FileError::Submit)?;
            let bar = show_progress.then(|| progress_bar(path));
            let (segments, live) = if args.live {
                let (sink, mut receiver) = tokio::sync::mpsc::unbounded_channel::<Segment>();
                let bar = bar.clone();
                let printer = std::thread::spawn(move || {
                    while let Some(segment) = receiver.blocking_recv() {
                        let line = format!(
                            "[{} --> {}] {}",
                            clock(segment.start),
                            clock(segment.end),
                            segment.text.trim()
                        );
                        // A bar draws only on a terminal; elsewhere print plainly.
                        match bar.as_ref().filter(|bar| !bar.is_hidden()) {
                            Some(bar) => bar.println(line),
                            None => eprintln!("{line}"),
                        }
                    }
                });
                (Some(sink), Some(printer))
            } else {
                (None, None)
            };
            let progress = bar.clone().map(|bar| {
                Arc::new(move |done: f32| bar.set_position((done * 1000.0) as u64))
                    as Arc<dyn Fn(f32) + Send + Sync>
            });
            let ticket = engine
                .submit(
                    reservation,
                    Arc::clone(&model),
                    JobSpec {
                        request_id: path.display().to_string().into(),
                        samples: audio.samples,
                        options: options.clone(),
                        language: language.clone(),
                        segments,
                        progress,
                    },
                )
                .map_err(FileError::Submit)?;
            let outcome = ticket.wait().map_err(FileError::Run);
            if let Some(printer) = live {
                // The engine dropped the sink with the job: the printer ends.
                let _ = printer.join();
            }
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            outcome
        })();
        match transcribed {
            Ok(outcome) => {
                if args.files.len() > 1 {
                    writeln!(out, "==> {} <==", path.display())?;
                }
                let text = render(&outcome.transcript);
                out.write_all(text.as_bytes())?;
                if !text.ends_with('\n') {
                    writeln!(out)?;
                }
            }
            Err(error) => {
                failed += 1;
                log::error!("{}: {error}", path.display());
            }
        }
    }
    out.flush()?;
    if failed > 0 {
        return Err(TranscribeError::Files {
            failed,
            total: args.files.len(),
        });
    }
    Ok(())
}
