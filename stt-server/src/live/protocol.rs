//! The wire format of OpenAI's Realtime transcription sessions: the client
//! events read ([`ClientEvent`]), the session configuration
//! ([`SessionConfig`]) and the server events written ([`ServerEvent`]). Field
//! names follow the official SDK's types (`openai.types.realtime`); the older
//! beta shape (`transcription_session.update`, `input_audio_format`) is read
//! as an alias.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The largest decoded audio one `input_audio_buffer.append` may carry (OpenAI's limit).
pub const MAX_APPEND_BYTES: usize = 15 * 1024 * 1024;

/// The input audio encodings a session accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioFormat {
    /// Little-endian 16-bit PCM, mono, at this rate (24 000 or 16 000 Hz).
    Pcm16 {
        /// Samples per second.
        rate: u32,
    },
    /// G.711 μ-law at 8 000 Hz.
    Pcmu,
    /// G.711 A-law at 8 000 Hz.
    Pcma,
}

impl AudioFormat {
    /// Samples per second.
    pub fn rate(self) -> u32 {
        match self {
            Self::Pcm16 { rate } => rate,
            Self::Pcmu | Self::Pcma => 8_000,
        }
    }

    fn to_json(self) -> Value {
        match self {
            Self::Pcm16 { rate } => serde_json::json!({"type": "audio/pcm", "rate": rate}),
            Self::Pcmu => serde_json::json!({"type": "audio/pcmu"}),
            Self::Pcma => serde_json::json!({"type": "audio/pcma"}),
        }
    }
}

/// Server-side turn detection (`turn_detection: {"type": "server_vad", …}`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServerVad {
    /// Speech probability that starts speech (0..=1).
    pub threshold: f32,
    /// Audio kept before the detected speech.
    pub prefix_padding_ms: u32,
    /// Silence that ends the turn.
    pub silence_duration_ms: u32,
}

impl Default for ServerVad {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            prefix_padding_ms: 300,
            silence_duration_ms: 500,
        }
    }
}

/// The session's configuration, as `session.created` / `session.updated` show it.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionConfig {
    /// Input encoding.
    pub format: AudioFormat,
    /// The model name the client asked for (an alias of the serving model).
    pub model: String,
    /// Spoken language (`None`: detected per turn).
    pub language: Option<String>,
    /// Text that guides the decoding of every turn.
    pub prompt: String,
    /// Words or phrases that guide the decoding (added to the prompt).
    pub keywords: Vec<String>,
    /// Server VAD, or `None` for manual commits.
    pub turn_detection: Option<ServerVad>,
    /// `noise_reduction` as the client set it (accepted and shown; whisper's
    /// own training on noisy audio does the work: docs/api.md).
    pub noise_reduction: Value,
    /// Token log-probabilities in deltas and completed events.
    pub logprobs: bool,
}

/// Longest prompt and keywords together, in bytes: whisper keeps at most 224
/// prompt tokens, and the text is tokenized again at every decode.
pub const MAX_PROMPT_BYTES: usize = 4096;

/// `include` value asking for log-probabilities.
pub const INCLUDE_LOGPROBS: &str = "item.input_audio_transcription.logprobs";

impl SessionConfig {
    /// The `session` object of `session.created` / `session.updated`.
    pub fn to_json(&self, id: &str, expires_at: Option<u64>) -> Value {
        let turn_detection = self.turn_detection.map_or(Value::Null, |vad| {
            serde_json::json!({
                "type": "server_vad",
                "threshold": vad.threshold,
                "prefix_padding_ms": vad.prefix_padding_ms,
                "silence_duration_ms": vad.silence_duration_ms,
            })
        });
        let mut transcription = serde_json::json!({
            "model": self.model,
            "language": self.language,
            "prompt": self.prompt,
        });
        if !self.keywords.is_empty() {
            transcription["keywords"] = serde_json::json!(self.keywords);
        }
        serde_json::json!({
            "type": "transcription",
            "object": "realtime.transcription_session",
            "id": id,
            "expires_at": expires_at,
            "audio": {"input": {
                "format": self.format.to_json(),
                "transcription": transcription,
                "turn_detection": turn_detection,
                "noise_reduction": self.noise_reduction,
            }},
            "include": if self.logprobs { vec![INCLUDE_LOGPROBS] } else { vec![] },
        })
    }

