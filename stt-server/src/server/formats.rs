//! Response formats of a transcript: `json`, `text`, `srt`, `vtt`,
//! `verbose_json` — shared by the HTTP API and the `transcribe` command.

use crate::live::protocol::LogProb;
use std::fmt::Write as _;
use std::io::Write as _;

use serde::Serialize;
use whisper_safe::{Segment, Transcript};

/// How to render a transcript.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ResponseFormat {
    /// `{"text": …}`
    #[default]
    #[value(name = "json")]
    Json,
    /// The text, `text/plain`.
    #[value(name = "text")]
    Text,
    /// SubRip subtitles.
    #[value(name = "srt")]
    Srt,
    /// WebVTT subtitles.
    #[value(name = "vtt")]
    Vtt,
    /// Task, language, duration, text, segments and/or words.
    #[value(name = "verbose_json")]
    VerboseJson,
}

impl ResponseFormat {
    /// Parses an API value.
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim() {
            "json" => Some(Self::Json),
            "text" => Some(Self::Text),
            "srt" => Some(Self::Srt),
            "vtt" => Some(Self::Vtt),
            "verbose_json" => Some(Self::VerboseJson),
            _ => None,
        }
    }

    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json | Self::VerboseJson => "application/json",
            Self::Text => "text/plain; charset=utf-8",
            Self::Srt => "application/x-subrip; charset=utf-8",
            Self::Vtt => "text/vtt; charset=utf-8",
        }
    }
}

/// Which timestamps `verbose_json` carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Granularities {
    /// `segments`.
    pub segment: bool,
    /// `words`.
    pub word: bool,
}

impl Default for Granularities {
    fn default() -> Self {
        Self {
            segment: true,
            word: false,
        }
    }
}

/// Transcription or translation (`task` of `verbose_json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// Same language.
    Transcribe,
    /// To English.
    Translate,
}

/// What a rendering needs besides the transcript.
#[derive(Debug, Clone, Copy)]
pub struct RenderOptions<'a> {
    /// The format.
    pub format: ResponseFormat,
    /// `verbose_json` content.
    pub granularities: Granularities,
    /// The task.
    pub task: Task,
    /// The language's English name (`english`), for `verbose_json`.
    pub language_name: Option<&'a str>,
    /// Token log-probabilities in `json` (`include[]=logprobs`).
    pub logprobs: bool,
}

#[derive(Serialize)]
struct Usage {
    #[serde(rename = "type")]
    kind: &'static str,
    seconds: u64,
}

fn usage(transcript: &Transcript) -> Usage {
    Usage {
        kind: "duration",
        seconds: transcript.duration_seconds.ceil() as u64,
    }
}

#[derive(Serialize)]
struct Json<'a> {
    text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    logprobs: Option<Vec<LogProb>>,
    usage: Usage,
}

/// The text tokens' log-probabilities, as the SDK's `Transcription.logprobs`.
fn logprobs(transcript: &Transcript) -> Vec<LogProb> {
    transcript
        .segments
        .iter()
        .flat_map(|s| s.tokens.iter())
        .filter(|t| !t.special)
        .map(|t| LogProb::of(&t.text, t.logprob))
        .collect()
}

#[derive(Serialize)]
struct VerboseJson<'a> {
    task: Task,
    language: &'a str,
    duration: f64,
    text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    segments: Option<Vec<VerboseSegment<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    words: Option<Vec<VerboseWord<'a>>>,
    usage: Usage,
}

/// The fields of a `verbose_json` segment: OpenAI's names, in their order.
pub const VERBOSE_SEGMENT_FIELDS: [&str; 10] = [
    "id",
    "seek",
    "start",
    "end",
    "text",
    "tokens",
    "temperature",
    "avg_logprob",
    "compression_ratio",
    "no_speech_prob",
];

#[derive(Serialize)]
struct VerboseSegment<'a> {
    id: usize,
    seek: u64,
    start: f64,
    end: f64,
    text: &'a str,
    tokens: Vec<i32>,
    temperature: f32,
    avg_logprob: f32,
    compression_ratio: f64,
    no_speech_prob: f32,
}

#[derive(Serialize)]
struct VerboseWord<'a> {
    word: &'a str,
    start: f64,
    end: f64,
}

