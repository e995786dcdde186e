//! The format matrix: `jfk.wav` re-encoded by ffmpeg at test time into every container × codec
//! users send, at 8, 16, 44.1 and 48 kHz, mono and stereo, decoded by `whisper_safe::audio` and
//! transcribed by tiny.en (q5_1) on the real libraries.
//!
//! Bound: every decodable file gives the WAV's words — its WER against `jfk.txt` at most 0.02
//! above that of the 16-bit PCM WAV at the same rate and channel layout (jfk has 22 words, so
//! one changed word fails). The WAV of the same rate is the baseline because the rate itself
//! changes words: at 8 kHz, with no sound above 4 kHz, tiny.en hears one word differently
//! (WER 0.045, against 0.000 at 16 kHz and up), whatever the container. Every other file is
//! [`AudioError::UnsupportedFormat`] (HTTP 415) whose message names the codec and container.
//! A codec is tried at the rates it can carry: Opus has no 44.1 kHz mode, AC-3 only 32–48 kHz,
//! Speex 8/16/32 kHz, AMR-NB 8 kHz mono. MP2 is left out: symphonia 0.6.1 takes mono MP2 at
//! 44.1 and 48 kHz for MP1 or fails to find its header (measured), so it is not claimed.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use whisper_safe::audio::{decode, AudioError, DecodeOptions};
use whisper_safe::{AudioContext, Context, ContextOptions, Params, State};
use whisper_stt_tests::{fixture, init_linked, reference, tiny_en_model, word_error_rate};

/// The allowed WER above the WAV's.
const WER_MARGIN: f64 = 0.02;
const ALL_RATES: &[u32] = &[8_000, 16_000, 44_100, 48_000];
/// ffmpeg filter copying mono to both channels at full level (its default upmix is -3 dB).
const STEREO: &str = "pan=stereo|c0=c0|c1=c0";

/// What a file must give.
#[derive(Clone, Copy)]
enum Expect {
    /// The WAV's words.
    Words,
    /// An unsupported-format error naming this.
    Unsupported(&'static str),
}

/// One container × codec of the matrix.
struct Format {
    /// Container (by file extension) and codec, for the report.
    label: &'static str,
    extension: &'static str,
    /// ffmpeg output options selecting the codec.
    codec: &'static [&'static str],
    rates: &'static [u32],
    stereo: bool,
    expect: Expect,
    /// A sample entry type to relabel in the output (`mp4a` → `samr`), for a codec this
    /// ffmpeg cannot encode.
    relabel: Option<(&'static [u8; 4], &'static [u8; 4])>,
}

const fn decoded(
    label: &'static str,
    extension: &'static str,
    codec: &'static [&'static str],
) -> Format {
    Format {
        label,
        extension,
        codec,
        rates: ALL_RATES,
        stereo: true,
        expect: Expect::Words,
        relabel: None,
    }
}

const fn at(mut format: Format, rates: &'static [u32]) -> Format {
    format.rates = rates;
    format
}

const fn refused(mut format: Format, named: &'static str) -> Format {
    format.expect = Expect::Unsupported(named);
    format
}

const OPUS_RATES: &[u32] = &[8_000, 16_000, 48_000];

