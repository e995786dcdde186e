//! Decoding states beyond the job's own: a [`Lender`] hands them out as
//! [`Borrowed`] states, which go back when dropped unless a failure
//! [`poisons`] them.

use crate::engine::model::Decoder;

/// Hands a lent state back (`None` when it must not be used again).
type GiveBack<'a> = Box<dyn FnOnce(Option<Box<dyn Decoder>>) + Send + 'a>;

/// A decoding state lent by an idle worker; given back when dropped (not
/// when dropped by a panic, or after a failure that poisoned it).
pub(crate) struct Borrowed<'a> {
    decoder: Option<Box<dyn Decoder>>,
    give_back: Option<GiveBack<'a>>,
}

impl<'a> Borrowed<'a> {
    /// `decoder`, handed to `give_back` when done with.
    pub(crate) fn new(
        decoder: Box<dyn Decoder>,
        give_back: impl FnOnce(Option<Box<dyn Decoder>>) + Send + 'a,
    ) -> Self {
        Self {
            decoder: Some(decoder),
            give_back: Some(Box::new(give_back)),
        }
    }
}

impl Borrowed<'_> {
    /// Runs `work` on the state, and drops the state when `work` says a
    /// failure left it unusable.
    pub(super) fn work(&mut self, work: impl FnOnce(&mut dyn Decoder) -> bool) {
        if let Some(decoder) = self.decoder.as_mut() {
            if !work(decoder.as_mut()) {
                self.decoder = None;
            }
        }
    }
}

impl Drop for Borrowed<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.decoder = None;
        }
        if let Some(give_back) = self.give_back.take() {
            give_back(self.decoder.take());
        }
    }
}

/// Where extra decoding states come from.
pub(crate) trait Lender: Sync {
    /// An idle worker's state, if one is idle and no job waits.
    fn borrow(&self) -> Option<Borrowed<'_>>;
    /// One more state of the job's model, for a worker's spare threads.
    fn spare(&self) -> Option<Borrowed<'_>>;
    /// Whether a job is waiting, so borrowed states should go back.
    fn wanted_back(&self) -> bool;
}

/// Whether `error` left the decoding state unusable.
pub(crate) fn poisons(error: &whisper_safe::Error) -> bool {
    matches!(
        error,
        whisper_safe::Error::Poisoned | whisper_safe::Error::Transcription { code: -7, .. }
    )
}
