//! Voice activity detection with whisper.cpp's Silero VAD: [`Vad`] finds the
//! spans of speech in 16 kHz audio; the module also defines and checks the VAD
//! model file.
//!
//! File layout (little-endian), as `whisper_vad_init_with_params` reads it in
//! whisper.cpp 1.8.3: magic `0x67676d6c`; i32 length and the bytes of the model
//! type (`silero-16k`); i32 major, minor, patch version; i32 `n_window` (512
//! samples) and `n_context` (64); i32 `n_encoder_layers` (4), then per layer i32
//! in channels, out channels, kernel size; i32 LSTM input and hidden size; i32
//! final conv in and out channels; then tensor records as in a whisper model
//! (see [`ggml_file`]) up to the end of the file.
//!
//! The loader trusts these numbers: a negative type length, an absurd layer
//! count or a truncated tensor ends in an abort or in garbage weights, and its
//! graph hard-codes Silero's shapes (4 layers, 128/64/64/128 channels, a
//! 512-sample window, 128 hidden units). [`verify`] therefore accepts exactly
//! Silero's 16 kHz network and every one of its 15 tensors with the type and
//! dims the loader creates; [`Vad::new`] runs it before whisper.cpp opens a file.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;

use whisper_sys::{whisper_vad_context, whisper_vad_params, WhisperApi};

use crate::context::INIT_LOCK;
use crate::ggml_file::{
    self, verify_file, FileError, FormatError, ModelFormat, ReadError, TensorSpec, TensorType,
    Tracked,
};
use crate::{library, logging, Error, Result};

/// Model type string of Silero's 16 kHz network (what upstream's converter writes).
pub const MODEL_TYPE: &str = "silero-16k";
/// Samples per VAD window (32 ms at 16 kHz): one speech probability each.
pub const WINDOW_SAMPLES: i32 = 512;
/// Samples of context Silero keeps between windows (read, unused by whisper.cpp 1.8.3).
pub const CONTEXT_SAMPLES: i32 = 64;
/// Upper bound on the model type's length accepted by the reader.
const MAX_TYPE_BYTES: i32 = 64;

/// One encoder convolution: in channels, out channels, kernel size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvShape {
    /// Input channels.
    pub in_channels: i32,
    /// Output channels.
    pub out_channels: i32,
    /// Kernel width.
    pub kernel: i32,
}

/// Silero's encoder: the STFT magnitude (129 bins) through four 3-wide convolutions.
pub const ENCODER: [ConvShape; 4] = [
    ConvShape {
        in_channels: 129,
        out_channels: 128,
        kernel: 3,
    },
    ConvShape {
        in_channels: 128,
        out_channels: 64,
        kernel: 3,
    },
    ConvShape {
        in_channels: 64,
        out_channels: 64,
        kernel: 3,
    },
    ConvShape {
        in_channels: 64,
        out_channels: 128,
        kernel: 3,
    },
];
/// LSTM input and hidden size (the graph's STFT hop is the input size too).
pub const LSTM_SIZE: i32 = 128;

/// Everything before the tensors of a VAD model file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VadHeader {
    /// Model type, [`MODEL_TYPE`].
    pub model_type: String,
    /// Model version (major, minor, patch); informational.
    pub version: [i32; 3],
    /// Samples per window.
    pub n_window: i32,
    /// Samples of context.
    pub n_context: i32,
    /// Encoder convolutions.
    pub encoder: Vec<ConvShape>,
    /// LSTM input size.
    pub lstm_input: i32,
    /// LSTM hidden size.
    pub lstm_hidden: i32,
    /// Final convolution: in channels.
    pub final_in: i32,
    /// Final convolution: out channels.
    pub final_out: i32,
}

impl VadHeader {
    /// The header of Silero's 16 kHz network, version `version`.
    pub fn silero(version: [i32; 3]) -> Self {
        Self {
            model_type: MODEL_TYPE.to_owned(),
            version,
            n_window: WINDOW_SAMPLES,
            n_context: CONTEXT_SAMPLES,
            encoder: ENCODER.to_vec(),
            lstm_input: LSTM_SIZE,
            lstm_hidden: LSTM_SIZE,
            final_in: LSTM_SIZE,
            final_out: 1,
        }
    }

