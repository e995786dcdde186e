//! Tests of `whisper_safe::audio`: formats, sample formats, rates and channel layouts decoded to
//! 16 kHz mono and compared with the reference recording; malformed input mapped to its error;
//! the duration limit enforced while streaming, in bounded memory.
//!
//! Variants of `jfk.wav` are made at test time with `ffmpeg` (Debian package `ffmpeg`).
#![cfg(feature = "audio")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use whisper_safe::audio::{
    decode, decode_reader, AudioError, DecodeOptions, DecodedAudio, WHISPER_SAMPLE_RATE,
};

/// Counts the bytes allocated by the current thread, to bound a decode's peak memory.
struct ThreadCountingAllocator;

thread_local! {
    static LIVE_BYTES: Cell<usize> = const { Cell::new(0) };
    static PEAK_BYTES: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the bookkeeping only
// touches thread-local `Cell`s, which neither allocate nor have destructors.
unsafe impl GlobalAlloc for ThreadCountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = LIVE_BYTES.try_with(|live| {
            let now = live.get().saturating_add(layout.size());
            live.set(now);
            let _ = PEAK_BYTES.try_with(|peak| peak.set(peak.get().max(now)));
        });
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let _ = LIVE_BYTES.try_with(|live| live.set(live.get().saturating_sub(layout.size())));
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: ThreadCountingAllocator = ThreadCountingAllocator;

/// Runs `f` and returns its result with the peak growth of this thread's heap during it.
fn peak_heap_growth<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE_BYTES.with(Cell::get);
    PEAK_BYTES.with(|peak| peak.set(base));
    let result = f();
    (result, PEAK_BYTES.with(Cell::get).saturating_sub(base))
}

fn fixture(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures")
        .join(name);
    assert!(
        path.is_file(),
        "missing fixture {}: the shared/ folder must sit beside the repository",
        path.display()
    );
    path
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// `jfk.wav` (16 kHz mono s16le) read by `hound`, independently of the code under test.
fn reference() -> &'static [f32] {
    static REFERENCE: OnceLock<Vec<f32>> = OnceLock::new();
    REFERENCE.get_or_init(|| {
        let reader = hound::WavReader::open(fixture("jfk.wav")).expect("hound reads jfk.wav");
        reader
            .into_samples::<i16>()
            .map(|s| f32::from(s.expect("jfk.wav sample")) / 32768.0)
            .collect()
    })
}

