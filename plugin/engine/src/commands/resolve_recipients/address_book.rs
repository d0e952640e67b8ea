//! The account's address book: the people the account has exchanged mail with, learnt from
//! the headers of the newest messages of the Inbox (From, and To/Cc co-recipients) and of
//! Sent (To, Cc, Bcc). It answers ResolveRecipients and the GAL searches of Search and Find,
//! as this server has no directory of its own.
//!
//! Kept in the account scope under [`KEY`] with, per source folder, the UIDVALIDITY and
//! UIDNEXT read last: each use asks the mailbox for the two folders' STATUS (one call) and
//! reads only the headers of messages that arrived since (at most [`SCAN_WINDOW`] per folder,
//! the newest; also on a first build or after a UIDVALIDITY change). Contacts are never
//! forgotten except when the book is full ([`MAX_CONTACTS`]): the least used go first.

use crate::capabilities::{Capabilities, HEADER_BLOCK_PREFIX, Level, StateScope};
use crate::commands::search::headers::{self, Mailbox};
use crate::folders::{self, FolderEntry};
use crate::mailbox::MailboxError;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// State key of the book in the account scope.
pub const KEY: &str = "address-book";
/// Leading byte of the stored form; bump when the layout changes.
const FORMAT: u8 = 1;
/// Contacts kept at most.
pub const MAX_CONTACTS: usize = 2000;
/// Newest messages per source folder read on each refresh, at most.
pub const SCAN_WINDOW: u32 = 400;
const FETCH_CHUNK: usize = 100;
/// FolderSync Type codes of the source folders.
const INBOX_TYPE: u8 = 2;
const SENT_TYPE: u8 = 5;

/// One person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// As last seen (case kept); compared case-insensitively.
    pub address: String,
    pub name: Option<String>,
    /// Messages the user sent to this address.
    pub sent: u32,
    /// Messages from this address, or to it alongside the user.
    pub received: u32,
    /// INTERNALDATE of the newest message it was seen in.
    pub last_seen: i64,
}

impl Contact {
    /// How much the user deals with this person: writing to someone counts most.
    fn score(&self) -> u64 {
        u64::from(self.sent) * 4 + u64::from(self.received)
    }

    /// What a client shows: the name, else the address.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.address)
    }
}

/// Where the last refresh of one source folder stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Mark {
    folder: String,
    uid_validity: u32,
    uid_next: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Stored {
    /// When it was last changed (the host clock, milliseconds).
    updated_ms: u64,
    marks: Vec<Mark>,
    contacts: Vec<Contact>,
}

impl Stored {
    fn encode(&self) -> Vec<u8> {
        let mut bytes = vec![FORMAT];
        // Serialising plain owned data into a Vec cannot fail.
        bytes.extend(postcard::to_allocvec(self).unwrap_or_default());
        bytes
    }

    fn decode(bytes: &[u8]) -> Option<Stored> {
        let (&format, rest) = bytes.split_first()?;
        if format != FORMAT {
            return None;
        }
        postcard::from_bytes(rest).ok()
    }
}

/// The address book, ready for lookups.
#[derive(Debug, Clone, Default)]
pub struct AddressBook {
    contacts: Vec<Contact>,
}

/// What a name or address resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup<'b> {
    /// Every match, the best first.
    pub matches: Vec<&'b Contact>,
    /// Whether the first match is the one meant: the only match, or the only exact one.
    pub unique: bool,
}

impl AddressBook {
    #[cfg(test)]
    pub fn from_contacts(contacts: Vec<Contact>) -> AddressBook {
        AddressBook { contacts }
    }

