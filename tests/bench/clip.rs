//! [`Clip`]: a speech file, its language and its reference transcript.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use whisper_safe::audio::{decode, DecodeOptions};
use whisper_stt_tests::{char_error_rate, word_error_rate};

use crate::error::{BenchError, Result};

/// A clip given as `PATH[@LANG]` (language default `en`); its reference
/// transcript is the `.txt` file beside it.
#[derive(Clone, Debug, PartialEq)]
pub struct Clip {
    /// The audio file.
    pub path: PathBuf,
    /// Spoken language code.
    pub language: String,
    /// Reference transcript.
    pub reference: String,
}

impl FromStr for Clip {
    type Err = String;

    fn from_str(spec: &str) -> Result<Self, String> {
        let (path, language) = match spec.rsplit_once('@') {
            Some((path, language))
                if (2..=3).contains(&language.len())
                    && language.chars().all(|c| c.is_ascii_lowercase()) =>
            {
                (path, language)
            }
            _ => (spec, "en"),
        };
        let path = PathBuf::from(path);
        let txt = path.with_extension("txt");
        let reference = std::fs::read_to_string(&txt)
            .map_err(|e| format!("reference transcript {}: {e}", txt.display()))?
            .trim()
            .to_owned();
        Ok(Self {
            path,
            language: language.to_owned(),
            reference,
        })
    }
}

impl Clip {
    /// The file name, used as the clip's label.
    pub fn name(&self) -> String {
        file_name(&self.path)
    }

    /// `PATH@LANG`, as parsed.
    pub fn spec(&self) -> String {
        format!("{}@{}", self.path.display(), self.language)
    }

    /// The file's bytes.
    ///
    /// # Errors
    /// [`BenchError::Io`].
    pub fn bytes(&self) -> Result<Vec<u8>> {
        std::fs::read(&self.path).map_err(BenchError::io(&self.path))
    }

    /// 16 kHz mono samples.
    ///
    /// # Errors
    /// [`BenchError::Io`] or [`BenchError::Audio`].
    pub fn samples(&self) -> Result<Vec<f32>> {
        decode(self.bytes()?, &DecodeOptions::default())
            .map(|audio| audio.samples)
            .map_err(|source| BenchError::Audio {
                path: self.path.clone(),
                source,
            })
    }

    /// `CER` for languages written without spaces, else `WER`.
    pub fn metric(&self) -> &'static str {
        if matches!(self.language.as_str(), "zh" | "ja" | "ko" | "th") {
            "CER"
        } else {
            "WER"
        }
    }

    /// Words (WER) or characters (CER) of the reference: what the error rate
    /// divides by.
    pub fn reference_units(&self) -> usize {
        whisper_stt_tests::scored_units(&self.reference, self.metric() == "CER")
    }

    /// The [`metric`](Self::metric) of `text` against the reference.
    pub fn error_rate(&self, text: &str) -> f64 {
        if self.metric() == "CER" {
            char_error_rate(&self.reference, text)
        } else {
            word_error_rate(&self.reference, text)
        }
    }
}

/// The last component of `path`, lossily.
pub fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_names_the_language_and_finds_the_reference() {
        let dir = tempfile::tempdir().unwrap();
        let wav = dir.path().join("a@b.wav");
        std::fs::write(dir.path().join("a@b.txt"), "Bonjour le monde.\n").unwrap();
        let clip: Clip = format!("{}@fr", wav.display()).parse().unwrap();
        assert_eq!((clip.path.clone(), clip.language.as_str()), (wav, "fr"));
        assert_eq!(clip.reference, "Bonjour le monde.");
        assert_eq!(clip.error_rate("bonjour, le monde"), 0.0);
        let english: Clip = dir
            .path()
            .join("a@b.wav")
            .display()
            .to_string()
            .parse()
            .unwrap();
        assert_eq!(english.language, "en");
        assert!("/nowhere/x.wav".parse::<Clip>().is_err());
    }
}
