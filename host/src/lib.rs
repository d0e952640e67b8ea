//! The eas-edge host: serves phones, runs the EAS plugin in wasmtime, and gives it the mailbox,
//! submission and state capabilities. The binary (`main.rs`) is a thin CLI over this library.

pub mod accounts;
pub mod admin;
pub mod auth;
pub mod authz;
pub mod capability;
pub mod cluster;
pub mod config;
pub mod connection_cap;
pub mod http1;
pub mod http2_limits;
pub mod imap;
pub mod logging;
pub mod packed_headers;
pub mod parking;
pub mod plugin_host;
pub mod push;
pub mod reload;
pub mod request_body;
pub mod runtime;
pub mod server;
pub mod sieve;
pub mod smtp;
pub mod state;
pub mod tenants;
pub mod test_page;
pub mod tls_listener;
pub mod unpoisoned;
pub mod wbxml_tool;
