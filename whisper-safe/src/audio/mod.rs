//! Audio input: decode common formats and convert them to what Whisper takes, 16 kHz mono
//! `f32` in `[-1, 1]`.
//!
//! Containers and codecs are those of `symphonia` 0.6 plus Opus through the system libopus; the
//! list users see is [`SUPPORTED_FORMATS`]. The container is found by probing the content: the
//! extension and MIME hints never override what the bytes say. Decoding is streaming: each
//! packet is decoded, downmixed (mean of the channels) and fed to a fixed-ratio FFT resampler
//! (`rubato`) in chunks of about 100 ms, so memory grows with the 16 kHz output only, and
//! [`DecodeOptions::max_seconds`] stops a long input as soon as the decoded duration passes the
//! limit.
//!
//! Timing follows the source: encoder delay and padding are trimmed where the file records them
//! (MP3 LAME/Xing headers, Vorbis and Opus in Ogg, Opus pre-skip, the edit list of MP4/M4A files
//! that drops AAC's priming; ADTS records none, and AAC-LC's usual 1024 frames are dropped), so
//! times in a transcript of a lossy copy match the original's.
//!
//! Before `symphonia` sees a file, its header is checked where `symphonia` would trust it: a WAV
//! `fmt ` chunk declaring 0 channels, rate, block size or bits is [`AudioError::Corrupt`]; RF64
//! and BW64 files and WAV files a streaming writer left with a 0 size are read to the end.
//!
//! Damaged input, by policy:
//! - A packet the codec rejects is skipped, as players do, and counted in
//!   [`DecodedAudio::skipped_packets`]; more than [`MAX_CONSECUTIVE_BAD_PACKETS`] in a row, or
//!   more bad packets than good ones overall, make the stream [`AudioError::Corrupt`].
//! - A stream that ends before the length its header declares (an interrupted recording, or a
//!   WAV written to a pipe with a placeholder length) yields the audio that is there, with a
//!   warning in the log; it is [`AudioError::Truncated`] only when not one frame is there.
//! - A panic inside a decoder is caught and returned as [`AudioError::DecoderPanic`] (the
//!   file's fault: malformed data a decoder failed to reject), logged in one line with its
//!   location; the process's panic hook is not run for it.
//!
//! Sample rates outside [`MIN_SAMPLE_RATE`]`..=`[`MAX_SAMPLE_RATE`] are refused (below, the
//! resampler's FFT sizes grow without bound; above, no real recording exists).

mod container;
mod opus;
mod resample;

use std::borrow::Cow;
use std::cell::RefCell;
use std::io::{self, Cursor, Read, Seek, SeekFrom};
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Mutex, Once};

use symphonia::core::codecs::audio::well_known::*;
use symphonia::core::codecs::audio::{AudioCodecId, AudioDecoder, AudioDecoderOptions};
use symphonia::core::codecs::CodecParameters;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, Track, TrackType};
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::packet::Packet;

use container::{Mp4Audio, Patches, Trim};
use opus::OpusTrack;
use resample::Output;
pub use resample::StreamResampler;

/// The sample rate Whisper expects, in Hz.
pub const WHISPER_SAMPLE_RATE: u32 = 16_000;
/// The lowest source sample rate accepted, in Hz.
pub const MIN_SAMPLE_RATE: u32 = 4_000;
/// The highest source sample rate accepted, in Hz.
pub const MAX_SAMPLE_RATE: u32 = 384_000;
/// Bad packets in a row after which a stream is taken as corrupt rather than damaged.
pub const MAX_CONSECUTIVE_BAD_PACKETS: u32 = 16;
/// The formats and codecs decoded, as told to users in errors.
pub const SUPPORTED_FORMATS: &str = "WAV, RF64 and BW64 (PCM, float, μ-law, A-law, IMA and \
    Microsoft ADPCM), AIFF, CAF (PCM, ALAC), FLAC, MP3, AAC (ADTS or in MP4/M4A/MOV/3GP), \
    ALAC in MP4/M4A, Vorbis and Opus (in Ogg, .opus, WebM or Matroska), FLAC in Ogg";
