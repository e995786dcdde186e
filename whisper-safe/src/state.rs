//! [`State`]: one decoding state over a shared [`Context`].

use std::cell::{Cell, RefCell};
use std::ffi::{c_int, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use whisper_sys::{whisper_context, whisper_state, whisper_token_data};

use crate::context::{ContextInner, INIT_LOCK};
use crate::transcript::{words_of, RunTimings, Segment, Token, Transcript};
use crate::{language, logging, Context, Error, Language, Params, Result};

/// The sample rate whisper expects.
pub const SAMPLE_RATE: u32 = 16_000;
/// Shortest audio accepted: 100 ms.
pub const MIN_SAMPLES: usize = 1_600;

/// Cancels a run from another thread; polled between graph computations.
#[derive(Clone, Debug, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks every run holding this token to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Callbacks of one run. Closures run on the calling thread inside
/// `catch_unwind`: a panic stops the run and becomes [`Error::CallbackPanicked`];
/// no callback is called again after a panic.
#[derive(Default)]
pub struct RunOptions<'a> {
    /// Stops the run when cancelled ([`Error::Aborted`]).
    pub cancel: Option<&'a CancelToken>,
    /// Called with the progress in percent.
    pub on_progress: Option<&'a mut dyn FnMut(u8)>,
    /// Called with each new segment as soon as it is decoded.
    pub on_segment: Option<&'a mut dyn FnMut(&Segment)>,
}

/// One decoding state: `Send` but not `Sync`; every call takes `&mut self`.
/// Holds its [`Context`] alive.
///
/// ```compile_fail
/// fn needs_sync<T: Sync>() {}
/// needs_sync::<whisper_safe::State>();
/// ```
pub struct State {
    ptr: Option<NonNull<whisper_state>>,
    ctx: Context,
}

// SAFETY: a whisper_state is used by one thread at a time (every method takes
// &mut self, and State is not Sync); it may move between threads.
unsafe impl Send for State {}

impl Drop for State {
    fn drop(&mut self) {
        if let Some(ptr) = self.ptr.take() {
            // SAFETY: `ptr` came from whisper_init_state and was not freed by
            // whisper.cpp (a -7 run clears `self.ptr`).
            unsafe { (self.ctx.inner.api.whisper_free_state)(ptr.as_ptr()) };
        }
    }
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("poisoned", &self.ptr.is_none())
            .finish()
    }
}

impl Context {
    /// Creates a decoding state (its own buffers: ~150–400 MB depending on the model).
    ///
    /// # Errors
    /// [`Error::StateInit`] when whisper.cpp cannot allocate it.
    pub fn create_state(&self) -> Result<State> {
        let inner = &self.inner;
        let _guard = INIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        logging::clear_last_error();
        // SAFETY: the context is valid for as long as `self` lives.
        let ptr = unsafe { (inner.api.whisper_init_state)(inner.ptr.as_ptr()) };
        let ptr = NonNull::new(ptr).ok_or_else(|| Error::StateInit {
            reason: logging::take_last_error("whisper_init_state returned NULL"),
        })?;
        Ok(State {
            ptr: Some(ptr),
            ctx: self.clone(),
        })
    }
}

impl State {
    /// The context this state decodes with.
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// Transcribes 16 kHz mono samples in [-1, 1].
    ///
    /// # Errors
    /// See [`State::full_with`].
    pub fn full(&mut self, params: &Params, samples: &[f32]) -> Result<Transcript> {
        self.full_with(params, samples, SAMPLE_RATE, RunOptions::default())
    }