/// Runs ffmpeg with `args` (inputs and options) and returns the bytes it writes.
fn ffmpeg(args: &[&str], extension: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join(format!("out.{extension}"));
    let result = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(args)
        .arg(&out)
        .output();
    let output = match result {
        Ok(output) => output,
        Err(e) => panic!("cannot run ffmpeg ({e}): install it with `apt-get install ffmpeg`"),
    };
    assert!(
        output.status.success(),
        "ffmpeg {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    read(&out)
}

/// `jfk.wav` converted by ffmpeg with the output options `args`.
fn ffmpeg_variant(args: &[&str], extension: &str) -> Vec<u8> {
    let input = fixture("jfk.wav").to_string_lossy().into_owned();
    ffmpeg(&[&["-i", input.as_str()], args].concat(), extension)
}

fn decode_ok(bytes: Vec<u8>, options: &DecodeOptions) -> DecodedAudio {
    decode(bytes, options).unwrap_or_else(|e| panic!("decode failed: {e}"))
}

/// Sum of products of `a[i]` and `b[i + lag]` over the overlap, and the two energies there.
fn products(a: &[f32], b: &[f32], lag: isize) -> (f64, f64, f64) {
    let (a, b) = if lag >= 0 {
        (a, b.get(lag as usize..).unwrap_or_default())
    } else {
        (a.get(lag.unsigned_abs()..).unwrap_or_default(), b)
    };
    a.iter()
        .zip(b)
        .fold((0.0, 0.0, 0.0), |(ab, aa, bb), (&x, &y)| {
            let (x, y) = (f64::from(x), f64::from(y));
            (ab + x * y, aa + x * x, bb + y * y)
        })
}

/// Normalized cross-correlation of `a` and `b` at the best lag within ±2000 samples; returns
/// (correlation, lag). Coarse search on 4× averaged signals, then exact around the best.
fn best_correlation(a: &[f32], b: &[f32]) -> (f64, isize) {
    const MAX_LAG: isize = 2000;
    let average4 = |s: &[f32]| -> Vec<f32> { s.chunks(4).map(|c| c.iter().sum::<f32>()).collect() };
    let (a4, b4) = (average4(a), average4(b));
    let ncc = |a: &[f32], b: &[f32], lag: isize| {
        let (ab, aa, bb) = products(a, b, lag);
        if aa == 0.0 || bb == 0.0 {
            0.0
        } else {
            ab / (aa * bb).sqrt()
        }
    };
    let best = |a: &[f32], b: &[f32], lags: std::ops::RangeInclusive<isize>| {
        lags.map(|lag| (ncc(a, b, lag), lag))
            .max_by(|x, y| x.0.total_cmp(&y.0))
            .unwrap_or((0.0, 0))
    };
    let (_, coarse) = best(&a4, &b4, -MAX_LAG / 4..=MAX_LAG / 4);
    best(
        a,
        b,
        (coarse * 4 - 8).max(-MAX_LAG)..=(coarse * 4 + 8).min(MAX_LAG),
    )
}

fn rms(s: &[f32]) -> f64 {
    (s.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>() / s.len().max(1) as f64).sqrt()
}

/// What a decoded variant of `jfk.wav` must satisfy.
struct Expect {
    codec: &'static str,
    rate: u32,
    channels: u16,
    /// Allowed distance of the duration from 11.0 s.
    duration_tolerance: f64,
    /// Lower bound of the best normalized cross-correlation with the reference.
    min_correlation: f64,
}

/// Lossless variants: measured correlation 1.0000 (16, 44.1, 48, 192 kHz, 24/32-bit, float,
/// 5.1), 0.9999 at 8 kHz (no 4–8 kHz band), 0.9995 for 8-bit (quantization noise); 0.99
/// leaves margin for resampler changes yet fails on any misalignment, wrong sample format or
/// channel mix. Durations are exact to the frame.
const LOSSLESS: f64 = 0.99;
/// Lossy codecs: measured 0.9999 (jfk.mp3), 0.9996 (AAC 48 kb/s), 0.9959 (Vorbis q3), 0.993
/// (chained Vorbis, the second part at 22.05 kHz); 0.95 leaves room for other encoder
/// versions, while a wrong decode scores near 0.
const LOSSY: f64 = 0.95;
const EXACT: f64 = 0.001;
/// Lossy codecs add or cut encoder delay/padding: jfk.mp3 measures 10.980 s after gapless
/// trimming, AAC in MP4 11.072 s (symphonia 0.5 ignores the edit list that drops the priming).
const LOSSY_DURATION: f64 = 0.15;
/// ffmpeg filter copying mono to both channels at full level (its default upmix is -3 dB).
const STEREO: &str = "pan=stereo|c0=c0|c1=c0";

fn check_variant(name: &str, bytes: Vec<u8>, expect: &Expect) -> DecodedAudio {
    let started = Instant::now();
    let audio = decode_ok(bytes, &DecodeOptions::default());
    let elapsed = started.elapsed();
    let (correlation, lag) = best_correlation(reference(), &audio.samples);
    let gain = rms(&audio.samples) / rms(reference());
    eprintln!(
        "{name}: codec {} {} Hz × {} → {:.3} s, {} samples, correlation {correlation:.5} at lag \
         {lag}, gain {gain:.3}, decoded in {elapsed:?}",
        audio.codec,
        audio.source_sample_rate,
        audio.source_channels,
        audio.duration_seconds,
        audio.samples.len()
    );
    assert_eq!(audio.codec, expect.codec, "{name}: codec");
    assert_eq!(audio.source_sample_rate, expect.rate, "{name}: rate");
    assert_eq!(audio.source_channels, expect.channels, "{name}: channels");
    assert!(
        (audio.duration_seconds - 11.0).abs() <= expect.duration_tolerance,
        "{name}: duration {} s is not 11 ± {} s",
        audio.duration_seconds,
        expect.duration_tolerance
    );
    let expected_len = (audio.duration_seconds * f64::from(WHISPER_SAMPLE_RATE)).round();
    assert!(
        (audio.samples.len() as f64 - expected_len).abs() <= 1.0,
        "{name}: {} samples for {} s",
        audio.samples.len(),
        audio.duration_seconds
    );
    assert!(
        audio.samples.iter().all(|s| (-1.0..=1.0).contains(s)),
        "{name}: samples outside [-1, 1]"
    );
    assert!(
        correlation >= expect.min_correlation,
        "{name}: correlation {correlation:.4} at lag {lag} is below {}",
        expect.min_correlation
    );
    // Downmix is a mean and resampling keeps the level: the speech band's loudness stays
    // within 10 % (8 kHz loses the 4–8 kHz band, about 2 % of the RMS here).
    assert!(
        (0.9..=1.1).contains(&gain),
        "{name}: output level {gain:.3} × the reference"
    );
    audio
}

/// A lossy encoding of the 16 kHz mono reference.
fn lossy(codec: &'static str) -> Expect {
    Expect {
        codec,
        rate: 16_000,
        channels: 1,
        duration_tolerance: LOSSY_DURATION,
        min_correlation: LOSSY,
    }
}

fn lossless(codec: &'static str, rate: u32, channels: u16) -> Expect {
    Expect {
        codec,
        rate,
        channels,
        duration_tolerance: EXACT,
        min_correlation: LOSSLESS,
    }
}

#[test]
fn wav_16k_mono_s16_passes_through_unchanged() {
    let audio = check_variant(
        "jfk.wav",
        read(&fixture("jfk.wav")),
        &lossless("pcm_s16le", 16_000, 1),
    );
    assert_eq!(
        audio.samples,
        reference(),
        "16 kHz mono must pass through sample for sample"
    );
}

#[test]
fn mp3_fixture() {
    check_variant("jfk.mp3", read(&fixture("jfk.mp3")), &lossy("mp3"));
}

#[test]
fn flac() {
    let bytes = ffmpeg_variant(&["-c:a", "flac"], "flac");
    check_variant("flac", bytes, &lossless("flac", 16_000, 1));
}

#[test]
fn ogg_vorbis() {
    let bytes = ffmpeg_variant(&["-c:a", "libvorbis", "-q:a", "3"], "ogg");
    check_variant("ogg/vorbis", bytes, &lossy("vorbis"));
}

#[test]
fn m4a_aac() {
    let bytes = ffmpeg_variant(&["-c:a", "aac", "-b:a", "48k"], "m4a");
    check_variant("m4a/aac", bytes, &lossy("aac"));
}

#[test]
fn wav_sample_formats() {
    for codec in ["pcm_u8", "pcm_s24le", "pcm_s32le", "pcm_f32le"] {
        let bytes = ffmpeg_variant(&["-c:a", codec], "wav");
        check_variant(&format!("wav {codec}"), bytes, &lossless(codec, 16_000, 1));
    }
}

#[test]
fn chained_ogg_changing_rate_and_channels() {
    // Two Ogg streams back to back (symphonia asks for a reset between them): 0–5 s at
    // 16 kHz mono, then 5–11 s at 22.05 kHz stereo; the output must still line up.
    let mut bytes = ffmpeg_variant(&["-t", "5", "-c:a", "libvorbis"], "ogg");
    bytes.extend(ffmpeg_variant(
        &[
            "-ss",
            "5",
            "-af",
            STEREO,
            "-ar",
            "22050",
            "-c:a",
            "libvorbis",
        ],
        "ogg",
    ));
    check_variant("chained ogg", bytes, &lossy("vorbis"));
}

#[test]
fn wav_8k_upsampled() {
    let bytes = ffmpeg_variant(&["-ar", "8000", "-c:a", "pcm_s16le"], "wav");
    check_variant("wav 8 kHz", bytes, &lossless("pcm_s16le", 8_000, 1));
}

#[test]
fn wav_stereo_at_44k1_and_48k() {
    for rate in [44_100, 48_000] {
        let bytes = ffmpeg_variant(&["-af", STEREO, "-ar", &rate.to_string()], "wav");
        check_variant(
            &format!("wav {rate} Hz stereo"),
            bytes,
            &lossless("pcm_s16le", rate, 2),
        );
    }
}

#[test]
fn wav_six_channels() {
    let pan = "pan=5.1|c0=c0|c1=c0|c2=c0|c3=c0|c4=c0|c5=c0";
    let bytes = ffmpeg_variant(&["-af", pan], "wav");
    check_variant("wav 5.1", bytes, &lossless("pcm_s16le", 16_000, 6));
}

#[test]
fn wav_192k() {
    let bytes = ffmpeg_variant(&["-ar", "192000"], "wav");
    check_variant("wav 192 kHz", bytes, &lossless("pcm_s16le", 192_000, 1));
}

/// A 16-bit PCM WAV file written by `hound`: `samples` interleaved over `channels` channels.
fn wav(rate: u32, channels: u16, samples: &[i16]) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut out = io::Cursor::new(Vec::new());
    let mut writer = hound::WavWriter::new(&mut out, spec).expect("WAV header");
    for &sample in samples {
        writer.write_sample(sample).expect("write to memory");
    }
    writer.finalize().expect("finish the WAV");
    out.into_inner()
}