    /// Writes the header.
    ///
    /// # Errors
    /// Any write error.
    pub fn write(&self, w: &mut impl Write) -> io::Result<()> {
        let mut ints = vec![ggml_file::MAGIC as i32, self.model_type.len() as i32];
        w.write_all(
            &ints
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect::<Vec<_>>(),
        )?;
        w.write_all(self.model_type.as_bytes())?;
        ints.clear();
        ints.extend(self.version);
        ints.extend([self.n_window, self.n_context, self.encoder.len() as i32]);
        for c in &self.encoder {
            ints.extend([c.in_channels, c.out_channels, c.kernel]);
        }
        ints.extend([
            self.lstm_input,
            self.lstm_hidden,
            self.final_in,
            self.final_out,
        ]);
        w.write_all(
            &ints
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect::<Vec<_>>(),
        )
    }

    /// Reads the header and checks that it describes Silero's 16 kHz network
    /// (any version), the only one whisper.cpp's graph can run.
    ///
    /// # Errors
    /// [`VadFormatError`] naming the field, or truncation with its offset.
    pub fn read<R: Read>(r: &mut Tracked<R>) -> Result<Self, VadFormatError> {
        let magic = r.u32("magic")?;
        if magic != ggml_file::MAGIC {
            return Err(FormatError::BadMagic(magic).into());
        }
        let type_len = r.i32("model type")?;
        if !(1..=MAX_TYPE_BYTES).contains(&type_len) {
            return Err(VadFormatError::Header(format!(
                "model type length {type_len}"
            )));
        }
        let model_type =
            String::from_utf8_lossy(&r.bytes(type_len as u64, "model type")?).into_owned();
        let mut int = |what: &str| r.i32(what);
        let version = [int("version")?, int("version")?, int("version")?];
        let (n_window, n_context) = (int("window size")?, int("context size")?);
        let n_layers = int("encoder layer count")?;
        if n_layers != ENCODER.len() as i32 {
            return Err(VadFormatError::Header(format!(
                "{n_layers} encoder layers, whisper.cpp runs {}",
                ENCODER.len()
            )));
        }
        let mut encoder = Vec::with_capacity(ENCODER.len());
        for _ in 0..n_layers {
            encoder.push(ConvShape {
                in_channels: int("encoder layer")?,
                out_channels: int("encoder layer")?,
                kernel: int("encoder layer")?,
            });
        }
        let header = Self {
            model_type,
            version,
            n_window,
            n_context,
            encoder,
            lstm_input: int("LSTM sizes")?,
            lstm_hidden: int("LSTM sizes")?,
            final_in: int("final conv sizes")?,
            final_out: int("final conv sizes")?,
        };
        let expected = Self::silero(version);
        let fields = |h: &Self| {
            [
                ("model type", format!("{:?}", h.model_type)),
                ("window", h.n_window.to_string()),
                ("context", h.n_context.to_string()),
                ("encoder", format!("{:?}", h.encoder)),
                ("LSTM input", h.lstm_input.to_string()),
                ("LSTM hidden", h.lstm_hidden.to_string()),
                ("final conv in", h.final_in.to_string()),
                ("final conv out", h.final_out.to_string()),
            ]
        };
        let differences: Vec<String> = fields(&header)
            .into_iter()
            .zip(fields(&expected))
            .filter(|(found, wanted)| found.1 != wanted.1)
            .map(|((name, found), (_, wanted))| format!("{name} {found}, not {wanted}"))
            .collect();
        if !differences.is_empty() {
            return Err(VadFormatError::Header(format!(
                "not Silero's 16 kHz network: {}",
                differences.join("; ")
            )));
        }
        Ok(header)
    }
}