    /// Transcribes with callbacks. `sample_rate` must be 16 000: resample first
    /// (see the `audio` module).
    ///
    /// # Errors
    /// [`Error::InvalidAudio`], [`Error::InvalidParam`], [`Error::UnsupportedLanguage`]
    /// before anything runs; [`Error::Aborted`] when cancelled;
    /// [`Error::CallbackPanicked`]; [`Error::Transcription`] with whisper.cpp's code;
    /// [`Error::Poisoned`] once the state was freed by a failed run.
    pub fn full_with(
        &mut self,
        params: &Params,
        samples: &[f32],
        sample_rate: u32,
        options: RunOptions<'_>,
    ) -> Result<Transcript> {
        let state = self.ptr.ok_or(Error::Poisoned)?;
        let n_samples = check_samples(samples, sample_rate)?;
        let inner: &ContextInner = &self.ctx.inner;
        let mut raw = params.to_raw(inner, samples.len())?;
        let temperature = raw.raw.temperature;
        let word_timestamps = params.wants_words();
        let token_timestamps = raw.raw.token_timestamps;

        let hooks = Hooks {
            inner,
            cancel: options.cancel,
            on_progress: RefCell::new(options.on_progress),
            on_segment: RefCell::new(options.on_segment),
            segments_seen: RefCell::new(0),
            panic: RefCell::new(None),
            temperature,
            token_timestamps,
            word_timestamps,
            window_started: Cell::new(None),
            windows: Cell::new(0),
            encoder_seconds: Cell::new(0.0),
        };
        let user_data = &hooks as *const Hooks<'_, '_> as *mut c_void;
        raw.raw.abort_callback = Some(abort_hook);
        raw.raw.abort_callback_user_data = user_data;
        raw.raw.encoder_begin_callback = Some(encoder_begin_hook);
        raw.raw.encoder_begin_callback_user_data = user_data;
        raw.raw.progress_callback = Some(progress_hook);
        raw.raw.progress_callback_user_data = user_data;
        raw.raw.new_segment_callback = Some(new_segment_hook);
        raw.raw.new_segment_callback_user_data = user_data;
        raw.raw.logits_filter_callback = Some(logits_filter_hook);
        raw.raw.logits_filter_callback_user_data = user_data;

        logging::clear_last_error();
        let started = Instant::now();
        // SAFETY: context and state are valid; `samples` outlives the call;
        // `raw` (and the strings it points to) and `hooks` live on this frame
        // until the call returns; callbacks run on this thread only.
        let code = unsafe {
            (inner.api.whisper_full_with_state)(
                inner.ptr.as_ptr(),
                state.as_ptr(),
                raw.raw,
                samples.as_ptr(),
                n_samples,
            )
        };
        let run_seconds = started.elapsed().as_secs_f64();
        if let Some(message) = hooks.panic.borrow_mut().take() {
            return Err(Error::CallbackPanicked(message));
        }
        if options.cancel.is_some_and(CancelToken::is_cancelled) {
            return Err(Error::Aborted);
        }
        if code != 0 {
            if code == -7 {
                // whisper.cpp has freed the state itself.
                self.ptr = None;
            }
            return Err(Error::Transcription {
                code,
                reason: format!(
                    "{} ({})",
                    describe_code(code),
                    logging::take_last_error("no details logged")
                ),
            });
        }
        // SAFETY: the run succeeded; results live in the state until the next run.
        let (segments, language) = unsafe {
            let count = (inner.api.whisper_full_n_segments_from_state)(state.as_ptr());
            let segments = (0..count)
                .map(|i| {
                    read_segment(
                        inner,
                        state.as_ptr(),
                        i,
                        temperature,
                        token_timestamps,
                        word_timestamps,
                    )
                })
                .collect();
            let lang_id = (inner.api.whisper_full_lang_id_from_state)(state.as_ptr());
            (segments, lang_code(inner, lang_id))
        };
        let mut transcript = Transcript {
            segments,
            language,
            language_probability: None,
            duration_seconds: samples.len() as f64 / f64::from(SAMPLE_RATE),
            timings: RunTimings {
                windows: hooks.windows.get(),
                encoder_seconds: hooks.encoder_seconds.get(),
                decoder_seconds: (run_seconds - hooks.encoder_seconds.get()).max(0.0),
            },
        };
        transcript.clamp_times();
        Ok(transcript)
    }

