//! The plan: where a job's audio is cut into pieces of at most 30 s.

use whisper_safe::pieces::{self, Piece, Span, MAX_PIECE_SAMPLES};

/// How far before each 30 s limit a cut looks for a quiet moment.
const QUIET_SEARCH_SAMPLES: usize = 8 * whisper_safe::SAMPLE_RATE as usize;

/// Cuts `region` of `audio` into pieces: the `speech` spans the VAD found in
/// it, joined up to 30 s, or (without VAD) the whole region; longer stretches
/// are cut at quiet moments. Audio of 30 s or less stays one piece.
pub(crate) fn plan(audio: &[f32], region: Span, speech: Option<&[Span]>) -> Vec<Piece> {
    let shift = |piece: Piece| {
        Piece::new(
            piece
                .spans()
                .iter()
                .map(|s| Span {
                    start: s.start + region.start,
                    end: s.end + region.start,
                })
                .collect(),
        )
    };
    let region_audio = &audio[region.start..region.end];
    match speech {
        Some(spans) => {
            pieces::by_speech(region_audio, spans, MAX_PIECE_SAMPLES, QUIET_SEARCH_SAMPLES)
        }
        None => pieces::by_quiet(region_audio, MAX_PIECE_SAMPLES, QUIET_SEARCH_SAMPLES),
    }
    .into_iter()
    .map(shift)
    .collect()
}