    /// Applies a `session` object of `session.update` (or, with `beta`, of
    /// `transcription_session.update`); fields left out keep their values.
    ///
    /// # Errors
    /// [`ProtocolError`] naming the field; the configuration is then unchanged.
    pub fn update(&self, session: &Value, beta: bool) -> Result<Self, ProtocolError> {
        let session = session
            .as_object()
            .ok_or_else(|| ProtocolError::invalid("session", "expected an object"))?;
        let mut next = self.clone();
        if let Some(kind) = session.get("type") {
            if kind.as_str() != Some("transcription") {
                return Err(ProtocolError::invalid(
                    "session.type",
                    format!(
                        "{kind} is not supported: this server runs transcription sessions only"
                    ),
                ));
            }
        }
        let input = if beta {
            BetaInput::of(session)?
        } else {
            InputFields::of(session)?
        };
        if let Some(format) = input.format {
            next.format = format;
        }
        if let Some(transcription) = input.transcription {
            next.apply_transcription(transcription)?;
            if next
                .decoding_prompt()
                .is_some_and(|p| p.len() > MAX_PROMPT_BYTES)
            {
                return Err(ProtocolError::invalid(
                    "session.audio.input.transcription.prompt",
                    format!("the prompt and keywords together exceed {MAX_PROMPT_BYTES} bytes"),
                ));
            }
        }
        if let Some(turn_detection) = input.turn_detection {
            next.turn_detection = parse_turn_detection(turn_detection, self.turn_detection)?;
        }
        if let Some(noise) = input.noise_reduction {
            if !(noise.is_null() || noise.is_object()) {
                return Err(ProtocolError::invalid(
                    "session.audio.input.noise_reduction",
                    "expected an object or null",
                ));
            }
            next.noise_reduction = noise.clone();
        }
        if let Some(include) = session.get("include") {
            let list: Vec<String> = serde_json::from_value(include.clone()).map_err(|_| {
                ProtocolError::invalid("session.include", "expected a list of strings")
            })?;
            if let Some(other) = list.iter().find(|v| *v != INCLUDE_LOGPROBS) {
                return Err(ProtocolError::invalid(
                    "session.include",
                    format!("{other:?} is not supported (only {INCLUDE_LOGPROBS:?})"),
                ));
            }
            next.logprobs = !list.is_empty();
        }
        Ok(next)
    }

    fn apply_transcription(&mut self, value: &Value) -> Result<(), ProtocolError> {
        if value.is_null() {
            return Ok(());
        }
        let fields: TranscriptionFields = serde_json::from_value(value.clone()).map_err(|e| {
            ProtocolError::invalid("session.audio.input.transcription", e.to_string())
        })?;
        if let Some(model) = fields.model {
            self.model = model;
        }
        if let Some(language) = fields.language {
            self.language = Some(language).filter(|l| !l.trim().is_empty());
        }
        if let Some(prompt) = fields.prompt {
            if prompt.contains('\0') {
                return Err(ProtocolError::invalid(
                    "session.audio.input.transcription.prompt",
                    "contains a NUL character",
                ));
            }
            self.prompt = prompt;
        }
        if let Some(keywords) = fields.keywords {
            self.keywords = keywords;
        }
        Ok(())
    }

    /// The decoding prompt: the session's prompt, then its keywords.
    pub fn decoding_prompt(&self) -> Option<String> {
        let mut prompt = self.prompt.trim().to_owned();
        if !self.keywords.is_empty() {
            if !prompt.is_empty() {
                prompt.push(' ');
            }
            prompt.push_str(&self.keywords.join(", "));
        }
        Some(prompt).filter(|p| !p.is_empty())
    }
}

#[derive(Deserialize)]
struct TranscriptionFields {
    model: Option<String>,
    language: Option<String>,
    prompt: Option<String>,
    keywords: Option<Vec<String>>,
}

/// The input fields of an update, wherever its shape keeps them.
struct InputFields<'a> {
    format: Option<AudioFormat>,
    transcription: Option<&'a Value>,
    turn_detection: Option<&'a Value>,
    noise_reduction: Option<&'a Value>,
}

