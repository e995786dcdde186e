//! `bench longform`: long recordings with per-sentence reference times
//! (`scripts/longform-set.sh`), transcribed side by side by the server over HTTP
//! (one row per set of request fields) and by faster-whisper in its modes, and
//! scored by WER, repeated sentences, words in silence and segment start times.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use whisper_stt_tests::{normalize, scored_units, word_error_rate};

use crate::clip::file_name;
use crate::error::{BenchError, Result};
use crate::http::{self, Multipart};
use crate::report::{portable, quote};
use crate::sections;
use crate::server::{Server, ServerOptions};
use crate::stats::median;

/// Silences shorter than this are pauses: words in them are not counted.
pub const MIN_SILENCE: f64 = 5.0;
/// A word counts as inside a silence when its time is more than this inside it
/// (timestamps of both engines are coarse at speech edges).
const SILENCE_MARGIN: f64 = 0.5;
/// A reference sentence's start is on time when a segment starts within this.
const ON_TIME: f64 = 1.0;
/// The Markdown heading of the section (also what `--splice` replaces).
pub const HEADING: &str = "## Long form: side by side with faster-whisper";

/// A recording's `.json`: what was said when.
#[derive(Debug, Clone, Deserialize)]
pub struct Reference {
    /// Length, seconds.
    pub seconds: f64,
    /// The sentences in order.
    pub sentences: Vec<Sentence>,
}

/// A reference sentence and where it is in the recording, seconds.
#[derive(Debug, Clone, Deserialize)]
pub struct Sentence {
    /// Start.
    pub start: f64,
    /// End.
    pub end: f64,
    /// What is said.
    pub text: String,
}

impl Reference {
    /// Reads `path` (the `.json` beside a recording).
    ///
    /// # Errors
    /// [`BenchError::Io`] or [`BenchError::Json`].
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(BenchError::io(path))?;
        serde_json::from_str(&text).map_err(|source| BenchError::Json {
            command: format!("read {}", path.display()),
            source,
        })
    }

    /// The whole reference transcript.
    pub fn text(&self) -> String {
        let texts: Vec<&str> = self.sentences.iter().map(|s| s.text.as_str()).collect();
        texts.join(" ")
    }

    /// Stretches without speech longer than `min` seconds (before the first
    /// sentence, between sentences, after the last).
    pub fn silences(&self, min: f64) -> Vec<(f64, f64)> {
        let mut edges = vec![0.0];
        for s in &self.sentences {
            edges.extend([s.start, s.end]);
        }
        edges.push(self.seconds);
        edges
            .chunks(2)
            .map(|pair| (pair[0], pair[1]))
            .filter(|(start, end)| end - start > min)
            .collect()
    }
}

/// A hypothesis segment, seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// Start.
    pub start: f64,
    /// End.
    pub end: f64,
    /// Text.
    pub text: String,
}

/// A hypothesis word, seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Word {
    /// The word.
    pub word: String,
    /// Start.
    pub start: f64,
    /// End.
    pub end: f64,
}

/// A transcript with times (verbose_json, or faster-whisper's segments).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Transcript {
    /// The whole text.
    #[serde(default)]
    pub text: String,
    /// Segments in order.
    #[serde(default)]
    pub segments: Vec<Segment>,
    /// Words, when asked for.
    #[serde(default)]
    pub words: Vec<Word>,
}

impl Transcript {
    /// The time of each word: from `words` when present, else each segment's words
    /// spread evenly over the segment.
    pub fn word_times(&self) -> Vec<f64> {
        if !self.words.is_empty() {
            return self.words.iter().map(|w| (w.start + w.end) / 2.0).collect();
        }
        self.segments
            .iter()
            .flat_map(|s| {
                let n = normalize(&s.text).len();
                let step = (s.end - s.start) / n.max(1) as f64;
                (0..n).map(move |i| s.start + (i as f64 + 0.5) * step)
            })
            .collect()
    }
}

