//! Transcribes audio files with the safe API.
//!
//! ```sh
//! WHISPER_LIB_DIR=artifacts/lib cargo run -p whisper-safe --example transcribe -- \
//!     artifacts/whisper_base_xeon/ggml-base-q5_1.bin ../shared/fixtures/jfk.wav
//! ```

use std::error::Error;

use whisper_safe::audio::{decode, DecodeOptions};
use whisper_safe::{AudioContext, Context, ContextOptions, Params};

fn main() -> Result<(), Box<dyn Error>> {
    whisper_safe::set_process_environment(); // before any other thread exists
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let mut args = std::env::args().skip(1);
    let (Some(model), files) = (args.next(), args.collect::<Vec<_>>()) else {
        return Err("usage: transcribe MODEL AUDIO...".into());
    };
    if files.is_empty() {
        return Err("usage: transcribe MODEL AUDIO...".into());
    }
    whisper_safe::init()?;
    let context = Context::new(&model, &ContextOptions::default())?;
    let mut state = context.create_state()?;
    let params = Params::greedy()
        .threads(2)
        .audio_context(AudioContext::Trimmed)
        .word_timestamps(true);
    for file in files {
        let audio = decode(std::fs::read(&file)?, &DecodeOptions::default())?;
        let transcript = state.full(&params, &audio.samples)?;
        println!(
            "{file} ({:.1} s, {:?}):",
            audio.duration_seconds, transcript.language
        );
        for segment in &transcript.segments {
            println!(
                "  [{:6.2} → {:6.2}] {}",
                segment.start,
                segment.end,
                segment.text.trim()
            );
        }
    }
    Ok(())
}