/// Rewrites the RIFF and data sizes of a [`wav`] file to declare `data_len` bytes of audio,
/// whatever follows the header.
fn declare_data_len(bytes: &mut [u8], data_len: u32) {
    let data = chunk_size_offset(bytes, b"data");
    let header_after_riff_size = data as u32 - 4;
    bytes[4..8].copy_from_slice(
        &data_len
            .saturating_add(header_after_riff_size)
            .to_le_bytes(),
    );
    bytes[data..data + 4].copy_from_slice(&data_len.to_le_bytes());
}

/// `seconds` of a 440 Hz tone as 16-bit samples, each repeated over `channels` channels.
fn tone(rate: u32, channels: u16, seconds: f64) -> Vec<i16> {
    let frames = (f64::from(rate) * seconds) as usize;
    (0..frames)
        .flat_map(|i| {
            let t = i as f64 / f64::from(rate);
            let s = (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16;
            std::iter::repeat_n(s, channels.into())
        })
        .collect()
}

/// Deterministic pseudo-random bytes (xorshift64).
fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

fn decode_err(bytes: Vec<u8>, options: &DecodeOptions) -> AudioError {
    match decode(bytes, options) {
        Ok(audio) => panic!("expected an error, decoded {} s", audio.duration_seconds),
        Err(e) => {
            eprintln!("error as expected: {e}");
            e
        }
    }
}

#[test]
fn empty_input() {
    let error = decode_err(Vec::new(), &DecodeOptions::default());
    assert!(matches!(error, AudioError::EmptyInput), "{error:?}");
}

#[test]
fn header_declaring_audio_without_data_is_truncated() {
    let mut bytes = wav(16_000, 1, &[]);
    declare_data_len(&mut bytes, 352_000);
    let error = decode_err(bytes, &DecodeOptions::default());
    match error {
        AudioError::Truncated {
            declared_seconds: Some(declared),
            ..
        } => assert!((declared - 11.0).abs() < 1e-9, "declared {declared}"),
        other => panic!("expected Truncated with the declared length, got {other:?}"),
    }
}

#[test]
fn header_cut_short_is_corrupt() {
    // jfk.wav has a LIST chunk before `data`: 44 bytes end inside it, before the format is
    // known. Data ending inside a header cannot be told from garbage, hence Corrupt.
    let mut bytes = read(&fixture("jfk.wav"));
    bytes.truncate(44);
    let error = decode_err(bytes, &DecodeOptions::default());
    assert!(matches!(error, AudioError::Corrupt { .. }), "{error:?}");
}

#[test]
fn header_declaring_no_data_is_empty() {
    let error = decode_err(wav(16_000, 1, &[]), &DecodeOptions::default());
    assert!(matches!(error, AudioError::Empty { .. }), "{error:?}");
}

#[test]
fn truncated_wav_decodes_the_part_that_is_there() {
    let mut bytes = read(&fixture("jfk.wav"));
    bytes.truncate(bytes.len() / 2);
    let audio = decode_ok(bytes, &DecodeOptions::default());
    // 176,039 bytes less the 78-byte header and LIST chunk, 2 bytes a frame.
    assert!(
        (audio.duration_seconds - 5.5).abs() < 0.01,
        "duration {}",
        audio.duration_seconds
    );
    let head = &reference()[..audio.samples.len()];
    assert_eq!(
        audio.samples, head,
        "the decoded half must be the first half of the audio"
    );
}

#[test]
fn random_bytes_are_rejected() {
    // Random bytes hold MP3/ADTS sync words, so the probe may pick a reader that then finds
    // nonsense (Corrupt) or an unsupported AAC profile (UnsupportedFormat); no audio, ever.
    for (len, seed) in [(1000, 1), (64 * 1024, 2), (64 * 1024, 3), (256 * 1024, 4)] {
        let error = decode_err(random_bytes(len, seed), &DecodeOptions::default());
        assert!(
            matches!(
                error,
                AudioError::Corrupt { .. } | AudioError::UnsupportedFormat { .. }
            ),
            "{len} bytes, seed {seed}: {error:?}"
        );
    }
}

#[test]
fn png_is_unsupported() {
    // A valid 1×1 RGBA PNG.
    const PNG: [u8; 67] = [
        0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44,
        0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F,
        0x15, 0xC4, 0x89, 0x00, 0x00, 0x00, 0x0A, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00,
        0x01, 0x00, 0x00, 0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49,
        0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
    ];
    let options = DecodeOptions {
        extension_hint: Some("png".into()),
        mime_hint: Some("image/png".into()),
        ..DecodeOptions::default()
    };
    let error = decode_err(PNG.to_vec(), &options);
    assert!(
        matches!(error, AudioError::UnsupportedFormat { .. }),
        "{error:?}"
    );
}

#[test]
fn plain_text_is_unsupported() {
    let text = "And so my fellow Americans, ask not what your country can do for you.\n".repeat(50);
    let error = decode_err(text.into_bytes(), &DecodeOptions::default());
    assert!(
        matches!(error, AudioError::UnsupportedFormat { .. }),
        "{error:?}"
    );
}

#[test]
fn mislabelled_extension_is_probed_by_content() {
    let options = DecodeOptions {
        extension_hint: Some("wav".into()),
        mime_hint: Some("audio/wav".into()),
        ..DecodeOptions::default()
    };
    let audio = decode_ok(read(&fixture("jfk.mp3")), &options);
    assert_eq!(audio.codec, "mp3");
    assert!((audio.duration_seconds - 11.0).abs() <= LOSSY_DURATION);
}

#[test]
fn max_seconds_is_enforced() {
    let limited = |max: f64| DecodeOptions {
        max_seconds: Some(max),
        ..DecodeOptions::default()
    };
    let error = decode_err(read(&fixture("jfk.wav")), &limited(5.0));
    assert!(
        matches!(error, AudioError::TooLong { max_seconds } if max_seconds == 5.0),
        "{error:?}"
    );
    let error = decode_err(read(&fixture("jfk.mp3")), &limited(5.0));
    assert!(matches!(error, AudioError::TooLong { .. }), "{error:?}");
    let audio = decode_ok(read(&fixture("jfk.wav")), &limited(11.0));
    assert_eq!(
        audio.samples.len(),
        176_000,
        "exactly at the limit is accepted"
    );
}

#[test]
fn invalid_max_seconds_is_refused() {
    for max in [-1.0, f64::NAN] {
        let options = DecodeOptions {
            max_seconds: Some(max),
            ..DecodeOptions::default()
        };
        let error = decode_err(read(&fixture("jfk.wav")), &options);
        assert!(
            matches!(error, AudioError::InvalidMaxSeconds(_)),
            "{error:?}"
        );
    }
}

/// One second of black video in `codec`, in a `container` file, with no audio.
fn black_video(codec: &str, container: &str) -> Vec<u8> {
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "color=c=black:s=16x16:d=1",
            "-c:v",
            codec,
        ],
        container,
    )
}