/// Decoder resets (track list or signal changes) in a row, with no audio between them, after
/// which a stream is taken as corrupt.
const MAX_CONSECUTIVE_RESETS: u32 = 8;
/// The encoder delay of AAC-LC, which ADTS streams do not record, in frames.
const ADTS_PRIMING_FRAMES: u64 = 1024;
/// The format in errors raised before it is known.
const UNKNOWN_FORMAT: &str = "format not recognised";
/// How many leading bytes name an input no reader accepts.
const DESCRIBE_BYTES: usize = 4096;

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
    /// Short name of the source codec (`"mp3"`, `"pcm_s16le"`, `"aac"`, `"opus"`...).
    pub codec: String,
    /// Packets the codec rejected and that were skipped.
    pub skipped_packets: u32,
}

/// Why audio could not be decoded. Messages name the format or codec in words.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// The input has no bytes at all.
    #[error("audio input is empty (0 bytes)")]
    EmptyInput,
    /// Not a format or codec decoded here.
    #[error("{detail} cannot be decoded; supported: {SUPPORTED_FORMATS}")]
    UnsupportedFormat {
        /// What was found, named (`"AC-3 audio in MP4"`, `"a text file"`).
        detail: String,
    },
    /// The container holds no audio track.
    #[error("no audio track in this {found}: there is no sound to transcribe")]
    NoAudioTrack {
        /// The container found (`"Matroska/WebM video file"`).
        found: String,
    },
    /// The stream is malformed beyond what skipping bad packets can repair.
    #[error("damaged audio file ({codec}): {detail}")]
    Corrupt {
        /// Format or codec, named (`"MP3"`, `"WAV"`).
        codec: String,
        /// What went wrong.
        detail: String,
    },
    /// The stream ends before its first audio frame.
    #[error("truncated audio file ({codec}): it ends before any audio{}", declared_note(*.declared_seconds))]
    Truncated {
        /// Format or codec, named.
        codec: String,
        /// Duration the header declares, if it declares one.
        declared_seconds: Option<f64>,
    },
    /// The stream is well formed but holds no audio frames.
    #[error("the audio file ({codec}) contains no samples")]
    Empty {
        /// Format or codec, named.
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
    /// A decoder panicked on this input: malformed data it failed to reject.
    #[error("damaged audio file ({codec}): the decoder cannot read it ({message})")]
    DecoderPanic {
        /// Format or codec being decoded, named (or `"format not recognised"`).
        codec: String,
        /// The panic's message.
        message: String,
        /// Where it panicked (`file:line:column`).
        location: String,
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
    let mut codec = UNKNOWN_FORMAT.to_owned();
    let result = catching_panics(|| {
        let mut source = source;
        let len = source.len;
        let prescan = container::prescan(&mut source, len)?;
        source.patches = prescan.patches;
        let stream = MediaSourceStream::new(Box::new(source), Default::default());
        decode_stream(stream, prescan.mp4, options, &mut codec)
    })
    .unwrap_or_else(|(message, location)| {
        log::warn!("audio decoder panicked on malformed {codec} input at {location}: {message}");
        Err(AudioError::DecoderPanic {
            codec: codec.clone(),
            message,
            location,
        })
    });
    // `symphonia` hides some reader errors (its probe reads until any error) behind errors of
    // its own: a failed reader explains any failure.
    let failure = read_failure.lock().ok().and_then(|mut f| f.take());
    match (result, failure) {
        (Err(_), Some(failure)) => Err(AudioError::Io(failure)),
        (result, _) => result,
    }
    .map_err(|error| match error {
        // Input that ends inside a header (read with `read_exact`) is a file cut short.
        AudioError::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof => AudioError::Corrupt {
            codec,
            detail: "the data ends inside a header (cut short, or not audio)".to_owned(),
        },
        other => other,
    })
}

thread_local! {
    /// While this thread decodes: the message and location of a panic, taken by the hook.
    static PANIC: RefCell<Option<Option<(String, String)>>> = const { RefCell::new(None) };
}

/// Runs `f`, returning a panic's message and location instead of unwinding. The process's
/// panic hook is wrapped once so that it stays silent for these panics (they are logged in one
/// line by the caller) and runs as before for every other.
fn catching_panics<T>(f: impl FnOnce() -> T) -> Result<T, (String, String)> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let location = info.location().map_or_else(String::new, |l| l.to_string());
            let message = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            let taken = PANIC
                .try_with(|slot| match slot.try_borrow_mut().as_deref_mut() {
                    Ok(Some(slot)) => {
                        *slot = Some((message, location));
                        true
                    }
                    _ => false,
                })
                .unwrap_or(false);
            if !taken {
                previous(info);
            }
        }));
    });
    let outer = PANIC.with(|slot| slot.replace(Some(None)));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    let caught = PANIC.with(|slot| slot.replace(outer)).flatten();
    result.map_err(|_| caught.unwrap_or_else(|| ("unknown panic".to_owned(), String::new())))
}