/// The tensors whisper.cpp's VAD loader creates, in the order upstream's
/// converter writes them. Convolution kernels are f16, the rest f32.
pub fn expected_tensors() -> Vec<TensorSpec> {
    use TensorType::{F16, F32};
    let spec = |name: String, ne: &[i32], ttype| TensorSpec {
        name,
        ne: ne.to_vec(),
        ttype,
    };
    let mut out = Vec::new();
    for (i, c) in ENCODER.iter().enumerate() {
        let p = format!("_model.encoder.{i}.reparam_conv");
        out.push(spec(
            format!("{p}.weight"),
            &[c.kernel, c.in_channels, c.out_channels],
            F16,
        ));
        out.push(spec(format!("{p}.bias"), &[c.out_channels], F32));
    }
    let gates = 4 * LSTM_SIZE;
    for m in ["weight_ih", "weight_hh"] {
        out.push(spec(
            format!("_model.decoder.rnn.{m}"),
            &[LSTM_SIZE, gates],
            F32,
        ));
    }
    for m in ["bias_ih", "bias_hh"] {
        out.push(spec(format!("_model.decoder.rnn.{m}"), &[gates], F32));
    }
    out.push(spec(
        "_model.decoder.decoder.2.weight".into(),
        &[LSTM_SIZE, 1],
        F16,
    ));
    out.push(spec("_model.decoder.decoder.2.bias".into(), &[1], F32));
    // STFT basis: 258 filters (129 real, 129 imaginary) of 256 samples.
    out.push(spec(
        "_model.stft.forward_basis_buffer".into(),
        &[256, 1, 258],
        F16,
    ));
    out
}

/// What [`verify`] found in a sound VAD model file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VadSummary {
    /// The header.
    pub header: VadHeader,
    /// Tensor records.
    pub n_tensors: usize,
    /// File size in bytes.
    pub file_bytes: u64,
}

/// A structural defect of a VAD model file.
#[derive(Debug, thiserror::Error)]
pub enum VadFormatError {
    /// A defect shared with whisper model files (magic, tensor records, truncation).
    #[error(transparent)]
    Ggml(#[from] FormatError),
    /// A header field whisper.cpp's VAD graph cannot run.
    #[error("invalid VAD header: {0}")]
    Header(String),
}

impl From<ReadError> for VadFormatError {
    fn from(e: ReadError) -> Self {
        Self::Ggml(e.into())
    }
}

impl ModelFormat for VadFormatError {
    const NAME: &'static str = "VAD model";
}

/// An error of [`verify`], with the file's path.
pub type VadFileError = FileError<VadFormatError>;

/// Walks a whole VAD model from `r` (a stream of `len` bytes): header, every
/// tensor's name, dims (trailing unit dims aside, as the loader compares them),
/// type and data extent, missing tensors and trailing bytes.
///
/// # Errors
/// The first [`VadFormatError`] found.
pub fn verify_reader<R: Read + Seek>(r: R, len: u64) -> Result<VadSummary, VadFormatError> {
    let mut r = Tracked::new(r, len);
    let header = VadHeader::read(&mut r)?;
    let specs = expected_tensors();
    // The loader pads dims with ones: [128] is [128, 1], a 0-D scalar is [1].
    let padded = |ne: &[i32]| {
        let mut v = ne.to_vec();
        v.resize(4, 1);
        v
    };
    let tensors = ggml_file::read_tensors(&mut r, &specs, |th, spec| {
        if padded(&th.ne) == padded(&spec.ne) {
            th.ne.clone_from(&spec.ne);
        }
    })?;
    Ok(VadSummary {
        header,
        n_tensors: tensors.len(),
        file_bytes: len,
    })
}

/// Verifies the VAD model file at `path` (see [`verify_reader`]).
///
/// # Errors
/// [`VadFileError`] with the path and the defect.
pub fn verify(path: &Path) -> Result<VadSummary, VadFileError> {
    verify_file(path, verify_reader)
}

/// Whether the file at `path` starts like a VAD model (magic, then a model type
/// beginning with `silero`), sound or not: to tell a broken VAD file from a Whisper one.
pub fn looks_like_vad(path: &Path) -> bool {
    let mut start = [0u8; 14];
    let read = File::open(path).and_then(|mut f| f.read_exact(&mut start));
    read.is_ok() && start[..4] == ggml_file::MAGIC.to_le_bytes() && &start[8..] == b"silero"
}

/// How to load a VAD model.
#[derive(Debug, Clone)]
pub struct VadOptions {
    /// Threads of the VAD graph (default 1; whisper.cpp's own default is 4). The
    /// graph runs once per 512-sample window and is tiny: 10 min of audio took
    /// 8.7 s on 1 thread and 83 s on 2 on a loaded 2-core machine (one run).
    pub threads: u32,
}

impl Default for VadOptions {
    fn default() -> Self {
        Self { threads: 1 }
    }
}

/// How probabilities become speech spans (`whisper_vad_params`). The defaults
/// are whisper.cpp 1.8.3's (`whisper_vad_default_params`); faster-whisper's
/// differ where noted, see [`VadParams::faster_whisper`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VadParams {
    /// A window with this speech probability or more is speech (0.5; the end of
    /// speech uses `threshold − 0.15`).
    pub threshold: f32,
    /// Shorter speech is dropped (250 ms; faster-whisper 0).
    pub min_speech_duration_ms: u32,
    /// Silence must last this long to end a span (100 ms; faster-whisper 2000).
    pub min_silence_duration_ms: u32,
    /// Longer speech is split, at a silence of at least 98 ms when there is one
    /// (`f32::MAX`: never, as in both).
    pub max_speech_duration_s: f32,
    /// Added before and after each span (30 ms; faster-whisper 400).
    pub speech_pad_ms: u32,
    /// Seconds of overlap whisper.cpp's own VAD mode (`whisper_full` with `vad`)
    /// adds between pieces (0.1); [`Vad::speech`] passes it on and does not use it.
    pub samples_overlap: f32,
}