#[test]
fn video_without_audio_has_no_audio_track() {
    let bytes = black_video("ffv1", "mkv");
    let error = decode_err(bytes, &DecodeOptions::default());
    assert!(
        matches!(error, AudioError::NoAudioTrack { .. }),
        "{error:?}"
    );
}

#[test]
fn sample_rates_out_of_range_are_refused() {
    for rate in [1_000, 768_000] {
        let bytes = wav(rate, 1, &tone(rate, 1, 1.0));
        let error = decode_err(bytes, &DecodeOptions::default());
        assert!(
            matches!(error, AudioError::UnsupportedSampleRate { rate: r } if r == rate),
            "{rate} Hz: {error:?}"
        );
    }
}

#[test]
fn placeholder_length_header_decodes_the_data_present() {
    // As written by recorders streaming to a pipe: the data length is left at its maximum.
    let mut bytes = wav(48_000, 2, &tone(48_000, 2, 1.0));
    declare_data_len(&mut bytes, u32::MAX - 36);
    let (audio, peak) = peak_heap_growth(|| decode_ok(bytes, &DecodeOptions::default()));
    assert!(
        (audio.duration_seconds - 1.0).abs() < 1e-9,
        "{}",
        audio.duration_seconds
    );
    assert_eq!(audio.samples.len(), 16_000);
    // The 4 GiB declared length must not be allocated: 1 s at 16 kHz is 64 kB.
    assert!(peak < 8 << 20, "peak heap growth {peak} bytes");
}

