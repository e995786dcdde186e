//! Voice activity detection of long audio on two threads: [`speech_in_halves`]
//! runs two [`Vad`]s on overlapping halves at once and joins their spans in a
//! pause both found.
//!
//! Silero's network carries an LSTM state from window to window, and turning
//! probabilities into spans is a left-to-right walk, so the two halves cannot
//! simply be concatenated. They can be joined where both walks are at rest: in
//! a pause long enough to end any span (spans end after the parameters'
//! minimum silence), far enough from either half's edge that the second half's
//! LSTM has warmed up and the first half's last span has ended. From such a
//! pause on, both walks see the same probabilities from the same state, so each
//! half gives the spans one pass over the whole audio gives on its side of it.

use std::ops::Range;

use crate::vad::{SpeechSpan, Vad, VadParams};
use crate::{Result, SAMPLE_RATE};

/// Shorter audio is searched in one pass (the halves' overlap would cost more
/// than the second thread saves).
pub const MIN_HALVES_SECONDS: usize = 120;
/// How far each half reaches past the point where they meet.
const OVERLAP_SECONDS: usize = 20;
/// How far from a half's edge the join may be: the second half's warm-up, and
/// the silence that ends the first half's last span (with its padding).
const EDGE_MARGIN_SECONDS: f64 = 5.0;
/// How far from the middle the halves may meet.
const MEETING_RANGE_SECONDS: usize = 90;
/// The stretch whose loudness picks the meeting point.
const QUIET_STRETCH_SECONDS: usize = 3;
/// The meeting point's grid: a whole number of VAD windows (512 samples) and of
/// centiseconds (whisper.cpp's unit for span times), so that both halves see
/// the same windows and round their times alike.
const GRID_SAMPLES: usize = 2560;

/// What [`speech_in_halves`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct HalvesSpeech {
    /// The spans of speech, in order, in seconds from the start of the audio.
    pub spans: Vec<SpeechSpan>,
    /// Where the halves were joined, seconds; `None`: one pass.
    pub joined_at: Option<f64>,
}

/// The spans of speech in `samples` (16 kHz mono), as [`Vad::speech`] finds
/// them with `params`, searched on this thread (`first`) and another
/// (`second`) at once when the audio is at least [`MIN_HALVES_SECONDS`] long.
/// The halves meet at the quietest few seconds within 90 s of the middle,
/// overlap there by 20 s each way, and are joined in the middle of a pause
/// both found (one that ends a span: at least the minimum silence between
/// padded spans). Without such a pause, the audio is searched in one pass with
/// `first`.
///
/// # Errors
/// As [`Vad::speech`], from either half.
pub fn speech_in_halves(
    first: &mut Vad,
    second: &mut Vad,
    samples: &[f32],
    params: &VadParams,
) -> Result<HalvesSpeech> {
    let one_pass = |first: &mut Vad| {
        Ok(HalvesSpeech {
            spans: first.speech(samples, params)?,
            joined_at: None,
        })
    };
    let rate = SAMPLE_RATE as usize;
    if samples.len() < MIN_HALVES_SECONDS * rate {
        return one_pass(first);
    }
    let meeting = meeting_point(samples);
    let overlap = OVERLAP_SECONDS * rate;
    let second_start = meeting - overlap;
    let (head, tail) = std::thread::scope(|scope| {
        let tail = scope.spawn(|| second.speech(&samples[second_start..], params));
        let head = first.speech(&samples[..meeting + overlap], params);
        let tail = tail
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (head, tail)
    });
    let seconds = |samples: usize| samples as f64 / f64::from(SAMPLE_RATE);
    let offset = seconds(second_start);
    let tail: Vec<SpeechSpan> = tail?
        .into_iter()
        .map(|s| SpeechSpan {
            start: s.start + offset,
            end: s.end + offset,
        })
        .collect();
    let near_meeting =
        offset + EDGE_MARGIN_SECONDS..seconds(meeting + overlap) - EDGE_MARGIN_SECONDS;
    match join(&head?, &tail, near_meeting, resting_gap_seconds(params)) {
        Some((spans, cut)) => Ok(HalvesSpeech {
            spans,
            joined_at: Some(cut),
        }),
        None => {
            log::debug!("no pause where the VAD halves meet: one pass");
            one_pass(first)
        }
    }
}

