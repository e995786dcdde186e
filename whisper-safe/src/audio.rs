//! Audio input: decode common formats and convert them to what Whisper takes, 16 kHz mono
//! `f32` in `[-1, 1]`.
//!
//! Containers and codecs are those of `symphonia` (WAV with 8/16/24/32-bit integer or 32/64-bit
//! float PCM, MP3, FLAC, Ogg/Vorbis, AAC and ALAC in MP4/M4A, MKV/WebM, CAF). The container is
//! found by probing the content: the extension and MIME hints never override what the bytes
//! say. Decoding is streaming: each packet is decoded, downmixed (mean of the channels) and fed
//! to a fixed-ratio FFT resampler (`rubato`) in chunks of about 100 ms, so memory grows with the
//! 16 kHz output only, and [`DecodeOptions::max_seconds`] stops a long input as soon as the
//! decoded duration passes the limit.
//!
//! Damaged input, by policy:
//! - A packet the codec rejects is skipped, as players do, and counted in
//!   [`DecodedAudio::skipped_packets`]; more than [`MAX_CONSECUTIVE_BAD_PACKETS`] in a row, or
//!   more bad packets than good ones overall, make the stream [`AudioError::Corrupt`].
//! - A stream that ends before the length its header declares (an interrupted recording, or a
//!   WAV written to a pipe with a placeholder length) yields the audio that is there, with a
//!   warning in the log; it is [`AudioError::Truncated`] only when not one frame is there.
//! - An MP4 sample table (`stts`, `stsc`, `stsz`, `stco`, `co64`) declaring more entries than
//!   the input can hold is [`AudioError::Corrupt`] before `symphonia` sees it: it would reserve
//!   memory for every entry first, and a failed reservation aborts the process.
//! - A panic inside `symphonia` (a few malformed headers trip its arithmetic-overflow checks in
//!   debug builds) is caught and reported as [`AudioError::DecoderPanic`]; the panic hook still
//!   prints it.
//!
//! Sample rates outside [`MIN_SAMPLE_RATE`]`..=`[`MAX_SAMPLE_RATE`] are refused (below, the
//! resampler's FFT sizes grow without bound; above, no real recording exists). The channel
//! count needs no bound: `symphonia` describes channels with a 32-bit mask.

use std::borrow::Cow;
use std::io::{self, Cursor, Read, Seek, SeekFrom};
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use rubato::{FftFixedInOut, Resampler};
use symphonia::core::audio::{AudioBuffer, AudioBufferRef, Signal};
use symphonia::core::codecs::{Decoder, DecoderOptions, CODEC_TYPE_NULL};
use symphonia::core::conv::IntoSample;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::{FormatOptions, FormatReader, Packet};
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;
use symphonia::core::sample::Sample;

/// The sample rate Whisper expects, in Hz.
pub const WHISPER_SAMPLE_RATE: u32 = 16_000;
/// The lowest source sample rate accepted, in Hz.
pub const MIN_SAMPLE_RATE: u32 = 4_000;
/// The highest source sample rate accepted, in Hz.
pub const MAX_SAMPLE_RATE: u32 = 384_000;
/// Bad packets in a row after which a stream is taken as corrupt rather than damaged.
pub const MAX_CONSECUTIVE_BAD_PACKETS: u32 = 16;
/// Decoder resets (track list or signal changes) in a row, with no audio between them, after
/// which a stream is taken as corrupt.
const MAX_CONSECUTIVE_RESETS: u32 = 8;
/// Codec name in errors raised before a track is opened.
const UNKNOWN_CODEC: &str = "unknown";

/// How to decode: limits and hints.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DecodeOptions {
    /// Refuse audio longer than this many seconds ([`AudioError::TooLong`]), checked while
    /// decoding. `None`: no limit (memory then grows with the input's duration).
    pub max_seconds: Option<f64>,
    /// File extension without the dot (`"mp3"`), from the upload's file name, if any.
    pub extension_hint: Option<String>,
    /// MIME type (`"audio/mpeg"`), from the upload, if any.
    pub mime_hint: Option<String>,
}

/// Decoded audio, ready for Whisper.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedAudio {
    /// 16 kHz mono samples in `[-1, 1]`.
    pub samples: Vec<f32>,
    /// Duration of the decoded source audio, in seconds.
    pub duration_seconds: f64,
    /// Sample rate of the source, in Hz (the first one, if it changed mid-stream).
    pub source_sample_rate: u32,
    /// Channel count of the source (the first one, if it changed mid-stream).
    pub source_channels: u16,
    /// Short name of the source codec (`"mp3"`, `"pcm_s16le"`, `"aac"`...).
    pub codec: String,
    /// Packets the codec rejected and that were skipped.
    pub skipped_packets: u32,
}