/// A virtual WAV of `seconds` of 48 kHz stereo tone, generated as it is read; counts bytes read.
struct EndlessWav {
    header: Vec<u8>,
    len: u64,
    pos: u64,
    bytes_read: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl EndlessWav {
    fn new(seconds: u32) -> Self {
        let data_len = seconds * 48_000 * 4;
        let mut header = wav(48_000, 2, &[]);
        declare_data_len(&mut header, data_len);
        Self {
            len: header.len() as u64 + u64::from(data_len),
            header,
            pos: 0,
            bytes_read: Default::default(),
        }
    }
}

impl Read for EndlessWav {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (buf.len() as u64).min(self.len.saturating_sub(self.pos)) as usize;
        for (i, byte) in buf[..n].iter_mut().enumerate() {
            let at = self.pos + i as u64;
            *byte = match self.header.get(at as usize) {
                Some(&h) => h,
                None => {
                    // Frame of two identical 16-bit samples of a 440 Hz tone.
                    let offset = at - self.header.len() as u64;
                    let t = (offset / 4) as f64 / 48_000.0;
                    let s = (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16;
                    s.to_le_bytes()[(offset % 2) as usize]
                }
            };
        }
        self.pos += n as u64;
        self.bytes_read
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

impl Seek for EndlessWav {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let target = match pos {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = target.ok_or_else(|| io::Error::other("seek before start"))?;
        Ok(self.pos)
    }
}

#[test]
fn long_stream_stops_at_max_seconds_in_bounded_memory() {
    // Two hours of 48 kHz stereo (1.4 GB if buffered), limited to 60 s.
    let source = EndlessWav::new(2 * 3600);
    let bytes_read = source.bytes_read.clone();
    let options = DecodeOptions {
        max_seconds: Some(60.0),
        ..DecodeOptions::default()
    };
    let started = Instant::now();
    let (result, peak) = peak_heap_growth(|| decode_reader(source, &options));
    let read = bytes_read.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!(
        "2 h stream, limit 60 s: {:?} after {read} bytes read, peak heap growth {peak} bytes, {:?}",
        result.as_ref().err(),
        started.elapsed()
    );
    assert!(
        matches!(result, Err(AudioError::TooLong { .. })),
        "{result:?}"
    );
    // 60 s of source is 11.5 MB; allow for read-ahead.
    assert!(read < 13_000_000, "read {read} bytes for a 60 s limit");
    // 60 s at 16 kHz is 3.84 MB of output; a full source-rate buffer would be over 1 GB.
    assert!(peak < 24 << 20, "peak heap growth {peak} bytes");
}

#[test]
fn reader_owned_and_borrowed_bytes_agree() {
    let path = fixture("jfk.mp3");
    let file = std::fs::File::open(&path).expect("open jfk.mp3");
    let from_reader = decode_reader(file, &DecodeOptions::default()).expect("decode_reader");
    let bytes = read(&path);
    let from_borrowed = decode(bytes.as_slice(), &DecodeOptions::default()).expect("decode");
    let from_owned = decode_ok(bytes, &DecodeOptions::default());
    assert_eq!(from_reader, from_owned);
    assert_eq!(from_borrowed, from_owned);
}

#[test]
fn damaged_mp3_middle_is_skipped() {
    let mut bytes = read(&fixture("jfk.mp3"));
    let middle = bytes.len() / 2;
    bytes[middle..middle + 2048].copy_from_slice(&random_bytes(2048, 7));
    let audio = decode_ok(bytes, &DecodeOptions::default());
    // 2 kB is about 0.3 s of this 55 kb/s stream: the frames it hit are lost, the rest plays.
    assert!(
        (10.5..=11.0).contains(&audio.duration_seconds),
        "duration {}",
        audio.duration_seconds
    );
    let four_seconds = 4 * 16_000;
    let reference = reference();
    let (head, _) = best_correlation(&reference[..four_seconds], &audio.samples[..four_seconds]);
    let (tail, lag) = best_correlation(
        &reference[reference.len() - four_seconds..],
        &audio.samples[audio.samples.len() - four_seconds..],
    );
    eprintln!(
        "damaged mp3: {:.3} s, {} skipped packets, head correlation {head:.4}, tail {tail:.4} \
         at lag {lag}",
        audio.duration_seconds, audio.skipped_packets
    );
    assert!(
        head >= LOSSY && tail >= LOSSY,
        "head {head:.4}, tail {tail:.4}"
    );
}

#[test]
fn mutated_inputs_give_results_or_errors() {
    // Short clips in each container with 8 bytes overwritten, half of them in the headers.
    // Any outcome but a panic or a hang is allowed; decoded audio must still be well formed.
    let variants = [
        ffmpeg_variant(&["-t", "1", "-c:a", "flac"], "flac"),
        ffmpeg_variant(&["-t", "1", "-c:a", "libvorbis"], "ogg"),
        ffmpeg_variant(&["-t", "1", "-c:a", "aac"], "m4a"),
        ffmpeg_variant(&["-t", "1", "-c:a", "libmp3lame"], "mp3"),
        ffmpeg_variant(&["-t", "1", "-ac", "2", "-c:a", "pcm_s24le"], "wav"),
    ];
    let mut outcomes = std::collections::BTreeMap::<&str, u32>::new();
    for (v, original) in (0u64..).zip(&variants) {
        for round in 0..40u64 {
            let mut bytes = original.clone();
            let noise = random_bytes(16, round * 31 + v + 1);
            for pair in noise.chunks(2) {
                let span = if pair[0] % 2 == 0 {
                    256.min(bytes.len())
                } else {
                    bytes.len()
                };
                let at = (usize::from(pair[0]) * 257 + usize::from(pair[1]) * 65_537) % span;
                bytes[at] = pair[1];
            }
            let started = Instant::now();
            let result = decode(bytes, &DecodeOptions::default());
            assert!(
                started.elapsed().as_secs() < 10,
                "variant {v} round {round}: too slow"
            );
            let outcome = match result {
                Ok(audio) => {
                    let expected = audio.duration_seconds * f64::from(WHISPER_SAMPLE_RATE);
                    assert!((audio.samples.len() as f64 - expected).abs() <= 1.0);
                    assert!(audio.samples.iter().all(|s| (-1.0..=1.0).contains(s)));
                    "decoded"
                }
                Err(AudioError::DecoderPanic { .. }) => "DecoderPanic",
                Err(AudioError::Corrupt { .. }) => "Corrupt",
                Err(AudioError::UnsupportedFormat { .. }) => "UnsupportedFormat",
                Err(AudioError::NoAudioTrack { .. }) => "NoAudioTrack",
                Err(AudioError::Truncated { .. }) => "Truncated",
                Err(AudioError::Empty { .. }) => "Empty",
                Err(AudioError::UnsupportedSampleRate { .. }) => "UnsupportedSampleRate",
                Err(other) => panic!("variant {v} round {round}: unexpected {other:?}"),
            };
            *outcomes.entry(outcome).or_default() += 1;
        }
    }
    eprintln!("mutation outcomes: {outcomes:?}");
}

/// A reader whose every read is `read()` and whose seeks claim to succeed.
struct OddReader(fn() -> io::Result<usize>);

impl Read for OddReader {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        (self.0)()
    }
}

impl Seek for OddReader {
    fn seek(&mut self, _: SeekFrom) -> io::Result<u64> {
        Ok(1000)
    }
}

#[test]
fn a_panic_while_decoding_is_returned_as_an_error() {
    let reader = OddReader(|| panic!("reader exploded"));
    match decode_reader(reader, &DecodeOptions::default()) {
        Err(AudioError::DecoderPanic { message, .. }) => assert_eq!(message, "reader exploded"),
        other => panic!("expected DecoderPanic, got {other:?}"),
    }
}

#[test]
fn reader_failure_is_an_io_error() {
    let reader = OddReader(|| {
        Err(io::Error::new(
            io::ErrorKind::ConnectionReset,
            "upload aborted",
        ))
    });
    match decode_reader(reader, &DecodeOptions::default()) {
        Err(AudioError::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset),
        other => panic!("expected Io, got {other:?}"),
    }
}

/// An MP4 whose sample table `table` (in `moov/trak/mdia/minf/stbl`) declares `count` entries
/// and holds none.
fn mp4_with_table(table: &[u8; 4], count: u32) -> Vec<u8> {
    fn atom(kind: &[u8], body: &[u8]) -> Vec<u8> {
        [&(8 + body.len() as u32).to_be_bytes()[..], kind, body].concat()
    }
    // Version and flags; `stsz` has its constant sample size (0: a table follows) first.
    let mut body = vec![0u8; if table == b"stsz" { 8 } else { 4 }];
    body.extend_from_slice(&count.to_be_bytes());
    let mut nested = atom(table, &body);
    for container in [b"stbl", b"minf", b"mdia", b"trak", b"moov"] {
        nested = atom(container, &nested);
    }
    [atom(b"ftyp", b"M4A \0\0\0\0M4A isom"), nested].concat()
}

/// Found by the `audio_decode` fuzz target: symphonia 0.5 reserved a sample table's declared
/// entries before reading them; 2^32 − 1 `stts` entries in an 80-byte file asked for 32 GiB,
/// and the failed allocation aborted the process (no panic to catch). 0.6 reads what is there.
#[test]
fn mp4_sample_table_larger_than_the_file_is_corrupt() {
    for table in [b"stts", b"stsc", b"stsz", b"stco", b"co64"] {
        let error = decode_err(mp4_with_table(table, u32::MAX), &DecodeOptions::default());
        let name = String::from_utf8_lossy(table);
        assert!(
            matches!(error, AudioError::Corrupt { .. }),
            "{name}: expected Corrupt, got {error:?}"
        );
    }
}

/// Encoder delay left in shifts every word (AAC priming: 1024 frames, 64 ms; LAME: 1105 frames;
/// Opus pre-skip: 312 frames at 48 kHz, 6.5 ms). Word and segment times must stay within 20 ms
/// of the WAV's; the decoded audio is held to 1 ms (16 samples at 16 kHz) of the reference, so
/// that even a pre-skip left in fails. Measured: lag 0 or −1 sample for every codec here.
const MAX_LAG: isize = 16;

/// `check_variant`, then the alignment with the reference.
fn check_aligned(name: &str, bytes: Vec<u8>, expect: &Expect) -> DecodedAudio {
    let audio = check_variant(name, bytes, expect);
    let (_, lag) = best_correlation(reference(), &audio.samples);
    assert!(
        lag.abs() <= MAX_LAG,
        "{name}: the audio is {lag} samples ({:.1} ms) off the reference",
        lag as f64 / 16.0
    );
    audio
}

/// A lossy encoding whose delay and padding the file records: duration within 20 ms.
fn gapless(codec: &'static str, rate: u32, channels: u16) -> Expect {
    Expect {
        codec,
        rate,
        channels,
        duration_tolerance: 0.02,
        min_correlation: LOSSY,
    }
}

#[test]
fn opus_in_ogg_webm_and_opus_files() {
    // Browsers record WebM/Opus, WhatsApp and Telegram send Ogg/Opus (.ogg or .opus). libopus
    // decodes at 48 kHz whatever the input rate; the pre-skip must be dropped once.
    for (extension, rate, stereo) in [
        ("ogg", 16_000, false),
        ("opus", 48_000, true),
        ("webm", 48_000, true),
        ("webm", 8_000, false),
        ("mka", 16_000, false),
    ] {
        let rate_arg = rate.to_string();
        let mut args = vec!["-ar", rate_arg.as_str(), "-c:a", "libopus", "-b:a", "32k"];
        if stereo {
            args.extend(["-af", STEREO]);
        }
        let bytes = ffmpeg_variant(&args, extension);
        let name = format!("opus in .{extension}, {rate} Hz, stereo {stereo}");
        check_aligned(
            &name,
            bytes,
            &gapless("opus", 48_000, 1 + u16::from(stereo)),
        );
    }
}

#[test]
fn lossy_codecs_are_trimmed_to_the_wav_timing() {
    // AAC's priming is dropped by the MP4 edit list (in ADTS, which has none, by convention),
    // MP3's encoder delay by the LAME header.
    let m4a = ffmpeg_variant(&["-c:a", "aac", "-b:a", "48k"], "m4a");
    check_aligned("m4a/aac", m4a, &gapless("aac", 16_000, 1));
    let m4a_44k = ffmpeg_variant(&["-ar", "44100", "-af", STEREO, "-c:a", "aac"], "m4a");
    check_aligned(
        "m4a/aac 44.1 kHz stereo",
        m4a_44k,
        &gapless("aac", 44_100, 2),
    );
    let mp4_video = ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "color=c=black:s=32x32:d=11",
            "-i",
            &fixture("jfk.wav").to_string_lossy(),
            "-c:v",
            "mpeg4",
            "-c:a",
            "aac",
            "-shortest",
        ],
        "mp4",
    );
    check_aligned("mp4 with video/aac", mp4_video, &gapless("aac", 16_000, 1));
    let mp3 = ffmpeg_variant(&["-c:a", "libmp3lame", "-b:a", "64k"], "mp3");
    check_aligned("mp3 (lame)", mp3, &gapless("mp3", 16_000, 1));
    let adts = ffmpeg_variant(&["-c:a", "aac", "-f", "adts"], "aac");
    check_aligned("adts/aac", adts, &gapless("aac", 16_000, 1));
    let mp3_48k = ffmpeg_variant(&["-ar", "48000", "-c:a", "libmp3lame"], "mp3");
    check_aligned("mp3 48 kHz", mp3_48k, &gapless("mp3", 48_000, 1));
    let vorbis = ffmpeg_variant(&["-c:a", "libvorbis"], "ogg");
    check_aligned("ogg/vorbis", vorbis, &gapless("vorbis", 16_000, 1));
}