impl Default for VadParams {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            min_speech_duration_ms: 250,
            min_silence_duration_ms: 100,
            max_speech_duration_s: f32::MAX,
            speech_pad_ms: 30,
            samples_overlap: 0.1,
        }
    }
}

/// Upper bound of the millisecond fields: whisper.cpp multiplies them by 16,000
/// in 32-bit integers.
const MAX_MS: u32 = 100_000;

impl VadParams {
    /// faster-whisper 1.2.1's `VadOptions` defaults: no minimum speech, spans end
    /// after 2 s of silence and get 400 ms of padding.
    pub fn faster_whisper() -> Self {
        Self {
            min_speech_duration_ms: 0,
            min_silence_duration_ms: 2000,
            speech_pad_ms: 400,
            ..Self::default()
        }
    }

    fn to_c(self) -> Result<whisper_vad_params> {
        fn invalid<T>(name: &'static str, reason: String) -> Result<T> {
            Err(Error::InvalidParam { name, reason })
        }
        if !(self.threshold > 0.0 && self.threshold <= 1.0) {
            return invalid("threshold", format!("{} is not in (0, 1]", self.threshold));
        }
        if self.max_speech_duration_s.is_nan() || self.max_speech_duration_s <= 0.0 {
            return invalid(
                "max_speech_duration_s",
                format!("{} is not positive", self.max_speech_duration_s),
            );
        }
        if !(self.samples_overlap.is_finite() && (0.0..=10.0).contains(&self.samples_overlap)) {
            return invalid(
                "samples_overlap",
                format!("{} is not in 0..=10 s", self.samples_overlap),
            );
        }
        let ms = |name: &'static str, v: u32| -> Result<i32> {
            if v > MAX_MS {
                return invalid(name, format!("{v} ms is above {MAX_MS} ms"));
            }
            Ok(v as i32)
        };
        Ok(whisper_vad_params {
            threshold: self.threshold,
            min_speech_duration_ms: ms("min_speech_duration_ms", self.min_speech_duration_ms)?,
            min_silence_duration_ms: ms("min_silence_duration_ms", self.min_silence_duration_ms)?,
            // Infinity cast to an integer in C is undefined; f32::MAX means "no limit" there.
            max_speech_duration_s: self.max_speech_duration_s.min(f32::MAX),
            speech_pad_ms: ms("speech_pad_ms", self.speech_pad_ms)?,
            samples_overlap: self.samples_overlap,
        })
    }
}