/// A seekable reader whose length is measured once, as `symphonia` asks, which replaces the
/// bytes of [`Patches`] as they are read and keeps a copy of the first error the reader returns.
struct SizedSource<R> {
    inner: R,
    len: u64,
    pos: u64,
    patches: Patches,
    failure: Arc<Mutex<Option<io::Error>>>,
}

impl<R: Read + Seek> SizedSource<R> {
    fn new(mut inner: R) -> io::Result<Self> {
        let len = inner.seek(SeekFrom::End(0))?;
        inner.rewind()?;
        Ok(Self {
            inner,
            len,
            pos: 0,
            patches: Patches::new(),
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
        let n = self.note(result)?;
        let read = self.pos..self.pos + n as u64;
        for (at, bytes) in &self.patches {
            for (i, byte) in (*at..).zip(bytes) {
                if read.contains(&i) {
                    buf[(i - self.pos) as usize] = *byte;
                }
            }
        }
        self.pos = read.end;
        Ok(n)
    }
}

impl<R: Read + Seek> Seek for SizedSource<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let result = self.inner.seek(pos);
        self.pos = self.note(result)?;
        Ok(self.pos)
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

/// The decoder of a track.
enum TrackDecoder {
    Symphonia(Box<dyn AudioDecoder>),
    Opus(OpusTrack),
}

impl TrackDecoder {
    /// Decodes a packet to interleaved samples in `out`; returns the rate and channel count.
    fn decode(
        &mut self,
        packet: &Packet,
        out: &mut Vec<f32>,
    ) -> Result<(u32, usize), SymphoniaError> {
        match self {
            Self::Symphonia(decoder) => {
                let buffer = decoder.decode(packet)?;
                let spec = buffer.spec();
                let (rate, channels) = (spec.rate(), spec.channels().count());
                buffer.copy_to_vec_interleaved(out);
                Ok((rate, channels))
            }
            Self::Opus(decoder) => {
                decoder.decode(packet, out)?;
                Ok((opus::OPUS_RATE, decoder.channels()))
            }
        }
    }
}

/// The track being decoded and its decoder.
struct ActiveTrack {
    id: u32,
    decoder: TrackDecoder,
    /// Short codec name, for [`DecodedAudio::codec`].
    short_name: String,
    /// Codec and container in words, for errors (`"AAC in M4A"`).
    name: String,
    declared_seconds: Option<f64>,
    /// Edit-list trimming still to apply, in source frames.
    trim: Trim,
}

impl ActiveTrack {
    /// Opens the default audio track (the first one with a known codec if none is marked).
    fn open(format: &dyn FormatReader, mp4: Option<&Mp4Audio>) -> Result<Self, AudioError> {
        let container = container_name(format, mp4);
        let Some(track) = format.default_track(TrackType::Audio) else {
            return Err(no_audio(format, mp4, &container));
        };
        let Some(CodecParameters::Audio(params)) = &track.codec_params else {
            return Err(no_audio(format, mp4, &container));
        };
        let codec = codec_name(params.codec);
        let name = format!("{codec} in {container}");
        let declared_seconds = declared_seconds(track);
        let trim = match (mp4, params.sample_rate) {
            (Some(mp4), Some(rate)) => mp4.trim(rate),
            // ADTS records no priming: drop what AAC-LC encoders (ffmpeg, Apple, FDK) put in.
            _ if container == "ADTS" && params.codec == CODEC_ID_AAC => Trim {
                skip: ADTS_PRIMING_FRAMES,
                keep: None,
            },
            _ => Trim::default(),
        };
        let (decoder, short_name) = if params.codec == CODEC_ID_OPUS {
            let decoder = OpusTrack::new(params, track.delay)?;
            (TrackDecoder::Opus(decoder), "opus".to_owned())
        } else {
            let codecs = symphonia::default::get_codecs();
            let Some(registered) = codecs.get_audio_decoder(params.codec) else {
                return Err(AudioError::UnsupportedFormat {
                    detail: format!("{codec} audio in {container}"),
                });
            };
            let decoder = (registered.factory)(params, &AudioDecoderOptions::default())
                .map_err(|e| stream_error(e, &name))?;
            let short_name = decoder.codec_info().short_name.to_owned();
            (TrackDecoder::Symphonia(decoder), short_name)
        };
        Ok(Self {
            id: track.id,
            decoder,
            short_name,
            name,
            declared_seconds,
            trim,
        })
    }
}

fn declared_seconds(track: &Track) -> Option<f64> {
    let (frames, base) = (track.num_frames?, track.time_base?);
    let (numer, denom) = (base.numer.get(), base.denom.get());
    Some(frames as f64 * f64::from(numer) / f64::from(denom))
}

/// The error for a container without a decodable audio track.
fn no_audio(format: &dyn FormatReader, mp4: Option<&Mp4Audio>, container: &str) -> AudioError {
    if let Some(codec) = mp4.and_then(Mp4Audio::codec) {
        return AudioError::UnsupportedFormat {
            detail: format!("{codec} audio in {container}"),
        };
    }
    let tracks = format.tracks();
    let has = |kind| tracks.iter().any(|t| t.track_type() == Some(kind));
    if has(TrackType::Audio) {
        AudioError::UnsupportedFormat {
            detail: format!("an audio codec the {container} reader does not know"),
        }
    } else if has(TrackType::Video) || mp4.is_some() || container == "Matroska/WebM" {
        AudioError::NoAudioTrack {
            found: format!("{container} video file"),
        }
    } else {
        AudioError::NoAudioTrack {
            found: format!("{container} file"),
        }
    }
}

/// The container, named.
fn container_name(format: &dyn FormatReader, mp4: Option<&Mp4Audio>) -> String {
    let name = match format.format_info().short_name {
        "wave" => "WAV",
        "isomp4" => mp4.map_or("MP4", Mp4Audio::container),
        "matroska" => "Matroska/WebM",
        "ogg" => "Ogg",
        "caf" => "CAF",
        "aiff" => "AIFF",
        "flac" => "FLAC",
        "mp1" | "mp2" | "mp3" => "MPEG audio",
        "aac" => "ADTS",
        other => other,
    };
    name.to_owned()
}

/// A codec, named as users know it.
fn codec_name(codec: AudioCodecId) -> &'static str {
    const NAMES: &[(AudioCodecId, &str)] = &[
        (CODEC_ID_PCM_ALAW, "A-law"),
        (CODEC_ID_PCM_MULAW, "μ-law"),
        (CODEC_ID_ADPCM_G722, "G.722"),
        (CODEC_ID_ADPCM_G726, "G.726"),
        (CODEC_ID_ADPCM_G726LE, "G.726"),
        (CODEC_ID_ADPCM_MS, "Microsoft ADPCM"),
        (CODEC_ID_ADPCM_IMA_WAV, "IMA ADPCM"),
        (CODEC_ID_ADPCM_IMA_QT, "IMA ADPCM"),
        (CODEC_ID_VORBIS, "Vorbis"),
        (CODEC_ID_OPUS, "Opus"),
        (CODEC_ID_SPEEX, "Speex"),
        (CODEC_ID_MUSEPACK, "Musepack"),
        (CODEC_ID_MP1, "MP1"),
        (CODEC_ID_MP2, "MP2"),
        (CODEC_ID_MP3, "MP3"),
        (CODEC_ID_AAC, "AAC"),
        (CODEC_ID_AC3, "AC-3"),
        (CODEC_ID_EAC3, "E-AC-3"),
        (CODEC_ID_AC4, "AC-4"),
        (CODEC_ID_DCA, "DTS"),
        (CODEC_ID_ATRAC1, "ATRAC"),
        (CODEC_ID_ATRAC3, "ATRAC3"),
        (CODEC_ID_ATRAC3PLUS, "ATRAC3plus"),
        (CODEC_ID_ATRAC9, "ATRAC9"),
        (CODEC_ID_WMA, "WMA"),
        (CODEC_ID_RA10, "RealAudio"),
        (CODEC_ID_RA20, "RealAudio"),
        (CODEC_ID_SIPR, "RealAudio SIPR"),
        (CODEC_ID_COOK, "RealAudio Cook"),
        (CODEC_ID_SBC, "SBC"),
        (CODEC_ID_APTX, "aptX"),
        (CODEC_ID_APTX_HD, "aptX HD"),
        (CODEC_ID_LDAC, "LDAC"),
        (CODEC_ID_BINK_AUDIO, "Bink audio"),
        (CODEC_ID_SMACKER_AUDIO, "Smacker audio"),
        (CODEC_ID_FLAC, "FLAC"),
        (CODEC_ID_WAVPACK, "WavPack"),
        (CODEC_ID_MONKEYS_AUDIO, "Monkey's Audio"),
        (CODEC_ID_ALAC, "ALAC"),
        (CODEC_ID_TTA, "TTA"),
        (CODEC_ID_RALF, "RealAudio Lossless"),
        (CODEC_ID_TRUEHD, "Dolby TrueHD"),
    ];
    if (CODEC_ID_PCM_S32LE..=CODEC_ID_PCM_F64BE_PLANAR).contains(&codec) {
        return "PCM";
    }
    NAMES
        .iter()
        .find(|(id, _)| *id == codec)
        .map_or("an unknown codec", |(_, name)| name)
}

/// Maps a `symphonia` error that ends decoding of `what` (a format or codec, named). Its I/O
/// errors are its own (a failing reader is reported by [`decode_reader`]): a parser ran out of
/// data inside a header.
fn stream_error(error: SymphoniaError, what: &str) -> AudioError {
    match error {
        SymphoniaError::Unsupported(feature) => AudioError::UnsupportedFormat {
            detail: format!("{what} using a feature the decoder lacks ({feature})"),
        },
        SymphoniaError::IoError(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            AudioError::Corrupt {
                codec: what.to_owned(),
                detail: "the data ends inside a header (cut short, or not audio)".to_owned(),
            }
        }
        SymphoniaError::DecodeError(detail) | SymphoniaError::LimitError(detail) => {
            AudioError::Corrupt {
                codec: what.to_owned(),
                detail: detail.to_owned(),
            }
        }
        other => AudioError::Corrupt {
            codec: what.to_owned(),
            detail: other.to_string(),
        },
    }
}

/// Opens the container: the probe's answer, or what the content is when no reader takes it.
fn open_format<'s>(
    mut stream: MediaSourceStream<'s>,
    options: &DecodeOptions,
) -> Result<Box<dyn FormatReader + 's>, AudioError> {
    let mut head = vec![0u8; DESCRIBE_BYTES];
    let n = read_head(&mut stream, &mut head)?;
    head.truncate(n);
    let mut hint = Hint::new();
    if let Some(ext) = &options.extension_hint {
        hint.with_extension(ext);
    }
    if let Some(mime) = &options.mime_hint {
        hint.mime_type(mime);
    }
    symphonia::default::get_probe()
        .probe(
            &hint,
            stream,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|e| match e {
            SymphoniaError::Unsupported(_) => AudioError::UnsupportedFormat {
                detail: container::describe(&head),
            },
            SymphoniaError::IoError(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                let found = container::describe(&head);
                match container::signature(&head) {
                    _ if !found.starts_with("data in no") => {
                        AudioError::UnsupportedFormat { detail: found }
                    }
                    signature => AudioError::Corrupt {
                        codec: signature.unwrap_or(UNKNOWN_FORMAT).to_owned(),
                        detail: "the data ends inside a header (cut short, or not audio)"
                            .to_owned(),
                    },
                }
            }
            other => stream_error(other, container::signature(&head).unwrap_or(UNKNOWN_FORMAT)),
        })
}