#[test]
fn rf64_and_bw64_wav() {
    let rf64 = ffmpeg_variant(&["-rf64", "always"], "wav");
    assert_eq!(&rf64[..4], b"RF64");
    let audio = check_variant("rf64", rf64.clone(), &lossless("pcm_s16le", 16_000, 1));
    assert_eq!(audio.samples, reference());
    // BW64 (EBU Tech 3392) is RF64 under another marker.
    let mut bw64 = rf64;
    bw64[..4].copy_from_slice(b"BW64");
    let audio = check_variant("bw64", bw64, &lossless("pcm_s16le", 16_000, 1));
    assert_eq!(audio.samples, reference());
}

/// Offset of the size field of `chunk` in a RIFF file.
fn chunk_size_offset(bytes: &[u8], chunk: &[u8; 4]) -> usize {
    let mut pos = 12;
    while &bytes[pos..pos + 4] != chunk {
        let size = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap()) as usize;
        pos += 8 + size + size % 2;
    }
    pos + 4
}

#[test]
fn streamed_wav_sizes_are_read_to_the_end() {
    // Writers streaming to a pipe leave the sizes at 0 or 0xFFFFFFFF.
    for size in [0u32, u32::MAX] {
        let mut bytes = read(&fixture("jfk.wav"));
        let data = chunk_size_offset(&bytes, b"data");
        bytes[4..8].copy_from_slice(&size.to_le_bytes());
        bytes[data..data + 4].copy_from_slice(&size.to_le_bytes());
        let audio = check_variant(
            &format!("wav, sizes {size:#x}"),
            bytes,
            &lossless("pcm_s16le", 16_000, 1),
        );
        assert_eq!(audio.samples, reference());
    }
}

