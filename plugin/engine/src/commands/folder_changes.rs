//! FolderCreate, FolderUpdate and FolderDelete ([MS-ASCMD] §2.2.1.3, §2.2.1.6, §2.2.1.4;
//! EAS-NOTES §4.3): the device changes the folder hierarchy.
//!
//! Each carries the device's FolderSync SyncKey; anything but its current key is Status 9.
//! The change is made in IMAP (CREATE, RENAME, DELETE), the account's folder map is refreshed
//! (so the new folder gets its ServerId and every device's next FolderSync sees the change),
//! and the device's own hierarchy record moves to a new key with the change applied: its next
//! FolderSync does not report its own change back, other devices' do. A failed change returns
//! no SyncKey (§2.2.3.181.1).
//!
//! Only mail folders exist here: FolderCreate accepts Type 1 (generic) and 12 (user mail).
//! The special folders (Inbox, Drafts, Deleted Items, Sent Items) cannot be renamed, moved or
//! deleted. Deleting a folder deletes the folders below it first (IMAP servers such as Dovecot
//! refuse to delete a folder that has children; EAS deletes the subtree).

use super::folder_sync::SentKey;
use super::{answer_common_status, decode_body, wbxml_response};
use crate::ashttp::{Command, CommonStatus, EasRequest};
use crate::capabilities::{Capabilities, Level};
use crate::folders::hierarchy::{self, FolderChange, KnownFolder};
use crate::folders::{self, FolderEntry, FolderMap, FolderType};
use crate::http::Response;
use crate::mailbox::{Folder, MailboxError};
use eas_wbxml::tags::folder_hierarchy as fh;
use eas_wbxml::{Document, Element, Tag};

/// Status values shared by the three commands (MS-ASCMD §2.2.3.177.3, .4, .6). Their other
/// codes differ per command and are named where used.
mod status {
    pub const SUCCESS: u8 = 1;
    pub const SERVER_ERROR: u8 = 6;
    pub const INVALID_KEY: u8 = 9;
    pub const MALFORMED: u8 = 10;
}

/// Longest folder name accepted (Exchange's limit is 255 characters).
const MAX_NAME_CHARS: usize = 255;

/// The outcome of one command: a Status, and on success the new key (and for FolderCreate the
/// new ServerId).
struct Outcome {
    status: u8,
    key: Option<u32>,
    server_id: Option<String>,
}

impl Outcome {
    fn failed(status: u8) -> Outcome {
        Outcome { status, key: None, server_id: None }
    }
}

pub async fn run(caps: &impl Capabilities, request: &EasRequest, body: &[u8]) -> Response {
    let Some(document) = decode_body(caps, request, body) else {
        return answer_common_status(request, CommonStatus::InvalidWbxml);
    };
    let root_tag = match request.command {
        Command::FolderCreate => fh::FOLDER_CREATE,
        Command::FolderUpdate => fh::FOLDER_UPDATE,
        _ => fh::FOLDER_DELETE,
    };
    let root = &document.root;
    if root.tag != root_tag {
        return answer_common_status(request, CommonStatus::InvalidXml);
    }
    let device = request.device_id.as_str();
    let outcome = match checked_key(caps, device, root).await {
        Err(outcome) => outcome,
        Ok(()) => match request.command {
            Command::FolderCreate => create(caps, root).await,
            Command::FolderUpdate => update(caps, root).await,
            _ => delete(caps, root).await,
        },
    };
    let outcome = match outcome {
        Change::Done(changes, server_id) => {
            match hierarchy::record_own_change(caps, device, changes).await {
                Ok(key) => Outcome { status: status::SUCCESS, key: Some(key), server_id },
                Err(error) => {
                    // The folder changed in IMAP; the device learns it from FolderSync.
                    caps.log(
                        Level::Error,
                        &format!("{device}: recording a folder change: {error}"),
                    );
                    Outcome::failed(status::SERVER_ERROR)
                }
            }
        }
        Change::Refused(outcome) => outcome,
    };
    caps.log(
        Level::Info,
        &format!("{device}: {} answered with status {}", request.command.name(), outcome.status),
    );
    wbxml_response(&answer(root_tag, &outcome), request)
}

