//! One piece's decoding: its window under the fallback guard, an empty
//! answer decoded again without the prompt, and the rests after an early
//! end, merged into one [`Decoded`] on the recording's timeline.

use std::borrow::Cow;

use whisper_safe::guard::Guarded;
use whisper_safe::pieces::Piece;
use whisper_safe::{Params, RunOptions};

use super::prompt::{keep_last, MAX_PROMPT_TOKENS};
use super::{samples_of, seconds_of, LongForm};
use crate::engine::model::Decoder;

/// A piece whose decode ended at least this long before the piece does has
/// its rest decoded again.
const REMAINDER_MIN_SECONDS: f64 = 2.0;
/// At most this many rests are decoded per piece.
const MAX_REMAINDERS: u32 = 3;

/// A decoded piece: its windows merged, and what it took.
#[derive(Clone, Debug, Default)]
pub(super) struct Decoded {
    pub(super) guarded: Guarded,
    /// Re-decodes at a higher temperature, over all its windows.
    pub(super) fallbacks: u32,
    /// Windows decoded for the rest after an early end.
    pub(super) remainders: u32,
    /// Times an empty answer was decoded again without the prompt.
    pub(super) unprompted_retries: u32,
}

impl LongForm<'_> {
    /// Decodes piece `index` prompted with `prompt`, with its times on the
    /// recording's timeline.
    ///
    /// whisper.cpp ends a window early when the model closes its last
    /// segment with a single timestamp (taken as "no speech after this"), and
    /// a prompt can make the model answer a piece with nothing at all. When
    /// the pieces are [`speech_only`](Self::speech_only), neither can be
    /// right: an empty answer is decoded once more without the prompt, and
    /// the rest after the last segment (when at least
    /// [`REMAINDER_MIN_SECONDS`]) is decoded again, prompted with what came
    /// before it.
    ///
    /// The request's text prompt goes where
    /// [`gets_text_prompt`](Self::gets_text_prompt) says.
    ///
    /// # Errors
    /// The first error of any of its windows.
    pub(super) fn decode(
        &self,
        decoder: &mut dyn Decoder,
        params: &Params,
        index: usize,
        prompt: &[i32],
        in_order: bool,
    ) -> whisper_safe::Result<Decoded> {
        let piece = &self.pieces[index];
        let done_before: usize = self.pieces[..index].iter().map(Piece::len).sum();
        let text_prompt = self.gets_text_prompt(params, index);
        let mut window = |part: &Piece, prompt: &[i32], text_prompt: bool| {
            let skipped = piece.len() - part.len();
            self.decode_window(
                decoder,
                params,
                part,
                prompt,
                text_prompt && skipped == 0,
                in_order.then_some(done_before + skipped),
            )
        };
        let mut guarded = window(piece, prompt, text_prompt)?;
        let mut decoded = Decoded::default();
        if self.speech_only && !guarded.stats.has_text && (text_prompt || !prompt.is_empty()) {
            decoded.unprompted_retries += 1;
            guarded = window(piece, &[], false)?;
        }
        let mut rest = piece.tail(samples_of(
            guarded.transcript.segments.last().map_or(0.0, |s| s.end),
        ));
        piece.map_times(&mut guarded.transcript);
        decoded.fallbacks += guarded.fallbacks();
        let mut all = guarded;
        while self.speech_only
            && !all.silence
            && decoded.remainders < MAX_REMAINDERS
            && rest.len() >= samples_of(REMAINDER_MIN_SECONDS)
        {
            let mut rest_prompt = prompt.to_vec();
            rest_prompt.extend(all.transcript.prompt_token_ids());
            keep_last(&mut rest_prompt, MAX_PROMPT_TOKENS);
            let mut tail = window(&rest, &rest_prompt, false)?;
            decoded.remainders += 1;
            decoded.fallbacks += tail.fallbacks();
            let Some(end) = tail.transcript.segments.last().map(|s| s.end) else {
                break;
            };
            if tail.silence {
                break;
            }
            let next = rest.tail(samples_of(end));
            rest.map_times(&mut tail.transcript);
            merge(&mut all, tail);
            rest = next;
        }
        log::debug!(
            "piece {index} ({:.2}-{:.2} s, {:.1} s of audio): temperature {}, compression {:.2}, \
             log-prob {:.2}, no-speech {:.2}, silence {}, {} window(s), {} fallback(s), \
             {} rest(s) decoded, {} retried without prompt, {} segment(s) ending at {:.2} s",
            piece.start_seconds(),
            piece.end_seconds(),
            seconds_of(piece.len()),
            all.stats.temperature,
            all.stats.compression_ratio,
            all.stats.avg_logprob,
            all.stats.no_speech_prob,
            all.silence,
            all.transcript.timings.windows,
            decoded.fallbacks,
            decoded.remainders,
            decoded.unprompted_retries,
            all.transcript.segments.len(),
            all.transcript.segments.last().map_or(0.0, |s| s.end),
        );
        decoded.guarded = all;
        Ok(decoded)
    }

    /// Decodes `part` once under the guard, with its times still its own;
    /// the request's text prompt is kept only when `initial_prompt` is set;
    /// reports progress when `done_before` (samples of the job before it) is
    /// given.
    fn decode_window(
        &self,
        decoder: &mut dyn Decoder,
        params: &Params,
        part: &Piece,
        prompt: &[i32],
        initial_prompt: bool,
        done_before: Option<usize>,
    ) -> whisper_safe::Result<Guarded> {
        let mut samples = part.samples(self.audio);
        if samples.len() < whisper_safe::MIN_SAMPLES {
            let mut padded = samples.into_owned();
            padded.resize(whisper_safe::MIN_SAMPLES, 0.0);
            samples = Cow::Owned(padded);
        }
        // Token times let segments be cut at sentence ends (Stitcher::emit).
        let mut params = params.clone().token_timestamps(true);
        if !initial_prompt {
            params = params.initial_prompt(None);
        }
        if !prompt.is_empty() {
            params = params.prompt_tokens(prompt);
        }
        let total: usize = self.pieces.iter().map(Piece::len).sum::<usize>().max(1);
        let part_len = part.len();
        let mut progress = |percent: u8| {
            if let (Some(report), Some(done_before)) = (self.on_progress, done_before) {
                let done = done_before as f32 + part_len as f32 * f32::from(percent) / 100.0;
                report(done / total as f32);
            }
        };
        self.guard.decode(&params, |attempt| {
            decoder.run(
                attempt,
                &samples,
                RunOptions {
                    cancel: Some(self.cancel),
                    on_progress: Some(&mut progress),
                    on_segment: None,
                },
            )
        })
    }
}

