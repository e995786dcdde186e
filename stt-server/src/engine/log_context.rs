//! The request id of the work at hand, so every log line can name it: task-local
//! in async handlers, thread-local on worker and blocking threads.

use std::cell::RefCell;
use std::future::Future;
use std::sync::Arc;

tokio::task_local! {
    static TASK_REQUEST_ID: Arc<str>;
}

thread_local! {
    static THREAD_REQUEST_ID: RefCell<Option<Arc<str>>> = const { RefCell::new(None) };
}

/// The request id of the current task or thread, if any.
pub fn current() -> Option<Arc<str>> {
    TASK_REQUEST_ID
        .try_with(Arc::clone)
        .ok()
        .or_else(|| THREAD_REQUEST_ID.with(|id| id.borrow().clone()))
}

/// Runs `future` with `id` as its request id.
pub async fn scope<F: Future>(id: Arc<str>, future: F) -> F::Output {
    TASK_REQUEST_ID.scope(id, future).await
}

/// Runs `f` on this thread with `id` as its request id.
pub fn with_thread<R>(id: Arc<str>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Arc<str>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            THREAD_REQUEST_ID.with(|id| *id.borrow_mut() = previous);
        }
    }
    let previous = THREAD_REQUEST_ID.with(|slot| slot.borrow_mut().replace(id));
    let _restore = Restore(previous);
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_scope_nests_and_restores() {
        assert_eq!(current(), None);
        with_thread("a".into(), || {
            assert_eq!(current().as_deref(), Some("a"));
            with_thread("b".into(), || assert_eq!(current().as_deref(), Some("b")));
            assert_eq!(current().as_deref(), Some("a"));
        });
        assert_eq!(current(), None);
    }

    #[test]
    fn task_scope_wins_over_thread() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let seen = with_thread("thread".into(), || {
            runtime.block_on(scope("task".into(), async { current() }))
        });
        assert_eq!(seen.as_deref(), Some("task"));
    }
}