/// What a command did: the hierarchy changes (and a new ServerId), or why nothing changed.
enum Change {
    Done(Vec<FolderChange>, Option<String>),
    Refused(Outcome),
}

/// Status 9 unless the request carries the device's current FolderSync key.
async fn checked_key(caps: &impl Capabilities, device: &str, root: &Element) -> Result<(), Change> {
    let Some(sent) = root.text_of(fh::SYNC_KEY) else {
        return Err(Change::Refused(Outcome::failed(status::MALFORMED)));
    };
    let stored = match hierarchy::load(caps, device).await {
        Ok(stored) => stored.hierarchy,
        Err(error) => {
            caps.log(Level::Error, &format!("{device}: hierarchy record: {error}"));
            return Err(Change::Refused(Outcome::failed(status::SERVER_ERROR)));
        }
    };
    match SentKey::parse(sent.trim()) {
        SentKey::Key(key) if key == stored.key => Ok(()),
        _ => Err(Change::Refused(Outcome::failed(status::INVALID_KEY))),
    }
}

fn answer(root_tag: Tag, outcome: &Outcome) -> Document {
    let mut root = Element::new(root_tag).text_child(fh::STATUS, outcome.status.to_string());
    if let Some(key) = outcome.key {
        root.push(Element::with_text(fh::SYNC_KEY, key.to_string()));
    }
    if let Some(server_id) = &outcome.server_id {
        root.push(Element::with_text(fh::SERVER_ID, server_id.as_str()));
    }
    Document::new(root)
}

fn refused(status: u8) -> Change {
    Change::Refused(Outcome::failed(status))
}

/// A folder name from the client: trimmed, not empty, no control characters, and no
/// hierarchy delimiter (it would make nested folders).
fn folder_name(root: &Element, delimiter: Option<char>) -> Option<String> {
    let name = root.text_of(fh::DISPLAY_NAME)?.trim();
    let valid = !name.is_empty()
        && name.chars().count() <= MAX_NAME_CHARS
        && !name.chars().any(char::is_control)
        && delimiter.is_none_or(|d| !name.contains(d));
    valid.then(|| name.to_owned())
}

/// The map, refreshed; `None` (and logged) when the mailbox or the store fails.
async fn refreshed_map(caps: &impl Capabilities) -> Option<FolderMap> {
    match folders::refresh(caps).await {
        Ok(map) => Some(map),
        Err(error) => {
            caps.log(Level::Error, &format!("folder map: {error}"));
            None
        }
    }
}

/// The parent a request names: `Ok(None)` for the top ("0"), `Err(())` for an unknown one.
fn parent_of<'m>(map: &'m FolderMap, parent_id: &str) -> Result<Option<&'m FolderEntry>, ()> {
    match parent_id.trim() {
        "0" => Ok(None),
        id => map.by_server_id(id).map(Some).ok_or(()),
    }
}

/// Whether a folder other than `except` under `parent_id` is called `name` (IMAP names are
/// case-sensitive, but INBOX is not, and phones treat names case-insensitively).
fn name_taken(map: &FolderMap, parent_id: &str, name: &str, except: Option<&str>) -> bool {
    map.entries().iter().any(|entry| {
        entry.parent_id == parent_id
            && Some(entry.server_id.as_str()) != except
            && entry.display_name.eq_ignore_ascii_case(name)
    })
}

/// The delimiter new folders get: the parent's, else the one most folders use.
fn delimiter_for(map: &FolderMap, parent: Option<&FolderEntry>) -> Option<char> {
    parent
        .and_then(|p| p.delimiter)
        .or_else(|| map.entries().iter().find_map(|entry| entry.delimiter))
}