impl<'a> InputFields<'a> {
    /// `session.audio.input.{format, transcription, turn_detection, noise_reduction}`.
    fn of(session: &'a Map<String, Value>) -> Result<Self, ProtocolError> {
        let input = match session.get("audio").map(|audio| audio.get("input")) {
            None | Some(None) => return Ok(Self::none()),
            Some(Some(input)) => input,
        };
        Ok(Self {
            format: input
                .get("format")
                .map(|f| parse_format(f, "session.audio.input.format"))
                .transpose()?,
            transcription: input.get("transcription"),
            turn_detection: input.get("turn_detection"),
            noise_reduction: input.get("noise_reduction"),
        })
    }

    fn none() -> Self {
        Self {
            format: None,
            transcription: None,
            turn_detection: None,
            noise_reduction: None,
        }
    }
}

/// The beta shape: `input_audio_format` (`pcm16`, `g711_ulaw`, `g711_alaw`),
/// `input_audio_transcription`, `turn_detection`, `input_audio_noise_reduction`.
struct BetaInput;

impl BetaInput {
    fn of(session: &Map<String, Value>) -> Result<InputFields<'_>, ProtocolError> {
        let format = session
            .get("input_audio_format")
            .map(|f| match f.as_str() {
                Some("pcm16") => Ok(AudioFormat::Pcm16 { rate: 24_000 }),
                Some("g711_ulaw") => Ok(AudioFormat::Pcmu),
                Some("g711_alaw") => Ok(AudioFormat::Pcma),
                _ => Err(ProtocolError::invalid(
                    "session.input_audio_format",
                    format!("{f} is not one of pcm16, g711_ulaw, g711_alaw"),
                )),
            })
            .transpose()?;
        Ok(InputFields {
            format,
            transcription: session.get("input_audio_transcription"),
            turn_detection: session.get("turn_detection"),
            noise_reduction: session.get("input_audio_noise_reduction"),
        })
    }
}

fn parse_format(value: &Value, param: &str) -> Result<AudioFormat, ProtocolError> {
    let kind = value.get("type").and_then(Value::as_str);
    let rate = value.get("rate");
    match kind {
        Some("audio/pcm") => {
            let rate = match rate {
                None | Some(Value::Null) => 24_000,
                Some(r) => r.as_u64().unwrap_or(0),
            };
            if rate == 24_000 || rate == 16_000 {
                Ok(AudioFormat::Pcm16 { rate: rate as u32 })
            } else {
                Err(ProtocolError::invalid(
                    &format!("{param}.rate"),
                    format!("{rate} Hz is not supported: audio/pcm takes 24000 or 16000"),
                ))
            }
        }
        Some(g711 @ ("audio/pcmu" | "audio/pcma")) => {
            if rate.is_some_and(|r| !r.is_null() && r.as_u64() != Some(8_000)) {
                return Err(ProtocolError::invalid(
                    &format!("{param}.rate"),
                    format!("{g711} is 8000 Hz"),
                ));
            }
            Ok(if g711 == "audio/pcmu" {
                AudioFormat::Pcmu
            } else {
                AudioFormat::Pcma
            })
        }
        _ => Err(ProtocolError::invalid(
            param,
            format!("{value} is not one of audio/pcm, audio/pcmu, audio/pcma"),
        )),
    }
}

fn parse_turn_detection(
    value: &Value,
    current: Option<ServerVad>,
) -> Result<Option<ServerVad>, ProtocolError> {
    const PARAM: &str = "session.audio.input.turn_detection";
    if value.is_null() {
        return Ok(None);
    }
    match value.get("type").and_then(Value::as_str) {
        Some("server_vad") => {}
        Some("semantic_vad") => {
            return Err(ProtocolError::invalid(
                &format!("{PARAM}.type"),
                "semantic_vad is not supported; use server_vad or null",
            ))
        }
        _ => {
            return Err(ProtocolError::invalid(
                &format!("{PARAM}.type"),
                "expected server_vad (or null for manual commits)",
            ))
        }
    }
    let mut vad = current.unwrap_or_default();
    if let Some(t) = value.get("threshold").filter(|v| !v.is_null()) {
        vad.threshold = t
            .as_f64()
            .filter(|t| (0.0..=1.0).contains(t))
            .ok_or_else(|| {
                ProtocolError::invalid(&format!("{PARAM}.threshold"), "expected 0.0 to 1.0")
            })? as f32;
    }
    let ms = |name: &str, max: u64| -> Result<Option<u32>, ProtocolError> {
        value
            .get(name)
            .filter(|v| !v.is_null())
            .map(|v| {
                v.as_u64()
                    .filter(|&n| n <= max)
                    .map(|n| n as u32)
                    .ok_or_else(|| {
                        ProtocolError::invalid(
                            &format!("{PARAM}.{name}"),
                            format!("expected 0 to {max} milliseconds"),
                        )
                    })
            })
            .transpose()
    };
    if let Some(padding) = ms("prefix_padding_ms", 5_000)? {
        vad.prefix_padding_ms = padding;
    }
    if let Some(silence) = ms("silence_duration_ms", 10_000)? {
        vad.silence_duration_ms = silence.max(32);
    }
    Ok(Some(vad))
}