/// Why audio could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// The input has no bytes at all.
    #[error("audio input is empty (0 bytes)")]
    EmptyInput,
    /// No known container was found in the bytes, or its codec is not supported.
    #[error("unsupported audio format: {detail}")]
    UnsupportedFormat {
        /// What was not recognised or not supported.
        detail: String,
    },
    /// The container holds no track with a known audio codec.
    #[error("the container has no decodable audio track")]
    NoAudioTrack,
    /// The stream is malformed beyond what skipping bad packets can repair.
    #[error("corrupt {codec} audio stream: {detail}")]
    Corrupt {
        /// Codec short name, or `"unknown"` before a track was opened.
        codec: String,
        /// What went wrong.
        detail: String,
    },
    /// The stream ends before its first audio frame.
    #[error("truncated {codec} audio stream: it ends before any audio{}", declared_note(*.declared_seconds))]
    Truncated {
        /// Codec short name, or `"unknown"` before a track was opened.
        codec: String,
        /// Duration the header declares, if it declares one.
        declared_seconds: Option<f64>,
    },
    /// The stream is well formed but holds no audio frames.
    #[error("{codec} audio stream contains no samples")]
    Empty {
        /// Codec short name.
        codec: String,
    },
    /// The audio lasts longer than [`DecodeOptions::max_seconds`].
    #[error("audio is longer than the maximum of {max_seconds} s")]
    TooLong {
        /// The limit that was passed.
        max_seconds: f64,
    },
    /// The source sample rate is outside [`MIN_SAMPLE_RATE`]`..=`[`MAX_SAMPLE_RATE`].
    #[error(
        "unsupported sample rate {rate} Hz (accepted: {MIN_SAMPLE_RATE}..={MAX_SAMPLE_RATE} Hz)"
    )]
    UnsupportedSampleRate {
        /// The source's rate, in Hz.
        rate: u32,
    },
    /// The resampler refused the conversion (an internal fault, not a property of the input).
    #[error("resampling from {rate} Hz to 16 kHz failed: {detail}")]
    Resample {
        /// The source's rate, in Hz.
        rate: u32,
        /// The resampler's error.
        detail: String,
    },
    /// [`DecodeOptions::max_seconds`] is negative or not a number.
    #[error("invalid max_seconds {0}: must be a non-negative number")]
    InvalidMaxSeconds(f64),
    /// The decoder panicked on this input (a `symphonia` bug, most likely on malformed data).
    #[error("the audio decoder panicked: {message}")]
    DecoderPanic {
        /// The panic's message.
        message: String,
    },
    /// Reading the input failed.
    #[error("I/O error reading audio: {0}")]
    Io(#[from] io::Error),
}

fn declared_note(declared: Option<f64>) -> String {
    declared.map_or_else(String::new, |s| format!(" (its header declares {s:.3} s)"))
}

/// Decodes a whole file held in memory. An owned `Vec<u8>` is used in place; borrowed bytes
/// are copied once (`symphonia` reads from an owned source).
///
/// # Errors
/// See [`AudioError`]; every malformed input gives an error, never a panic.
pub fn decode<'a>(
    bytes: impl Into<Cow<'a, [u8]>>,
    options: &DecodeOptions,
) -> Result<DecodedAudio, AudioError> {
    decode_reader(Cursor::new(bytes.into().into_owned()), options)
}

/// Decodes the whole content of a seekable reader, from its start.
///
/// # Errors
/// See [`AudioError`]; every malformed input gives an error, never a panic.
pub fn decode_reader<R>(reader: R, options: &DecodeOptions) -> Result<DecodedAudio, AudioError>
where
    R: Read + Seek + Send + Sync + 'static,
{
    if let Some(max) = options.max_seconds {
        if max.is_nan() || max < 0.0 {
            return Err(AudioError::InvalidMaxSeconds(max));
        }
    }
    let source = SizedSource::new(reader)?;
    if source.len == 0 {
        return Err(AudioError::EmptyInput);
    }
    let read_failure = Arc::clone(&source.failure);
    let decoding = move || {
        let mut source = source;
        check_mp4_tables(&mut source)?;
        let stream = MediaSourceStream::new(Box::new(source), Default::default());
        decode_stream(stream, options)
    };
    let result = panic::catch_unwind(AssertUnwindSafe(decoding)).unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        log::error!("audio decoder panicked: {message}");
        Err(AudioError::DecoderPanic { message })
    });
    // `symphonia` hides some reader errors (its probe reads until any error) behind errors of
    // its own: a failed reader explains any failure.
    let failure = read_failure.lock().ok().and_then(|mut f| f.take());
    match (result, failure) {
        (Err(_), Some(failure)) => Err(AudioError::Io(failure)),
        (result, _) => result,
    }
}