/// The map entry of a folder the mailbox just returned.
fn entry_for<'m>(map: &'m FolderMap, folder: &Folder) -> Option<&'m FolderEntry> {
    map.entries().iter().find(|entry| match (&entry.mailbox_id, &folder.mailbox_id) {
        (Some(ours), Some(theirs)) => ours == theirs,
        _ => entry.imap_name == folder.name,
    })
}

/// Status for a mailbox failure while changing a folder.
fn failure(caps: &impl Capabilities, what: &str, error: &MailboxError) -> u8 {
    caps.log(Level::Warn, &format!("{what}: {error}"));
    status::SERVER_ERROR
}

async fn create(caps: &impl Capabilities, root: &Element) -> Change {
    /// FolderCreate Status (§2.2.3.177.3).
    const EXISTS: u8 = 2;
    const PARENT_NOT_FOUND: u8 = 5;
    let Some(parent_id) = root.text_of(fh::PARENT_ID) else { return refused(status::MALFORMED) };
    match root.text_of(fh::TYPE).map(str::trim) {
        Some("1" | "12") => {}
        // Calendar, contacts, tasks, notes, journal: not on a mail server.
        _ => return refused(status::MALFORMED),
    }
    let Some(map) = refreshed_map(caps).await else { return refused(status::SERVER_ERROR) };
    let Ok(parent) = parent_of(&map, parent_id) else { return refused(PARENT_NOT_FOUND) };
    let Some(name) = folder_name(root, delimiter_for(&map, parent)) else {
        return refused(status::MALFORMED);
    };
    let parent_server_id = parent.map_or("0", |p| p.server_id.as_str());
    if name_taken(&map, parent_server_id, &name, None)
        || (parent.is_none() && name.eq_ignore_ascii_case("INBOX"))
    {
        return refused(EXISTS);
    }
    let created =
        match caps.create_folder(parent.map(|p| p.imap_name.as_str()), name.as_str()).await {
            Ok(folder) => folder,
            Err(MailboxError::NoSuchFolder(_)) => return refused(PARENT_NOT_FOUND),
            Err(error) => {
                // The server may know a folder the map does not show (another client just
                // made it, or it is not listed): "exists" if it is there now.
                let code = failure(caps, "FolderCreate", &error);
                let now = refreshed_map(caps).await;
                let exists = now.as_ref().is_some_and(|map| {
                    let parent_id = parent.map_or("0".to_owned(), |p| p.server_id.clone());
                    name_taken(map, &parent_id, &name, None)
                });
                return refused(if exists { EXISTS } else { code });
            }
        };
    let Some(map) = refreshed_map(caps).await else { return refused(status::SERVER_ERROR) };
    let Some(entry) = entry_for(&map, &created) else {
        caps.log(Level::Warn, &format!("FolderCreate: {} is not listed", created.name));
        return refused(status::SERVER_ERROR);
    };
    let server_id = entry.server_id.clone();
    Change::Done(vec![FolderChange::Add(KnownFolder::of(entry))], Some(server_id))
}

