//! What the engine needs from the outside world.
//!
//! Every adapter implements [`Capabilities`]: the WASI component with its imports, the
//! proxy-wasm filter with HTTP callouts, unit tests with plain values. Calls that may need I/O
//! will be `async` so that the proxy-wasm adapter can suspend the engine while a callout is in
//! flight; the component's imports complete synchronously.

/// Severity of a log line, mirrored by the `log` interface in `wit/gateway.wit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

pub trait Capabilities {
    /// Milliseconds since the Unix epoch, UTC.
    fn now_ms(&self) -> u64;

    fn log(&self, level: Level, message: &str);
}
