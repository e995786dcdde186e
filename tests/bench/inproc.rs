//! In-process measurements: `whisper_full_with_state` through whisper-safe, the
//! baseline every other number is compared with.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use whisper_safe::{AudioContext, Context, ContextOptions, LoaderConfig, Params, State};

use crate::clip::Clip;
use crate::error::Result;
use crate::{procfs, stats};

/// Decoding settings shared by in-process runs and the server comparison.
#[derive(Debug, Clone, clap::Args)]
pub struct DecodeSettings {
    /// whisper.cpp library directory.
    #[arg(long)]
    pub lib_dir: PathBuf,
    /// Model file.
    #[arg(long)]
    pub model: PathBuf,
    /// Compute threads.
    #[arg(long, default_value_t = 2)]
    pub threads: u32,
    /// Encoder context: trimmed or full.
    #[arg(long, default_value = "trimmed", value_parser = parse_audio_context)]
    pub audio_context: AudioContext,
    /// Flash attention: on or off (the server's default: off).
    #[arg(long, default_value = "off", value_parser = parse_on_off, action = clap::ArgAction::Set)]
    pub flash_attn: bool,
}

/// `trimmed` or `full`.
///
/// # Errors
/// For anything else.
pub fn parse_audio_context(value: &str) -> Result<AudioContext, String> {
    match value {
        "trimmed" => Ok(AudioContext::Trimmed),
        "full" => Ok(AudioContext::Full),
        other => Err(format!("expected trimmed or full, got {other:?}")),
    }
}

/// `on` or `off`.
///
/// # Errors
/// For anything else.
pub fn parse_on_off(value: &str) -> Result<bool, String> {
    match value {
        "on" => Ok(true),
        "off" => Ok(false),
        other => Err(format!("expected on or off, got {other:?}")),
    }
}

/// Timings of one clip.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClipTiming {
    /// The clip's file name.
    pub clip: String,
    /// Its duration, seconds.
    pub audio_seconds: f64,
    /// Wall time of each measured run, seconds.
    pub runs: Vec<f64>,
    /// Median of `runs`.
    pub median: f64,
    /// The transcript of the last run.
    pub text: String,
    /// WER or CER of `text` against the reference.
    pub error_rate: f64,
    /// `WER` or `CER`.
    pub metric: String,
}

impl ClipTiming {
    /// Timings of `clip` from its runs and last transcript.
    pub fn new(clip: &Clip, audio_seconds: f64, runs: Vec<f64>, text: String) -> Self {
        Self {
            clip: clip.name(),
            audio_seconds,
            median: stats::median(&runs),
            error_rate: clip.error_rate(&text),
            metric: clip.metric().to_owned(),
            runs,
            text,
        }
    }
}

/// Result of `bench inproc`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InprocReport {
    /// Seconds to load the model (`whisper_init_from_file_with_params_no_state`).
    pub load_seconds: f64,
    /// Seconds to create the state.
    pub state_seconds: f64,
    /// Per clip.
    pub clips: Vec<ClipTiming>,
    /// Peak resident memory of the process, KiB.
    pub peak_rss_kib: u64,
}

/// A loaded model with one state.
pub struct Engine {
    state: State,
    /// Seconds the model took to load.
    pub load_seconds: f64,
    /// Seconds the state took to create.
    pub state_seconds: f64,
}

impl Engine {
    /// Loads the libraries (once per process), the model and a state.
    ///
    /// # Errors
    /// [`BenchError::Whisper`](crate::error::BenchError::Whisper).
    pub fn load(lib_dir: &Path, model: &Path, flash_attn: bool) -> Result<Self> {
        whisper_safe::init_with(&LoaderConfig::new(lib_dir))?;
        let options = ContextOptions {
            flash_attn,
            ..ContextOptions::default()
        };
        let started = Instant::now();
        let context = Context::new(model, &options)?;
        let load_seconds = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let state = context.create_state()?;
        Ok(Self {
            state,
            load_seconds,
            state_seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// One timed run: seconds and transcript.
    ///
    /// # Errors
    /// [`BenchError::Whisper`](crate::error::BenchError::Whisper).
    pub fn run(&mut self, params: &Params, samples: &[f32]) -> Result<(f64, String)> {
        let started = Instant::now();
        let transcript = self.state.full(params, samples)?;
        Ok((started.elapsed().as_secs_f64(), transcript.text()))
    }
}

/// The parameters the server uses for a request in `language` with these settings.
pub fn params(settings: &DecodeSettings, language: &str) -> Params {
    Params::greedy()
        .threads(settings.threads)
        .language(Some(language))
        .audio_context(settings.audio_context)
}

/// `bench inproc`: each clip `warmup + runs` times in this process.
///
/// # Errors
/// When the model cannot be loaded or a clip decoded or transcribed.
pub fn inproc(
    settings: &DecodeSettings,
    clips: &[Clip],
    runs: usize,
    warmup: usize,
) -> Result<InprocReport> {
    let mut engine = Engine::load(&settings.lib_dir, &settings.model, settings.flash_attn)?;
    let mut timings = Vec::new();
    for clip in clips {
        let samples = clip.samples()?;
        let params = params(settings, &clip.language);
        let mut times = Vec::new();
        let mut text = String::new();
        for i in 0..warmup + runs {
            let (seconds, transcript) = engine.run(&params, &samples)?;
            if i >= warmup {
                times.push(seconds);
            }
            text = transcript;
        }
        eprintln!("  inproc {}: {:.3} s", clip.name(), stats::median(&times));
        timings.push(ClipTiming::new(clip, seconds_of(&samples), times, text));
    }
    Ok(InprocReport {
        load_seconds: engine.load_seconds,
        state_seconds: engine.state_seconds,
        clips: timings,
        peak_rss_kib: procfs::peak_rss_kib(std::process::id()).unwrap_or(0),
    })
}

/// Duration of 16 kHz samples, seconds.
pub fn seconds_of(samples: &[f32]) -> f64 {
    samples.len() as f64 / f64::from(whisper_safe::SAMPLE_RATE)
}