    /// Detects the spoken language from the first 30 s; returns every language
    /// with its probability, most likely first. whisper.cpp encodes with the
    /// context of the state's last run: after a run with a trimmed context
    /// ([`AudioContext`](crate::AudioContext)), detection sees only that many
    /// frames, so detect on a fresh state (or one whose last run used the full
    /// context) to hear all 30 s.
    ///
    /// # Errors
    /// [`Error::InvalidAudio`], [`Error::InvalidParam`] for zero threads,
    /// [`Error::UnsupportedLanguage`] for an English-only model,
    /// [`Error::Transcription`] when detection fails.
    pub fn detect_language(
        &mut self,
        samples: &[f32],
        threads: u32,
    ) -> Result<Vec<(Language, f32)>> {
        let state = self.ptr.ok_or(Error::Poisoned)?;
        let n_samples = check_samples(samples, SAMPLE_RATE)?;
        let inner: &ContextInner = &self.ctx.inner;
        if !(1..=512).contains(&threads) {
            return Err(Error::InvalidParam {
                name: "threads",
                reason: format!("{threads} is not in 1..=512"),
            });
        }
        if !inner.info.multilingual {
            return Err(Error::UnsupportedLanguage {
                code: "auto".into(),
                reason: "an English-only model cannot detect languages".into(),
            });
        }
        let languages = language::all(inner.api);
        let mut probabilities = vec![0f32; languages.len()];
        logging::clear_last_error();
        // SAFETY: valid context and state; `probabilities` has whisper_lang_max_id()+1 slots.
        let code = unsafe {
            let ctx = inner.ptr.as_ptr();
            let mel = (inner.api.whisper_pcm_to_mel_with_state)(
                ctx,
                state.as_ptr(),
                samples.as_ptr(),
                n_samples,
                threads as c_int,
            );
            if mel != 0 {
                mel.min(-1)
            } else {
                (inner.api.whisper_lang_auto_detect_with_state)(
                    ctx,
                    state.as_ptr(),
                    0,
                    threads as c_int,
                    probabilities.as_mut_ptr(),
                )
            }
        };
        if code < 0 {
            return Err(Error::Transcription {
                code,
                reason: format!(
                    "language detection failed ({})",
                    logging::take_last_error("no details logged")
                ),
            });
        }
        let mut ranked: Vec<(Language, f32)> = languages.into_iter().zip(probabilities).collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok(ranked)
    }
}

fn check_samples(samples: &[f32], sample_rate: u32) -> Result<c_int> {
    if sample_rate != SAMPLE_RATE {
        return Err(Error::InvalidAudio(format!(
            "sample rate is {sample_rate} Hz; whisper needs {SAMPLE_RATE} Hz (resample first)"
        )));
    }
    if samples.is_empty() {
        return Err(Error::InvalidAudio("no samples".into()));
    }
    if samples.len() < MIN_SAMPLES {
        return Err(Error::InvalidAudio(format!(
            "{} samples ({:.0} ms) is too short; at least {MIN_SAMPLES} (100 ms) are needed",
            samples.len(),
            samples.len() as f64 * 1000.0 / f64::from(SAMPLE_RATE)
        )));
    }
    if let Some(i) = samples.iter().position(|s| !s.is_finite()) {
        return Err(Error::InvalidAudio(format!(
            "sample {i} is not a finite number"
        )));
    }
    c_int::try_from(samples.len()).map_err(|_| {
        Error::InvalidAudio(format!(
            "{} samples is more than whisper can take",
            samples.len()
        ))
    })
}

fn describe_code(code: c_int) -> &'static str {
    match code {
        -1 => "invalid input",
        -2 => "failed to compute the mel spectrogram",
        -3 => "failed to detect the language",
        -4 => "too many decoders",
        -5 => "audio_ctx is larger than the model's",
        -6 => "the encoder failed",
        -7 => "failed to allocate the KV cache; the state was freed",
        -8 | -9 => "the decoder failed",
        _ => "unknown failure",
    }
}

fn lang_code(inner: &ContextInner, id: c_int) -> Option<String> {
    if id < 0 {
        return None;
    }
    language::all(inner.api)
        .into_iter()
        .find(|l| l.id == id)
        .map(|l| l.code)
}