fn matrix() -> Vec<Format> {
    vec![
        decoded("WAV / PCM s16", "wav", &["-c:a", "pcm_s16le"]),
        decoded("WAV / PCM f32", "wav", &["-c:a", "pcm_f32le"]),
        decoded("WAV / μ-law", "wav", &["-c:a", "pcm_mulaw"]),
        decoded("WAV / A-law", "wav", &["-c:a", "pcm_alaw"]),
        decoded("WAV / IMA ADPCM", "wav", &["-c:a", "adpcm_ima_wav"]),
        decoded("WAV / MS ADPCM", "wav", &["-c:a", "adpcm_ms"]),
        decoded(
            "RF64 / PCM s16",
            "wav",
            &["-c:a", "pcm_s16le", "-rf64", "always"],
        ),
        decoded("AIFF / PCM s16", "aiff", &["-c:a", "pcm_s16be"]),
        decoded("CAF / PCM s16", "caf", &["-c:a", "pcm_s16le"]),
        decoded("CAF / ALAC", "caf", &["-c:a", "alac"]),
        decoded("FLAC", "flac", &["-c:a", "flac"]),
        decoded("Ogg / FLAC", "ogg", &["-c:a", "flac"]),
        decoded("MP3 (LAME)", "mp3", &["-c:a", "libmp3lame", "-b:a", "64k"]),
        decoded("M4A / AAC", "m4a", &["-c:a", "aac", "-b:a", "64k"]),
        decoded("MP4 / AAC", "mp4", &["-c:a", "aac", "-b:a", "64k"]),
        decoded("ADTS / AAC", "aac", &["-c:a", "aac", "-b:a", "64k"]),
        decoded("M4A / ALAC", "m4a", &["-c:a", "alac"]),
        decoded("Ogg / Vorbis", "ogg", &["-c:a", "libvorbis"]),
        decoded("WebM / Vorbis", "webm", &["-c:a", "libvorbis"]),
        at(
            decoded("Ogg / Opus", "ogg", &["-c:a", "libopus", "-b:a", "32k"]),
            OPUS_RATES,
        ),
        at(
            decoded(".opus / Opus", "opus", &["-c:a", "libopus", "-b:a", "32k"]),
            OPUS_RATES,
        ),
        at(
            decoded("WebM / Opus", "webm", &["-c:a", "libopus", "-b:a", "32k"]),
            OPUS_RATES,
        ),
        at(
            decoded("MKA / Opus", "mka", &["-c:a", "libopus", "-b:a", "32k"]),
            OPUS_RATES,
        ),
        refused(
            at(
                decoded("MP4 / AC-3", "mp4", &["-c:a", "ac3"]),
                &[44_100, 48_000],
            ),
            "AC-3 audio in MP4",
        ),
        refused(
            at(
                decoded("MKA / E-AC-3", "mka", &["-c:a", "eac3"]),
                &[44_100, 48_000],
            ),
            "E-AC-3 audio in Matroska/WebM",
        ),
        refused(
            decoded("WMA / WMA v2", "wma", &["-c:a", "wmav2"]),
            "Windows Media",
        ),
        refused(
            at(
                decoded("Ogg / Speex", "ogg", &["-c:a", "libspeex"]),
                &[8_000, 16_000],
            ),
            "Speex in Ogg",
        ),
        Format {
            stereo: false,
            relabel: Some((b"mp4a", b"samr")),
            ..refused(
                at(decoded("3GP / AMR-NB", "3gp", &["-c:a", "aac"]), &[8_000]),
                "AMR-NB audio in 3GP",
            )
        },
    ]
}

/// `jfk.wav` encoded by ffmpeg with `args` into `dir/name`; returns the bytes.
fn encode(dir: &Path, name: &str, args: &[&str]) -> Vec<u8> {
    let out = dir.join(name);
    let result = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i"])
        .arg(fixture("jfk.wav"))
        .args(args)
        .arg(&out)
        .output()
        .expect("ffmpeg is needed (apt-get install ffmpeg)");
    assert!(
        result.status.success(),
        "ffmpeg {args:?} → {name} failed: {}",
        String::from_utf8_lossy(&result.stderr)
    );
    std::fs::read(&out).unwrap_or_else(|e| panic!("read {}: {e}", out.display()))
}

/// The server's decoding: greedy, English, the audio context trimmed to the audio.
fn transcribe(state: &mut State, samples: &[f32]) -> String {
    let params = Params::greedy()
        .threads(2)
        .language(Some("en"))
        .audio_context(AudioContext::Trimmed);
    state.full(&params, samples).expect("transcribe").text()
}

/// Transcripts by the exact samples: lossless variants at one rate decode to the same samples
/// and are transcribed once.
#[derive(Default)]
struct Transcripts(HashMap<u64, String>);

