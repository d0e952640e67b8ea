//! The eas-edge Exchange ActiveSync engine.
//!
//! Sans-IO: it receives an HTTP [`http::Request`] (and, for commands that need the mailbox,
//! capability results) and returns an [`http::Response`]. It owns no sockets, no clock and no
//! files; the adapters in `plugin/component` (WASI) and `plugin/envoy-filter` (proxy-wasm)
//! only carry bytes between their transport and this crate.

pub mod ashttp;
mod autodiscover;
mod capabilities;
mod commands;
mod compose;
pub mod device_records;
pub mod drive;
pub mod email;
mod engine;
mod folders;
pub mod http;
pub mod mailbox;
mod options;
pub mod out_of_office;
mod push;
pub mod settings;
pub mod submission;
pub mod sync;
#[cfg(test)]
mod testing;

pub use capabilities::{
    Capabilities, Level, StateCondition, StateError, StateResult, StateScope, StateWrite,
};

/// Content type of every WBXML body (MS-ASHTTP §2.2.2.1.2.4).
pub const WBXML_CONTENT_TYPE: &str = "application/vnd.ms-sync.wbxml";
pub use engine::{ENDPOINT, Engine};
