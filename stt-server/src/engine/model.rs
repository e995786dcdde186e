//! The model seam: [`ModelLoader`] → [`Model`] → [`Decoder`] (whisper.cpp in
//! production, a fake in tests), and [`LoadedModel`], a model with its pool of
//! decoders, ready to serve.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use whisper_safe::pieces::Span;
use whisper_safe::{AudioContext, Language, Params, RunOptions, Transcript};

use super::options::{InvalidOption, TranscribeOptions, VadTuning};
use super::source::ModelSource;

/// Loads model files.
pub trait ModelLoader: Send + Sync {
    /// Loads the model in `path` (loading the libraries first if needed).
    ///
    /// # Errors
    /// Whatever stops the load, naming the file.
    fn load(&self, path: &Path) -> whisper_safe::Result<Arc<dyn Model>>;

    /// Loads the voice-activity detector model at `path`.
    ///
    /// # Errors
    /// The library's error: missing or malformed file, libraries not loaded.
    fn load_speech_detector(&self, path: &Path) -> whisper_safe::Result<Box<dyn SpeechDetector>>;
}

/// A loaded model, shared by its decoders.
/// Finds speech in audio (Silero VAD in production).
pub trait SpeechDetector: Send {
    /// The spans of speech in 16 kHz `samples`, in order.
    ///
    /// # Errors
    /// The detector's failure.
    fn speech(&mut self, samples: &[f32], tuning: &VadTuning) -> whisper_safe::Result<Vec<Span>>;
}

pub trait Model: Send + Sync {
    /// Whether it knows languages other than English.
    fn multilingual(&self) -> bool;
    /// The languages it accepts.
    fn languages(&self) -> Vec<Language>;
    /// A new decoding state.
    ///
    /// # Errors
    /// When the state cannot be allocated.
    fn create_decoder(&self) -> whisper_safe::Result<Box<dyn Decoder>>;
}

/// One decoding state; used by one thread at a time.
pub trait Decoder: Send {
    /// Transcribes 16 kHz mono samples.
    ///
    /// # Errors
    /// As [`whisper_safe::State::full_with`].
    fn run(
        &mut self,
        params: &Params,
        samples: &[f32],
        options: RunOptions<'_>,
    ) -> whisper_safe::Result<Transcript>;

    /// The probability of each language in the first 30 s of `samples`.
    ///
    /// # Errors
    /// As [`whisper_safe::State::detect_language`]; decoders that cannot
    /// detect say so.
    fn detect_language(
        &mut self,
        samples: &[f32],
        threads: u32,
    ) -> whisper_safe::Result<Vec<(Language, f32)>> {
        let _ = (samples, threads);
        Err(whisper_safe::Error::UnsupportedLanguage {
            code: "auto".into(),
            reason: "this decoder cannot detect languages".into(),
        })
    }
}

/// A model being served: its id, facts, and a pool of decoders (one per
/// worker, created one at a time at load).
pub struct LoadedModel {
    id: String,
    model: Arc<dyn Model>,
    languages: Vec<Language>,
    decoders: Mutex<Vec<Box<dyn Decoder>>>,
    loaded_at: SystemTime,
    load_time: Duration,
}

impl std::fmt::Debug for LoadedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModel").field("id", &self.id).finish()
    }
}

/// One second of faint noise: enough for a warm-up run to touch every buffer.
fn warm_up_audio() -> Vec<f32> {
    let mut seed: u32 = 0x2545_f491;
    (0..whisper_safe::SAMPLE_RATE)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            (seed as f32 / u32::MAX as f32 - 0.5) * 0.002
        })
        .collect()
}

impl LoadedModel {
    /// Loads `source`, creates `decoders` states one at a time, and runs one
    /// warm-up transcription with `threads` threads.
    ///
    /// # Errors
    /// The loader's or the decoder's error.
    pub fn load(
        loader: &dyn ModelLoader,
        source: &ModelSource,
        decoders: usize,
        threads: u32,
    ) -> whisper_safe::Result<Self> {
        let started = Instant::now();
        let model = loader.load(&source.path)?;
        let mut pool = Vec::with_capacity(decoders);
        for _ in 0..decoders.max(1) {
            pool.push(model.create_decoder()?);
        }
        let languages = model.languages();
        let warm_up = Params::greedy()
            .threads(threads)
            .language(Some("en"))
            .temperature_fallback(false)
            .audio_context(AudioContext::Trimmed);
        let warm_started = Instant::now();
        pool[0].run(&warm_up, &warm_up_audio(), RunOptions::default())?;
        log::info!(
            "model {} ready: {} decoding states, warm-up run {:.2} s",
            source.id,
            pool.len(),
            warm_started.elapsed().as_secs_f64()
        );
        Ok(Self {
            id: source.id.clone(),
            model,
            languages,
            decoders: Mutex::new(pool),
            loaded_at: SystemTime::now(),
            load_time: started.elapsed(),
        })
    }