impl Transcripts {
    fn get(&mut self, state: &mut State, samples: &[f32]) -> String {
        let mut hasher = DefaultHasher::new();
        samples.len().hash(&mut hasher);
        samples.iter().for_each(|s| s.to_bits().hash(&mut hasher));
        self.0
            .entry(hasher.finish())
            .or_insert_with(|| transcribe(state, samples))
            .clone()
    }
}

#[test]
fn every_format_gives_the_wavs_words_or_a_clear_415() {
    init_linked();
    let context = Context::new(tiny_en_model(), &ContextOptions::default()).expect("tiny.en");
    let mut state = context.create_state().expect("state");
    let expected = reference("jfk.wav");
    let wav = std::fs::read(fixture("jfk.wav")).expect("jfk.wav");
    let wav = decode(wav, &DecodeOptions::default()).expect("decode jfk.wav");
    let mut transcripts = Transcripts::default();
    let wav_wer = word_error_rate(&expected, &transcripts.get(&mut state, &wav.samples));
    eprintln!("jfk.wav: WER {wav_wer:.3}");
    assert!(wav_wer <= 0.1, "the fixture itself: WER {wav_wer:.3}");

    let dir = tempfile::tempdir().expect("tempdir");
    let encode_case = |format: &Format, rate: u32, stereo: bool| {
        let rate_arg = rate.to_string();
        let mut args = vec!["-ar", rate_arg.as_str()];
        args.extend(if stereo {
            ["-af", STEREO]
        } else {
            ["-ac", "1"]
        });
        args.extend(format.codec);
        let mut bytes = encode(dir.path(), &format!("case.{}", format.extension), &args);
        if let Some((from, to)) = format.relabel {
            let at = bytes.windows(4).position(|w| w == from).expect("entry");
            bytes[at..at + 4].copy_from_slice(to);
        }
        bytes
    };
    let matrix = matrix();
    // The first row is the 16-bit PCM WAV: the baseline at each rate and layout.
    let mut baseline = HashMap::new();
    for &rate in ALL_RATES {
        for stereo in [false, true] {
            let bytes = encode_case(&matrix[0], rate, stereo);
            let audio = decode(bytes, &DecodeOptions::default()).expect("decode the WAV");
            let wer = word_error_rate(&expected, &transcripts.get(&mut state, &audio.samples));
            eprintln!("baseline WAV {rate} Hz stereo {stereo}: WER {wer:.3}");
            baseline.insert((rate, stereo), wer);
        }
    }

    let (mut failures, mut decoded, mut refused) = (Vec::new(), 0, 0);
    for format in &matrix {
        for &rate in format.rates {
            for stereo in [false, true].into_iter().filter(|&s| !s || format.stereo) {
                let layout = if stereo { "stereo" } else { "mono" };
                let case = format!("{} {rate} Hz {layout}", format.label);
                let bytes = encode_case(format, rate, stereo);
                let started = Instant::now();
                let options = DecodeOptions {
                    extension_hint: Some(format.extension.to_owned()),
                    ..DecodeOptions::default()
                };
                match (format.expect, decode(bytes, &options)) {
                    (Expect::Words, Ok(audio)) => {
                        let text = transcripts.get(&mut state, &audio.samples);
                        let wer = word_error_rate(&expected, &text);
                        let took = started.elapsed();
                        eprintln!("{case}: {} → WER {wer:.3} ({took:.1?})", audio.codec);
                        if wer > baseline[&(rate, stereo)] + WER_MARGIN {
                            failures.push(format!("{case}: WER {wer:.3}: {text:?}"));
                        }
                        decoded += 1;
                    }
                    (Expect::Unsupported(named), Err(e @ AudioError::UnsupportedFormat { .. }))
                        if e.to_string().contains(named) =>
                    {
                        eprintln!("{case}: 415 {e}");
                        refused += 1;
                    }
                    (_, Err(e)) => failures.push(format!("{case}: {e:?}")),
                    (Expect::Unsupported(named), Ok(audio)) => failures.push(format!(
                        "{case}: decoded as {} where {named} was expected to be refused",
                        audio.codec
                    )),
                }
            }
        }
    }
    eprintln!("{decoded} files gave the WAV's words, {refused} were refused by name");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
