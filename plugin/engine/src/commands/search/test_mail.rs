//! Mail fixtures for the Search, Find and ResolveRecipients tests.

use crate::commands::test_support::provisioned_host;
use crate::drive::run_to_completion;
use crate::email::{self, MessageSummary};
use crate::folders;
use crate::testing::FakeHost;

/// The INTERNALDATE of the oldest test message (2026-10-26T07:33:20Z).
pub const BASE_DATE: i64 = 1_793_000_000;
pub const HOUR: i64 = 3600;

/// A plain message; `extra` is more header lines (each ending in CRLF).
pub fn message(from: &str, to: &str, subject: &str, id: &str, extra: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\n\
Date: Tue, 27 Oct 2026 08:00:00 +0000\r\n{extra}MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

/// text/plain + text/html alternatives and a PDF attachment.
pub fn rich_message(subject: &str, id: &str) -> Vec<u8> {
    format!(
        "From: Ann Lee <ann@example.org>\r\nTo: Jane <jane@example.test>\r\n\
Cc: Carl <carl@example.org>, dora@example.org\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=outer\r\n\r\n\
--outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n\
--inner\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe quarterly report is attached.\r\n\
--inner\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
<p>The quarterly <b>report</b> is attached.</p>\r\n\
--inner--\r\n\
--outer\r\nContent-Type: application/pdf; name=report.pdf\r\n\
Content-Disposition: attachment; filename=report.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n\
JVBERi0xLjQgZmFrZSBwZGYgYnl0ZXM=\r\n\
--outer--\r\n"
    )
    .into_bytes()
}

/// The CollectionIds of the test mailbox's folders.
pub struct Ids {
    pub inbox: String,
    pub sent: String,
    pub trash: String,
    pub projects: String,
}

/// A provisioned host with INBOX, INBOX/Projects, Drafts, Sent and Trash (empty), and the
/// folder map made.
pub fn host() -> (FakeHost, Ids) {
    let host = provisioned_host();
    host.mailbox.borrow_mut().add_folder("INBOX/Projects", None);
    let map = run_to_completion(folders::refresh(&host)).expect("completes").expect("map");
    let id = |name: &str| {
        map.entries().iter().find(|e| e.imap_name == name).expect(name).server_id.clone()
    };
    let ids = Ids {
        inbox: id("INBOX"),
        sent: id("Sent"),
        trash: id("Trash"),
        projects: id("INBOX/Projects"),
    };
    (host, ids)
}

pub fn append(host: &FakeHost, folder: &str, raw: &[u8], flags: &[&str], date: i64) -> u32 {
    host.mailbox.borrow_mut().append(folder, raw, flags, date)
}

/// The email2:ConversationId the engine gives a message.
pub fn conversation_id(raw: &[u8]) -> [u8; 16] {
    let summary = MessageSummary::from_full_message(1, Vec::new(), 0, raw.to_vec());
    email::convert(&summary, "").item.conversation_id
}
