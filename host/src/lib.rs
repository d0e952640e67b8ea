//! The eas-edge host: serves phones, runs the EAS plugin in wasmtime, and gives it the mailbox,
//! submission and state capabilities. The binary (`main.rs`) is a thin CLI over this library.

pub mod auth;
pub mod authz;
pub mod config;
pub mod imap;
pub mod plugin_host;
pub mod runtime;
pub mod server;
pub mod state;
pub mod tenants;
pub mod wbxml_tool;