    /// The contacts `query` names (ResolveRecipients `To`): an address (also `Name <address>`)
    /// matches that address exactly, or addresses it begins; anything else matches addresses
    /// it begins and names whose words it begins, word by word (`ann l` finds "Ann Lee"), all
    /// case-insensitively. Exact matches (whole name or address) come first, then the most
    /// used.
    pub fn lookup(&self, query: &str) -> Lookup<'_> {
        let query = query.trim();
        let address = query
            .rsplit_once('<')
            .and_then(|(_, rest)| rest.split_once('>'))
            .map_or(query, |(inside, _)| inside.trim());
        let mut matches: Vec<(&Contact, bool)> = if headers::is_address(address) {
            let exact: Vec<(&Contact, bool)> = self
                .contacts
                .iter()
                .filter(|c| c.address.eq_ignore_ascii_case(address))
                .map(|c| (c, true))
                .collect();
            if exact.is_empty() {
                self.contacts
                    .iter()
                    .filter(|c| starts_with_ignore_case(&c.address, address))
                    .map(|c| (c, false))
                    .collect()
            } else {
                exact
            }
        } else {
            self.contacts
                .iter()
                .filter(|c| matches_text(c, query))
                .map(|c| {
                    let exact = c.address.eq_ignore_ascii_case(query)
                        || c.name
                            .as_deref()
                            .is_some_and(|n| n.to_lowercase() == query.to_lowercase());
                    (c, exact)
                })
                .collect()
        };
        matches.sort_by(|(a, a_exact), (b, b_exact)| {
            b_exact
                .cmp(a_exact)
                .then(b.score().cmp(&a.score()))
                .then(b.last_seen.cmp(&a.last_seen))
                .then(a.address.to_lowercase().cmp(&b.address.to_lowercase()))
        });
        let exact_count = matches.iter().filter(|(_, exact)| *exact).count();
        let unique = matches.len() == 1 || exact_count == 1;
        Lookup { matches: matches.into_iter().map(|(c, _)| c).collect(), unique }
    }

    /// The contacts a directory search for `query` finds (GAL Search and Find): the same
    /// matching as [`lookup`](Self::lookup), sorted by display name as a GAL is.
    pub fn directory_matches(&self, query: &str) -> Vec<&Contact> {
        let mut found = self.lookup(query).matches;
        found.sort_by(|a, b| {
            a.display_name()
                .to_lowercase()
                .cmp(&b.display_name().to_lowercase())
                .then(a.address.to_lowercase().cmp(&b.address.to_lowercase()))
        });
        found
    }
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.get(..prefix.len()).is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// Words of a name or address, lower-cased: split at spaces and punctuation.
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| c.is_whitespace() || ",.;:_-()<>\"'@+".contains(c))
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
}

fn matches_text(contact: &Contact, query: &str) -> bool {
    if query.is_empty() {
        return false;
    }
    if !query.contains(char::is_whitespace) && starts_with_ignore_case(&contact.address, query) {
        return true;
    }
    let local_part = contact.address.rsplit_once('@').map_or("", |(local, _)| local);
    let known: Vec<String> =
        words(contact.name.as_deref().unwrap_or_default()).chain(words(local_part)).collect();
    let mut wanted = words(query).peekable();
    wanted.peek().is_some() && wanted.all(|word| known.iter().any(|k| k.starts_with(&word)))
}

/// The book, brought up to date with the source folders. When the mailbox cannot be asked,
/// the stored book is used as it is; only without any book is that an error.
pub async fn load(caps: &impl Capabilities, identity: &str) -> Result<AddressBook, String> {
    let scope = StateScope::Account;
    let mut stored = match caps.state_get(&scope, KEY).await {
        Ok(bytes) => bytes.as_deref().and_then(Stored::decode).unwrap_or_default(),
        Err(error) => {
            caps.log(Level::Warn, &format!("address book: {error}; rebuilding it"));
            Stored::default()
        }
    };
    match refresh(caps, identity, &mut stored).await {
        Ok(false) => {}
        Ok(true) => {
            stored.updated_ms = caps.now_ms();
            if let Err(error) = caps.state_put(&scope, KEY, stored.encode()).await {
                caps.log(Level::Warn, &format!("storing the address book: {error}"));
            }
        }
        Err(error) if !stored.contacts.is_empty() => {
            caps.log(Level::Info, &format!("address book not refreshed: {error}"));
        }
        Err(error) => return Err(format!("building the address book: {error}")),
    }
    Ok(AddressBook { contacts: stored.contacts })
}

