//! Running the engine's futures without an async runtime.
//!
//! The engine is written as `async` code over [`crate::Capabilities`] so that an adapter whose
//! capabilities are asynchronous (proxy-wasm callouts) can park it and resume later. Adapters
//! with synchronous capabilities get the answer from the first poll.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// Polls `future` once. Returns `None` if it is waiting on a capability.
///
/// The waker does nothing: the adapter itself knows when a capability has answered and polls
/// again then.
pub fn poll_once<F: Future + ?Sized>(future: Pin<&mut F>) -> Option<F::Output> {
    let mut context = Context::from_waker(Waker::noop());
    match future.poll(&mut context) {
        Poll::Ready(output) => Some(output),
        Poll::Pending => None,
    }
}

/// Runs a future whose capabilities all complete synchronously.
///
/// Returns `None` if the future ever waits, which for such an adapter is a bug; the caller
/// answers 500 rather than spinning.
pub fn run_to_completion<F: Future>(future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    poll_once(future.as_mut())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_future_completes() {
        assert_eq!(run_to_completion(async { 7 }), Some(7));
    }

    #[test]
    fn pending_future_is_reported_not_spun() {
        assert_eq!(run_to_completion(std::future::pending::<()>()), None);
    }
}