#[test]
fn wav_header_fields_that_cannot_describe_audio_are_corrupt() {
    // (offset in the fmt chunk body, field width, what the message names). A rate of 0 made
    // symphonia 0.5 panic ("TimeBase cannot have 0 numerator or denominator").
    for (offset, width, named) in [
        (2, 2, "0 channels"),
        (4, 4, "0 samples per second"),
        (12, 2, "0 bytes per sample frame"),
        (14, 2, "0 bits per sample"),
    ] {
        let mut bytes = read(&fixture("jfk.wav"));
        let at = chunk_size_offset(&bytes, b"fmt ") + 4 + offset;
        bytes[at..at + width].fill(0);
        match decode_err(bytes, &DecodeOptions::default()) {
            AudioError::Corrupt { codec, detail } => {
                assert_eq!(codec, "WAV");
                assert!(detail.contains(named), "{named}: {detail}");
            }
            other => panic!("{named}: expected Corrupt, got {other:?}"),
        }
    }
}

/// The message of an `UnsupportedFormat` error, checked to name `named` and no codec id.
fn unsupported_message(bytes: Vec<u8>, named: &str) -> String {
    let error = decode_err(bytes, &DecodeOptions::default());
    let message = error.to_string();
    assert!(
        matches!(error, AudioError::UnsupportedFormat { .. }),
        "{named}: {error:?}"
    );
    assert!(message.contains(named), "{message:?} does not name {named}");
    assert!(
        message.contains("supported: WAV") && !message.contains("0x"),
        "{message:?}"
    );
    message
}

