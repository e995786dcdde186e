//! [`Params`]: how to decode, built on the library's own defaults.

use std::ffi::CString;
use std::time::Duration;

use whisper_sys::{
    whisper_full_params, WhisperApi, WHISPER_SAMPLING_BEAM_SEARCH, WHISPER_SAMPLING_GREEDY,
};

use crate::context::ContextInner;
use crate::{language, Error, Result};

/// whisper.cpp's limit on parallel decoders (beam size, best-of).
pub const MAX_DECODERS: u32 = 8;
/// Audio of this length or longer is never decoded with a trimmed encoder context.
pub const TRIM_LIMIT_SECONDS: f64 = 30.0;
/// The encoder context of a whole 30-second window, in frames.
const FULL_AUDIO_CTX: u32 = 1500;

/// The decoding strategy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Sampling {
    /// Greedy decoding; `best_of` candidates when the temperature is above zero.
    Greedy {
        /// Candidates sampled at temperature > 0 (1..=8).
        best_of: u32,
    },
    /// Beam search.
    BeamSearch {
        /// Beams (1..=8).
        beam_size: u32,
    },
}

/// How much of the encoder's 30-second window to compute.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AudioContext {
    /// The model's full context (1500 frames, 30 s), as whisper.cpp does by default.
    #[default]
    Full,
    /// For audio shorter than 30 s: the audio's frames plus about 2 s of margin
    /// (`ceil(samples / 320) + 100`, rounded up to a multiple of 16); a shorter margin
    /// makes models invent endings. When the decoder stops early and the run goes on
    /// with a later window, that window encodes the audio left plus the same margin,
    /// also rounded up to a multiple of 16 (vendor patch 0004).
    /// Audio whose margin would pass the full context (about 28 s or more) uses
    /// the full context in every window. Flash attention needs vendor patch 0006
    /// with this setting: whisper.cpp 1.8.3 alone attends the padding past a
    /// trimmed context, and the words then depend on what the state decoded before.
    Trimmed,
    /// A fixed number of frames (1 frame = 20 ms), at most the model's context.
    Frames(u32),
}

/// Decoding parameters. Unset fields keep `whisper_full_default_params`' values.
/// Strings are owned here and copied into C strings only for the duration of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    sampling: Sampling,
    threads: Option<u32>,
    language: Option<String>,
    translate: bool,
    initial_prompt: Option<String>,
    prompt_tokens: Vec<i32>,
    temperature: Option<f32>,
    temperature_fallback: Option<bool>,
    condition_on_previous_text: Option<bool>,
    suppress_blank: Option<bool>,
    suppress_non_speech: Option<bool>,
    max_segment_chars: Option<u32>,
    max_tokens: Option<u32>,
    token_timestamps: bool,
    word_timestamps: bool,
    offset: Duration,
    duration: Option<Duration>,
    audio_context: AudioContext,
}

impl Default for Params {
    fn default() -> Self {
        Self::new(Sampling::Greedy { best_of: 5 })
    }
}

impl Params {
    /// Parameters for the given strategy; everything else at the library's defaults.
    pub fn new(sampling: Sampling) -> Self {
        Self {
            sampling,
            threads: None,
            language: None,
            translate: false,
            initial_prompt: None,
            prompt_tokens: Vec::new(),
            temperature: None,
            temperature_fallback: None,
            condition_on_previous_text: None,
            suppress_blank: None,
            suppress_non_speech: None,
            max_segment_chars: None,
            max_tokens: None,
            token_timestamps: false,
            word_timestamps: false,
            offset: Duration::ZERO,
            duration: None,
            audio_context: AudioContext::Full,
        }
    }

    /// Greedy decoding with whisper.cpp's default `best_of`.
    pub fn greedy() -> Self {
        Self::default()
    }

    /// Beam search with `beam_size` beams.
    pub fn beam_search(beam_size: u32) -> Self {
        Self::new(Sampling::BeamSearch { beam_size })
    }