/// The scores of one transcript of one recording.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Scores {
    /// Word error rate against the reference transcript.
    pub wer: f64,
    /// Words of the reference (what `wer` divides by).
    pub reference_words: usize,
    /// Most consecutive occurrences of one sentence in the transcript.
    pub longest_repeat: usize,
    /// The same in the reference (what the audio itself repeats).
    pub reference_repeat: usize,
    /// Words placed inside silences longer than [`MIN_SILENCE`].
    pub words_in_silence: usize,
    /// Per reference sentence, seconds to the nearest segment start.
    pub start_errors: Vec<f64>,
}

impl Scores {
    /// Scores `transcript` against `reference`.
    pub fn of(reference: &Reference, transcript: &Transcript) -> Self {
        let reference_text = reference.text();
        let hypothesis_units: Vec<&str> = transcript
            .segments
            .iter()
            .map(|s| s.text.as_str())
            .collect();
        let hypothesis_units = if hypothesis_units.is_empty() {
            vec![transcript.text.as_str()]
        } else {
            hypothesis_units
        };
        let reference_units: Vec<&str> = reference
            .sentences
            .iter()
            .map(|s| s.text.as_str())
            .collect();
        Self {
            wer: word_error_rate(&reference_text, &transcript.text),
            reference_words: scored_units(&reference_text, false),
            longest_repeat: longest_repeat(&sentences(&hypothesis_units)),
            reference_repeat: longest_repeat(&sentences(&reference_units)),
            words_in_silence: words_in_silence(
                &reference.silences(MIN_SILENCE),
                &transcript.word_times(),
            ),
            start_errors: start_errors(reference, &transcript.segments),
        }
    }

    /// Median of [`start_errors`](Self::start_errors).
    pub fn start_error_median(&self) -> f64 {
        median(&self.start_errors)
    }

    /// Share of reference sentences with a segment starting within [`ON_TIME`].
    pub fn on_time_share(&self) -> f64 {
        on_time_share(&self.start_errors)
    }
}

/// Sentences of `texts` (split at `.`, `!`, `?` and between texts), normalized;
/// empty ones dropped.
pub fn sentences(texts: &[&str]) -> Vec<String> {
    texts
        .iter()
        .flat_map(|t| t.split(['.', '!', '?']))
        .map(|s| normalize(s).join(" "))
        .filter(|s| !s.is_empty())
        .collect()
}

/// The most consecutive equal items (0 for none).
pub fn longest_repeat(items: &[String]) -> usize {
    let mut best = 0;
    let mut run = 0;
    for (i, item) in items.iter().enumerate() {
        run = if i > 0 && items[i - 1] == *item {
            run + 1
        } else {
            1
        };
        best = best.max(run);
    }
    best
}

/// Words whose time is more than [`SILENCE_MARGIN`] inside one of `silences`.
pub fn words_in_silence(silences: &[(f64, f64)], word_times: &[f64]) -> usize {
    word_times
        .iter()
        .filter(|&&t| {
            silences
                .iter()
                .any(|&(start, end)| t > start + SILENCE_MARGIN && t < end - SILENCE_MARGIN)
        })
        .count()
}

/// For each reference sentence, the distance to the nearest segment start (the
/// recording's length when there is no segment).
pub fn start_errors(reference: &Reference, segments: &[Segment]) -> Vec<f64> {
    reference
        .sentences
        .iter()
        .map(|sentence| {
            segments
                .iter()
                .map(|s| (s.start - sentence.start).abs())
                .fold(reference.seconds, f64::min)
        })
        .collect()
}

/// Share of `errors` within [`ON_TIME`] (0 when empty).
pub fn on_time_share(errors: &[f64]) -> f64 {
    if errors.is_empty() {
        return 0.0;
    }
    errors.iter().filter(|&&e| e <= ON_TIME).count() as f64 / errors.len() as f64
}

/// A server row: a label and the request fields that differ from the defaults,
/// given as `LABEL` or `LABEL;field=value;field=value`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerRow {
    /// Shown in the table.
    pub label: String,
    /// Extra multipart fields.
    pub fields: Vec<(String, String)>,
}

impl FromStr for ServerRow {
    type Err = String;

