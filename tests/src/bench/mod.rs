//! Helpers for the push benchmarks (`src/bin/bench_push.rs`): reading a process's memory and
//! CPU from `/proc`, raw parked Pings held by the thousand without a thread each, a counting
//! IMAP proxy, and percentiles. Not used by the tests.

pub mod percentiles;
pub mod proxy;
pub mod raw_ping;
pub mod system;