/// A seekable reader whose length is measured once, as `symphonia` asks, and which keeps a
/// copy of the first error the reader returns.
struct SizedSource<R> {
    inner: R,
    len: u64,
    failure: Arc<Mutex<Option<io::Error>>>,
}

impl<R: Read + Seek> SizedSource<R> {
    fn new(mut inner: R) -> io::Result<Self> {
        let len = inner.seek(SeekFrom::End(0))?;
        inner.rewind()?;
        Ok(Self {
            inner,
            len,
            failure: Arc::default(),
        })
    }

    fn note<T>(&self, result: io::Result<T>) -> io::Result<T> {
        if let Err(e) = &result {
            if e.kind() != io::ErrorKind::Interrupted {
                if let Ok(mut failure) = self.failure.lock() {
                    failure.get_or_insert_with(|| io::Error::new(e.kind(), e.to_string()));
                }
            }
        }
        result
    }
}

impl<R: Read + Seek> Read for SizedSource<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let result = self.inner.read(buf);
        self.note(result)
    }
}

impl<R: Read + Seek> Seek for SizedSource<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let result = self.inner.seek(pos);
        self.note(result)
    }
}

impl<R: Read + Seek + Send + Sync> MediaSource for SizedSource<R> {
    fn is_seekable(&self) -> bool {
        true
    }

    fn byte_len(&self) -> Option<u64> {
        Some(self.len)
    }
}

/// The track being decoded and its decoder.
struct ActiveTrack {
    id: u32,
    decoder: Box<dyn Decoder>,
    codec: String,
    declared_seconds: Option<f64>,
}

impl ActiveTrack {
    /// Opens the default track if it is audio, else the first audio track.
    fn open(format: &dyn FormatReader) -> Result<Self, AudioError> {
        let is_audio =
            |t: &&symphonia::core::formats::Track| t.codec_params.codec != CODEC_TYPE_NULL;
        let track = format
            .default_track()
            .filter(is_audio)
            .or_else(|| format.tracks().iter().find(is_audio))
            .ok_or(AudioError::NoAudioTrack)?;
        let params = &track.codec_params;
        let codecs = symphonia::default::get_codecs();
        let codec = codecs
            .get_codec(params.codec)
            .map_or_else(|| params.codec.to_string(), |d| d.short_name.to_owned());
        let decoder = codecs
            .make(params, &DecoderOptions::default())
            .map_err(|e| stream_error(e, &codec))?;
        let declared_seconds = match (params.n_frames, params.sample_rate) {
            (Some(frames), Some(rate)) if rate > 0 => Some(frames as f64 / f64::from(rate)),
            _ => None,
        };
        Ok(Self {
            id: track.id,
            decoder,
            codec,
            declared_seconds,
        })
    }
}

/// Maps a `symphonia` error that ends decoding. Its I/O errors are its own (a failing reader
/// is reported by [`decode_reader`]): a parser ran out of data inside a header.
fn stream_error(error: SymphoniaError, codec: &str) -> AudioError {
    match error {
        SymphoniaError::Unsupported(what) if codec == UNKNOWN_CODEC => {
            AudioError::UnsupportedFormat {
                detail: what.to_owned(),
            }
        }
        SymphoniaError::Unsupported(what) => AudioError::UnsupportedFormat {
            detail: format!("{codec}: {what}"),
        },
        SymphoniaError::IoError(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            AudioError::Corrupt {
                codec: codec.to_owned(),
                detail: "the data ends inside a header (cut short, or not audio)".to_owned(),
            }
        }
        other => AudioError::Corrupt {
            codec: codec.to_owned(),
            detail: other.to_string(),
        },
    }
}