    fn from_str(spec: &str) -> Result<Self, String> {
        let mut parts = spec.split(';');
        let label = parts.next().unwrap_or_default().trim().to_owned();
        if label.is_empty() {
            return Err(format!("row {spec:?} has no label"));
        }
        let fields = parts
            .map(|field| {
                field
                    .split_once('=')
                    .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
                    .ok_or_else(|| format!("row {spec:?}: expected field=value, got {field:?}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { label, fields })
    }
}

/// A faster-whisper mode (`--mode` of the peer script).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PeerMode {
    /// `WhisperModel.transcribe`, its defaults (no VAD).
    Sequential,
    /// The same with `vad_filter=True`.
    Vad,
    /// `BatchedInferencePipeline` (VAD, windows decoded in batches).
    Batched,
}

impl PeerMode {
    fn name(self) -> &'static str {
        match self {
            Self::Sequential => "sequential",
            Self::Vad => "vad",
            Self::Batched => "batched",
        }
    }
}

/// Inputs of `bench longform`.
#[derive(Debug, Clone, clap::Args)]
pub struct LongformArgs {
    /// How to start the server (its model: the ggml file).
    #[command(flatten)]
    pub server: ServerOptions,
    /// Recordings (WAV with `.json` reference times beside them).
    #[arg(long = "recording", required = true)]
    pub recordings: Vec<PathBuf>,
    /// Server rows, `LABEL[;field=value...]` [default: one row with the server's defaults].
    #[arg(long = "server-row")]
    pub rows: Vec<ServerRow>,
    /// Python of the faster-whisper virtual environment (no faster-whisper rows without it).
    #[arg(long, requires_all = ["peer_script", "ct2_model"])]
    pub python: Option<PathBuf>,
    /// tests/bench/faster_whisper_bench.py.
    #[arg(long)]
    pub peer_script: Option<PathBuf>,
    /// CTranslate2 checkpoint of the same weights.
    #[arg(long)]
    pub ct2_model: Option<PathBuf>,
    /// faster-whisper modes, in order.
    #[arg(long = "peer-mode", value_enum, default_values_t = [PeerMode::Sequential, PeerMode::Vad, PeerMode::Batched])]
    pub peer_modes: Vec<PeerMode>,
    /// Ask every row for word timestamps (the server: `timestamp_granularities[]`
    /// word and segment; faster-whisper: `word_timestamps=True`).
    #[arg(long)]
    pub word_timestamps: bool,
    /// batch_size of the batched mode.
    #[arg(long, default_value_t = 8)]
    pub batch_size: u32,
    /// A note put under the section's heading (for example the machine's load).
    #[arg(long, default_value = "")]
    pub note: String,
    /// Also write the Markdown section into this file (replacing its section).
    #[arg(long)]
    pub splice: Option<PathBuf>,
}

/// A recording of the set.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordingInfo {
    /// File name.
    pub name: String,
    /// Length, seconds.
    pub seconds: f64,
    /// Reference sentences.
    pub sentences: usize,
    /// Reference words.
    pub words: usize,
    /// Silences longer than [`MIN_SILENCE`], seconds each.
    pub silences: Vec<f64>,
}

/// One recording transcribed by one row.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RowResult {
    /// Wall time, seconds (HTTP request as the client sees it; faster-whisper:
    /// transcribe and every segment consumed, audio decoded beforehand).
    pub seconds: f64,
    /// Scores.
    pub scores: Scores,
    /// The transcript.
    pub transcript: Transcript,
}

/// A row: a system in one configuration, on every recording.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    /// Label.
    pub label: String,
    /// `stt-server` or `faster-whisper`.
    pub system: String,
    /// The peer's mode, for faster-whisper rows.
    pub mode: Option<PeerMode>,
    /// Per recording, in the order of [`LongformReport::recordings`].
    pub results: Vec<RowResult>,
    /// How to reproduce it.
    pub command: String,
}

impl Row {
    fn total_seconds(&self) -> f64 {
        self.results.iter().map(|r| r.seconds).sum()
    }

    /// WER over all recordings, weighted by reference words.
    fn pooled_wer(&self) -> f64 {
        let (errors, words) = self.results.iter().fold((0.0, 0), |(e, n), r| {
            (
                e + r.scores.wer * r.scores.reference_words as f64,
                n + r.scores.reference_words,
            )
        });
        errors / words.max(1) as f64
    }