/// Reads what arrived in the source folders since the marks; true if `stored` changed.
async fn refresh(
    caps: &impl Capabilities,
    identity: &str,
    stored: &mut Stored,
) -> Result<bool, MailboxError> {
    let sources = source_folders(caps).await?;
    if sources.is_empty() {
        return Ok(false);
    }
    let names: Vec<String> = sources.iter().map(|f| f.imap_name.clone()).collect();
    let statuses = caps.folder_status(&names).await?;
    let mut merged: HashMap<String, Contact> = stored
        .contacts
        .drain(..)
        .map(|contact| (contact.address.to_lowercase(), contact))
        .collect();
    let mut changed = false;
    for (folder, status) in sources.iter().zip(statuses) {
        let Ok(status) = status else { continue };
        let mark = stored.marks.iter().find(|mark| mark.folder == folder.imap_name);
        let from = match mark {
            Some(mark) if mark.uid_validity == status.uid_validity => {
                if mark.uid_next == status.uid_next {
                    continue;
                }
                mark.uid_next
            }
            _ => 1,
        };
        let first = from.max(status.uid_next.saturating_sub(SCAN_WINDOW)).max(1);
        let uids: Vec<u32> = (first..status.uid_next).collect();
        let sent = folder.folder_type.code() == SENT_TYPE;
        for chunk in uids.chunks(FETCH_CHUNK) {
            let summaries = match caps
                .fetch_summaries(&folder.imap_name, chunk, HEADER_BLOCK_PREFIX, None)
                .await
            {
                Ok(summaries) => summaries,
                Err(MailboxError::NoSuchFolder(_)) => break,
                Err(error) => return Err(error),
            };
            for summary in summaries.iter().filter(|s| chunk.contains(&s.uid)) {
                learn(&mut merged, &summary.prefix, summary.internal_date, sent, identity);
            }
        }
        stored.marks.retain(|mark| mark.folder != folder.imap_name);
        stored.marks.push(Mark {
            folder: folder.imap_name.clone(),
            uid_validity: status.uid_validity,
            uid_next: status.uid_next,
        });
        changed = true;
    }
    let mut contacts: Vec<Contact> = merged.into_values().collect();
    contacts.sort_by(|a, b| {
        b.score()
            .cmp(&a.score())
            .then(b.last_seen.cmp(&a.last_seen))
            .then(a.address.cmp(&b.address))
    });
    contacts.truncate(MAX_CONTACTS);
    stored.contacts = contacts;
    Ok(changed)
}

/// The Inbox and Sent folders (by their FolderSync types).
async fn source_folders(caps: &impl Capabilities) -> Result<Vec<FolderEntry>, MailboxError> {
    let pick = |entries: &[FolderEntry]| -> Vec<FolderEntry> {
        let code = |entry: &FolderEntry| entry.folder_type.code();
        entries
            .iter()
            .filter(|e| e.selectable && (code(e) == INBOX_TYPE || code(e) == SENT_TYPE))
            .cloned()
            .collect()
    };
    let as_mailbox_error = |error: folders::FolderMapError| match error {
        folders::FolderMapError::Mailbox(error) => error,
        other => MailboxError::Unavailable(other.to_string()),
    };
    let stored = folders::stored(caps).await.map_err(as_mailbox_error)?;
    let found = pick(stored.entries());
    if !found.is_empty() {
        return Ok(found);
    }
    let refreshed = folders::refresh(caps).await.map_err(as_mailbox_error)?;
    Ok(pick(refreshed.entries()))
}