/// Renders `transcript`; the result has the format's content type.
pub fn render(transcript: &Transcript, options: &RenderOptions<'_>) -> String {
    let text = transcript.text();
    match options.format {
        ResponseFormat::Json => to_json(&Json {
            text: &text,
            logprobs: options.logprobs.then(|| logprobs(transcript)),
            usage: usage(transcript),
        }),
        ResponseFormat::Text => format!("{text}\n"),
        ResponseFormat::Srt => subtitles(transcript, SubtitleStyle::Srt),
        ResponseFormat::Vtt => subtitles(transcript, SubtitleStyle::Vtt),
        ResponseFormat::VerboseJson => to_json(&VerboseJson {
            task: options.task,
            language: options
                .language_name
                .or(transcript.language.as_deref())
                .unwrap_or("unknown"),
            duration: transcript.duration_seconds,
            text: &text,
            segments: options
                .granularities
                .segment
                .then(|| transcript.segments.iter().map(verbose_segment).collect()),
            words: options.granularities.word.then(|| {
                transcript
                    .words()
                    .map(|w| VerboseWord {
                        word: &w.text,
                        start: w.start,
                        end: w.end,
                    })
                    .collect()
            }),
            usage: usage(transcript),
        }),
    }
}

fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("response types serialize")
}

fn verbose_segment(segment: &Segment) -> VerboseSegment<'_> {
    VerboseSegment {
        id: segment.index,
        // whisper.cpp does not report the window offset; the segment start in
        // 10 ms mel frames is the closest equivalent.
        seek: (segment.start * 100.0).round().max(0.0) as u64,
        start: segment.start,
        end: segment.end,
        text: &segment.text,
        tokens: segment.tokens.iter().map(|t| t.id).collect(),
        temperature: segment.temperature,
        avg_logprob: segment.avg_logprob,
        compression_ratio: compression_ratio(&segment.text),
        no_speech_prob: segment.no_speech_prob,
    }
}

/// Text bytes over zlib-compressed bytes, as OpenAI's Whisper computes it
/// (repetitive hallucinations compress well: > 2.4 is suspicious).
pub fn compression_ratio(text: &str) -> f64 {
    if text.is_empty() {
        return 0.0;
    }
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    encoder
        .write_all(text.as_bytes())
        .expect("writing to memory");
    let compressed = encoder.finish().expect("writing to memory");
    text.len() as f64 / compressed.len() as f64
}

#[derive(Clone, Copy, PartialEq)]
enum SubtitleStyle {
    Srt,
    Vtt,
}

fn subtitles(transcript: &Transcript, style: SubtitleStyle) -> String {
    let mut out = String::new();
    if style == SubtitleStyle::Vtt {
        out.push_str("WEBVTT\n\n");
    }
    let cues = transcript
        .segments
        .iter()
        .filter(|s| !s.text.trim().is_empty());
    for (n, segment) in cues.enumerate() {
        if style == SubtitleStyle::Srt {
            let _ = writeln!(out, "{}", n + 1);
        }
        let _ = writeln!(
            out,
            "{} --> {}\n{}\n",
            timestamp(segment.start, style),
            timestamp(segment.end, style),
            segment.text.trim()
        );
    }
    out
}

