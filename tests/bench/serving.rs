//! Measurements through the HTTP server: overhead against in-process runs,
//! cold (process per request) against warm, and load at a given concurrency.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::clip::Clip;
use crate::error::{BenchError, Result};
use crate::inproc::{self, ClipTiming, DecodeSettings, Engine};
use crate::server::{response_text, Server, ServerOptions};
use crate::stats;

/// Result of `bench overhead`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OverheadReport {
    /// `whisper_full_with_state` in this process.
    pub inproc: ClipTiming,
    /// The same clip through `POST /v1/audio/transcriptions`, as the client sees it.
    pub http: ClipTiming,
    /// `http.median / inproc.median`.
    pub ratio: f64,
}

/// A one-worker server with `settings`, as the in-process runs decode.
fn one_worker(settings: &DecodeSettings, server_bin: PathBuf) -> Result<Server> {
    Server::start(&ServerOptions {
        server_bin,
        lib_dir: settings.lib_dir.clone(),
        model: settings.model.clone(),
        workers: 1,
        threads: settings.threads,
        queue_limit: None,
        audio_context: Some(context_name(settings).into()),
        max_upload: None,
        env: vec![flash_attn_env(settings)],
    })
}

/// `bench overhead`: the clip alternately in-process and through a one-worker
/// server with the same settings, `runs` times each after one warm-up of each.
///
/// # Errors
/// When the model, the server or a request fails.
pub fn overhead(
    settings: &DecodeSettings,
    server_bin: PathBuf,
    clip: &Clip,
    runs: usize,
) -> Result<OverheadReport> {
    let server = one_worker(settings, server_bin)?;
    let mut engine = Engine::load(&settings.lib_dir, &settings.model, settings.flash_attn)?;
    let samples = clip.samples()?;
    let bytes = clip.bytes()?;
    let params = inproc::params(settings, &clip.language);
    let (mut local, mut remote) = (Vec::new(), Vec::new());
    let (mut local_text, mut remote_text) = (String::new(), String::new());
    for i in 0..=runs {
        let (seconds, text) = engine.run(&params, &samples)?;
        local_text = text;
        let started = Instant::now();
        let response = server.transcribe(&clip.name(), &bytes, &clip.language)?;
        let elapsed = started.elapsed().as_secs_f64();
        remote_text = ok_text(&server, &response)?;
        if i > 0 {
            local.push(seconds);
            remote.push(elapsed);
        }
    }
    let seconds = inproc::seconds_of(&samples);
    let inproc = ClipTiming::new(clip, seconds, local, local_text);
    let http = ClipTiming::new(clip, seconds, remote, remote_text);
    Ok(OverheadReport {
        ratio: http.median / inproc.median,
        inproc,
        http,
    })
}

/// Result of `bench cold`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ColdReport {
    /// `stt-server transcribe FILE`, one process per request (wall time each).
    pub cold: ClipTiming,
    /// The same request to a warm one-worker server.
    pub warm: ClipTiming,
    /// Model loads alone, in this process, seconds each.
    pub load_runs: Vec<f64>,
    /// Median of `load_runs`.
    pub load_median: f64,
    /// State creations alone, seconds each.
    pub state_runs: Vec<f64>,
    /// Median of `state_runs`.
    pub state_median: f64,
    /// Seconds from spawning the server to `/ready` answering 200.
    pub ready_seconds: f64,
}