fn decode_stream(
    stream: MediaSourceStream,
    options: &DecodeOptions,
) -> Result<DecodedAudio, AudioError> {
    let mut hint = Hint::new();
    if let Some(ext) = &options.extension_hint {
        hint.with_extension(ext);
    }
    if let Some(mime) = &options.mime_hint {
        hint.mime_type(mime);
    }
    let format_options = FormatOptions {
        enable_gapless: true,
        ..Default::default()
    };
    let probed = symphonia::default::get_probe()
        .format(&hint, stream, &format_options, &MetadataOptions::default())
        .map_err(|e| stream_error(e, UNKNOWN_CODEC))?;
    let mut format = probed.format;
    let mut track = ActiveTrack::open(format.as_ref())?;
    let mut output = Output::new(options.max_seconds);
    let mut mono = Vec::new();
    let mut source: Option<(u32, u16)> = None;
    let (mut good, mut bad, mut bad_in_row, mut resets_in_row) = (0u32, 0u32, 0u32, 0u32);
    loop {
        let packet = match format.next_packet() {
            Ok(packet) => packet,
            Err(SymphoniaError::IoError(e)) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(SymphoniaError::ResetRequired) => {
                resets_in_row += 1;
                check_resets(resets_in_row, &track.codec)?;
                track = ActiveTrack::open(format.as_ref())?;
                continue;
            }
            Err(e) => return Err(stream_error(e, &track.codec)),
        };
        if packet.track_id() != track.id {
            continue;
        }
        match track.decoder.decode(&packet) {
            Ok(buffer) => {
                let spec = *buffer.spec();
                let channels = spec.channels.count();
                if channels == 0 {
                    return Err(AudioError::Corrupt {
                        codec: track.codec.clone(),
                        detail: "decoded audio has no channels".to_owned(),
                    });
                }
                if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&spec.rate) {
                    return Err(AudioError::UnsupportedSampleRate { rate: spec.rate });
                }
                source.get_or_insert((spec.rate, u16::try_from(channels).unwrap_or(u16::MAX)));
                mono.clear();
                downmix(&buffer, &packet, &mut mono);
                good += 1;
                bad_in_row = 0;
                resets_in_row = 0;
                output.push(spec.rate, &mono, &track.codec)?;
            }
            Err(error @ (SymphoniaError::DecodeError(_) | SymphoniaError::IoError(_))) => {
                let why = error.to_string();
                bad += 1;
                bad_in_row += 1;
                log::warn!("skipping a bad {} packet: {why}", track.codec);
                if bad_in_row > MAX_CONSECUTIVE_BAD_PACKETS {
                    return Err(AudioError::Corrupt {
                        codec: track.codec.clone(),
                        detail: format!("{bad_in_row} packets in a row failed to decode: {why}"),
                    });
                }
            }
            Err(SymphoniaError::ResetRequired) => {
                resets_in_row += 1;
                check_resets(resets_in_row, &track.codec)?;
                track = ActiveTrack::open(format.as_ref())?;
            }
            Err(e) => return Err(stream_error(e, &track.codec)),
        }
    }
    if bad > good {
        return Err(AudioError::Corrupt {
            codec: track.codec,
            detail: format!("{bad} of {} packets failed to decode", bad + good),
        });
    }
    let (samples, duration_seconds) = output.finish()?;
    let Some((source_sample_rate, source_channels)) = source.filter(|_| !samples.is_empty()) else {
        return Err(match track.declared_seconds {
            Some(declared) if declared > 0.0 => AudioError::Truncated {
                codec: track.codec,
                declared_seconds: Some(declared),
            },
            _ => AudioError::Empty { codec: track.codec },
        });
    };
    if let Some(declared) = track.declared_seconds {
        if duration_seconds + 0.1 < declared {
            log::warn!(
                "{} stream ends after {duration_seconds:.3} s of the {declared:.3} s its header \
                 declares; using the audio that is there",
                track.codec
            );
        }
    }
    Ok(DecodedAudio {
        samples,
        duration_seconds,
        source_sample_rate,
        source_channels,
        codec: track.codec,
        skipped_packets: bad,
    })
}

fn check_resets(resets_in_row: u32, codec: &str) -> Result<(), AudioError> {
    if resets_in_row > MAX_CONSECUTIVE_RESETS {
        return Err(AudioError::Corrupt {
            codec: codec.to_owned(),
            detail: format!("{resets_in_row} decoder resets in a row without audio"),
        });
    }
    Ok(())
}