    fn all_start_errors(&self) -> Vec<f64> {
        self.results
            .iter()
            .flat_map(|r| r.scores.start_errors.iter().copied())
            .collect()
    }
}

/// What `bench longform` prints.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LongformReport {
    /// The recordings.
    pub recordings: Vec<RecordingInfo>,
    /// Server rows first, then faster-whisper's.
    pub rows: Vec<Row>,
    /// faster-whisper's version, when it ran.
    pub faster_whisper: Option<String>,
    /// Threads of every row.
    pub threads: u32,
    /// Whether word timestamps were asked for.
    pub word_timestamps: bool,
    /// `--note`.
    #[serde(default)]
    pub note: String,
}

/// `bench longform`.
///
/// # Errors
/// When the server or the peer fails, or a reference cannot be read.
pub fn longform(args: &LongformArgs) -> Result<LongformReport> {
    let mut references = Vec::new();
    let mut recordings = Vec::new();
    for path in &args.recordings {
        let reference = Reference::read(&path.with_extension("json"))?;
        recordings.push(RecordingInfo {
            name: file_name(path),
            seconds: reference.seconds,
            sentences: reference.sentences.len(),
            words: scored_units(&reference.text(), false),
            silences: reference
                .silences(MIN_SILENCE)
                .iter()
                .map(|(s, e)| e - s)
                .collect(),
        });
        references.push(reference);
    }
    let rows = if args.rows.is_empty() {
        vec![ServerRow {
            label: "stt-server, defaults".into(),
            fields: Vec::new(),
        }]
    } else {
        args.rows.clone()
    };
    let mut report = LongformReport {
        recordings,
        rows: Vec::new(),
        faster_whisper: None,
        threads: args.server.threads,
        word_timestamps: args.word_timestamps,
        note: args.note.clone(),
    };
    let server = Server::start(&args.server)?;
    for row in &rows {
        let mut results = Vec::new();
        for (path, reference) in args.recordings.iter().zip(&references) {
            let bytes = std::fs::read(path).map_err(BenchError::io(path))?;
            let mut fields = row.fields.clone();
            if args.word_timestamps {
                for granularity in ["word", "segment"] {
                    fields.push(("timestamp_granularities[]".into(), granularity.into()));
                }
            }
            let (seconds, transcript) = transcribe(&server, path, &bytes, &fields)?;
            eprintln!("  {} {}: {seconds:.1} s", row.label, file_name(path));
            let scores = Scores::of(reference, &transcript);
            results.push(RowResult {
                seconds,
                scores,
                transcript,
            });
        }
        let fields: Vec<String> = row.fields.iter().map(|(n, v)| format!("{n}={v}")).collect();
        report.rows.push(Row {
            label: row.label.clone(),
            system: "stt-server".into(),
            mode: None,
            results,
            command: if fields.is_empty() {
                "request fields: the defaults".into()
            } else {
                format!("request fields: {}", fields.join(", "))
            },
        });
    }
    drop(server);
    if let (Some(python), Some(script), Some(model)) =
        (&args.python, &args.peer_script, &args.ct2_model)
    {
        for &mode in &args.peer_modes {
            let (version, row) = peer(args, python, script, model, mode, &references)?;
            report.faster_whisper = Some(version);
            report.rows.push(row);
        }
    }
    if let Some(path) = &args.splice {
        let mut argv: Vec<String> = std::env::args().collect();
        if let Some(i) = argv.iter().position(|a| a == "--splice") {
            argv.drain(i..(i + 2).min(argv.len()));
        }
        let document = std::fs::read_to_string(path).unwrap_or_default();
        let section = markdown(&[(&report, &shell_line(&argv))]);
        std::fs::write(path, sections::splice(&document, HEADING, &section))
            .map_err(BenchError::io(path))?;
    }
    Ok(report)
}

/// `argv` as a shell line without paths of this machine.
fn shell_line(argv: &[String]) -> String {
    let words: Vec<String> = argv.iter().map(|a| quote(&portable(a))).collect();
    words.join(" ")
}

