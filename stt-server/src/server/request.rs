//! The fields of a transcription request, for both dialects: OpenAI's
//! (`/v1/audio/transcriptions`, `/v1/audio/translations`) and whisper.cpp
//! server's (`/inference`). Unknown fields are ignored, as both servers do.

use std::time::Duration;

use super::error::ApiError;
use super::form::Form;
use super::formats::{Granularities, ResponseFormat, Task};
use crate::engine::TranscribeOptions;

/// Which endpoint, hence which field names and defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /v1/audio/transcriptions`.
    Transcriptions,
    /// `POST /v1/audio/translations`.
    Translations,
    /// `POST /inference` (whisper.cpp server).
    Inference,
}

/// A parsed request (the audio travels separately).
#[derive(Debug, Clone, PartialEq)]
pub struct TranscriptionRequest {
    /// The model asked for (`None`: the loaded one).
    pub model: Option<String>,
    /// Decoding choices.
    pub options: TranscribeOptions,
    /// Response format.
    pub format: ResponseFormat,
    /// `verbose_json` content.
    pub granularities: Granularities,
    /// Answer with server-sent events.
    pub stream: bool,
    /// Token log-probabilities in the `json` answer (`include[]=logprobs`).
    pub logprobs: bool,
}

impl TranscriptionRequest {
    /// Transcription or translation.
    pub fn task(&self) -> Task {
        if self.options.translate {
            Task::Translate
        } else {
            Task::Transcribe
        }
    }
}