/// Appends the mean of the channels of `buffer`, less the packet's gapless trimming, to `mono`;
/// non-finite samples become 0 and the rest is clamped to `[-1, 1]`.
fn downmix(buffer: &AudioBufferRef<'_>, packet: &Packet, mono: &mut Vec<f32>) {
    fn mean<S: Sample + IntoSample<f32>>(
        buffer: &AudioBuffer<S>,
        packet: &Packet,
        mono: &mut Vec<f32>,
    ) {
        let frames = buffer.frames();
        let end = frames.saturating_sub(packet.trim_end as usize);
        let start = (packet.trim_start as usize).min(end);
        let channels = buffer.spec().channels.count();
        mono.resize(end - start, 0.0);
        for channel in 0..channels {
            let plane = buffer.chan(channel).get(start..end).unwrap_or_default();
            for (sum, sample) in mono.iter_mut().zip(plane) {
                *sum += (*sample).into_sample();
            }
        }
        let scale = 1.0 / channels.max(1) as f32;
        for sum in mono.iter_mut() {
            *sum = if sum.is_finite() {
                (*sum * scale).clamp(-1.0, 1.0)
            } else {
                0.0
            };
        }
    }
    match buffer {
        AudioBufferRef::U8(b) => mean(b, packet, mono),
        AudioBufferRef::U16(b) => mean(b, packet, mono),
        AudioBufferRef::U24(b) => mean(b, packet, mono),
        AudioBufferRef::U32(b) => mean(b, packet, mono),
        AudioBufferRef::S8(b) => mean(b, packet, mono),
        AudioBufferRef::S16(b) => mean(b, packet, mono),
        AudioBufferRef::S24(b) => mean(b, packet, mono),
        AudioBufferRef::S32(b) => mean(b, packet, mono),
        AudioBufferRef::F32(b) => mean(b, packet, mono),
        AudioBufferRef::F64(b) => mean(b, packet, mono),
    }
}

/// The 16 kHz output, built one stretch of constant source rate at a time.
struct Output {
    samples: Vec<f32>,
    max_seconds: Option<f64>,
    /// Duration of the stretches already finished.
    finished_seconds: f64,
    stretch: Option<Stretch>,
}

impl Output {
    fn new(max_seconds: Option<f64>) -> Self {
        Self {
            samples: Vec::new(),
            max_seconds,
            finished_seconds: 0.0,
            stretch: None,
        }
    }