    /// The API id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether it knows languages other than English.
    pub fn multilingual(&self) -> bool {
        self.model.multilingual()
    }

    /// When it finished loading.
    pub fn loaded_at(&self) -> SystemTime {
        self.loaded_at
    }

    /// How long loading, state creation and warm-up took.
    pub fn load_time(&self) -> Duration {
        self.load_time
    }

    /// Whether `id` names this model: `whisper-1`, its id, the same catalog file
    /// (`small-q8_0`), or its bare size (`small` for any weight type of small).
    pub fn answers_to(&self, id: &str) -> bool {
        use crate::models::catalog::ModelRequest;
        let id = id.trim();
        if id == super::OPENAI_ALIAS || id == self.id {
            return true;
        }
        match (id.parse::<ModelRequest>(), self.id.parse::<ModelRequest>()) {
            (Ok(asked), Ok(loaded)) => {
                asked.model == loaded.model && asked.quant.is_none_or(|q| Some(q) == loaded.quant)
            }
            _ => false,
        }
    }

    /// The language named by a code or English name (case-insensitive), if this
    /// model accepts it.
    pub fn language(&self, code_or_name: &str) -> Option<&Language> {
        let wanted = code_or_name.trim().to_ascii_lowercase();
        self.languages
            .iter()
            .find(|l| l.code == wanted || l.name == wanted)
    }

    /// Checks the options against this model and returns the language code to
    /// decode with (`None`: detect). English-only models always decode `en`.
    ///
    /// # Errors
    /// [`InvalidOption`] for an unknown or unsupported language, translation on
    /// an English-only model, or out-of-range values.
    pub fn check(&self, options: &TranscribeOptions) -> Result<Option<String>, InvalidOption> {
        options.check_ranges()?;
        if options.translate && !self.multilingual() {
            return Err(InvalidOption {
                param: "translate",
                message: format!("model {} is English-only and cannot translate", self.id),
            });
        }
        let mut candidates = Vec::new();
        for asked in &options.languages {
            match self.language(asked) {
                Some(language) => candidates.push(language.code.clone()),
                None => {
                    return Err(InvalidOption {
                        param: "languages",
                        message: format!("{asked:?} is not a language model {} knows", self.id),
                    })
                }
            }
        }
        let requested = options
            .language
            .as_deref()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.eq_ignore_ascii_case("auto"))
            .or(match candidates.as_slice() {
                [only] => Some(only.as_str()),
                _ => None,
            });
        match requested {
            None if self.multilingual() => Ok(None),
            None => Ok(Some("en".into())),
            Some(asked) => {
                match self.language(asked) {
                    Some(language) => Ok(Some(language.code.clone())),
                    None => Err(InvalidOption {
                        param: "language",
                        message: if self.multilingual() {
                            format!("unknown language {asked:?}; use an ISO-639-1 code such as en, fr, de")
                        } else {
                            format!(
                                "model {} is English-only: language {asked:?} is not supported",
                                self.id
                            )
                        },
                    }),
                }
            }
        }
    }

    /// The English name of a language code (`en` → `english`).
    pub fn language_name(&self, code: &str) -> Option<&str> {
        self.languages
            .iter()
            .find(|l| l.code == code)
            .map(|l| l.name.as_str())
    }

    /// A free decoder, created when the pool is empty (all in use, or a
    /// poisoned one was dropped).
    pub(crate) fn take_decoder(&self) -> whisper_safe::Result<Box<dyn Decoder>> {
        let pooled = self
            .decoders
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop();
        match pooled {
            Some(decoder) => Ok(decoder),
            None => {
                log::debug!("model {}: creating another decoding state", self.id);
                self.model.create_decoder()
            }
        }
    }

    /// Returns a decoder to the pool.
    pub(crate) fn put_decoder(&self, decoder: Box<dyn Decoder>) {
        self.decoders
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(decoder);
    }
}
