//! Conversion to 16 kHz: one fixed-ratio FFT resampler (`rubato`) per stretch of constant
//! source rate, fed in chunks of about 100 ms, with the duration limit checked as audio arrives.

use rubato::{FftFixedInOut, Resampler};

use super::{AudioError, WHISPER_SAMPLE_RATE};

/// The 16 kHz output, built one stretch of constant source rate at a time.
pub(super) struct Output {
    samples: Vec<f32>,
    max_seconds: Option<f64>,
    /// Duration of the stretches already finished.
    finished_seconds: f64,
    stretch: Option<Stretch>,
}

impl Output {
    pub(super) fn new(max_seconds: Option<f64>) -> Self {
        Self {
            samples: Vec::new(),
            max_seconds,
            finished_seconds: 0.0,
            stretch: None,
        }
    }

    /// Adds mono audio at `rate`, failing as soon as the total passes the limit.
    pub(super) fn push(&mut self, rate: u32, mono: &[f32], codec: &str) -> Result<(), AudioError> {
        if self.stretch.as_ref().is_some_and(|s| s.rate != rate) {
            log::info!("{codec} stream changes sample rate to {rate} Hz");
            self.finish_stretch()?;
        }
        let stretch = match &mut self.stretch {
            Some(stretch) => stretch,
            None => self.stretch.insert(Stretch::new(
                rate,
                self.samples.len(),
                (rate / 10) as usize,
            )?),
        };
        stretch.frames_in += mono.len() as u64;
        let seconds = self.finished_seconds + stretch.seconds();
        if let Some(max_seconds) = self.max_seconds {
            if seconds > max_seconds {
                return Err(AudioError::TooLong { max_seconds });
            }
        }
        stretch.push(mono, &mut self.samples)
    }

    fn finish_stretch(&mut self) -> Result<(), AudioError> {
        if let Some(stretch) = self.stretch.take() {
            self.finished_seconds += stretch.seconds();
            stretch.finish(&mut self.samples)?;
        }
        Ok(())
    }

    /// Flushes the resampler; returns the samples, clamped to `[-1, 1]`, and the duration.
    pub(super) fn finish(mut self) -> Result<(Vec<f32>, f64), AudioError> {
        self.finish_stretch()?;
        for sample in &mut self.samples {
            *sample = sample.clamp(-1.0, 1.0);
        }
        Ok((self.samples, self.finished_seconds))
    }
}

/// Resamples a live stream of mono audio at one rate to 16 kHz as it arrives,
/// in chunks of 20 ms (what is held back until a chunk is complete, plus the
/// resampler's delay, is the latency it adds).
pub struct StreamResampler {
    stretch: Stretch,
}

impl std::fmt::Debug for StreamResampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StreamResampler({} Hz)", self.stretch.rate)
    }
}

impl StreamResampler {
    /// A resampler from `rate` Hz.
    ///
    /// # Errors
    /// [`AudioError::Resample`] for a rate the resampler cannot take.
    pub fn new(rate: u32) -> Result<Self, AudioError> {
        Ok(Self {
            stretch: Stretch::new(rate, 0, (rate / 50) as usize)?,
        })
    }

    /// Resamples `mono` (values in `[-1, 1]`) and appends the 16 kHz output to `out`.
    ///
    /// # Errors
    /// [`AudioError::Resample`] if the resampler fails.
    pub fn push(&mut self, mono: &[f32], out: &mut Vec<f32>) -> Result<(), AudioError> {
        self.stretch.frames_in += mono.len() as u64;
        self.stretch.push(mono, out)
    }
}

/// Resampling of a stretch of audio at one source rate; `resampler` is `None` at 16 kHz.
struct Stretch {
    rate: u32,
    /// Index in the output where this stretch starts.
    start: usize,
    /// Source frames received (counted before resampling).
    frames_in: u64,
    resampler: Option<FftFixedInOut<f32>>,
    /// Input not yet making a full resampler chunk.
    pending: Vec<f32>,
    chunk_out: Vec<Vec<f32>>,
    /// Leading output frames still to drop: the resampler's delay.
    delay_left: usize,
}

impl Stretch {
    /// A stretch starting at output index `start`, resampled in chunks of `chunk` input frames.
    fn new(rate: u32, start: usize, chunk: usize) -> Result<Self, AudioError> {
        let resampler = if rate == WHISPER_SAMPLE_RATE {
            None
        } else {
            let resampler =
                FftFixedInOut::new(rate as usize, WHISPER_SAMPLE_RATE as usize, chunk, 1)
                    .map_err(|e| resample_error(rate, &e))?;
            Some(resampler)
        };
        let delay_left = resampler.as_ref().map_or(0, |r| r.output_delay());
        let chunk_out = resampler
            .as_ref()
            .map_or_else(Vec::new, |r| r.output_buffer_allocate(true));
        Ok(Self {
            rate,
            start,
            frames_in: 0,
            resampler,
            pending: Vec::new(),
            chunk_out,
            delay_left,
        })
    }

    fn seconds(&self) -> f64 {
        self.frames_in as f64 / f64::from(self.rate)
    }

    /// Number of output frames this stretch should have once finished.
    fn frames_out(&self) -> usize {
        let frames = (u128::from(self.frames_in) * u128::from(WHISPER_SAMPLE_RATE)
            + u128::from(self.rate / 2))
            / u128::from(self.rate);
        usize::try_from(frames).unwrap_or(usize::MAX)
    }

    fn push(&mut self, mono: &[f32], out: &mut Vec<f32>) -> Result<(), AudioError> {
        let Some(resampler) = &mut self.resampler else {
            out.extend_from_slice(mono);
            return Ok(());
        };
        self.pending.extend_from_slice(mono);
        let chunk = resampler.input_frames_next();
        let mut used = 0;
        while self.pending.len() - used >= chunk {
            let input = [&self.pending[used..used + chunk]];
            let (_, written) = resampler
                .process_into_buffer(&input, &mut self.chunk_out, None)
                .map_err(|e| resample_error(self.rate, &e))?;
            used += chunk;
            emit(&self.chunk_out[0][..written], &mut self.delay_left, out);
        }
        self.pending.drain(..used);
        Ok(())
    }

    /// Pushes the remaining input and the resampler's delay line out, then cuts the output of
    /// this stretch to its exact length.
    fn finish(mut self, out: &mut Vec<f32>) -> Result<(), AudioError> {
        let wanted = self.start.saturating_add(self.frames_out());
        if let Some(resampler) = &mut self.resampler {
            // rubato takes an empty channel for an inactive one: pass no input instead.
            let mut rest = Some(std::mem::take(&mut self.pending)).filter(|p| !p.is_empty());
            while out.len() < wanted {
                let input = rest.take();
                let (_, written) = resampler
                    .process_partial_into_buffer(
                        input.as_ref().map(std::slice::from_ref),
                        &mut self.chunk_out,
                        None,
                    )
                    .map_err(|e| resample_error(self.rate, &e))?;
                if written == 0 {
                    break;
                }
                emit(&self.chunk_out[0][..written], &mut self.delay_left, out);
            }
        }
        out.truncate(wanted);
        Ok(())
    }
}

/// Appends resampler output to `out`, first dropping what remains of the delay.
fn emit(frames: &[f32], delay_left: &mut usize, out: &mut Vec<f32>) {
    let skip = (*delay_left).min(frames.len());
    *delay_left -= skip;
    out.extend_from_slice(&frames[skip..]);
}

fn resample_error(rate: u32, error: &dyn std::error::Error) -> AudioError {
    AudioError::Resample {
        rate,
        detail: error.to_string(),
    }
}