/// Appends `tail` (the rest of the same piece, decoded after `all`) to `all`.
fn merge(all: &mut Guarded, tail: Guarded) {
    all.decodes += tail.decodes;
    all.stats.temperature = all.stats.temperature.max(tail.stats.temperature);
    all.stats.compression_ratio = all
        .stats
        .compression_ratio
        .max(tail.stats.compression_ratio);
    all.stats.avg_logprob = all.stats.avg_logprob.min(tail.stats.avg_logprob);
    all.stats.has_text |= tail.stats.has_text;
    all.transcript.timings.add(&tail.transcript.timings);
    all.transcript.segments.extend(tail.transcript.segments);
}

#[cfg(test)]
mod tests {
    use whisper_safe::CancelToken;

    use super::*;
    use crate::engine::longform::test_support::{job, Call, NoLender, Scripted};

    #[test]
    fn the_rest_of_a_piece_ended_early_is_decoded_prompted_with_what_came_before() {
        // One piece of 25 s; the first answer stops at 10 s, the second
        // (the 15 s left) at 9 s of its own, the third covers the last 6 s.
        let audio = vec![0.1; 16_000 * 25];
        let cancel = CancelToken::new();
        let mut decoder = Scripted::new(|n, call| match n {
            0 => vec![(0.0, 4.0, " One."), (4.0, 10.0, " Two.")],
            1 => vec![(0.0, 9.0, " Three.")],
            _ => vec![(0.0, call.seconds, " Four.")],
        });
        let (transcript, stats) = job(&audio, Params::greedy(), &cancel)
            .run(&mut decoder, &NoLender)
            .unwrap();
        let seconds: Vec<f64> = decoder.calls.iter().map(|c| c.seconds).collect();
        assert_eq!(seconds, [25.0, 15.0, 6.0]);
        let text_ids = |call: &Call| -> Vec<i32> {
            call.prompt
                .iter()
                .copied()
                .filter(|&id| id < 50364)
                .collect()
        };
        assert_eq!(text_ids(&decoder.calls[1]), [405, 405]);
        assert_eq!(text_ids(&decoder.calls[2]), [405, 405, 407]);
        let spans: Vec<(f64, f64)> = transcript
            .segments
            .iter()
            .map(|s| (s.start, s.end))
            .collect();
        assert_eq!(spans, [(0.0, 4.0), (4.0, 10.0), (10.0, 19.0), (19.0, 25.0)]);
        assert_eq!(transcript.text(), "One. Two. Three. Four.");
        assert_eq!(stats.remainders, 2);
        assert_eq!(stats.fallbacks, 0);
        // Pieces not known to be speech (no VAD) may end in silence: an early
        // end stands, as in whisper.cpp.
        let mut decoder = Scripted::new(|_, _| vec![(0.0, 10.0, " One.")]);
        let mut unknown = job(&audio, Params::greedy(), &cancel);
        unknown.speech_only = false;
        let (transcript, stats) = unknown.run(&mut decoder, &NoLender).unwrap();
        assert_eq!(decoder.calls.len(), 1);
        assert_eq!(transcript.segments.len(), 1);
        assert_eq!(stats.remainders, 0);
    }