async fn update(caps: &impl Capabilities, root: &Element) -> Change {
    /// FolderUpdate Status (§2.2.3.177.6).
    const EXISTS_OR_SPECIAL: u8 = 2;
    const NOT_FOUND: u8 = 4;
    const PARENT_NOT_FOUND: u8 = 5;
    let (Some(server_id), Some(parent_id)) =
        (root.text_of(fh::SERVER_ID), root.text_of(fh::PARENT_ID))
    else {
        return refused(status::MALFORMED);
    };
    let server_id = server_id.trim();
    let Some(map) = refreshed_map(caps).await else { return refused(status::SERVER_ERROR) };
    let Some(folder) = map.by_server_id(server_id) else { return refused(NOT_FOUND) };
    if folder.folder_type != FolderType::UserMail {
        return refused(EXISTS_OR_SPECIAL);
    }
    let Ok(parent) = parent_of(&map, parent_id) else { return refused(PARENT_NOT_FOUND) };
    let parent_server_id = parent.map_or("0", |p| p.server_id.as_str());
    // Not into itself or below itself.
    if parent_server_id == server_id
        || map.descendants(server_id).iter().any(|d| d.server_id == parent_server_id)
    {
        return refused(PARENT_NOT_FOUND);
    }
    let Some(name) = folder_name(root, delimiter_for(&map, parent)) else {
        return refused(status::MALFORMED);
    };
    if name_taken(&map, parent_server_id, &name, Some(server_id))
        || (parent.is_none() && name.eq_ignore_ascii_case("INBOX"))
    {
        return refused(EXISTS_OR_SPECIAL);
    }
    let unchanged = folder.parent_id == parent_server_id && folder.display_name == name;
    if !unchanged {
        let new_parent = parent.map(|p| p.imap_name.as_str());
        let renamed = match caps.rename_folder(&folder.imap_name, new_parent, &name).await {
            Ok(renamed) => renamed,
            Err(MailboxError::NoSuchFolder(gone)) => {
                let code = if gone == folder.imap_name { NOT_FOUND } else { PARENT_NOT_FOUND };
                refreshed_map(caps).await;
                return refused(code);
            }
            Err(error) => return refused(failure(caps, "FolderUpdate", &error)),
        };
        if let Err(error) = folders::note_rename(caps, &folder.imap_name, &renamed.name).await {
            caps.log(Level::Warn, &format!("FolderUpdate: carrying the ServerId over: {error}"));
        }
    }
    let Some(map) = refreshed_map(caps).await else { return refused(status::SERVER_ERROR) };
    match map.by_server_id(server_id) {
        Some(entry) => Change::Done(vec![FolderChange::Update(KnownFolder::of(entry))], None),
        None => {
            // The server gave the folder a new identity after all: the device learns the
            // delete and the add through FolderSync.
            caps.log(Level::Warn, &format!("FolderUpdate: folder {server_id} got a new ServerId"));
            Change::Done(Vec::new(), None)
        }
    }
}