fn timestamp(seconds: f64, style: SubtitleStyle) -> String {
    let millis = (seconds.max(0.0) * 1000.0).round() as u64;
    let (h, m, s, ms) = (
        millis / 3_600_000,
        millis / 60_000 % 60,
        millis / 1000 % 60,
        millis % 1000,
    );
    let separator = if style == SubtitleStyle::Srt {
        ','
    } else {
        '.'
    };
    format!("{h:02}:{m:02}:{s:02}{separator}{ms:03}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use whisper_safe::{Token, Word};

    fn transcript() -> Transcript {
        let segment = |index, start, end, text: &str, words: Vec<Word>| Segment {
            index,
            start,
            end,
            text: text.into(),
            tokens: vec![
                Token {
                    id: 50364,
                    special: true,
                    ..Token::default()
                },
                Token {
                    id: 400,
                    ..Token::default()
                },
            ],
            words,
            avg_logprob: -0.25,
            no_speech_prob: 0.01,
            temperature: 0.0,
        };
        let word = |text: &str, start, end| Word {
            text: text.into(),
            start,
            end,
            probability: 0.9,
        };
        Transcript {
            segments: vec![
                segment(
                    0,
                    0.0,
                    3.5,
                    " And so my fellow Americans,",
                    vec![word("And", 0.0, 0.4), word("so", 0.4, 0.9)],
                ),
                segment(1, 3.5, 3661.25, " ask not.", vec![word("ask", 3.5, 4.0)]),
            ],
            language: Some("en".into()),
            language_probability: None,
            duration_seconds: 11.0,
            timings: Default::default(),
        }
    }

    fn options(format: ResponseFormat, segment: bool, word: bool) -> RenderOptions<'static> {
        RenderOptions {
            format,
            granularities: Granularities { segment, word },
            task: Task::Transcribe,
            language_name: Some("english"),
            logprobs: false,
        }
    }

    #[test]
    fn json_and_text() {
        let t = transcript();
        let json: serde_json::Value =
            serde_json::from_str(&render(&t, &options(ResponseFormat::Json, true, false))).unwrap();
        assert_eq!(json["text"], "And so my fellow Americans, ask not.");
        assert_eq!(json["usage"]["seconds"], 11);
        assert_eq!(
            render(&t, &options(ResponseFormat::Text, true, false)),
            "And so my fellow Americans, ask not.\n"
        );
    }

    #[test]
    fn subtitles_have_numbered_timed_cues() {
        let t = transcript();
        assert_eq!(
            render(&t, &options(ResponseFormat::Srt, true, false)),
            "1\n00:00:00,000 --> 00:00:03,500\nAnd so my fellow Americans,\n\n\
             2\n00:00:03,500 --> 01:01:01,250\nask not.\n\n"
        );
        assert_eq!(
            render(&t, &options(ResponseFormat::Vtt, true, false)),
            "WEBVTT\n\n00:00:00.000 --> 00:00:03.500\nAnd so my fellow Americans,\n\n\
             00:00:03.500 --> 01:01:01.250\nask not.\n\n"
        );
    }

    #[test]
    fn verbose_json_follows_granularities() {
        let t = transcript();
        let both: serde_json::Value = serde_json::from_str(&render(
            &t,
            &options(ResponseFormat::VerboseJson, true, true),
        ))
        .unwrap();
        assert_eq!(both["task"], "transcribe");
        assert_eq!(both["language"], "english");
        assert_eq!(both["duration"], 11.0);
        let segment = both["segments"][1].as_object().unwrap();
        let mut keys: Vec<&str> = segment.keys().map(String::as_str).collect();
        let mut fields = VERBOSE_SEGMENT_FIELDS;
        keys.sort_unstable();
        fields.sort_unstable();
        assert_eq!(keys, fields, "exactly OpenAI's fields");
        assert!(segment.values().all(|v| !v.is_null()), "{segment:?}");
        assert_eq!(segment["id"], 1);
        assert_eq!(segment["seek"], 350);
        assert_eq!(
            both["segments"][0]["tokens"],
            serde_json::json!([50364, 400])
        );
        assert_eq!(both["words"].as_array().unwrap().len(), 3);
        assert_eq!(
            both["words"][1],
            serde_json::json!({"word": "so", "start": 0.4, "end": 0.9})
        );

        let words_only: serde_json::Value = serde_json::from_str(&render(
            &t,
            &options(ResponseFormat::VerboseJson, false, true),
        ))
        .unwrap();
        assert!(words_only.get("segments").is_none());
        assert!(words_only["words"].is_array());
        let segments_only: serde_json::Value = serde_json::from_str(&render(
            &t,
            &options(ResponseFormat::VerboseJson, true, false),
        ))
        .unwrap();
        assert!(segments_only.get("words").is_none());
    }

    #[test]
    fn repetitive_text_compresses_well() {
        let normal =
            compression_ratio(" And so my fellow Americans, ask not what your country can do");
        let looping = compression_ratio(&" thank you".repeat(40));
        assert!(normal < 2.0, "{normal}");
        assert!(looping > 2.4, "{looping}");
    }
}
