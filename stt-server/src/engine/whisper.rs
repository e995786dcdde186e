//! The production [`ModelLoader`]: whisper.cpp through `whisper-safe`.

use std::path::Path;
use std::sync::{Arc, Once};

use whisper_safe::pieces::{Span, MAX_PIECE_SAMPLES};
use whisper_safe::vad_halves::speech_in_halves;
use whisper_safe::{
    Context, ContextOptions, Language, LoaderConfig, Params, RunOptions, State, Transcript, Vad,
    VadOptions, VadParams,
};

use super::model::{Decoder, Model, ModelLoader, SpeechDetector};
use super::options::VadTuning;

/// Loads the libraries from a fixed directory, then models with whisper.cpp.
pub struct WhisperLoader {
    libraries: LoaderConfig,
    options: ContextOptions,
    announced: Once,
}

impl WhisperLoader {
    /// A loader for the libraries in `libraries` that creates contexts with `options`.
    pub fn new(libraries: LoaderConfig, options: ContextOptions) -> Self {
        Self {
            libraries,
            options,
            announced: Once::new(),
        }
    }
}

impl ModelLoader for WhisperLoader {
    fn load(&self, path: &Path) -> whisper_safe::Result<Arc<dyn Model>> {
        let info = whisper_safe::init_with(&self.libraries)?;
        self.announced.call_once(|| {
            log::info!(
                "libraries loaded: whisper.cpp {}, ggml {}, {} layout from {}; devices: {}; {}",
                info.whisper_version,
                info.ggml_version,
                info.layout.name(),
                info.lib_dir.display(),
                info.devices
                    .iter()
                    .map(|d| format!("{} ({})", d.name, d.description))
                    .collect::<Vec<_>>()
                    .join(", "),
                info.system_info.trim()
            );
            match &info.patch_series {
                Some(series) => log::info!("patch series: {series}"),
                None => log::warn!(
                    "stock whisper.cpp libraries (no whisper-stt patch series): they serve, \
                     with fallbacks"
                ),
            }
            let fallbacks = whisper_safe::patches::fallbacks(info);
            if !fallbacks.is_empty() {
                log::warn!("without the patches: {}", fallbacks.join("; "));
            }
        });
        let context = Context::new(path, &self.options)?;
        let languages = context.languages();
        Ok(Arc::new(WhisperModel { context, languages }))
    }

    fn load_speech_detector(&self, path: &Path) -> whisper_safe::Result<Box<dyn SpeechDetector>> {
        whisper_safe::init_with(&self.libraries)?;
        let first = Vad::new(path, &VadOptions::default())?;
        let second = Vad::new(path, &VadOptions::default())?;
        Ok(Box::new(SileroDetector { first, second }))
    }
}

/// Silero VAD with faster-whisper's settings; spans longer than a window are
/// split at a pause where there is one. Long audio is searched in two halves
/// at once, one model each ([`speech_in_halves`]).
struct SileroDetector {
    first: Vad,
    second: Vad,
}

impl SpeechDetector for SileroDetector {
    fn speech(&mut self, samples: &[f32], tuning: &VadTuning) -> whisper_safe::Result<Vec<Span>> {
        let defaults = VadParams::faster_whisper();
        let params = VadParams {
            max_speech_duration_s: MAX_PIECE_SAMPLES as f32 / whisper_safe::SAMPLE_RATE as f32
                - 1.0,
            threshold: tuning.threshold.unwrap_or(defaults.threshold),
            speech_pad_ms: tuning.speech_pad_ms.unwrap_or(defaults.speech_pad_ms),
            min_silence_duration_ms: tuning
                .min_silence_ms
                .unwrap_or(defaults.min_silence_duration_ms),
            ..defaults
        };
        let found = speech_in_halves(&mut self.first, &mut self.second, samples, &params)?;
        if let Some(cut) = found.joined_at {
            log::debug!("VAD halves joined at {cut:.2} s");
        }
        Ok(found
            .spans
            .into_iter()
            .map(|s| Span::from_seconds(s.start, s.end, samples.len()))
            .collect())
    }
}

struct WhisperModel {
    context: Context,
    languages: Vec<Language>,
}

impl Model for WhisperModel {
    fn multilingual(&self) -> bool {
        self.context.info().multilingual
    }

    fn languages(&self) -> Vec<Language> {
        self.languages.clone()
    }

    fn create_decoder(&self) -> whisper_safe::Result<Box<dyn Decoder>> {
        Ok(Box::new(WhisperDecoder(self.context.create_state()?)))
    }
}

struct WhisperDecoder(State);

impl Decoder for WhisperDecoder {
    fn run(
        &mut self,
        params: &Params,
        samples: &[f32],
        options: RunOptions<'_>,
    ) -> whisper_safe::Result<Transcript> {
        self.0
            .full_with(params, samples, whisper_safe::SAMPLE_RATE, options)
    }

    fn detect_language(
        &mut self,
        samples: &[f32],
        threads: u32,
    ) -> whisper_safe::Result<Vec<(whisper_safe::Language, f32)>> {
        self.0.detect_language(samples, threads)
    }
}