async fn delete(caps: &impl Capabilities, root: &Element) -> Change {
    /// FolderDelete Status (§2.2.3.177.4).
    const SPECIAL: u8 = 3;
    const NOT_FOUND: u8 = 4;
    let Some(server_id) = root.text_of(fh::SERVER_ID).map(str::trim) else {
        return refused(status::MALFORMED);
    };
    let Some(map) = refreshed_map(caps).await else { return refused(status::SERVER_ERROR) };
    let Some(folder) = map.by_server_id(server_id) else { return refused(NOT_FOUND) };
    let below = map.descendants(server_id);
    if folder.folder_type != FolderType::UserMail
        || below.iter().any(|entry| entry.folder_type != FolderType::UserMail)
    {
        return refused(SPECIAL);
    }
    let mut changes: Vec<FolderChange> = Vec::new();
    for entry in below.iter().copied().chain([folder]) {
        match caps.delete_folder(&entry.imap_name).await {
            Ok(()) => changes.push(FolderChange::Delete(entry.server_id.clone())),
            Err(MailboxError::NoSuchFolder(_)) if entry.server_id != server_id => {
                // Already gone: nothing to delete.
                changes.push(FolderChange::Delete(entry.server_id.clone()));
            }
            Err(error) => {
                let code = match error {
                    MailboxError::NoSuchFolder(_) => NOT_FOUND,
                    error => failure(caps, "FolderDelete", &error),
                };
                // Part of the subtree may be gone: the map and FolderSync tell the device.
                refreshed_map(caps).await;
                return refused(code);
            }
        }
    }
    refreshed_map(caps).await;
    Change::Done(changes, None)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{decoded, post, provisioned_host};
    use crate::testing::FakeHost;
    use eas_wbxml::tags::folder_hierarchy as fh;
    use eas_wbxml::{Document, Element, Tag};

    fn folder_sync(host: &FakeHost, key: &str) -> Element {
        let body = Document::new(Element::new(fh::FOLDER_SYNC).text_child(fh::SYNC_KEY, key));
        decoded(&post(host, "FolderSync", "16.1", &body))
    }

    /// The number of changes a FolderSync with `key` reports.
    fn reported(host: &FakeHost, key: &str) -> usize {
        let answer = folder_sync(host, key);
        assert_eq!(answer.text_of(fh::STATUS), Some("1"), "{answer:?}");
        answer
            .child(fh::CHANGES)
            .and_then(|c| c.text_of(fh::COUNT))
            .expect("Count")
            .parse()
            .expect("n")
    }

    /// (Status, SyncKey, ServerId) of a folder command.
    fn command(
        host: &FakeHost,
        name: &str,
        root: Tag,
        fields: &[(Tag, &str)],
    ) -> (String, Option<String>, Option<String>) {
        let mut element = Element::new(root);
        for (tag, value) in fields {
            element.push(Element::with_text(*tag, *value));
        }
        let answer = decoded(&post(host, name, "16.1", &Document::new(element)));
        assert_eq!(answer.tag, root);
        (
            answer.text_of(fh::STATUS).unwrap_or_default().to_owned(),
            answer.text_of(fh::SYNC_KEY).map(str::to_owned),
            answer.text_of(fh::SERVER_ID).map(str::to_owned),
        )
    }

    fn create(
        host: &FakeHost,
        key: &str,
        parent: &str,
        name: &str,
        kind: &str,
    ) -> (String, Option<String>, Option<String>) {
        command(
            host,
            "FolderCreate",
            fh::FOLDER_CREATE,
            &[
                (fh::SYNC_KEY, key),
                (fh::PARENT_ID, parent),
                (fh::DISPLAY_NAME, name),
                (fh::TYPE, kind),
            ],
        )
    }

    fn update(
        host: &FakeHost,
        key: &str,
        id: &str,
        parent: &str,
        name: &str,
    ) -> (String, Option<String>, Option<String>) {
        command(
            host,
            "FolderUpdate",
            fh::FOLDER_UPDATE,
            &[
                (fh::SYNC_KEY, key),
                (fh::SERVER_ID, id),
                (fh::PARENT_ID, parent),
                (fh::DISPLAY_NAME, name),
            ],
        )
    }

    fn delete(host: &FakeHost, key: &str, id: &str) -> (String, Option<String>, Option<String>) {
        command(
            host,
            "FolderDelete",
            fh::FOLDER_DELETE,
            &[(fh::SYNC_KEY, key), (fh::SERVER_ID, id)],
        )
    }

    fn refused(status: &str) -> (String, Option<String>, Option<String>) {
        (status.to_owned(), None, None)
    }

    fn lifecycle(host: &FakeHost) {
        assert_eq!(folder_sync(host, "0").text_of(fh::SYNC_KEY), Some("1"));
        let (status, key, work) = create(host, "1", "0", "Work", "12");
        assert_eq!((status.as_str(), key.as_deref()), ("1", Some("2")));
        let work = work.expect("ServerId");
        assert!(host.mailbox.borrow().folder_names().contains(&"Work".to_owned()));
        assert_eq!(reported(host, "2"), 0, "the device's own change is not reported back");

        let (status, key, sub) = create(host, "2", &work, "Sub", "12");
        assert_eq!((status.as_str(), key.as_deref()), ("1", Some("3")));
        let sub = sub.expect("ServerId");
        assert!(host.mailbox.borrow().folder_names().contains(&"Work/Sub".to_owned()));

        assert_eq!(
            update(host, "3", &work, "0", "Jobs"),
            ("1".to_owned(), Some("4".to_owned()), None)
        );
        let names = host.mailbox.borrow().folder_names();
        assert!(
            names.contains(&"Jobs".to_owned()) && names.contains(&"Jobs/Sub".to_owned()),
            "{names:?}"
        );
        assert_eq!(reported(host, "4"), 0);
        let map = crate::drive::run_to_completion(crate::folders::stored(host))
            .expect("done")
            .expect("map");
        assert_eq!(
            map.by_server_id(&work).map(|e| e.imap_name.as_str()),
            Some("Jobs"),
            "ServerIds stay"
        );
        assert_eq!(map.by_server_id(&sub).map(|e| e.imap_name.as_str()), Some("Jobs/Sub"));

        // Moved under Inbox and back.
        assert_eq!(update(host, "4", &sub, "1", "Sub").0, "1");
        assert!(host.mailbox.borrow().folder_names().contains(&"INBOX/Sub".to_owned()));
        assert_eq!(update(host, "5", &sub, &work, "Sub").0, "1");

        assert_eq!(delete(host, "6", &work), ("1".to_owned(), Some("7".to_owned()), None));
        let names = host.mailbox.borrow().folder_names();
        assert_eq!(names, ["INBOX", "Drafts", "Sent", "Trash"], "the subtree is gone");
        assert_eq!(reported(host, "7"), 0);
    }

    #[test]
    fn create_rename_move_and_delete_keep_folder_sync_consistent() {
        lifecycle(&provisioned_host());
    }

    #[test]
    fn without_mailbox_ids_server_ids_survive_renames() {
        let host = provisioned_host();
        host.mailbox.borrow_mut().without_mailbox_ids();
        lifecycle(&host);
    }

    #[test]
    fn other_devices_learn_the_change_through_folder_sync() {
        let host = provisioned_host();
        folder_sync(&host, "0");
        // The same device forgetting its record stands in for a second device: it is told.
        let (_, _, work) = create(&host, "1", "0", "Work", "12");
        let fresh = folder_sync(&host, "0");
        let listed = fresh.child(fh::CHANGES).expect("Changes");
        assert!(listed.children(fh::ADD).any(|add| add.text_of(fh::SERVER_ID) == work.as_deref()));
        // And a change made in IMAP by someone else still reaches this device.
        let key = fresh.text_of(fh::SYNC_KEY).expect("key").to_owned();
        host.mailbox.borrow_mut().add_folder("Other", None);
        assert_eq!(reported(&host, &key), 1);
    }

    #[test]
    fn refusals_carry_no_key() {
        let host = provisioned_host();
        folder_sync(&host, "0");
        let (_, key, work) = create(&host, "1", "0", "Work", "12");
        let (key, work) = (key.expect("key"), work.expect("id"));
        assert_eq!(create(&host, &key, "0", "work", "12"), refused("2"));
        assert_eq!(create(&host, &key, "0", "inbox", "12"), refused("2"));
        assert_eq!(create(&host, &key, "99", "New", "12"), refused("5"));
        assert_eq!(create(&host, &key, "0", "Cal", "8"), refused("10"));
        assert_eq!(create(&host, &key, "0", "a/b", "12"), refused("10"));
        assert_eq!(create(&host, &key, "0", "  ", "12"), refused("10"));
        assert_eq!(create(&host, "1", "0", "New", "12"), refused("9"));
        assert_eq!(create(&host, "0", "0", "New", "12"), refused("9"));
        assert_eq!(update(&host, &key, "1", "0", "Mail"), refused("2"), "Inbox is special");
        assert_eq!(update(&host, &key, "99", "0", "X"), refused("4"));
        assert_eq!(update(&host, &key, &work, "99", "X"), refused("5"));
        assert_eq!(update(&host, &key, &work, &work, "X"), refused("5"));
        assert_eq!(update(&host, &key, &work, "0", "Sent"), refused("2"));
        assert_eq!(delete(&host, &key, "4"), refused("3"), "Deleted Items stays");
        assert_eq!(delete(&host, &key, "99"), refused("4"));
        let missing = decoded(&post(
            &host,
            "FolderDelete",
            "16.1",
            &Document::new(Element::new(fh::FOLDER_DELETE)),
        ));
        assert_eq!(missing.text_of(fh::STATUS), Some("10"));

        // Deleted in IMAP under the device: not found.
        host.mailbox.borrow_mut().delete_folder("Work");
        assert_eq!(delete(&host, &key, &work), refused("4"));
        assert_eq!(update(&host, &key, &work, "0", "X"), refused("4"));
        // Nothing above moved the key.
        assert_eq!(create(&host, &key, "0", "Fine", "12").0, "1");
    }
}