/// `bench cold`: process per request against a warm server, and the model load alone.
///
/// # Errors
/// When a process, the server or a request fails.
pub fn cold(
    settings: &DecodeSettings,
    server_bin: PathBuf,
    clip: &Clip,
    runs: usize,
) -> Result<ColdReport> {
    let context = context_name(settings);
    let audio_seconds = inproc::seconds_of(&clip.samples()?);
    let mut cold_runs = Vec::new();
    let mut cold_text = String::new();
    for i in 0..=runs {
        let mut command = Command::new(&server_bin);
        command
            .args(["transcribe", "--language", &clip.language, "--threads"])
            .arg(settings.threads.to_string())
            .args((context == "full").then_some("--full-context"))
            .arg(&clip.path)
            .env("WHISPER_LIB_DIR", &settings.lib_dir)
            .env("WHISPER_MODEL_PATH", &settings.model)
            .envs([flash_attn_env(settings)])
            .env("RUST_LOG", "warn")
            .env("GGML_NO_BACKTRACE", "1");
        let started = Instant::now();
        let output = command.output().map_err(|e| BenchError::Command {
            command: format!("{command:?}"),
            reason: e.to_string(),
        })?;
        let elapsed = started.elapsed().as_secs_f64();
        if !output.status.success() {
            return Err(BenchError::Command {
                command: format!("{command:?}"),
                reason: format!(
                    "{}: {}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr)
                ),
            });
        }
        cold_text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        if i > 0 {
            cold_runs.push(elapsed);
        }
    }
    let server = one_worker(settings, server_bin)?;
    let bytes = clip.bytes()?;
    let mut warm_runs = Vec::new();
    let mut warm_text = String::new();
    for i in 0..=runs {
        let started = Instant::now();
        let response = server.transcribe(&clip.name(), &bytes, &clip.language)?;
        let elapsed = started.elapsed().as_secs_f64();
        warm_text = ok_text(&server, &response)?;
        if i > 0 {
            warm_runs.push(elapsed);
        }
    }
    let ready_seconds = server.ready_seconds;
    drop(server);
    let (mut load_runs, mut state_runs) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let engine = Engine::load(&settings.lib_dir, &settings.model, settings.flash_attn)?;
        load_runs.push(engine.load_seconds);
        state_runs.push(engine.state_seconds);
    }
    Ok(ColdReport {
        cold: ClipTiming::new(clip, audio_seconds, cold_runs, cold_text),
        warm: ClipTiming::new(clip, audio_seconds, warm_runs, warm_text),
        load_median: stats::median(&load_runs),
        state_median: stats::median(&state_runs),
        load_runs,
        state_runs,
        ready_seconds,
    })
}

/// Result of `bench serve`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServeReport {
    /// Workers × threads.
    pub workers: u32,
    /// Threads per worker.
    pub threads: u32,
    /// Clients sending at once.
    pub concurrency: usize,
    /// Requests sent.
    pub requests: usize,
    /// Seconds from spawn to ready.
    pub ready_seconds: f64,
    /// RSS when ready, KiB.
    pub rss_ready_kib: u64,
    /// (requests answered, RSS KiB) every `rss_every` answers.
    pub rss_trace: Vec<(usize, u64)>,
    /// RSS after the last answer, KiB.
    pub rss_end_kib: u64,
    /// Peak RSS of the server, KiB.
    pub peak_rss_kib: u64,
    /// Wall time of the load, seconds.
    pub wall_seconds: f64,
    /// Seconds of audio in the 200 answers.
    pub audio_seconds_ok: f64,
    /// Audio seconds transcribed per wall second.
    pub throughput: f64,
    /// Median latency of 200 answers, seconds.
    pub p50: f64,
    /// 95th percentile latency of 200 answers, seconds.
    pub p95: f64,
    /// Answers by status.
    pub statuses: BTreeMap<u16, usize>,
    /// Worst error rate of a 200 answer, per clip.
    pub worst_error_rate: BTreeMap<String, f64>,
}