    /// Compute threads for this run (≥ 1).
    pub fn threads(mut self, threads: u32) -> Self {
        self.threads = Some(threads);
        self
    }

    /// Spoken language as a code (`en`) or name (`english`); `None` or `"auto"` detects it.
    pub fn language(mut self, language: Option<&str>) -> Self {
        self.language = language
            .filter(|l| !l.is_empty() && !l.eq_ignore_ascii_case("auto"))
            .map(str::to_owned);
        self
    }

    /// Translate to English instead of transcribing.
    pub fn translate(mut self, translate: bool) -> Self {
        self.translate = translate;
        self
    }

    /// Text that conditions the decoder (style, vocabulary).
    pub fn initial_prompt(mut self, prompt: Option<&str>) -> Self {
        self.initial_prompt = prompt.filter(|p| !p.is_empty()).map(str::to_owned);
        self
    }

    /// Token ids that condition the decoder, in place of the
    /// [initial prompt](Self::initial_prompt) when not empty: typically the
    /// text tokens of the audio before this run's (see
    /// [`Transcript::prompt_token_ids`](crate::Transcript::prompt_token_ids)).
    /// whisper.cpp keeps the last half-context (224 tokens) of them.
    pub fn prompt_tokens(mut self, tokens: &[i32]) -> Self {
        self.prompt_tokens = tokens.to_vec();
        self
    }

    /// Initial sampling temperature (0.0 ..= 1.0).
    pub fn temperature(mut self, temperature: f32) -> Self {
        self.temperature = Some(temperature);
        self
    }

    /// Retry a failed window at higher temperatures (whisper.cpp default: on, +0.2 steps).
    pub fn temperature_fallback(mut self, enabled: bool) -> Self {
        self.temperature_fallback = Some(enabled);
        self
    }

    /// Use the text decoded from earlier 30-second windows of the same audio as
    /// context for the next one (whisper.cpp's default: on). Off, whisper.cpp also
    /// ignores the [initial prompt](Self::initial_prompt).
    ///
    /// A run never sees text from an earlier run on the same
    /// [`State`](crate::State): every run starts with an empty context.
    pub fn condition_on_previous_text(mut self, condition: bool) -> Self {
        self.condition_on_previous_text = Some(condition);
        self
    }

    /// Suppress blank outputs at the start of a window.
    pub fn suppress_blank(mut self, suppress: bool) -> Self {
        self.suppress_blank = Some(suppress);
        self
    }

    /// Suppress non-speech tokens (music notes, brackets…).
    pub fn suppress_non_speech(mut self, suppress: bool) -> Self {
        self.suppress_non_speech = Some(suppress);
        self
    }

    /// Split segments longer than this many characters (on word boundaries).
    pub fn max_segment_chars(mut self, chars: Option<u32>) -> Self {
        self.max_segment_chars = chars;
        self
    }

    /// Stop decoding a window after this many tokens (`None`: the text
    /// context's limit). Caps the time a repetition loop can take.
    pub fn max_tokens(mut self, tokens: Option<u32>) -> Self {
        self.max_tokens = tokens;
        self
    }

    /// Per-token start/end times.
    pub fn token_timestamps(mut self, enabled: bool) -> Self {
        self.token_timestamps = enabled;
        self
    }

    /// Per-word start/end times (implies token timestamps).
    pub fn word_timestamps(mut self, enabled: bool) -> Self {
        self.word_timestamps = enabled;
        self
    }

    /// Start decoding at this offset into the audio.
    pub fn offset(mut self, offset: Duration) -> Self {
        self.offset = offset;
        self
    }

    /// Decode only this much audio after the offset.
    pub fn duration(mut self, duration: Option<Duration>) -> Self {
        self.duration = duration;
        self
    }

    /// Encoder context policy, see [`AudioContext`].
    pub fn audio_context(mut self, audio_context: AudioContext) -> Self {
        self.audio_context = audio_context;
        self
    }

    /// Whether word timestamps were asked for.
    pub fn wants_words(&self) -> bool {
        self.word_timestamps
    }