/// Parses the text fields of `form` for `endpoint`.
///
/// # Errors
/// 400 naming the field.
pub fn parse(endpoint: Endpoint, form: &Form) -> Result<TranscriptionRequest, ApiError> {
    let text = |name: &str| {
        form.get(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let format = match form.get("response_format").map(str::trim) {
        None | Some("") => ResponseFormat::Json,
        Some(value) => ResponseFormat::parse(value).ok_or_else(|| {
            ApiError::bad_param(
                "response_format",
                format!(
                    "unknown response_format {value:?}; use json, text, srt, vtt or verbose_json"
                ),
            )
        })?,
    };
    let mut options = TranscribeOptions {
        prompt: form
            .get("prompt")
            .filter(|p| !p.trim().is_empty())
            .map(str::to_owned),
        temperature: number(form, "temperature")?,
        ..TranscribeOptions::default()
    };
    let mut request = TranscriptionRequest {
        model: None,
        options: TranscribeOptions::default(),
        format,
        granularities: Granularities::default(),
        stream: false,
        logprobs: false,
    };
    match endpoint {
        Endpoint::Transcriptions | Endpoint::Translations => {
            request.model = text("model");
            options.language = text("language");
            options.translate = endpoint == Endpoint::Translations;
            request.granularities = granularities(form, format)?;
            options.word_timestamps = request.granularities.word;
            request.stream = boolean(form, "stream")?.unwrap_or(false);
            options.prompt = with_keywords(options.prompt.take(), form);
            options.languages = form
                .all("languages[]")
                .chain(form.all("languages"))
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect();
            request.logprobs = includes_logprobs(form, format)?;
            chunking_strategy(form, &mut options)?;
            // faster-whisper's (and speaches') names for the long-form settings.
            options.vad_filter = boolean(form, "vad_filter")?;
            options.condition_on_previous_text = boolean(form, "condition_on_previous_text")?;
            options.compression_ratio_threshold = number(form, "compression_ratio_threshold")?;
            options.log_prob_threshold =
                first_number(form, &["log_prob_threshold", "logprob_threshold"])?;
            options.no_speech_threshold = number(form, "no_speech_threshold")?;
            if request.stream && !matches!(format, ResponseFormat::Json | ResponseFormat::Text) {
                return Err(ApiError::bad_param(
                    "stream",
                    "streaming answers with transcript.text events: use response_format json or text",
                ));
            }
        }
        Endpoint::Inference => {
            // whisper.cpp server's defaults: English unless told otherwise.
            options.language = Some(text("language").unwrap_or_else(|| "en".into()));
            options.translate = boolean(form, "translate")?.unwrap_or(false);
            options.beam_size = number::<u32>(form, "beam_size")?.filter(|&b| b > 1);
            options.best_of = number(form, "best_of")?;
            options.condition_on_previous_text = boolean(form, "no_context")?.map(|off| !off);
            if let Some(increment) = number::<f32>(form, "temperature_inc")? {
                options.temperature_fallback = Some(increment > 0.0);
            }
            options.vad_filter = match boolean(form, "vad")? {
                Some(vad) => Some(vad),
                None => boolean(form, "vad_filter")?,
            };
            options.log_prob_threshold = number(form, "logprob_thold")?;
            options.no_speech_threshold = number(form, "no_speech_thold")?;
            options.offset = Duration::from_millis(number::<u64>(form, "offset_t")?.unwrap_or(0));
            options.duration = number::<u64>(form, "duration")?
                .filter(|&ms| ms > 0)
                .map(Duration::from_millis);
            request.granularities = Granularities {
                segment: true,
                word: false,
            };
        }
    }
    request.options = options;
    Ok(request)
}

/// The prompt with the request's `keywords[]` after it (words and phrases
/// that guide the decoding; OpenAI's `gpt-transcribe` field).
fn with_keywords(prompt: Option<String>, form: &Form) -> Option<String> {
    let keywords: Vec<&str> = form
        .all("keywords[]")
        .chain(form.all("keywords"))
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .collect();
    if keywords.is_empty() {
        return prompt;
    }
    let keywords = keywords.join(", ");
    Some(match prompt {
        Some(prompt) => format!("{} {keywords}", prompt.trim_end()),
        None => keywords,
    })
}

/// OpenAI's `chunking_strategy`: `auto` (the default long-audio path: cut at
/// speech when a VAD model is loaded) or `server_vad` with `threshold`,
/// `prefix_padding_ms` and `silence_duration_ms`, which turns the VAD on with
/// those settings (padding around each span, silence that ends one). Read as
/// a JSON text or as the SDK's flattened `chunking_strategy[field]` parts.
fn chunking_strategy(form: &Form, options: &mut TranscribeOptions) -> Result<(), ApiError> {
    const PARAM: &str = "chunking_strategy";
    let mut fields: Vec<(String, String)> = Vec::new();
    if let Some(value) = form.get(PARAM).map(str::trim).filter(|v| !v.is_empty()) {
        if value == "auto" {
            return Ok(());
        }
        let parsed: serde_json::Map<String, serde_json::Value> = serde_json::from_str(value)
            .map_err(|_| ApiError::bad_param(PARAM, "expected \"auto\" or a server_vad object"))?;
        for (key, v) in parsed {
            let text = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
            fields.push((key, text));
        }
    }
    for key in [
        "type",
        "threshold",
        "prefix_padding_ms",
        "silence_duration_ms",
    ] {
        if let Some(v) = form.get(&format!("{PARAM}[{key}]")) {
            fields.push((key.to_owned(), v.trim().to_owned()));
        }
    }
    if fields.is_empty() {
        return Ok(());
    }
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if field("type") != Some("server_vad") {
        return Err(ApiError::bad_param(
            PARAM,
            "the type must be server_vad (or the whole value \"auto\")",
        ));
    }
    let invalid = |name: &str| ApiError::bad_param(PARAM, format!("{name} is not a valid number"));
    let parse_ms = |name: &str| -> Result<Option<u32>, ApiError> {
        field(name)
            .map(|v| v.parse().map_err(|_| invalid(name)))
            .transpose()
    };
    options.vad_filter = Some(true);
    options.vad_tuning = crate::engine::VadTuning {
        threshold: field("threshold")
            .map(|v| v.parse().map_err(|_| invalid("threshold")))
            .transpose()?,
        speech_pad_ms: parse_ms("prefix_padding_ms")?,
        min_silence_ms: parse_ms("silence_duration_ms")?,
    };
    Ok(())
}

/// Whether `include[]` asks for log-probabilities (the only value OpenAI
/// defines); they come with `json` only, as in OpenAI's API.
fn includes_logprobs(form: &Form, format: ResponseFormat) -> Result<bool, ApiError> {
    let mut logprobs = false;
    for value in form.all("include[]").chain(form.all("include")) {
        match value.trim() {
            "logprobs" => logprobs = true,
            other => {
                return Err(ApiError::bad_param(
                    "include[]",
                    format!("{other:?} is not supported; the only value is logprobs"),
                ))
            }
        }
    }
    if logprobs && format != ResponseFormat::Json {
        return Err(ApiError::bad_param(
            "include[]",
            "logprobs come with response_format json only",
        ));
    }
    Ok(logprobs)
}

fn granularities(form: &Form, format: ResponseFormat) -> Result<Granularities, ApiError> {
    let values: Vec<&str> = form
        .all("timestamp_granularities[]")
        .chain(form.all("timestamp_granularities"))
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect();
    if values.is_empty() {
        return Ok(Granularities::default());
    }
    let mut wanted = Granularities {
        segment: false,
        word: false,
    };
    for value in values {
        match value {
            "segment" => wanted.segment = true,
            "word" => wanted.word = true,
            other => {
                return Err(ApiError::bad_param(
                    "timestamp_granularities[]",
                    format!("unknown granularity {other:?}; use segment or word"),
                ))
            }
        }
    }
    if wanted.word && format != ResponseFormat::VerboseJson {
        return Err(ApiError::bad_param(
            "timestamp_granularities[]",
            "word timestamps need response_format=verbose_json",
        ));
    }
    Ok(wanted)
}

fn number<T: std::str::FromStr>(form: &Form, name: &str) -> Result<Option<T>, ApiError> {
    match form.get(name).map(str::trim) {
        None | Some("") => Ok(None),
        Some(value) => value.parse().map(Some).map_err(|_| {
            ApiError::bad_param(name, format!("{name} must be a number, got {value:?}"))
        }),
    }
}

/// The first of `names` present.
fn first_number<T: std::str::FromStr>(form: &Form, names: &[&str]) -> Result<Option<T>, ApiError> {
    for name in names {
        if let Some(value) = number(form, name)? {
            return Ok(Some(value));
        }
    }
    Ok(None)
}

fn boolean(form: &Form, name: &str) -> Result<Option<bool>, ApiError> {
    match form
        .get(name)
        .map(|v| v.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("") => Ok(None),
        Some("true" | "1" | "yes" | "on") => Ok(Some(true)),
        Some("false" | "0" | "no" | "off") => Ok(Some(false)),
        Some(other) => Err(ApiError::bad_param(
            name,
            format!("{name} must be true or false, got {other:?}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(fields: &[(&str, &str)]) -> Form {
        Form {
            file: None,
            fields: fields
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn openai(fields: &[(&str, &str)]) -> Result<TranscriptionRequest, ApiError> {
        parse(Endpoint::Transcriptions, &form(fields))
    }

    #[test]
    fn openai_fields() {
        let request = openai(&[
            ("model", "whisper-1"),
            ("language", "fr"),
            ("prompt", "Bonjour."),
            ("temperature", "0.2"),
            ("response_format", "verbose_json"),
            ("timestamp_granularities[]", "word"),
            ("timestamp_granularities[]", "segment"),
            ("unknown_field", "ignored"),
        ])
        .unwrap();
        assert_eq!(request.model.as_deref(), Some("whisper-1"));
        assert_eq!(request.options.language.as_deref(), Some("fr"));
        assert_eq!(request.options.prompt.as_deref(), Some("Bonjour."));
        assert_eq!(request.options.temperature, Some(0.2));
        assert!(request.options.word_timestamps);
        assert_eq!(
            request.granularities,
            Granularities {
                segment: true,
                word: true
            }
        );
        assert_eq!(request.task(), Task::Transcribe);
        let defaults = openai(&[]).unwrap();
        assert_eq!(defaults.format, ResponseFormat::Json);
        assert_eq!(defaults.granularities, Granularities::default());
        assert!(!defaults.stream && defaults.model.is_none());
        let translation = parse(Endpoint::Translations, &form(&[])).unwrap();
        assert_eq!(translation.task(), Task::Translate);
    }

    #[test]
    fn contract_errors_name_the_field() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("response_format", "xml")], "response_format"),
            (
                &[("timestamp_granularities[]", "word")],
                "timestamp_granularities[]",
            ),
            (
                &[
                    ("response_format", "verbose_json"),
                    ("timestamp_granularities[]", "syllable"),
                ],
                "timestamp_granularities[]",
            ),
            (&[("temperature", "warm")], "temperature"),
            (&[("stream", "perhaps")], "stream"),
            (&[("vad_filter", "sometimes")], "vad_filter"),
            (
                &[("compression_ratio_threshold", "high")],
                "compression_ratio_threshold",
            ),
            (&[("stream", "true"), ("response_format", "srt")], "stream"),
        ];
        for (fields, param) in cases {
            let err = openai(fields).unwrap_err();
            assert_eq!(err.status, 400, "{fields:?}");
            assert_eq!(err.param.as_deref(), Some(*param), "{fields:?}");
        }
    }

    #[test]
    fn long_form_fields_take_faster_whisper_names() {
        let request = openai(&[
            ("vad_filter", "true"),
            ("condition_on_previous_text", "false"),
            ("compression_ratio_threshold", "2.0"),
            ("logprob_threshold", "-0.5"),
            ("no_speech_threshold", "0.9"),
        ])
        .unwrap();
        let options = &request.options;
        assert_eq!(options.vad_filter, Some(true));
        assert_eq!(options.condition_on_previous_text, Some(false));
        assert_eq!(options.compression_ratio_threshold, Some(2.0));
        assert_eq!(options.log_prob_threshold, Some(-0.5));
        assert_eq!(options.no_speech_threshold, Some(0.9));
        let defaults = openai(&[]).unwrap().options;
        assert_eq!(defaults.vad_filter, None);
        assert_eq!(defaults.compression_ratio_threshold, None);
    }

    #[test]
    fn inference_fields() {
        let request = parse(
            Endpoint::Inference,
            &form(&[
                ("translate", "true"),
                ("temperature_inc", "0"),
                ("beam_size", "5"),
                ("offset_t", "1500"),
                ("duration", "2000"),
                ("response_format", "text"),
                ("vad", "false"),
                ("logprob_thold", "-0.8"),
                ("no_speech_thold", "0.7"),
            ]),
        )
        .unwrap();
        assert_eq!(request.options.vad_filter, Some(false));
        assert_eq!(request.options.log_prob_threshold, Some(-0.8));
        assert_eq!(request.options.no_speech_threshold, Some(0.7));
        assert!(request.options.translate);
        assert_eq!(request.options.language.as_deref(), Some("en"));
        assert_eq!(request.options.temperature_fallback, Some(false));
        assert_eq!(request.options.beam_size, Some(5));
        assert_eq!(request.options.offset, Duration::from_millis(1500));
        assert_eq!(request.options.duration, Some(Duration::from_secs(2)));
        assert_eq!(request.format, ResponseFormat::Text);
    }
}
