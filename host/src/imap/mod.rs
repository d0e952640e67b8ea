//! Talking to the tenant's IMAP server.

mod login;
mod wire;

pub use login::{LoginOutcome, check_login};