/// Reads the first bytes of `stream` and seeks back to its start.
fn read_head(stream: &mut MediaSourceStream<'_>, head: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < head.len() {
        match stream.read(&mut head[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    stream.seek(SeekFrom::Start(0))?;
    Ok(filled)
}

fn decode_stream(
    stream: MediaSourceStream<'_>,
    mp4: Option<Mp4Audio>,
    options: &DecodeOptions,
    codec: &mut String,
) -> Result<DecodedAudio, AudioError> {
    let mut format = open_format(stream, options)?;
    *codec = container_name(format.as_ref(), mp4.as_ref());
    let mut track = ActiveTrack::open(format.as_ref(), mp4.as_ref())?;
    codec.clone_from(&track.name);
    let mut output = Output::new(options.max_seconds);
    let (mut interleaved, mut mono) = (Vec::new(), Vec::new());
    let mut source: Option<(u32, u16)> = None;
    let (mut good, mut bad, mut bad_in_row, mut resets_in_row) = (0u32, 0u32, 0u32, 0u32);
    loop {
        let packet = match format.next_packet() {
            Ok(Some(packet)) => packet,
            Ok(None) => break,
            Err(SymphoniaError::IoError(e)) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(SymphoniaError::ResetRequired) => {
                resets_in_row += 1;
                check_resets(resets_in_row, &track.name)?;
                track = ActiveTrack::open(format.as_ref(), mp4.as_ref())?;
                continue;
            }
            Err(e) => return Err(stream_error(e, &track.name)),
        };
        if packet.track_id != track.id {
            continue;
        }
        match track.decoder.decode(&packet, &mut interleaved) {
            Ok((rate, channels)) => {
                if channels == 0 {
                    return Err(AudioError::Corrupt {
                        codec: track.name.clone(),
                        detail: "decoded audio has no channels".to_owned(),
                    });
                }
                if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&rate) {
                    return Err(AudioError::UnsupportedSampleRate { rate });
                }
                source.get_or_insert((rate, u16::try_from(channels).unwrap_or(u16::MAX)));
                downmix(&interleaved, channels, &mut track.trim, &mut mono);
                good += 1;
                bad_in_row = 0;
                resets_in_row = 0;
                output.push(rate, &mono, &track.name)?;
            }
            Err(error @ (SymphoniaError::DecodeError(_) | SymphoniaError::IoError(_))) => {
                let why = error.to_string();
                bad += 1;
                bad_in_row += 1;
                log::warn!("skipping a bad {} packet: {why}", track.name);
                if bad_in_row > MAX_CONSECUTIVE_BAD_PACKETS {
                    return Err(AudioError::Corrupt {
                        codec: track.name.clone(),
                        detail: format!("{bad_in_row} packets in a row failed to decode: {why}"),
                    });
                }
            }
            Err(SymphoniaError::ResetRequired) => {
                resets_in_row += 1;
                check_resets(resets_in_row, &track.name)?;
                track = ActiveTrack::open(format.as_ref(), mp4.as_ref())?;
            }
            Err(e) => return Err(stream_error(e, &track.name)),
        }
    }
    if bad > good {
        return Err(AudioError::Corrupt {
            codec: track.name,
            detail: format!("{bad} of {} packets failed to decode", bad + good),
        });
    }
    let (samples, duration_seconds) = output.finish()?;
    let Some((source_sample_rate, source_channels)) = source.filter(|_| !samples.is_empty()) else {
        return Err(match track.declared_seconds {
            Some(declared) if declared > 0.0 => AudioError::Truncated {
                codec: track.name,
                declared_seconds: Some(declared),
            },
            _ => AudioError::Empty { codec: track.name },
        });
    };
    if let Some(declared) = track.declared_seconds {
        if duration_seconds + 0.1 < declared {
            log::warn!(
                "{} stream ends after {duration_seconds:.3} s of the {declared:.3} s its header \
                 declares; using the audio that is there",
                track.name
            );
        }
    }
    Ok(DecodedAudio {
        samples,
        duration_seconds,
        source_sample_rate,
        source_channels,
        codec: track.short_name,
        skipped_packets: bad,
    })
}

fn check_resets(resets_in_row: u32, what: &str) -> Result<(), AudioError> {
    if resets_in_row > MAX_CONSECUTIVE_RESETS {
        return Err(AudioError::Corrupt {
            codec: what.to_owned(),
            detail: format!("{resets_in_row} decoder resets in a row without audio"),
        });
    }
    Ok(())
}

/// Puts the mean of the channels of the `interleaved` frames in `mono`, less what `trim` still
/// drops; non-finite samples become 0 and the rest is clamped to `[-1, 1]`.
fn downmix(interleaved: &[f32], channels: usize, trim: &mut Trim, mono: &mut Vec<f32>) {
    let frames = interleaved.chunks_exact(channels);
    let skip = usize::try_from(trim.skip)
        .unwrap_or(usize::MAX)
        .min(frames.len());
    trim.skip -= skip as u64;
    let mut keep = frames.len() - skip;
    if let Some(left) = &mut trim.keep {
        keep = keep.min(usize::try_from(*left).unwrap_or(usize::MAX));
        *left -= keep as u64;
    }
    let scale = 1.0 / channels as f32;
    mono.clear();
    mono.extend(frames.skip(skip).take(keep).map(|frame| {
        let mean = frame.iter().sum::<f32>() * scale;
        if mean.is_finite() {
            mean.clamp(-1.0, 1.0)
        } else {
            0.0
        }
    }));
}
