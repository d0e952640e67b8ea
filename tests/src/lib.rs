//! Test support for eas-edge: a real mail stack and small clients to drive it.
//!
//! - [`mailstack`]: starts a private Dovecot + Postfix stack (`tests/mailstack.sh`) per test.
//! - [`imap`]: a small blocking IMAP client for checking and preparing mailboxes.
//! - [`smtp`]: sends a raw message over SMTP, optionally with AUTH PLAIN.
//! - [`messages`]: realistic, deterministic test messages from a seed.
//! - [`seed`]: fills a mailbox with many messages quickly (MULTIAPPEND).
//! - [`eas`]: an Exchange ActiveSync client written from the spec, for driving the gateway.
//!
//! Everything is blocking std networking with timeouts on every read: tests are not
//! performance-critical, and a hung server must fail a test rather than hang it.

pub mod imap;
pub mod mailstack;
pub mod messages;
pub mod seed;
pub mod smtp;

mod rng;

pub mod artifacts;
pub mod bench;
pub mod eas;
pub mod envoy;
pub mod faults;
pub mod front;
pub mod gateway;
pub mod http;
pub mod postgres;
pub mod process;