/// One verbose_json request with `fields` added; (wall seconds, transcript).
fn transcribe(
    server: &Server,
    path: &Path,
    bytes: &[u8],
    fields: &[(String, String)],
) -> Result<(f64, Transcript)> {
    let mut form = Multipart::new()
        .text("model", "whisper-1")
        .text("language", "en")
        .text("response_format", "verbose_json");
    for (name, value) in fields {
        form = form.text(name, value);
    }
    let (content_type, body) = form
        .file("file", &file_name(path), "audio/wav", bytes)
        .finish();
    let started = Instant::now();
    let response = http::post(
        server.addr,
        "/v1/audio/transcriptions",
        &content_type,
        &body,
        Duration::from_secs(3600),
    )?;
    let seconds = started.elapsed().as_secs_f64();
    if response.status != 200 {
        return Err(server.error(format!(
            "{} answered {}: {}",
            file_name(path),
            response.status,
            response.text()
        )));
    }
    let transcript = serde_json::from_slice(&response.body).map_err(|source| BenchError::Json {
        command: format!("verbose_json of {}", file_name(path)),
        source,
    })?;
    Ok((seconds, transcript))
}

#[derive(Deserialize)]
struct PeerOutput {
    faster_whisper: String,
    clips: Vec<PeerClip>,
}

#[derive(Deserialize)]
struct PeerClip {
    runs: Vec<f64>,
    #[serde(flatten)]
    transcript: Transcript,
}

/// faster-whisper in `mode` on every recording: (its version, the row).
fn peer(
    args: &LongformArgs,
    python: &Path,
    script: &Path,
    model: &Path,
    mode: PeerMode,
    references: &[Reference],
) -> Result<(String, Row)> {
    let path = |p: &Path| p.to_string_lossy().into_owned();
    let mut argv = vec![path(python), path(script), "--model".into(), path(model)];
    argv.extend(["--mode", mode.name(), "--threads"].map(String::from));
    argv.push(args.server.threads.to_string());
    argv.extend(["--compute-type", "int8", "--runs", "1", "--warmup", "0"].map(String::from));
    if args.word_timestamps {
        argv.push("--word-timestamps".into());
    }
    if mode == PeerMode::Batched {
        argv.extend(["--batch-size".into(), args.batch_size.to_string()]);
    }
    for recording in &args.recordings {
        argv.extend(["--clip".into(), format!("{}@en", recording.display())]);
    }
    let shown = shell_line(&argv);
    let output = Command::new(python)
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| BenchError::Command {
            command: shown.clone(),
            reason: e.to_string(),
        })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let Some(json) = stdout.lines().rev().find(|l| l.starts_with('{')) else {
        return Err(BenchError::Command {
            command: shown,
            reason: format!("{}; stdout: {}", output.status, stdout.trim()),
        });
    };
    let parsed: PeerOutput = serde_json::from_str(json).map_err(|source| BenchError::Json {
        command: shown.clone(),
        source,
    })?;
    let results = parsed
        .clips
        .into_iter()
        .zip(references)
        .map(|(clip, reference)| RowResult {
            seconds: median(&clip.runs),
            scores: Scores::of(reference, &clip.transcript),
            transcript: clip.transcript,
        })
        .collect();
    let label = match mode {
        PeerMode::Sequential => "faster-whisper, sequential (its default)".to_owned(),
        PeerMode::Vad => "faster-whisper, vad_filter=True".to_owned(),
        PeerMode::Batched => format!(
            "faster-whisper, BatchedInferencePipeline (batch_size={})",
            args.batch_size
        ),
    };
    let row = Row {
        label,
        system: "faster-whisper".into(),
        mode: Some(mode),
        results,
        command: shown,
    };
    Ok((parsed.faster_whisper, row))
}

