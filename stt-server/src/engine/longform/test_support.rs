//! Test support: a scripted decoder, a lender with nothing to lend, and jobs
//! over made-up audio.

use whisper_safe::guard::Guard;
use whisper_safe::pieces::{Piece, Span};
use whisper_safe::{CancelToken, Params, RunOptions, Segment, Token, Transcript};

use super::lending::{Borrowed, Lender};
use super::{plan, LongForm};
use crate::engine::model::Decoder;

/// What a scripted decoder was asked: the language, the prompt, the
/// seconds of audio and the threads of each call.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Call {
    pub(super) language: Option<String>,
    pub(super) prompt: Vec<i32>,
    pub(super) text_prompt: Option<String>,
    pub(super) seconds: f64,
    pub(super) threads: Option<u32>,
}

/// whisper's timestamp token for `seconds` into a window.
pub(super) fn timestamp(seconds: f64) -> Token {
    Token {
        id: 50364 + (seconds / 0.02).round() as i32,
        special: true,
        ..Token::default()
    }
}

/// A segment of `text` from `start` to `end`: a timestamp token, one text
/// token (`id`) and a timestamp token.
pub(super) fn text_segment(start: f64, end: f64, text: &str, id: i32) -> Segment {
    Segment {
        start,
        end,
        text: text.into(),
        tokens: vec![
            timestamp(start),
            Token {
                id,
                text: text.into(),
                logprob: -0.1,
                ..Token::default()
            },
            timestamp(end),
        ],
        ..Segment::default()
    }
}

/// Answers each call with `answer(call number, call)`: segments as
/// `(start, end, text)` in the window's own seconds, each a
/// [`text_segment`] with text token id 400 + text length.
pub(super) struct Scripted<F> {
    pub(super) calls: Vec<Call>,
    answer: F,
}

impl<F> Scripted<F>
where
    F: FnMut(usize, &Call) -> Vec<(f64, f64, &'static str)> + Send,
{
    /// A decoder answering with `answer`, no call made yet.
    pub(super) fn new(answer: F) -> Self {
        Self {
            calls: Vec::new(),
            answer,
        }
    }
}

impl<F> Decoder for Scripted<F>
where
    F: FnMut(usize, &Call) -> Vec<(f64, f64, &'static str)> + Send,
{
    fn run(
        &mut self,
        params: &Params,
        samples: &[f32],
        _: RunOptions<'_>,
    ) -> whisper_safe::Result<Transcript> {
        let call = Call {
            language: params.requested_language().map(str::to_owned),
            prompt: params.prompt_token_list().to_vec(),
            text_prompt: params.initial_prompt_text().map(str::to_owned),
            seconds: samples.len() as f64 / 16_000.0,
            threads: params.thread_count(),
        };
        let segments = (self.answer)(self.calls.len(), &call)
            .into_iter()
            .map(|(start, end, text)| text_segment(start, end, text, 400 + text.len() as i32))
            .collect();
        self.calls.push(call);
        Ok(Transcript {
            segments,
            language: Some("de".into()),
            ..Transcript::default()
        })
    }
}

/// Lends nothing.
pub(super) struct NoLender;

impl Lender for NoLender {
    fn borrow(&self) -> Option<Borrowed<'_>> {
        None
    }
    fn spare(&self) -> Option<Borrowed<'_>> {
        None
    }
    fn wanted_back(&self) -> bool {
        false
    }
}

/// A job over all of `audio`, cut without VAD, its pieces taken as speech,
/// each prompted with the text before it, one thread per piece.
pub(super) fn job<'a>(audio: &'a [f32], params: Params, cancel: &'a CancelToken) -> LongForm<'a> {
    LongForm {
        audio,
        pieces: plan(
            audio,
            Span {
                start: 0,
                end: audio.len(),
            },
            None,
        ),
        params,
        guard: Guard::default(),
        condition_on_previous_text: true,
        threads_per_piece: 1,
        speech_only: true,
        cancel,
        on_segment: None,
        on_progress: None,
    }
}

/// `n` pieces of 5 s, piece `i`'s samples all `i / 100`.
pub(super) fn numbered_pieces(n: usize) -> (Vec<f32>, Vec<Piece>) {
    let len = 16_000 * 5;
    let audio = (0..n * len).map(|s| (s / len) as f32 / 100.0).collect();
    let pieces = (0..n)
        .map(|i| {
            Piece::new(vec![Span {
                start: i * len,
                end: (i + 1) * len,
            }])
        })
        .collect();
    (audio, pieces)
}