/// Adds the mailboxes of one message's header block.
fn learn(
    contacts: &mut HashMap<String, Contact>,
    raw: &[u8],
    date: i64,
    sent: bool,
    identity: &str,
) {
    let Some(message) = headers::parse(raw) else { return };
    let mut seen = |mailbox: Mailbox, by_user: bool| {
        let key = mailbox.address.to_lowercase();
        let contact = contacts.entry(key).or_insert_with(|| Contact {
            address: mailbox.address.clone(),
            name: None,
            sent: 0,
            received: 0,
            last_seen: i64::MIN,
        });
        if by_user {
            contact.sent = contact.sent.saturating_add(1);
        } else {
            contact.received = contact.received.saturating_add(1);
        }
        if let Some(name) = mailbox.name
            && (contact.name.is_none() || date >= contact.last_seen)
        {
            contact.name = Some(name);
        }
        if date >= contact.last_seen {
            contact.last_seen = date;
            contact.address = mailbox.address;
        }
    };
    if sent {
        for field in [message.to(), message.cc(), message.bcc()] {
            for mailbox in headers::mailboxes(field) {
                seen(mailbox, true);
            }
        }
    } else {
        for mailbox in headers::mailboxes(message.from()) {
            seen(mailbox, false);
        }
        for field in [message.to(), message.cc()] {
            for mailbox in headers::mailboxes(field) {
                // The user's own address is on nearly every message received.
                if !mailbox.address.eq_ignore_ascii_case(identity) {
                    seen(mailbox, false);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(address: &str, name: Option<&str>, sent: u32, received: u32) -> Contact {
        Contact {
            address: address.to_owned(),
            name: name.map(str::to_owned),
            sent,
            received,
            last_seen: 0,
        }
    }

    fn book() -> AddressBook {
        AddressBook::from_contacts(vec![
            contact("ann.lee@example.org", Some("Ann Lee"), 3, 1),
            contact("anna@example.net", Some("Anna Karenina"), 0, 5),
            contact("bob@example.org", Some("Robert Smith"), 1, 0),
            contact("carl.jones@example.org", None, 0, 1),
            contact("ann@example.com", Some("Ann"), 0, 1),
        ])
    }

    fn addresses(lookup: &Lookup<'_>) -> Vec<String> {
        lookup.matches.iter().map(|c| c.address.clone()).collect()
    }

    #[test]
    fn names_addresses_and_prefixes() {
        let book = book();
        let ann = book.lookup("ann");
        // "Ann" is exact for one contact; the others start with it.
        assert!(ann.unique);
        assert_eq!(addresses(&ann)[0], "ann@example.com");
        assert_eq!(ann.matches.len(), 3);
        let lee = book.lookup("ann l");
        assert_eq!(addresses(&lee), ["ann.lee@example.org"]);
        assert!(lee.unique);
        assert_eq!(addresses(&book.lookup("smith")), ["bob@example.org"]);
        assert_eq!(addresses(&book.lookup("jones")), ["carl.jones@example.org"]);
        let by_address = book.lookup("Robert <BOB@example.org>");
        assert_eq!(addresses(&by_address), ["bob@example.org"]);
        assert!(by_address.unique);
        assert!(book.lookup("nobody@example.org").matches.is_empty());
        assert!(book.lookup("zed").matches.is_empty());
        assert!(book.lookup("").matches.is_empty());
        let an = book.lookup("an");
        assert!(!an.unique);
        // The most used first.
        assert_eq!(addresses(&an)[0], "ann.lee@example.org");
    }

    #[test]
    fn directory_order_is_by_name() {
        let book = book();
        let names: Vec<&str> =
            book.directory_matches("an").iter().map(|c| c.display_name()).collect();
        assert_eq!(names, ["Ann", "Ann Lee", "Anna Karenina"]);
    }

    #[test]
    fn stored_form_round_trips() {
        let stored = Stored {
            updated_ms: 5,
            marks: vec![Mark { folder: "INBOX".into(), uid_validity: 1, uid_next: 9 }],
            contacts: book().contacts,
        };
        assert_eq!(Stored::decode(&stored.encode()), Some(stored));
        assert_eq!(Stored::decode(&[9, 1, 2]), None);
    }
}
