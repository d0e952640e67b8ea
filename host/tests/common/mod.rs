//! What the tests of the mailbox capabilities (`mailbox_pool.rs`, `mailbox_write.rs`) share:
//! one user on a fresh mail stack, seeded folders, and the capability as a plugin call gets it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use eas_edge::accounts::Account;
use eas_edge::imap::{Endpoint, TlsMode, TlsSettings};
use eas_edge::plugin_host::MailboxCapability;
use eas_edge_tests::mailstack::MailStack;
use eas_edge_tests::messages::{MessageGenerator, TestMessage};
use eas_edge_tests::seed::seed_mailbox;

pub const USER: &str = "pat@example.test";
pub const PASSWORD: &str = "s3cret pässword";
pub const MEMORY: usize = 64 << 20;
/// How long a read may wait for IMAP: 80 % of a plugin call's default budget (10 s).
pub const READ_TIME: Duration = Duration::from_secs(8);

pub fn stack() -> Result<MailStack> {
    let stack = MailStack::start()?;
    stack.add_user(USER, PASSWORD)?;
    Ok(stack)
}

pub fn endpoint(addr: SocketAddr) -> Result<Endpoint> {
    let tls = TlsSettings { mode: TlsMode::None, ..TlsSettings::default() };
    Ok(Endpoint::new(&addr.ip().to_string(), addr.port(), &tls)?)
}

/// `count` generated messages (from `seed`) appended to `mailbox`.
pub fn seed(stack: &MailStack, mailbox: &str, seed: u64, count: usize) -> Result<Vec<TestMessage>> {
    let messages: Vec<TestMessage> = MessageGenerator::new(seed, USER).take(count).collect();
    let mut imap = stack.imap_login(USER, PASSWORD)?;
    seed_mailbox(&mut imap, mailbox, &messages)?;
    Ok(messages)
}

/// The capability of one plugin call of tenant "test" on `account`.
pub fn capability(account: &Arc<Account>) -> MailboxCapability {
    MailboxCapability::new(
        "test".into(),
        Some(account.clone()),
        MEMORY,
        Instant::now() + READ_TIME,
        None,
    )
}