/// Reads segment `i` out of the state into owned values.
///
/// # Safety
/// `state` holds the results of a finished (or in-progress, for segments already
/// reported) run over `inner`'s context, and `i` is below its segment count.
unsafe fn read_segment(
    inner: &ContextInner,
    state: *mut whisper_state,
    i: c_int,
    temperature: f32,
    token_timestamps: bool,
    word_timestamps: bool,
) -> Segment {
    let api = inner.api;
    let ctx = inner.ptr.as_ptr();
    let centis = |t: i64| t as f64 / 100.0;
    // SAFETY: guaranteed by the caller; pointers returned live until the next run
    // and are copied before returning.
    unsafe {
        let start = centis((api.whisper_full_get_segment_t0_from_state)(state, i));
        let end = centis((api.whisper_full_get_segment_t1_from_state)(state, i));
        let text = c_bytes((api.whisper_full_get_segment_text_from_state)(state, i));
        let n_tokens = (api.whisper_full_n_tokens_from_state)(state, i);
        let mut tokens = Vec::with_capacity(n_tokens.max(0) as usize);
        let mut raw_texts = Vec::with_capacity(tokens.capacity());
        for j in 0..n_tokens {
            let data = (api.whisper_full_get_token_data_from_state)(state, i, j);
            let bytes = c_bytes((api.whisper_full_get_token_text_from_state)(
                ctx, state, i, j,
            ));
            let special = data.id >= inner.token_eot;
            tokens.push(Token {
                id: data.id,
                text: String::from_utf8_lossy(&bytes).into_owned(),
                probability: data.p,
                logprob: data.plog,
                start: (token_timestamps && !special).then(|| centis(data.t0)),
                end: (token_timestamps && !special).then(|| centis(data.t1)),
                special,
            });
            raw_texts.push(bytes);
        }
        let text_tokens: Vec<&Token> = tokens.iter().filter(|t| !t.special).collect();
        let avg_logprob = if text_tokens.is_empty() {
            0.0
        } else {
            text_tokens.iter().map(|t| t.logprob).sum::<f32>() / text_tokens.len() as f32
        };
        let words = if word_timestamps {
            words_of(&tokens, &raw_texts, start, end)
        } else {
            Vec::new()
        };
        Segment {
            index: i as usize,
            start,
            end,
            text: String::from_utf8_lossy(&text).into_owned(),
            tokens,
            words,
            avg_logprob,
            no_speech_prob: if inner.computes_no_speech_prob {
                (api.whisper_full_get_segment_no_speech_prob_from_state)(state, i)
            } else {
                0.0
            },
            temperature,
        }
    }
}

/// # Safety
/// `ptr` is NULL or a NUL-terminated string valid for this call.
unsafe fn c_bytes(ptr: *const std::ffi::c_char) -> Vec<u8> {
    if ptr.is_null() {
        Vec::new()
    } else {
        // SAFETY: guaranteed by the caller.
        unsafe { CStr::from_ptr(ptr) }.to_bytes().to_vec()
    }
}

type ProgressFn<'o> = &'o mut dyn FnMut(u8);
type SegmentFn<'o> = &'o mut dyn FnMut(&Segment);

/// What the C callbacks reach through their user-data pointer.
struct Hooks<'h, 'o> {
    inner: &'h ContextInner,
    cancel: Option<&'o CancelToken>,
    on_progress: RefCell<Option<ProgressFn<'o>>>,
    on_segment: RefCell<Option<SegmentFn<'o>>>,
    segments_seen: RefCell<c_int>,
    panic: RefCell<Option<String>>,
    temperature: f32,
    token_timestamps: bool,
    word_timestamps: bool,
    /// When the current window's encoder began, until its first token.
    window_started: Cell<Option<Instant>>,
    windows: Cell<u32>,
    encoder_seconds: Cell<f64>,
}

impl Hooks<'_, '_> {
    fn should_stop(&self) -> bool {
        self.panic.borrow().is_some() || self.cancel.is_some_and(CancelToken::is_cancelled)
    }

    /// Runs `f` unless something panicked earlier in this run, and keeps its
    /// panic instead of letting it unwind into C. Every callback body runs in
    /// here: nothing may panic across the C boundary, and a callback that
    /// panicked once is not called again.
    fn run_guarded(&self, f: impl FnOnce()) {
        if self.panic.borrow().is_some() {
            return;
        }
        if let Err(payload) = catch_unwind(AssertUnwindSafe(f)) {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic payload".into());
            *self.panic.borrow_mut() = Some(message);
        }
    }