/// The middle of the quietest (least energy) stretch of a few seconds within
/// [`MEETING_RANGE_SECONDS`] of the middle of `samples`, on the grid; likely a
/// pause. `samples` must be at least [`MIN_HALVES_SECONDS`] long.
fn meeting_point(samples: &[f32]) -> usize {
    let rate = SAMPLE_RATE as usize;
    let edge = (OVERLAP_SECONDS + QUIET_STRETCH_SECONDS) * rate;
    let middle = samples.len() / 2;
    let range = middle
        .saturating_sub(MEETING_RANGE_SECONDS * rate)
        .max(edge)
        ..(middle + MEETING_RANGE_SECONDS * rate).min(samples.len() - edge);
    // Energy per grid step, then the quietest run of steps.
    let steps: Vec<f64> = samples[range.clone()]
        .chunks(GRID_SAMPLES)
        .map(|chunk| chunk.iter().map(|&x| f64::from(x) * f64::from(x)).sum())
        .collect();
    let run = QUIET_STRETCH_SECONDS * rate / GRID_SAMPLES;
    let quietest = steps
        .windows(run)
        .map(|w| w.iter().sum::<f64>())
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map_or(0, |(i, _)| i);
    let point = range.start + (quietest + run / 2) * GRID_SAMPLES;
    point / GRID_SAMPLES * GRID_SAMPLES
}

/// A gap between padded spans this long can only follow a span that ended:
/// its silence lasted the minimum silence plus both paddings, while a span
/// split for its length stopped at a shorter silence. At least 1 s, in whole
/// seconds.
fn resting_gap_seconds(params: &VadParams) -> f64 {
    let silence = f64::from(params.min_silence_duration_ms) / 1000.0;
    silence.max(1.0).ceil()
}

/// `head`'s spans before, and `tail`'s after, the middle of the first stretch
/// of at least `gap` seconds inside `window` where neither list has a span,
/// and that middle; `None` without one.
fn join(
    head: &[SpeechSpan],
    tail: &[SpeechSpan],
    window: Range<f64>,
    gap: f64,
) -> Option<(Vec<SpeechSpan>, f64)> {
    let tail_gaps: Vec<Range<f64>> = gaps(tail).collect();
    let cut = gaps(head).find_map(|head_gap| {
        tail_gaps.iter().find_map(|tail_gap| {
            let from = head_gap.start.max(tail_gap.start).max(window.start);
            let to = head_gap.end.min(tail_gap.end).min(window.end);
            (to - from >= gap).then_some((from + to) / 2.0)
        })
    })?;
    let mut spans: Vec<SpeechSpan> = head.iter().filter(|s| s.end <= cut).copied().collect();
    spans.extend(tail.iter().filter(|s| s.start >= cut));
    Some((spans, cut))
}