/// The Markdown section: one results table per pass (a report and the command
/// that reproduces it), the recordings of the first.
pub fn markdown(passes: &[(&LongformReport, &str)]) -> String {
    let mut md = String::new();
    let w = &mut md;
    let _ = writeln!(w, "{HEADING}\n");
    let Some((first, _)) = passes.first() else {
        return md;
    };
    if !first.note.is_empty() {
        let _ = writeln!(w, "{}\n", first.note);
    }
    let _ = writeln!(
        w,
        "Recordings of 10 minutes or more built by `scripts/longform-set.sh` (real speech: \
         LibriVox sentences from the pocketsphinx source package's test data and jfk.wav; \
         the rest espeak-ng and flite voices at several speeds; silences of 5–40 s, \
         noise-only stretches, passages of parallel sentences, one question asked three \
         times), each with per-sentence reference times. Same weights (base: our q8_0 \
         file and the CTranslate2 checkpoint it was imported from, int8), greedy, \
         {} threads, language given, one run each, nothing warmed up but the model. \
         Server rows time the HTTP request (`verbose_json`); faster-whisper rows time \
         `transcribe` with every segment consumed (audio decoded beforehand).\n",
        first.threads
    );
    let _ = writeln!(
        w,
        "| recording | seconds | sentences | words | silences > {MIN_SILENCE:.0} s |"
    );
    let _ = writeln!(w, "|---|---|---|---|---|");
    for r in &first.recordings {
        let silences: Vec<String> = r.silences.iter().map(|s| format!("{s:.0}")).collect();
        let _ = writeln!(
            w,
            "| {} | {:.0} | {} | {} | {} |",
            r.name,
            r.seconds,
            r.sentences,
            r.words,
            silences.join(", ")
        );
    }
    let _ = writeln!(
        w,
        "\nColumns: wall time and its ratio to faster-whisper's sequential and batched \
         modes (below 1: faster); WER (normalized); the longest run of one sentence \
         repeated back to back (in brackets: what the audio repeats); words placed more \
         than {SILENCE_MARGIN} s inside a silence longer than {MIN_SILENCE:.0} s (word \
         times when the pass asks for them, else each segment's words spread evenly over \
         it: coarse, and meaningless for `BatchedInferencePipeline`, whose default \
         `without_timestamps=True` makes every segment a whole VAD chunk); per reference \
         sentence the distance to the nearest segment start: median, and the share within \
         {ON_TIME:.0} s. Targets (issue 12): WER at or below the best faster-whisper mode; \
         wall time ≤ 0.8× sequential and ≤ 1.0× batched; no sentence repeated 3 times \
         unless the audio does; no words in silences; starts within 1 s.\n"
    );
    for (i, (report, command)) in passes.iter().enumerate() {
        let title = if report.word_timestamps {
            "With word timestamps (server: `timestamp_granularities[]=word,segment`; \
             faster-whisper: `word_timestamps=True`)"
        } else {
            "Segment timestamps (everyone's defaults)"
        };
        let _ = writeln!(w, "**{title}** [lf{}]\n", i + 1);
        results_table(w, report);
        let _ = writeln!(w, "\n- [lf{}] `{command}`", i + 1);
        for row in &report.rows {
            let _ = writeln!(w, "  - {}: `{}`", row.label, row.command);
        }
        let _ = writeln!(w);
    }
    md
}