/// A client event, parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    /// `session.update` (or the beta `transcription_session.update`).
    SessionUpdate {
        /// The `session` object.
        session: Value,
        /// The beta shape.
        beta: bool,
    },
    /// `input_audio_buffer.append` with its base64 `audio`.
    Append {
        /// Base64 audio.
        audio: String,
    },
    /// `input_audio_buffer.commit`.
    Commit,
    /// `input_audio_buffer.clear`.
    Clear,
}

/// A client event that cannot be served, as an `error` event carries it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ProtocolError {
    /// Machine-readable code.
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
    /// The field at fault.
    pub param: Option<String>,
}

impl ProtocolError {
    /// A field with a value this server cannot take.
    pub fn invalid(param: &str, message: impl Into<String>) -> Self {
        Self {
            code: "invalid_value",
            message: message.into(),
            param: Some(param.to_owned()),
        }
    }

    /// Any other refusal.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            param: None,
        }
    }
}

/// Parses a text frame: the event and its `event_id` (echoed in errors).
///
/// # Errors
/// `invalid_json` for text that is not a JSON object, `unknown_event` for a
/// type this server does not handle, `missing_field` for an event without
/// what it needs; the `event_id` comes along when it could be read.
pub fn parse_client_event(
    text: &str,
) -> Result<(ClientEvent, Option<String>), (ProtocolError, Option<String>)> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        (
            ProtocolError::new("invalid_json", format!("the event is not JSON: {e}")),
            None,
        )
    })?;
    let event_id = value
        .get("event_id")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let fail = |error: ProtocolError| (error, event_id.clone());
    let Some(object) = value.as_object() else {
        return Err(fail(ProtocolError::new(
            "invalid_json",
            "the event is not a JSON object",
        )));
    };
    let kind = object.get("type").and_then(Value::as_str).unwrap_or("");
    let event = match kind {
        "session.update" | "transcription_session.update" => ClientEvent::SessionUpdate {
            session: object
                .get("session")
                .cloned()
                .ok_or_else(|| fail(ProtocolError::new("missing_field", "`session` is missing")))?,
            beta: kind == "transcription_session.update",
        },
        "input_audio_buffer.append" => ClientEvent::Append {
            audio: object
                .get("audio")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| {
                    fail(ProtocolError::new(
                        "missing_field",
                        "`audio` (base64 text) is missing",
                    ))
                })?,
        },
        "input_audio_buffer.commit" => ClientEvent::Commit,
        "input_audio_buffer.clear" => ClientEvent::Clear,
        "" => {
            return Err(fail(ProtocolError::new(
                "missing_field",
                "the event has no `type`",
            )))
        }
        other => {
            return Err(fail(ProtocolError::new(
                "unknown_event",
                format!(
                    "{other:?} is not an event of transcription sessions (session.update, \
                     input_audio_buffer.append, .commit, .clear)"
                ),
            )))
        }
    };
    Ok((event, event_id))
}

/// One token's log-probability (`LogProbProperties`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogProb {
    /// The token's text.
    pub token: String,
    /// Its UTF-8 bytes.
    pub bytes: Vec<u8>,
    /// Its log-probability.
    pub logprob: f32,
}

impl LogProb {
    /// The entry of a token.
    pub fn of(text: &str, logprob: f32) -> Self {
        Self {
            token: text.to_owned(),
            bytes: text.as_bytes().to_vec(),
            logprob,
        }
    }
}

