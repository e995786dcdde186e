//! `bench`: the benchmark harness of whisper-stt.
//!
//! Each measuring subcommand prints one JSON object on stdout (progress on
//! stderr) and is a complete, reproducible command; `report` runs them as child
//! processes, side by side, and writes `docs/benchmarks.md` with the command
//! behind every number. `scripts/bench.sh` prepares everything and runs `report`.
//!
//! Like the server, the harness sets `GOMP_SPINCOUNT=1000` before loading
//! whisper.cpp unless `GOMP_SPINCOUNT` or `OMP_WAIT_POLICY` is set, so in-process
//! and server runs wait for work the same way.

mod clip;
mod error;
mod http;
mod inproc;
mod loadtest;
mod longform;
mod procfs;
mod report;
mod sections;
mod server;
mod serving;
mod stats;
mod table;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde::Serialize;

use clip::Clip;
use error::Result;
use inproc::DecodeSettings;
use server::ServerOptions;

/// Benchmarks of whisper-stt: in-process, HTTP, cold/warm, concurrency, memory, load.
#[derive(Parser)]
#[command(about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Transcribe clips in this process (whisper_full_with_state), timing each run.
    Inproc {
        #[command(flatten)]
        settings: DecodeSettings,
        /// Clips as PATH[@LANG]; the reference transcript is PATH with .txt.
        #[arg(long = "clip", required = true)]
        clips: Vec<Clip>,
        /// Measured runs per clip.
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Unmeasured runs first.
        #[arg(long, default_value_t = 1)]
        warmup: usize,
    },
    /// One clip alternately in-process and through a one-worker server, same settings.
    Overhead(#[command(flatten)] OneClip),
    /// `stt-server transcribe` per request vs a warm server; the model load alone.
    Cold(#[command(flatten)] OneClip),
    /// Start a server, send requests from concurrent clients, measure latency,
    /// throughput and memory.
    Serve {
        #[command(flatten)]
        server: ServerOptions,
        /// Clips sent in turn, PATH[@LANG].
        #[arg(long = "clip", required = true)]
        clips: Vec<Clip>,
        /// Clients sending at once.
        #[arg(long, default_value_t = 1)]
        concurrency: usize,
        /// Requests in all (0: start-up and memory only).
        #[arg(long, default_value_t = 8)]
        requests: usize,
        /// Sample the server's RSS every this many answers (0: never).
        #[arg(long, default_value_t = 0)]
        rss_every: usize,
    },
    /// Bounded load test: valid, bad and oversized requests, every answer checked.
    Loadtest {
        #[command(flatten)]
        server: ServerOptions,
        /// Valid clips sent in turn, PATH[@LANG].
        #[arg(long = "clip", required = true)]
        clips: Vec<Clip>,
        /// Clients sending at once.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Requests in all.
        #[arg(long, default_value_t = 2000)]
        requests: usize,
        /// Highest WER/CER a 200 transcript may have against its own clip.
        #[arg(long, default_value_t = 0.35)]
        error_rate_bound: f64,
    },
    /// Long recordings with reference times: the server's rows and faster-whisper's
    /// modes side by side, scored by WER, repeats, words in silence, start times.
    Longform(longform::LongformArgs),
    /// Run every measurement side by side and write the Markdown report.
    Report(report::ReportArgs),
}

/// One clip through the server and another way, with the same settings.
#[derive(clap::Args)]
struct OneClip {
    #[command(flatten)]
    settings: DecodeSettings,
    /// The stt-server binary.
    #[arg(long)]
    server_bin: PathBuf,
    /// The clip, PATH[@LANG].
    #[arg(long)]
    clip: Clip,
    /// Measured runs (pairs, for `overhead`).
    #[arg(long, default_value_t = 5)]
    runs: usize,
}

fn main() -> ExitCode {
    // Single-threaded here, before any library is loaded.
    whisper_safe::set_process_environment();
    match run(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<()> {
    match command {
        Command::Inproc {
            settings,
            clips,
            runs,
            warmup,
        } => print(&inproc::inproc(&settings, &clips, runs, warmup)?),
        Command::Overhead(a) => print(&serving::overhead(
            &a.settings,
            a.server_bin,
            &a.clip,
            a.runs,
        )?),
        Command::Cold(a) => print(&serving::cold(&a.settings, a.server_bin, &a.clip, a.runs)?),
        Command::Serve {
            server,
            clips,
            concurrency,
            requests,
            rss_every,
        } => print(&serving::serve(
            &server,
            &clips,
            concurrency,
            requests,
            rss_every,
        )?),
        Command::Loadtest {
            server,
            clips,
            concurrency,
            requests,
            error_rate_bound,
        } => {
            let report =
                loadtest::loadtest(&server, &clips, concurrency, requests, error_rate_bound)?;
            print(&report)?;
            loadtest::verdict(&report)
        }
        Command::Longform(args) => print(&longform::longform(&args)?),
        Command::Report(args) => report::report(&args),
    }
}

fn print(value: &impl Serialize) -> Result<()> {
    let json = serde_json::to_string(value).map_err(|source| error::BenchError::Json {
        command: "serialize the result".into(),
        source,
    })?;
    println!("{json}");
    Ok(())
}