/// `samples.len()` as whisper.cpp's `int`, which also multiplies the window count
/// by 512 in an `int`.
fn sample_count(samples: &[f32]) -> Result<i32> {
    i32::try_from(samples.len())
        .ok()
        .filter(|&n| n <= i32::MAX - WINDOW_SAMPLES)
        .ok_or_else(|| {
            Error::InvalidAudio(format!(
                "{} samples is more than the VAD takes in one call",
                samples.len()
            ))
        })
}

/// A span of speech, in seconds from the start of the audio.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpeechSpan {
    /// Start, seconds.
    pub start: f64,
    /// End, seconds.
    pub end: f64,
}

/// A loaded Silero VAD model with its LSTM state: `Send`, not `Sync`; one per
/// thread that detects speech.
pub struct Vad {
    ptr: NonNull<whisper_vad_context>,
    api: &'static WhisperApi,
    path: PathBuf,
}

// SAFETY: the VAD context is only used through `&mut self` (one thread at a time);
// it holds no thread-local state.
unsafe impl Send for Vad {}

impl Drop for Vad {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from whisper_vad_init_from_file_with_params and is freed once, here.
        unsafe { (self.api.whisper_vad_free)(self.ptr.as_ptr()) };
    }
}

impl std::fmt::Debug for Vad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vad").field("path", &self.path).finish()
    }
}