/// The rows of one pass, per recording and in all.
fn results_table(w: &mut String, report: &LongformReport) {
    let peer = |mode| report.rows.iter().find(|r| r.mode == Some(mode));
    let (sequential, batched) = (peer(PeerMode::Sequential), peer(PeerMode::Batched));
    let ratio = |seconds: f64, peer: Option<&Row>, index: Option<usize>| -> String {
        let peer_seconds = match (peer, index) {
            (Some(p), Some(i)) => p.results.get(i).map(|r| r.seconds),
            (Some(p), None) => Some(p.total_seconds()),
            (None, _) => None,
        };
        peer_seconds.map_or("—".into(), |p| format!("{:.2}", seconds / p))
    };
    let _ = writeln!(
        w,
        "| recording | row | wall s | × sequential | × batched | WER | longest repeat | \
         words in silence | start error median s | starts within {ON_TIME:.0} s |"
    );
    let _ = writeln!(w, "|---|---|---|---|---|---|---|---|---|---|");
    for (i, recording) in report.recordings.iter().enumerate() {
        for row in &report.rows {
            let Some(result) = row.results.get(i) else {
                continue;
            };
            let s = &result.scores;
            let _ = writeln!(
                w,
                "| {} | {} | {:.1} | {} | {} | {:.3} | {} ({}) | {} | {:.2} | {:.0} % |",
                recording.name,
                row.label,
                result.seconds,
                ratio(result.seconds, sequential, Some(i)),
                ratio(result.seconds, batched, Some(i)),
                s.wer,
                s.longest_repeat,
                s.reference_repeat,
                s.words_in_silence,
                s.start_error_median(),
                s.on_time_share() * 100.0
            );
        }
    }
    for row in &report.rows {
        let errors = row.all_start_errors();
        let repeat = row.results.iter().map(|r| r.scores.longest_repeat).max();
        let audio_repeat = row.results.iter().map(|r| r.scores.reference_repeat).max();
        let total = row.total_seconds();
        let _ = writeln!(
            w,
            "| **all** | {} | {:.1} | **{}** | **{}** | **{:.3}** | {} ({}) | {} | {:.2} | {:.0} % |",
            row.label,
            total,
            ratio(total, sequential, None),
            ratio(total, batched, None),
            row.pooled_wer(),
            repeat.unwrap_or(0),
            audio_repeat.unwrap_or(0),
            row.results
                .iter()
                .map(|r| r.scores.words_in_silence)
                .sum::<usize>(),
            median(&errors),
            on_time_share(&errors) * 100.0
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference() -> Reference {
        let sentence = |start, end, text: &str| Sentence {
            start,
            end,
            text: text.into(),
        };
        Reference {
            seconds: 40.0,
            sentences: vec![
                sentence(0.5, 3.0, "It was the best of times."),
                sentence(3.4, 6.0, "It was the worst of times."),
                sentence(20.0, 22.0, "Can you hear me now?"),
                sentence(22.5, 24.0, "Can you hear me now?"),
                sentence(30.0, 33.0, "The end."),
            ],
        }
    }

    fn segment(start: f64, end: f64, text: &str) -> Segment {
        Segment {
            start,
            end,
            text: text.into(),
        }
    }

    #[test]
    fn silences_are_the_long_stretches_between_sentences() {
        // 0-0.5, 6-20, 24-30, 33-40: the three longer than 5 s.
        assert_eq!(
            reference().silences(MIN_SILENCE),
            vec![(6.0, 20.0), (24.0, 30.0), (33.0, 40.0)]
        );
    }

    #[test]
    fn repeats_count_back_to_back_sentences_after_normalizing() {
        let units = sentences(&[
            "It was the best of times. It was the best of times!",
            "it was the best of times",
            "Other.",
        ]);
        assert_eq!(longest_repeat(&units), 3);
        assert_eq!(longest_repeat(&sentences(&["a. b. a. b."])), 1);
        assert_eq!(longest_repeat(&[]), 0);
        let r = reference();
        let texts: Vec<&str> = r.sentences.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(longest_repeat(&sentences(&texts)), 2);
    }

    #[test]
    fn words_in_silence_use_word_times_or_spread_segment_words() {
        let silences = reference().silences(MIN_SILENCE);
        // Spread: "thank you" over 10-12 s → 10.5 and 11.5, both inside 6-20.
        let spread = Transcript {
            segments: vec![
                segment(0.5, 6.0, "It was"),
                segment(10.0, 12.0, "Thank you."),
            ],
            ..Transcript::default()
        };
        assert_eq!(spread.word_times(), vec![1.875, 4.625, 10.5, 11.5]);
        assert_eq!(words_in_silence(&silences, &spread.word_times()), 2);
        // Words at the edges (within the margin) do not count.
        assert_eq!(
            words_in_silence(&silences, &[6.3, 19.8, 24.2, 33.4, 36.0]),
            1
        );
        let worded = Transcript {
            words: vec![Word {
                word: "so".into(),
                start: 25.0,
                end: 25.4,
            }],
            ..spread
        };
        assert_eq!(worded.word_times(), vec![25.2]);
    }

    #[test]
    fn start_errors_take_the_nearest_segment_start() {
        let r = reference();
        let segments = [
            segment(0.0, 6.0, "x"),
            segment(21.0, 24.0, "y"),
            segment(30.2, 33.0, "z"),
        ];
        let errors = start_errors(&r, &segments);
        let rounded: Vec<f64> = errors.iter().map(|e| (e * 10.0).round() / 10.0).collect();
        assert_eq!(rounded, vec![0.5, 3.4, 1.0, 1.5, 0.2]);
        assert_eq!(on_time_share(&errors), 0.6);
        assert_eq!(start_errors(&r, &[]), vec![40.0; 5]);
    }

    #[test]
    fn scores_put_the_metrics_together() {
        let r = reference();
        let transcript = Transcript {
            text: "It was the best of times. It was the worst of times. Can you hear me now? \
                   Can you hear me now? The end."
                .into(),
            segments: vec![
                segment(
                    0.5,
                    6.0,
                    "It was the best of times. It was the worst of times.",
                ),
                segment(20.0, 24.0, "Can you hear me now? Can you hear me now?"),
                segment(30.0, 33.0, "The end."),
            ],
            words: Vec::new(),
        };
        let s = Scores::of(&r, &transcript);
        assert_eq!(
            (
                s.wer,
                s.reference_words,
                s.longest_repeat,
                s.reference_repeat,
                s.words_in_silence
            ),
            (0.0, 24, 2, 2, 0)
        );
        assert_eq!(s.start_error_median(), 0.0);
        assert_eq!(s.on_time_share(), 0.6);
    }

    #[test]
    fn rows_parse_label_and_fields() {
        let row: ServerRow = "stt-server, no VAD;vad_filter=false; temperature=0"
            .parse()
            .unwrap();
        assert_eq!(row.label, "stt-server, no VAD");
        assert_eq!(
            row.fields,
            vec![
                ("vad_filter".to_owned(), "false".to_owned()),
                ("temperature".to_owned(), "0".to_owned())
            ]
        );
        assert!("label;novalue".parse::<ServerRow>().is_err());
        assert!(";a=b".parse::<ServerRow>().is_err());
    }

    #[test]
    fn the_table_gives_ratios_to_the_peer_modes_and_pooled_figures() {
        let r = reference();
        let result = |seconds, text: &str| RowResult {
            seconds,
            scores: Scores::of(
                &r,
                &Transcript {
                    text: text.into(),
                    segments: vec![segment(0.5, 6.0, text)],
                    words: Vec::new(),
                },
            ),
            transcript: Transcript::default(),
        };
        let row = |label: &str, mode, seconds, text: &str| Row {
            label: label.into(),
            system: String::new(),
            mode,
            results: vec![result(seconds, text)],
            command: "cmd".into(),
        };
        let report = LongformReport {
            recordings: vec![RecordingInfo {
                name: "a.wav".into(),
                seconds: 40.0,
                sentences: 5,
                words: 24,
                silences: vec![14.0, 6.0, 7.0],
            }],
            rows: vec![
                row("ours", None, 10.0, &r.text()),
                row("seq", Some(PeerMode::Sequential), 20.0, &r.text()),
                row("bat", Some(PeerMode::Batched), 8.0, "It was"),
            ],
            faster_whisper: Some("1.2.1".into()),
            threads: 2,
            word_timestamps: false,
            note: "Provisional.".into(),
        };
        let md = markdown(&[(&report, "bench longform")]);
        assert!(md.starts_with(&format!("{HEADING}\n\nProvisional.\n")));
        assert!(md.contains("| a.wav | 40 | 5 | 24 | 14, 6, 7 |"), "{md}");
        assert!(
            md.contains("| a.wav | ours | 10.0 | 0.50 | 1.25 | 0.000 | 2 (2) | 0 | 19.50 | 20 % |"),
            "{md}"
        );
        assert!(
            md.contains("| **all** | bat | 8.0 | **0.40** | **1.00** | **0.917** |"),
            "{md}"
        );
        assert!(md.contains("- [lf1] `bench longform`"), "{md}");
    }
}