    /// Whether the run translates.
    pub fn is_translate(&self) -> bool {
        self.translate
    }

    /// The prompt token ids set with [`prompt_tokens`](Self::prompt_tokens).
    pub fn prompt_token_list(&self) -> &[i32] {
        &self.prompt_tokens
    }

    /// The text set with [`initial_prompt`](Self::initial_prompt), if any.
    pub fn initial_prompt_text(&self) -> Option<&str> {
        self.initial_prompt.as_deref()
    }

    /// The initial temperature set, if any.
    pub fn initial_temperature(&self) -> Option<f32> {
        self.temperature
    }

    /// The compute threads set with [`threads`](Self::threads), if any.
    pub fn thread_count(&self) -> Option<u32> {
        self.threads
    }

    /// The language asked for (`None`: detect).
    pub fn requested_language(&self) -> Option<&str> {
        self.language.as_deref()
    }

    /// The encoder context in frames this run would use for `n_samples` of 16 kHz
    /// audio, or 0 for the model's full context.
    pub fn audio_ctx_frames(&self, n_samples: usize) -> u32 {
        match self.audio_context {
            AudioContext::Full => 0,
            AudioContext::Frames(frames) => frames,
            AudioContext::Trimmed => {
                let seconds = n_samples as f64 / crate::SAMPLE_RATE as f64;
                // A multiple of 16: ggml's tinyBLAS kernels take the attention-times-
                // values products whose inner dimension is the context (the encoder's,
                // and the cross-attention's over more than one token) only when it is
                // a multiple of their vector width (8 floats with AVX2, 16 with
                // AVX-512); otherwise ggml falls back to plain dot products.
                let frames = ((n_samples as u32).div_ceil(320) + 100).next_multiple_of(16);
                // Past about 28 s the margin reaches the full context (1500
                // frames in every Whisper model): use the full one.
                if seconds >= TRIM_LIMIT_SECONDS || frames >= FULL_AUDIO_CTX {
                    0
                } else {
                    frames
                }
            }
        }
    }