/// The stretches between `spans` (in order), the open ends included.
fn gaps(spans: &[SpeechSpan]) -> impl Iterator<Item = Range<f64>> + '_ {
    let ends = [f64::NEG_INFINITY]
        .into_iter()
        .chain(spans.iter().map(|s| s.end));
    let starts = spans.iter().map(|s| s.start).chain([f64::INFINITY]);
    ends.zip(starts).map(|(end, start)| end..start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vad::WINDOW_SAMPLES;

    fn spans(list: &[(f64, f64)]) -> Vec<SpeechSpan> {
        list.iter()
            .map(|&(start, end)| SpeechSpan { start, end })
            .collect()
    }

    #[test]
    fn halves_join_in_a_pause_both_found() {
        // Head: 0–120 s, tail: 60–180 s; they agree on 80–100 s.
        let head = spans(&[(10.0, 50.0), (70.0, 85.0), (90.0, 100.0), (110.0, 120.0)]);
        let tail = spans(&[(60.0, 66.0), (70.5, 85.0), (90.0, 100.0), (105.0, 150.0)]);
        let (joined, cut) = join(&head, &tail, 80.0..115.0, 2.0).unwrap();
        assert_eq!(cut, 87.5);
        // The first gap of 2 s inside the window is 85–90 s: cut at 87.5 s.
        assert_eq!(
            joined,
            spans(&[(10.0, 50.0), (70.0, 85.0), (90.0, 100.0), (105.0, 150.0)])
        );
    }

    #[test]
    fn a_gap_the_other_half_does_not_have_is_not_a_join() {
        let head = spans(&[(60.0, 80.0), (83.0, 100.0)]);
        // The tail heard speech in the head's pause at 80–83 s, then paused at 100–104 s.
        let tail = spans(&[(60.0, 100.0), (104.0, 130.0)]);
        let (joined, cut) = join(&head, &tail, 65.0..115.0, 2.0).unwrap();
        assert_eq!(
            joined,
            spans(&[(60.0, 80.0), (83.0, 100.0), (104.0, 130.0)])
        );
        assert_eq!(cut, 102.0);
        // Without the pause at 100–104 s, there is nowhere to join.
        let tail = spans(&[(60.0, 130.0)]);
        assert_eq!(join(&head, &tail, 65.0..115.0, 2.0), None);
    }

    #[test]
    fn silence_across_the_middle_is_a_join_and_short_gaps_are_not() {
        let head = spans(&[(10.0, 40.0), (150.0, 160.0)]);
        let tail = spans(&[(150.0, 170.0)]);
        let (joined, cut) = join(&head, &tail, 65.0..115.0, 2.0).unwrap();
        assert_eq!(joined, spans(&[(10.0, 40.0), (150.0, 170.0)]));
        assert_eq!(cut, 90.0);
        // Gaps of 1.5 s inside the window: not a resting pause.
        let head = spans(&[(60.0, 80.0), (81.5, 120.0)]);
        let tail = spans(&[(60.0, 80.0), (81.5, 170.0)]);
        assert_eq!(join(&head, &tail, 65.0..115.0, 2.0), None);
    }

    #[test]
    fn the_halves_meet_on_the_grid_in_the_quietest_stretch_near_the_middle() {
        let rate = SAMPLE_RATE as usize;
        let mut audio = vec![0.3f32; 300 * rate];
        // Quiet at 100–104 s (within 90 s of the middle) and at 10–20 s (not).
        audio[100 * rate..104 * rate].fill(0.001);
        audio[10 * rate..20 * rate].fill(0.0);
        let point = meeting_point(&audio);
        assert!(point.is_multiple_of(GRID_SAMPLES));
        assert!(point.is_multiple_of(WINDOW_SAMPLES as usize) && point.is_multiple_of(rate / 100));
        let at = point as f64 / f64::from(SAMPLE_RATE);
        assert!((100.0..104.0).contains(&at), "met at {at} s");
        // Even loudness: somewhere in range, with room for the overlap.
        let point = meeting_point(&vec![0.3f32; 130 * rate]);
        assert!(point >= (OVERLAP_SECONDS + QUIET_STRETCH_SECONDS) * rate);
        assert!(point <= 130 * rate - OVERLAP_SECONDS * rate);
    }

    #[test]
    fn the_resting_gap_follows_the_minimum_silence() {
        assert_eq!(resting_gap_seconds(&VadParams::faster_whisper()), 2.0);
        assert_eq!(resting_gap_seconds(&VadParams::default()), 1.0);
    }
}