impl Vad {
    /// Loads a VAD model file (loading the libraries first if needed), after
    /// checking its whole structure ([`verify`]).
    ///
    /// # Errors
    /// [`Error::Load`] if the libraries cannot be loaded; [`Error::InvalidParam`]
    /// for 0 threads; [`Error::Model`] if the file is missing, not a sound Silero
    /// VAD model, or whisper.cpp rejects it.
    pub fn new(path: impl AsRef<Path>, options: &VadOptions) -> Result<Self> {
        let path = path.as_ref();
        let api = library::api()?;
        let model_err = |reason: String| Error::Model {
            path: path.to_owned(),
            reason,
        };
        let threads = i32::try_from(options.threads)
            .ok()
            .filter(|&t| t >= 1)
            .ok_or_else(|| Error::InvalidParam {
                name: "threads",
                reason: format!("{} is not in 1..={}", options.threads, i32::MAX),
            })?;
        verify(path).map_err(|e| model_err(e.reason()))?;
        let c_path = CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| model_err("path contains a NUL byte".into()))?;
        let ptr = {
            let _guard = INIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
            logging::clear_last_error();
            // SAFETY: the defaults come from the library; we set plain fields.
            // `c_path` outlives the call, which copies what it needs.
            unsafe {
                let mut params = (api.whisper_vad_default_context_params)();
                params.n_threads = threads;
                params.use_gpu = false;
                (api.whisper_vad_init_from_file_with_params)(c_path.as_ptr(), params)
            }
        };
        let ptr = NonNull::new(ptr)
            .ok_or_else(|| model_err(logging::take_last_error("whisper.cpp could not load it")))?;
        log::info!("loaded VAD model from {}", path.display());
        Ok(Self {
            ptr,
            api,
            path: path.to_owned(),
        })
    }

    /// The file this model was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// whisper.cpp's own defaults (`whisper_vad_default_params`), for comparison
    /// with [`VadParams::default`].
    pub fn library_defaults(&self) -> VadParams {
        // SAFETY: a pure function returning a struct by value.
        let p = unsafe { (self.api.whisper_vad_default_params)() };
        VadParams {
            threshold: p.threshold,
            min_speech_duration_ms: p.min_speech_duration_ms.max(0) as u32,
            min_silence_duration_ms: p.min_silence_duration_ms.max(0) as u32,
            max_speech_duration_s: p.max_speech_duration_s,
            speech_pad_ms: p.speech_pad_ms.max(0) as u32,
            samples_overlap: p.samples_overlap,
        }
    }

    /// The speech probability of each 512-sample window (32 ms) of `samples`
    /// (16 kHz mono; the last window zero-padded). The LSTM state starts afresh.
    ///
    /// # Errors
    /// [`Error::InvalidAudio`] for more samples than whisper.cpp counts in an
    /// `int`; [`Error::Vad`] when whisper.cpp fails.
    pub fn probabilities(&mut self, samples: &[f32]) -> Result<Vec<f32>> {
        if samples.is_empty() {
            return Ok(Vec::new());
        }
        let n_samples = sample_count(samples)?;
        logging::clear_last_error();
        // SAFETY: `ptr` is a live VAD context used by this thread only (&mut self);
        // `samples` holds `n_samples` floats for the duration of the call. The
        // probabilities live in the context until its next run, and are copied
        // before `self` can be used again.
        unsafe {
            let ctx = self.ptr.as_ptr();
            if !(self.api.whisper_vad_detect_speech)(ctx, samples.as_ptr(), n_samples) {
                return Err(Error::Vad {
                    reason: logging::take_last_error("whisper_vad_detect_speech failed"),
                });
            }
            let n = usize::try_from((self.api.whisper_vad_n_probs)(ctx)).unwrap_or(0);
            let probs = (self.api.whisper_vad_probs)(ctx);
            if n == 0 || probs.is_null() {
                return Ok(Vec::new());
            }
            Ok(std::slice::from_raw_parts(probs, n).to_vec())
        }
    }

    /// The spans of speech in `samples` (16 kHz mono), in order. The LSTM state
    /// starts afresh on every call. Empty audio has no speech.
    ///
    /// # Errors
    /// [`Error::InvalidParam`] for parameters out of range; [`Error::InvalidAudio`]
    /// for more samples than whisper.cpp counts in an `int`; [`Error::Vad`] when
    /// whisper.cpp fails (its last logged error).
    pub fn speech(&mut self, samples: &[f32], params: &VadParams) -> Result<Vec<SpeechSpan>> {
        let c_params = params.to_c()?;
        if samples.is_empty() {
            return Ok(Vec::new());
        }
        let n_samples = sample_count(samples)?;
        logging::clear_last_error();
        // SAFETY: `ptr` is a live VAD context used by this thread only (&mut self);
        // `samples` holds `n_samples` floats for the duration of the call.
        let segments = unsafe {
            (self.api.whisper_vad_segments_from_samples)(
                self.ptr.as_ptr(),
                c_params,
                samples.as_ptr(),
                n_samples,
            )
        };
        let Some(segments) = NonNull::new(segments) else {
            return Err(Error::Vad {
                reason: logging::take_last_error("whisper_vad_segments_from_samples returned NULL"),
            });
        };
        // SAFETY: `segments` is valid until freed below; indices are below its count.
        let spans = unsafe {
            let s = segments.as_ptr();
            let n = (self.api.whisper_vad_segments_n_segments)(s);
            let spans = (0..n)
                .map(|i| {
                    // t0/t1 are centiseconds (whisper.cpp's samples_to_cs).
                    let t0 = (self.api.whisper_vad_segments_get_segment_t0)(s, i);
                    let t1 = (self.api.whisper_vad_segments_get_segment_t1)(s, i);
                    SpeechSpan {
                        start: f64::from(t0) / 100.0,
                        end: f64::from(t1) / 100.0,
                    }
                })
                .collect::<Vec<_>>();
            (self.api.whisper_vad_free_segments)(s);
            spans
        };
        Ok(spans)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file with Silero's header and every tensor, zero-filled; `dims` may
    /// rewrite a tensor's dims as stored.
    fn file(dims: &dyn Fn(&str) -> Option<Vec<i32>>) -> Vec<u8> {
        let mut buf = Vec::new();
        VadHeader::silero([6, 2, 0]).write(&mut buf).unwrap();
        for spec in expected_tensors() {
            let mut header = spec.header();
            let bytes = header.data_bytes().unwrap();
            if let Some(ne) = dims(&spec.name) {
                header.ne = ne;
            }
            header.write(&mut buf).unwrap();
            buf.resize(buf.len() + bytes as usize, 0);
        }
        buf
    }

    fn check(bytes: &[u8]) -> Result<VadSummary, VadFormatError> {
        verify_reader(io::Cursor::new(bytes), bytes.len() as u64)
    }

    #[test]
    fn header_and_tensors_match_the_loader() {
        let mut header = Vec::new();
        VadHeader::silero([6, 0, 0]).write(&mut header).unwrap();
        // magic, type length, "silero-16k", 3 version ints, window, context, layer
        // count, 4 × 3 layer ints, 4 LSTM/final ints.
        assert_eq!(header.len(), 4 + 4 + 10 + 12 + 8 + 4 + 48 + 16);
        let specs = expected_tensors();
        // 1 STFT basis, 4 × 2 encoder tensors, 4 LSTM tensors, 2 final conv tensors.
        assert_eq!(specs.len(), 15);
        let summary = check(&file(&|_| None)).unwrap();
        assert_eq!((summary.n_tensors, summary.header.version), (15, [6, 2, 0]));
    }

    #[test]
    fn unit_dims_may_be_left_out_as_upstreams_converter_does() {
        // Upstream writes the final conv weight as [128] and its bias as a 0-D scalar.
        let upstream = file(&|name| match name {
            "_model.decoder.decoder.2.weight" => Some(vec![128]),
            "_model.decoder.decoder.2.bias" => Some(vec![]),
            _ => None,
        });
        check(&upstream).unwrap();
        let wrong = file(&|name| (name == "_model.encoder.1.reparam_conv.bias").then(|| vec![65]));
        let err = check(&wrong).unwrap_err().to_string();
        assert!(
            err.contains("encoder.1.reparam_conv.bias") && err.contains("[65]"),
            "{err}"
        );
    }

    #[test]
    fn defects_are_named() {
        let good = file(&|_| None);
        let err = |bytes: &[u8]| check(bytes).unwrap_err().to_string();
        assert!(
            err(&good[..50]).contains("truncated"),
            "{}",
            err(&good[..50])
        );
        let mut other = good.clone();
        other[42..46].copy_from_slice(&130i32.to_le_bytes()); // layer 0 in channels
        assert!(err(&other).contains("encoder"), "{}", err(&other));
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(err(&trailing).contains("trailing"), "{}", err(&trailing));
        let header_only = &good[..106];
        assert!(
            err(header_only).contains("15 tensor(s) missing"),
            "{}",
            err(header_only)
        );
    }

    #[test]
    fn params_are_checked_before_c_sees_them() {
        let c = VadParams::default().to_c().unwrap();
        assert_eq!(
            (c.threshold, c.min_speech_duration_ms, c.speech_pad_ms),
            (0.5, 250, 30)
        );
        let unlimited = VadParams {
            max_speech_duration_s: f32::INFINITY,
            ..VadParams::default()
        };
        assert_eq!(unlimited.to_c().unwrap().max_speech_duration_s, f32::MAX);
        let fw = VadParams::faster_whisper().to_c().unwrap();
        assert_eq!((fw.min_silence_duration_ms, fw.speech_pad_ms), (2000, 400));
        for bad in [
            VadParams {
                threshold: -0.1,
                ..VadParams::default()
            },
            VadParams {
                max_speech_duration_s: f32::NAN,
                ..VadParams::default()
            },
            VadParams {
                min_speech_duration_ms: MAX_MS + 1,
                ..VadParams::default()
            },
        ] {
            assert!(
                matches!(bad.to_c(), Err(Error::InvalidParam { .. })),
                "{bad:?}"
            );
        }
    }
}