    /// Whether whisper.cpp should stop; `true` if even that check panicked.
    fn guarded_should_stop(&self) -> bool {
        catch_unwind(AssertUnwindSafe(|| self.should_stop())).unwrap_or(true)
    }

    /// Reads the segments from the last one reported up to the state's count
    /// and hands each to the segment callback.
    ///
    /// # Safety
    /// `state` is the state of the running call, which has just appended `n_new`
    /// segments.
    unsafe fn report_segments(&self, state: *mut whisper_state, n_new: c_int) {
        let mut callback = self.on_segment.borrow_mut();
        let Some(callback) = callback.as_mut() else {
            return;
        };
        // SAFETY: guaranteed by the caller.
        let total = unsafe { (self.inner.api.whisper_full_n_segments_from_state)(state) };
        let first = (*self.segments_seen.borrow()).max(total - n_new).max(0);
        for i in first..total {
            // SAFETY: `i` < total segments of this run.
            let segment = unsafe {
                read_segment(
                    self.inner,
                    state,
                    i,
                    self.temperature,
                    self.token_timestamps,
                    self.word_timestamps,
                )
            };
            // Counted before the call: a panic stops the loop here.
            *self.segments_seen.borrow_mut() = i + 1;
            callback(&segment);
        }
    }
}

/// # Safety
/// `user_data` points to the `Hooks` of the running call.
unsafe fn hooks<'a>(user_data: *mut c_void) -> &'a Hooks<'a, 'a> {
    // SAFETY: set by `full_with` to a `Hooks` that outlives the call.
    unsafe { &*(user_data as *const Hooks<'a, 'a>) }
}

unsafe extern "C" fn abort_hook(user_data: *mut c_void) -> bool {
    // SAFETY: registered with a pointer to the live Hooks.
    unsafe { hooks(user_data) }.guarded_should_stop()
}

unsafe extern "C" fn encoder_begin_hook(
    _: *mut whisper_context,
    _: *mut whisper_state,
    user_data: *mut c_void,
) -> bool {
    // SAFETY: registered with a pointer to the live Hooks.
    let hooks = unsafe { hooks(user_data) };
    // Cell operations cannot panic.
    hooks.windows.set(hooks.windows.get() + 1);
    hooks.window_started.set(Some(Instant::now()));
    !hooks.guarded_should_stop()
}

/// Filters nothing: marks the end of a window's encoder and prompt pass.
unsafe extern "C" fn logits_filter_hook(
    _: *mut whisper_context,
    _: *mut whisper_state,
    _: *const whisper_token_data,
    _: c_int,
    _: *mut f32,
    user_data: *mut c_void,
) {
    // SAFETY: registered with a pointer to the live Hooks.
    let hooks = unsafe { hooks(user_data) };
    if let Some(started) = hooks.window_started.take() {
        let seconds = started.elapsed().as_secs_f64();
        hooks
            .encoder_seconds
            .set(hooks.encoder_seconds.get() + seconds);
    }
}

unsafe extern "C" fn progress_hook(
    _: *mut whisper_context,
    _: *mut whisper_state,
    progress: c_int,
    user_data: *mut c_void,
) {
    // SAFETY: registered with a pointer to the live Hooks.
    let hooks = unsafe { hooks(user_data) };
    hooks.run_guarded(|| {
        if let Some(callback) = hooks.on_progress.borrow_mut().as_mut() {
            callback(progress.clamp(0, 100) as u8);
        }
    });
}

unsafe extern "C" fn new_segment_hook(
    _: *mut whisper_context,
    state: *mut whisper_state,
    n_new: c_int,
    user_data: *mut c_void,
) {
    // SAFETY: registered with a pointer to the live Hooks.
    let hooks = unsafe { hooks(user_data) };
    // SAFETY: whisper.cpp calls this with the running state after appending
    // `n_new` segments.
    hooks.run_guarded(|| unsafe { hooks.report_segments(state, n_new) });
}