#[test]
fn unsupported_codecs_and_files_are_named() {
    let ac3 = ffmpeg_variant(&["-ar", "48000", "-c:a", "ac3"], "mp4");
    unsupported_message(ac3, "AC-3 audio in MP4");
    let ac3_mkv = ffmpeg_variant(&["-ar", "48000", "-c:a", "ac3"], "mkv");
    unsupported_message(ac3_mkv, "AC-3 audio in Matroska/WebM");
    let eac3 = ffmpeg_variant(&["-ar", "48000", "-c:a", "eac3"], "mkv");
    unsupported_message(eac3, "E-AC-3");
    let wma = ffmpeg_variant(&["-c:a", "wmav2"], "wma");
    unsupported_message(wma, "Windows Media");
    let speex = ffmpeg_variant(&["-c:a", "libspeex"], "ogg");
    unsupported_message(speex, "Speex");
    // AMR-NB in 3GP, as phones record it: this ffmpeg has no AMR encoder, so an AAC 3GP's
    // sample entry is relabelled `samr`; the container says AMR-NB, which is what is judged.
    let mut amr = ffmpeg_variant(&["-ar", "8000", "-c:a", "aac"], "3gp");
    let at = amr
        .windows(4)
        .position(|w| w == b"mp4a")
        .expect("mp4a entry");
    amr[at..at + 4].copy_from_slice(b"samr");
    unsupported_message(amr, "AMR-NB audio in 3GP");
    let text = "And so my fellow Americans, ask not.\n"
        .repeat(20)
        .into_bytes();
    unsupported_message(text, "a text file");
}

#[test]
fn video_without_audio_is_named() {
    let bytes = black_video("mpeg4", "mp4");
    let message = decode_err(bytes, &DecodeOptions::default()).to_string();
    assert!(
        message.contains("no audio track in this MP4 video file"),
        "{message}"
    );
}

#[test]
fn zero_sample_rate_in_other_headers_is_an_error_not_a_panic() {
    // AIFF `COMM` (80-bit float rate after channels, frames and bits) and CAF `desc` (64-bit
    // float rate first) declaring 0 Hz.
    let mut aiff = ffmpeg_variant(&["-c:a", "pcm_s16be"], "aiff");
    let comm = aiff.windows(4).position(|w| w == b"COMM").expect("COMM");
    aiff[comm + 16..comm + 26].fill(0);
    let mut caf = ffmpeg_variant(&["-c:a", "pcm_s16le"], "caf");
    let desc = caf.windows(4).position(|w| w == b"desc").expect("desc");
    caf[desc + 12..desc + 20].fill(0);
    for (name, bytes) in [("aiff", aiff), ("caf", caf)] {
        let error = decode_err(bytes, &DecodeOptions::default());
        assert!(
            !matches!(error, AudioError::DecoderPanic { .. }),
            "{name}: {error:?}"
        );
    }
}