/// `bench serve`: `requests` requests (clips in turn) from `concurrency` clients.
///
/// # Errors
/// When the server fails to start or a request gets no answer.
pub fn serve(
    options: &ServerOptions,
    clips: &[Clip],
    concurrency: usize,
    requests: usize,
    rss_every: usize,
) -> Result<ServeReport> {
    let server = Server::start(options)?;
    let rss_ready_kib = server.rss_kib();
    let inputs = clips
        .iter()
        .map(|clip| Ok((clip.bytes()?, inproc::seconds_of(&clip.samples()?))))
        .collect::<Result<Vec<_>>>()?;
    struct Answer {
        status: u16,
        seconds: f64,
        clip: usize,
        text: Option<String>,
    }
    let next = AtomicUsize::new(0);
    let answered = AtomicUsize::new(0);
    let answers = Mutex::new(Vec::new());
    let trace = Mutex::new(Vec::new());
    let started = Instant::now();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..concurrency.max(1))
            .map(|_| {
                scope.spawn(|| -> Result<()> {
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        if i >= requests {
                            return Ok(());
                        }
                        let c = i % clips.len();
                        let sent = Instant::now();
                        let response = server.transcribe(
                            &clips[c].name(),
                            &inputs[c].0,
                            &clips[c].language,
                        )?;
                        let seconds = sent.elapsed().as_secs_f64();
                        let text = (response.status == 200)
                            .then(|| response_text(&response))
                            .flatten();
                        answers.lock().expect("answers").push(Answer {
                            status: response.status,
                            seconds,
                            clip: c,
                            text,
                        });
                        let n = answered.fetch_add(1, Ordering::SeqCst) + 1;
                        if rss_every > 0 && n.is_multiple_of(rss_every) {
                            trace.lock().expect("trace").push((n, server.rss_kib()));
                        }
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .try_for_each(|w| w.join().expect("client thread panicked"))
    })?;
    let wall_seconds = started.elapsed().as_secs_f64();
    let answers = answers.into_inner().expect("answers");
    let mut statuses = BTreeMap::new();
    let mut latencies = Vec::new();
    let mut audio_seconds_ok = 0.0;
    let mut worst_error_rate: BTreeMap<String, f64> = BTreeMap::new();
    for answer in &answers {
        *statuses.entry(answer.status).or_insert(0) += 1;
        if answer.status == 200 {
            let clip = &clips[answer.clip];
            let error = answer
                .text
                .as_deref()
                .map_or(1.0, |text| clip.error_rate(text));
            let worst = worst_error_rate.entry(clip.name()).or_insert(0.0);
            *worst = worst.max(error);
            latencies.push(answer.seconds);
            audio_seconds_ok += inputs[answer.clip].1;
        }
    }
    Ok(ServeReport {
        workers: options.workers,
        threads: options.threads,
        concurrency,
        requests,
        ready_seconds: server.ready_seconds,
        rss_ready_kib,
        rss_trace: trace.into_inner().expect("trace"),
        rss_end_kib: server.rss_kib(),
        peak_rss_kib: server.peak_rss_kib(),
        wall_seconds,
        audio_seconds_ok,
        throughput: if wall_seconds > 0.0 {
            audio_seconds_ok / wall_seconds
        } else {
            0.0
        },
        p50: stats::percentile(&latencies, 50.0),
        p95: stats::percentile(&latencies, 95.0),
        statuses,
        worst_error_rate,
    })
}

/// The transcript of a 200 answer.
///
/// # Errors
/// [`BenchError::Server`] for any other answer.
pub fn ok_text(server: &Server, response: &crate::http::Response) -> Result<String> {
    match (response.status, response_text(response)) {
        (200, Some(text)) => Ok(text),
        (status, _) => Err(server.error(format!(
            "transcription answered {status}: {}",
            response.text()
        ))),
    }
}

/// `WHISPER_FLASH_ATTN` as the settings say, for the server processes.
fn flash_attn_env(settings: &DecodeSettings) -> (String, String) {
    let value = if settings.flash_attn { "on" } else { "off" };
    ("WHISPER_FLASH_ATTN".to_owned(), value.to_owned())
}

fn context_name(settings: &DecodeSettings) -> &'static str {
    match settings.audio_context {
        whisper_safe::AudioContext::Full => "full",
        _ => "trimmed",
    }
}