/// An event the server sends (without its `event_id`, added when sent).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type")]
pub enum ServerEvent {
    /// The session's configuration, first event of a connection.
    #[serde(rename = "session.created")]
    SessionCreated {
        /// The configuration.
        session: Value,
    },
    /// The configuration after an update.
    #[serde(rename = "session.updated")]
    SessionUpdated {
        /// The configuration.
        session: Value,
    },
    /// The beta name of `session.updated`.
    #[serde(rename = "transcription_session.updated")]
    BetaSessionUpdated {
        /// The configuration.
        session: Value,
    },
    /// Server VAD heard speech begin.
    #[serde(rename = "input_audio_buffer.speech_started")]
    SpeechStarted {
        /// Milliseconds of the session's audio before the turn (padding included).
        audio_start_ms: u64,
        /// The item the turn becomes.
        item_id: String,
    },
    /// Server VAD heard speech end.
    #[serde(rename = "input_audio_buffer.speech_stopped")]
    SpeechStopped {
        /// Milliseconds of the session's audio at the end of the turn.
        audio_end_ms: u64,
        /// The item.
        item_id: String,
    },
    /// The buffer became an item.
    #[serde(rename = "input_audio_buffer.committed")]
    Committed {
        /// The item.
        item_id: String,
        /// The item before it in this session.
        previous_item_id: Option<String>,
    },
    /// The buffer was emptied.
    #[serde(rename = "input_audio_buffer.cleared")]
    Cleared,
    /// Words of an item that will not change.
    #[serde(rename = "conversation.item.input_audio_transcription.delta")]
    Delta {
        /// The item.
        item_id: String,
        /// Always 0.
        content_index: u32,
        /// Text to append.
        delta: String,
        /// Log-probabilities of its tokens, when the session asked for them.
        #[serde(skip_serializing_if = "Option::is_none")]
        logprobs: Option<Vec<LogProb>>,
    },
    /// The final text of an item.
    #[serde(rename = "conversation.item.input_audio_transcription.completed")]
    Completed {
        /// The item.
        item_id: String,
        /// Always 0.
        content_index: u32,
        /// The whole text (it wins where it differs from the deltas).
        transcript: String,
        /// `{"type": "duration", "seconds": …}`.
        usage: Value,
        /// Log-probabilities of its tokens, when the session asked for them.
        #[serde(skip_serializing_if = "Option::is_none")]
        logprobs: Option<Vec<LogProb>>,
    },
    /// An item's transcription failed.
    #[serde(rename = "conversation.item.input_audio_transcription.failed")]
    Failed {
        /// The item.
        item_id: String,
        /// Always 0.
        content_index: u32,
        /// What went wrong.
        error: Value,
    },
    /// A client event could not be served; the session goes on.
    #[serde(rename = "error")]
    Error {
        /// `{type, code, message, param, event_id}`.
        error: Value,
    },
}

impl ServerEvent {
    /// The `error` event for `error`, caused by the client event `event_id`.
    pub fn error(error: &ProtocolError, event_id: Option<&str>) -> Self {
        Self::Error {
            error: serde_json::json!({
                "type": "invalid_request_error",
                "code": error.code,
                "message": error.message,
                "param": error.param,
                "event_id": event_id,
            }),
        }
    }

    /// Whether a slow reader may miss it (partial results only).
    pub fn droppable(&self) -> bool {
        matches!(self, Self::Delta { .. })
    }

