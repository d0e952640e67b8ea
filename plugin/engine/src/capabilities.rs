//! What the engine needs from the outside world.
//!
//! Every adapter implements [`Capabilities`]: the WASI component with its imports, the
//! proxy-wasm filter with HTTP callouts, unit tests with plain values. Calls that may need I/O
//! return futures so that the proxy-wasm adapter can suspend the engine while a callout is in
//! flight; the component's imports complete synchronously.

use std::future::Future;

/// Severity of a log line, mirrored by the `log` interface in `wit/gateway.wit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// Which part of the user's state a key lives in (the tenant and user are fixed by the host).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StateScope {
    /// Shared by all of the user's devices.
    Account,
    /// One device's own space, by EAS DeviceId.
    Device(String),
}

/// Why a state call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateError {
    Unauthenticated,
    TooLarge(String),
    Unavailable(String),
}

impl std::fmt::Display for StateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StateError::Unauthenticated => f.write_str("no authenticated user"),
            StateError::TooLarge(what) => write!(f, "too large: {what}"),
            StateError::Unavailable(why) => write!(f, "state store unavailable: {why}"),
        }
    }
}

pub type StateResult<T> = Result<T, StateError>;

pub trait Capabilities {
    /// Milliseconds since the Unix epoch, UTC.
    fn now_ms(&self) -> u64;

    fn log(&self, level: Level, message: &str);

    /// A cryptographically secure random number; `None` where the adapter has no source.
    fn random_u64(&self) -> Option<u64>;

    fn state_get(
        &self,
        scope: &StateScope,
        key: &str,
    ) -> impl Future<Output = StateResult<Option<Vec<u8>>>>;

    fn state_put(
        &self,
        scope: &StateScope,
        key: &str,
        value: Vec<u8>,
    ) -> impl Future<Output = StateResult<()>>;

    /// Atomically replaces `expected` (`None`: absent) with `new` (`None`: delete); `false`
    /// and no change if the key held something else.
    fn state_compare_and_swap(
        &self,
        scope: &StateScope,
        key: &str,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
    ) -> impl Future<Output = StateResult<bool>>;
}