    /// Adds mono audio at `rate`, failing as soon as the total passes the limit.
    fn push(&mut self, rate: u32, mono: &[f32], codec: &str) -> Result<(), AudioError> {
        if self.stretch.as_ref().is_some_and(|s| s.rate != rate) {
            log::info!("{codec} stream changes sample rate to {rate} Hz");
            self.finish_stretch()?;
        }
        let stretch = match &mut self.stretch {
            Some(stretch) => stretch,
            None => self.stretch.insert(Stretch::new(rate, self.samples.len())?),
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
    fn finish(mut self) -> Result<(Vec<f32>, f64), AudioError> {
        self.finish_stretch()?;
        for sample in &mut self.samples {
            *sample = sample.clamp(-1.0, 1.0);
        }
        Ok((self.samples, self.finished_seconds))
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
    fn new(rate: u32, start: usize) -> Result<Self, AudioError> {
        let resampler = if rate == WHISPER_SAMPLE_RATE {
            None
        } else {
            let chunk = (rate / 10) as usize;
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

/// MP4 sample tables `(atom, offset of the entry count in the payload, bytes per entry)` that
/// `symphonia` 0.5 reserves memory for by their declared count before reading them.
const MP4_TABLES: [(&[u8; 4], u64, u64); 5] = [
    (b"stts", 4, 8),
    (b"stsc", 4, 12),
    (b"stsz", 8, 4),
    (b"stco", 4, 4),
    (b"co64", 4, 8),
];
/// The MP4 atoms on the path from the top level to the sample tables.
const MP4_PATH: [&[u8; 4]; 5] = [b"moov", b"trak", b"mdia", b"minf", b"stbl"];

/// Refuses an MP4 sample table whose entry count exceeds what the rest of the input can hold:
/// `symphonia` 0.5 would reserve that many entries first (an 80-byte file can ask for 32 GiB),
/// and a failed reservation aborts the process. Every `ftyp` is a possible start, as for the
/// probe, which scans for it. A read error ends the check: decoding then reports it.
fn check_mp4_tables<R: Read + Seek>(r: &mut R) -> Result<(), AudioError> {
    let len = r.seek(SeekFrom::End(0))?;
    for ftyp in ftyp_offsets(r).unwrap_or_default() {
        if let Err(Mp4Check::Table(detail)) = check_mp4_atoms(r, ftyp - 4, len, len, 0) {
            return Err(AudioError::Corrupt {
                codec: UNKNOWN_CODEC.to_owned(),
                detail,
            });
        }
    }
    r.rewind()?;
    Ok(())
}

/// Why the MP4 check stopped.
enum Mp4Check {
    /// The data ends (or fails) inside an atom header.
    Io,
    /// A table too large for the input.
    Table(String),
}

impl From<io::Error> for Mp4Check {
    fn from(_: io::Error) -> Self {
        Self::Io
    }
}

/// How far `symphonia`'s probe scans for a format marker: from the start, and again after each
/// ID3v2 tag it reads.
const PROBE_WINDOW: u64 = 1 << 20;

/// Offsets (4 or more: an atom header's type field) of every `ftyp` that the probe could find:
/// within [`PROBE_WINDOW`] of the start or of the end of an ID3v2 tag. Reads that far only.
fn ftyp_offsets<R: Read + Seek>(r: &mut R) -> io::Result<Vec<u64>> {
    r.rewind()?;
    let (mut found, mut buf) = (Vec::new(), vec![0u8; 1 << 16]);
    // `buf[..filled]` is the input from offset `base`; offsets before `next` are scanned.
    let (mut filled, mut base, mut next, mut limit) = (0, 0u64, 0u64, PROBE_WINDOW);
    loop {
        let n = r.read(&mut buf[filled..])?;
        filled += n;
        // Offsets whose 10 bytes (an ID3v2 header) are in the buffer; all of them at the end.
        let ready = if n == 0 {
            filled
        } else {
            filled.saturating_sub(9)
        };
        while next < base + ready as u64 {
            if next >= limit {
                return Ok(found);
            }
            let at = (next - base) as usize;
            let bytes = &buf[at..filled.min(at + 10)];
            if bytes.starts_with(b"ftyp") && next >= 4 {
                found.push(next);
            }
            if let [b'I', b'D', b'3', _, _, flags, size @ ..] = bytes {
                let size = size.iter().fold(0, |s, &b| s << 7 | u64::from(b & 0x7f));
                let footer = if flags & 0x10 != 0 { 10 } else { 0 };
                limit = limit.max(next + 10 + size + footer + PROBE_WINDOW);
            }
            next += 1;
        }
        if n == 0 {
            return Ok(found);
        }
        buf.copy_within(ready..filled, 0);
        filled -= ready;
        base += ready as u64;
    }
}

fn read4<R: Read + Seek>(r: &mut R, at: u64) -> io::Result<[u8; 4]> {
    let mut b = [0u8; 4];
    r.seek(SeekFrom::Start(at))?;
    r.read_exact(&mut b)?;
    Ok(b)
}

/// Walks the atoms in `pos..end` at `depth` on [`MP4_PATH`]; checks the tables of `stbl`
/// against the `len` bytes of the input.
fn check_mp4_atoms<R: Read + Seek>(
    r: &mut R,
    mut pos: u64,
    end: u64,
    len: u64,
    depth: usize,
) -> Result<(), Mp4Check> {
    while pos.saturating_add(8) <= end {
        let (size, kind) = (u32::from_be_bytes(read4(r, pos)?), read4(r, pos + 4)?);
        let (size, body) = match size {
            0 => (end - pos, pos + 8),
            1 => {
                let high = u64::from(u32::from_be_bytes(read4(r, pos + 8)?));
                let low = u64::from(u32::from_be_bytes(read4(r, pos + 12)?));
                ((high << 32) | low, pos + 16)
            }
            n => (u64::from(n), pos + 8),
        };
        if size < body - pos {
            return Ok(());
        }
        let table = MP4_TABLES.iter().find(|t| *t.0 == kind);
        if let (Some((_, at, entry)), true) = (table, depth == MP4_PATH.len()) {
            let count = u64::from(u32::from_be_bytes(read4(r, body + at)?));
            let fixed_size = kind == *b"stsz" && read4(r, body + 4)? != [0; 4];
            let room = len.saturating_sub(body + at + 4);
            if !fixed_size && count * entry > room {
                return Err(Mp4Check::Table(format!(
                    "MP4 `{}` table at offset {pos} declares {count} entries, more than the \
                     {room} bytes after it can hold",
                    String::from_utf8_lossy(&kind)
                )));
            }
        } else if MP4_PATH.get(depth) == Some(&&kind) {
            check_mp4_atoms(r, body, pos.saturating_add(size).min(end), len, depth + 1)?;
        }
        pos = pos.saturating_add(size);
    }
    Ok(())
}