    #[test]
    fn an_empty_answer_to_a_prompted_piece_is_decoded_again_without_the_prompt() {
        let audio = vec![0.1; 16_000 * 50];
        let cancel = CancelToken::new();
        let mut decoder = Scripted::new(|n, call| match (n, call.prompt.is_empty()) {
            (0, _) => vec![(0.0, call.seconds, " First.")],
            (_, true) => vec![(0.0, call.seconds, " Second.")],
            (_, false) => Vec::new(),
        });
        let (transcript, stats) = job(&audio, Params::greedy(), &cancel)
            .run(&mut decoder, &NoLender)
            .unwrap();
        let prompts: Vec<usize> = decoder.calls.iter().map(|c| c.prompt.len()).collect();
        assert_eq!(prompts, [0, 3, 0]);
        assert_eq!(transcript.segments.len(), 2);
        assert_eq!(stats.silent, 0);
        assert_eq!(stats.remainders, 1);
    }

    #[test]
    fn an_empty_answer_under_the_requests_prompt_is_decoded_again_without_it() {
        let audio = vec![0.1; 16_000 * 25];
        let cancel = CancelToken::new();
        let mut job = job(
            &audio,
            Params::greedy().initial_prompt(Some("Hints.")),
            &cancel,
        );
        job.condition_on_previous_text = false;
        let mut decoder = Scripted::new(|_, call| match call.text_prompt {
            Some(_) => Vec::new(),
            None => vec![(0.0, call.seconds, " Words.")],
        });
        let (transcript, stats) = job.run(&mut decoder, &NoLender).unwrap();
        let prompted: Vec<bool> = decoder
            .calls
            .iter()
            .map(|c| c.text_prompt.is_some())
            .collect();
        assert_eq!(prompted, [true, false]);
        assert_eq!(transcript.text().trim(), "Words.");
        assert_eq!(stats.remainders, 1);
    }
}
