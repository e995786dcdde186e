//! Test helpers that need nothing from the workspace, so that stt-server's own
//! tests and the end-to-end tests (`whisper-stt-tests`, which depends on
//! stt-server) share them.

pub mod mirror;

/// A 16 kHz mono 16-bit WAV of `samples`, written by `hound`.
pub fn wav(samples: &[i16]) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut out = std::io::Cursor::new(Vec::new());
    let mut writer = hound::WavWriter::new(&mut out, spec).expect("WAV header");
    for &sample in samples {
        writer.write_sample(sample).expect("write to memory");
    }
    writer.finalize().expect("finish the WAV");
    out.into_inner()
}
