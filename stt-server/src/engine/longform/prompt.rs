//! Prompts: which text each piece is decoded after, the text before it
//! (when [`LongForm::condition_on_previous_text`] is set) or the request's
//! text prompt.

use whisper_safe::Params;

use super::piece::Decoded;
use super::LongForm;

/// A piece's text is prompted with at most this many tokens of the text
/// before it (whisper.cpp keeps half its 448-token context for the prompt).
pub(super) const MAX_PROMPT_TOKENS: usize = 224;
/// A window decoded above this temperature does not prompt the next one
/// (faster-whisper's `prompt_reset_on_temperature`).
const PROMPT_RESET_TEMPERATURE: f32 = 0.5;

impl LongForm<'_> {
    /// Adds what `decoded` said to the previous-text `prompt`, or clears it
    /// after a piece that needed a high temperature.
    pub(super) fn carry_prompt(&self, prompt: &mut Vec<i32>, decoded: &Decoded) {
        if !self.condition_on_previous_text {
            return;
        }
        let guarded = &decoded.guarded;
        if guarded.stats.temperature > PROMPT_RESET_TEMPERATURE {
            prompt.clear();
        } else if !guarded.silence {
            prompt.extend(guarded.transcript.prompt_token_ids());
            keep_last(prompt, MAX_PROMPT_TOKENS);
        }
    }

    /// Whether piece `index` gets the request's text prompt (in `params`).
    ///
    /// The request's text prompt goes to the first piece and, when the pieces
    /// are not prompted with each other's text, to every piece (as
    /// faster-whisper's batched pipeline gives it to every chunk): spelling
    /// and vocabulary hold for the whole recording.
    pub(super) fn gets_text_prompt(&self, params: &Params, index: usize) -> bool {
        (index == 0 || !self.condition_on_previous_text) && params.initial_prompt_text().is_some()
    }
}

/// Keeps the last `n` entries of `tokens`.
pub(super) fn keep_last(tokens: &mut Vec<i32>, n: usize) {
    let excess = tokens.len().saturating_sub(n);
    tokens.drain(..excess);
}

#[cfg(test)]
mod tests {
    use whisper_safe::CancelToken;

    use super::*;
    use crate::engine::longform::test_support::{job, timestamp, NoLender, Scripted};

    #[test]
    fn the_requests_prompt_reaches_every_piece_not_prompted_with_the_one_before() {
        let audio = vec![0.1; 16_000 * 70];
        let cancel = CancelToken::new();
        let text_prompts = |condition: bool| {
            let mut job = job(
                &audio,
                Params::greedy().initial_prompt(Some("Kubernetes, Grafana.")),
                &cancel,
            );
            job.condition_on_previous_text = condition;
            let mut decoder = Scripted::new(|_, call| vec![(0.0, call.seconds, " Words.")]);
            job.run(&mut decoder, &NoLender).unwrap();
            decoder
                .calls
                .iter()
                .map(|c| (c.text_prompt.is_some(), c.prompt.is_empty()))
                .collect::<Vec<_>>()
        };
        // Independent pieces: each gets the request's prompt, none the text before.
        assert_eq!(text_prompts(false), [(true, true); 3]);
        // Conditioned pieces: the first gets it, the others the text before.
        assert_eq!(
            text_prompts(true),
            [(true, true), (false, false), (false, false)]
        );
    }

    #[test]
    fn each_piece_is_prompted_with_the_tokens_before_it_timestamps_included() {
        let audio = vec![0.1; 16_000 * 70];
        let cancel = CancelToken::new();
        let job = job(&audio, Params::greedy(), &cancel);
        assert_eq!(job.pieces.len(), 3);
        let mut decoder = Scripted::new(|n, call| match n {
            0 => vec![(0.0, call.seconds, " One.")],
            1 => vec![(0.0, call.seconds, " Two two.")],
            _ => vec![(0.0, call.seconds, " Three.")],
        });
        let (transcript, stats) = job.run(&mut decoder, &NoLender).unwrap();
        let end = |n: usize| timestamp(decoder.calls[n].seconds).id;
        assert_eq!(decoder.calls[0].prompt, Vec::<i32>::new());
        assert_eq!(decoder.calls[1].prompt, [50364, 405, end(0)]);
        assert_eq!(
            decoder.calls[2].prompt,
            [50364, 405, end(0), 50364, 409, end(1)]
        );
        assert_eq!(stats.pieces, 3);
        assert_eq!(stats.states, 1);
        let starts: Vec<f64> = transcript.segments.iter().map(|s| s.start).collect();
        assert_eq!(starts[0], 0.0);
        assert!(starts.windows(2).all(|w| w[0] < w[1]), "{starts:?}");
        let indexes: Vec<usize> = transcript.segments.iter().map(|s| s.index).collect();
        assert_eq!(indexes, [0, 1, 2]);
    }
}