    /// The JSON text with `event_id`.
    pub fn to_text(&self, event_id: &str) -> String {
        let mut value = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Some(object) = value.as_object_mut() {
            object.insert("event_id".into(), Value::String(event_id.to_owned()));
        }
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn defaults() -> SessionConfig {
        SessionConfig {
            format: AudioFormat::Pcm16 { rate: 24_000 },
            model: "whisper-1".into(),
            language: None,
            prompt: String::new(),
            keywords: vec![],
            turn_detection: Some(ServerVad::default()),
            noise_reduction: Value::Null,
            logprobs: false,
        }
    }

    #[test]
    fn a_ga_update_changes_what_it_names() {
        let update = json!({
            "type": "transcription",
            "audio": {"input": {
                "format": {"type": "audio/pcm", "rate": 16000},
                "transcription": {"model": "gpt-4o-transcribe", "language": "en", "prompt": "Hi"},
                "turn_detection": {"type": "server_vad", "silence_duration_ms": 700},
                "noise_reduction": {"type": "near_field"},
            }},
            "include": ["item.input_audio_transcription.logprobs"],
        });
        let next = defaults().update(&update, false).unwrap();
        assert_eq!(next.format, AudioFormat::Pcm16 { rate: 16_000 });
        assert_eq!(next.language.as_deref(), Some("en"));
        assert_eq!(next.model, "gpt-4o-transcribe");
        assert_eq!(
            next.turn_detection,
            Some(ServerVad {
                silence_duration_ms: 700,
                ..ServerVad::default()
            })
        );
        assert!(next.logprobs);
        let shown = next.to_json("sess_1", None);
        assert_eq!(shown["audio"]["input"]["format"]["rate"], 16000);
        assert_eq!(shown["include"][0], INCLUDE_LOGPROBS);
        // Manual commits.
        let manual = json!({"audio": {"input": {"turn_detection": null}}});
        assert_eq!(next.update(&manual, false).unwrap().turn_detection, None);
    }

    #[test]
    fn the_beta_shape_is_an_alias() {
        let update = json!({
            "input_audio_format": "g711_ulaw",
            "input_audio_transcription": {"model": "whisper-1", "language": "fr"},
            "turn_detection": null,
        });
        let next = defaults().update(&update, true).unwrap();
        assert_eq!(next.format, AudioFormat::Pcmu);
        assert_eq!(next.language.as_deref(), Some("fr"));
        assert_eq!(next.turn_detection, None);
    }

    #[test]
    fn bad_updates_name_the_field() {
        let cases = [
            (json!({"type": "realtime"}), "session.type"),
            (
                json!({"audio": {"input": {"format": {"type": "audio/pcm", "rate": 44100}}}}),
                "session.audio.input.format.rate",
            ),
            (
                json!({"audio": {"input": {"format": {"type": "audio/opus"}}}}),
                "session.audio.input.format",
            ),
            (
                json!({"audio": {"input": {"turn_detection": {"type": "server_vad", "threshold": 2}}}}),
                "session.audio.input.turn_detection.threshold",
            ),
            (
                json!({"audio": {"input": {"turn_detection": {"type": "semantic_vad"}}}}),
                "session.audio.input.turn_detection.type",
            ),
            (json!({"include": ["nope"]}), "session.include"),
            (
                json!({"audio": {"input": {"transcription": {"prompt": "x".repeat(5000)}}}}),
                "session.audio.input.transcription.prompt",
            ),
        ];
        for (update, param) in cases {
            let error = defaults().update(&update, false).unwrap_err();
            assert_eq!(error.param.as_deref(), Some(param), "{update}");
        }
    }

    #[test]
    fn client_events_parse_or_say_why_not() {
        let (event, id) = parse_client_event(
            r#"{"type":"input_audio_buffer.append","audio":"AAA=","event_id":"e1"}"#,
        )
        .unwrap();
        assert_eq!(
            event,
            ClientEvent::Append {
                audio: "AAA=".into()
            }
        );
        assert_eq!(id.as_deref(), Some("e1"));
        let codes = [
            ("not json", "invalid_json"),
            ("[1]", "invalid_json"),
            (
                r#"{"type":"response.create","event_id":"e2"}"#,
                "unknown_event",
            ),
            (r#"{"type":"input_audio_buffer.append"}"#, "missing_field"),
            (r#"{"event_id":"e3"}"#, "missing_field"),
        ];
        for (text, code) in codes {
            assert_eq!(parse_client_event(text).unwrap_err().0.code, code, "{text}");
        }
        assert_eq!(
            parse_client_event(r#"{"type":"bogus","event_id":"e9"}"#)
                .unwrap_err()
                .1
                .as_deref(),
            Some("e9")
        );
    }

    #[test]
    fn server_events_carry_the_sdk_field_names() {
        let delta = ServerEvent::Delta {
            item_id: "item_1".into(),
            content_index: 0,
            delta: " hello".into(),
            logprobs: None,
        };
        let value: Value = serde_json::from_str(&delta.to_text("event_7")).unwrap();
        assert_eq!(
            value,
            json!({"type": "conversation.item.input_audio_transcription.delta",
                   "item_id": "item_1", "content_index": 0, "delta": " hello",
                   "event_id": "event_7"})
        );
        assert!(delta.droppable());
        let error = ServerEvent::error(&ProtocolError::new("invalid_json", "x"), Some("e1"));
        let value: Value = serde_json::from_str(&error.to_text("event_8")).unwrap();
        assert_eq!(value["error"]["event_id"], "e1");
        assert_eq!(value["error"]["type"], "invalid_request_error");
    }
}