    /// Checks every value against the model and builds the C parameters.
    pub(crate) fn to_raw(&self, ctx: &ContextInner, n_samples: usize) -> Result<RawParams> {
        let api: &WhisperApi = ctx.api;
        let invalid = |name, reason: String| Error::InvalidParam { name, reason };
        let (strategy, decoders) = match self.sampling {
            Sampling::Greedy { best_of } => (WHISPER_SAMPLING_GREEDY, ("best_of", best_of)),
            Sampling::BeamSearch { beam_size } => {
                (WHISPER_SAMPLING_BEAM_SEARCH, ("beam_size", beam_size))
            }
        };
        if !(1..=MAX_DECODERS).contains(&decoders.1) {
            return Err(invalid(
                decoders.0,
                format!("{} is not in 1..={MAX_DECODERS}", decoders.1),
            ));
        }
        if let Some(threads) = self.threads {
            if !(1..=512).contains(&threads) {
                return Err(invalid("threads", format!("{threads} is not in 1..=512")));
            }
        }
        for (name, value) in [("temperature", self.temperature)] {
            if let Some(t) = value {
                if !(0.0..=1.0).contains(&t) {
                    return Err(invalid(name, format!("{t} is not in 0..=1")));
                }
            }
        }
        let language = match &self.language {
            None => None,
            Some(code) => {
                let found =
                    language::find(api, code).ok_or_else(|| Error::UnsupportedLanguage {
                        code: code.clone(),
                        reason: "not a language whisper knows".into(),
                    })?;
                if !ctx.info.multilingual && found.code != "en" {
                    return Err(Error::UnsupportedLanguage {
                        code: code.clone(),
                        reason: "this model is English-only".into(),
                    });
                }
                Some(language::c_code(&found))
            }
        };
        if self.translate && !ctx.info.multilingual {
            return Err(invalid("translate", "this model is English-only".into()));
        }
        let initial_prompt = self
            .initial_prompt
            .as_deref()
            .map(CString::new)
            .transpose()
            .map_err(|_| invalid("initial_prompt", "contains a NUL character".into()))?;
        let n_vocab = ctx.info.n_vocab;
        if let Some(bad) = self
            .prompt_tokens
            .iter()
            .find(|&&t| !(0..n_vocab).contains(&t))
        {
            return Err(invalid(
                "prompt_tokens",
                format!("{bad} is not a token of this model's {n_vocab}"),
            ));
        }
        let prompt_tokens = self.prompt_tokens.clone();
        let audio_ctx = self.audio_ctx_frames(n_samples);
        if audio_ctx > ctx.info.n_audio_ctx as u32 {
            return Err(invalid(
                "audio_ctx",
                format!(
                    "{audio_ctx} frames exceed the model's {}",
                    ctx.info.n_audio_ctx
                ),
            ));
        }
        let ms = |d: Duration, name| {
            i32::try_from(d.as_millis()).map_err(|_| invalid(name, format!("{d:?} is too long")))
        };
        let offset_ms = ms(self.offset, "offset")?;
        let duration_ms = self
            .duration
            .map(|d| ms(d, "duration"))
            .transpose()?
            .unwrap_or(0);
        let max_len = self
            .max_segment_chars
            .map(|n| {
                i32::try_from(n)
                    .map_err(|_| invalid("max_segment_chars", format!("{n} is too large")))
            })
            .transpose()?;

        // SAFETY: returns a plain struct of the library's defaults.
        let mut raw = unsafe { (api.whisper_full_default_params)(strategy) };
        raw.print_special = false;
        raw.print_progress = false;
        raw.print_realtime = false;
        raw.print_timestamps = false;
        match self.sampling {
            Sampling::Greedy { best_of } => raw.greedy.best_of = best_of as i32,
            Sampling::BeamSearch { beam_size } => raw.beam_search.beam_size = beam_size as i32,
        }
        if let Some(threads) = self.threads {
            raw.n_threads = threads as i32;
        }
        raw.translate = self.translate;
        if let Some(t) = self.temperature {
            raw.temperature = t;
        }
        if self.temperature_fallback == Some(false) {
            raw.temperature_inc = 0.0;
        }
        // whisper.cpp keeps the last run's text in the state and, unless
        // `no_context` is set, prompts the next run with it: another request's words.
        raw.no_context = true;
        if self.condition_on_previous_text == Some(false) {
            raw.n_max_text_ctx = 0;
        }
        if let Some(v) = self.suppress_blank {
            raw.suppress_blank = v;
        }
        if let Some(v) = self.suppress_non_speech {
            raw.suppress_nst = v;
        }
        if let Some(max_len) = max_len {
            raw.max_len = max_len;
            raw.split_on_word = true;
        }
        if let Some(tokens) = self.max_tokens {
            raw.max_tokens = i32::try_from(tokens).unwrap_or(i32::MAX);
        }
        raw.token_timestamps = self.token_timestamps || self.word_timestamps;
        raw.offset_ms = offset_ms;
        raw.duration_ms = duration_ms;
        raw.audio_ctx = audio_ctx as i32;
        raw.language = language.as_ref().map_or(std::ptr::null(), |l| l.as_ptr());
        raw.initial_prompt = initial_prompt
            .as_ref()
            .map_or(std::ptr::null(), |p| p.as_ptr());
        if !prompt_tokens.is_empty() {
            raw.prompt_tokens = prompt_tokens.as_ptr();
            raw.prompt_n_tokens = prompt_tokens.len() as i32;
        }
        Ok(RawParams {
            raw,
            _language: language,
            _initial_prompt: initial_prompt,
            _prompt_tokens: prompt_tokens,
        })
    }
}

/// C parameters plus the strings they point into; lives for one run.
pub(crate) struct RawParams {
    pub(crate) raw: whisper_full_params,
    _language: Option<CString>,
    _initial_prompt: Option<CString>,
    _prompt_tokens: Vec<i32>,
}
