//! Sync through `sync::run` with an in-memory host, and a small simulated device that
//! applies the answers.

mod changes;
mod client;
mod estimate;
mod paging;
mod requests;
mod wait;

use super::SyncAnswer;
use crate::ashttp::{EasRequest, parse_request};
use crate::capabilities::StateScope;
use crate::drive::run_to_completion;
use crate::http::{IDENTITY_HEADER, Request};
use crate::testing::{FakeHost, FakeMailbox};
use eas_wbxml::tags::{air_sync, air_sync_base as base, email};
use eas_wbxml::{Document, Element};
use std::collections::BTreeMap;

pub const DEVICE: &str = "SYNCTEST1";
pub const IDENTITY: &str = "jane@example.test";
/// The folder map's ServerIds for the standard mailbox.
pub const INBOX: &str = "1";
pub const SENT: &str = "3";

pub fn host() -> FakeHost {
    let host = FakeHost::default();
    *host.mailbox.borrow_mut() = FakeMailbox::standard();
    host
}

pub fn message(subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Ann <ann@example.org>\r\nTo: bob@example.org\r\nSubject: {subject}\r\n\
         Message-ID: <{subject}@example.org>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         {body}\r\n"
    )
    .into_bytes()
}

/// Appends `count` messages to `folder`, dated `date`; returns their UIDs.
pub fn fill(host: &FakeHost, folder: &str, count: usize, date: i64) -> Vec<u32> {
    let mut mailbox = host.mailbox.borrow_mut();
    (0..count)
        .map(|i| mailbox.append(folder, &message(&format!("m{i}"), "hello"), &[], date))
        .collect()
}

pub fn eas_request(version: &str) -> EasRequest {
    let request = Request {
        method: "POST".into(),
        path: crate::ENDPOINT.into(),
        query: format!("Cmd=Sync&User=jane&DeviceId={DEVICE}&DeviceType=iPhone"),
        headers: vec![
            (IDENTITY_HEADER.to_owned(), b"jane@example.test".to_vec()),
            ("ms-asprotocolversion".to_owned(), version.as_bytes().to_vec()),
        ],
        body: Vec::new(),
    };
    parse_request(&request).expect("valid request")
}

pub fn run_raw(host: &FakeHost, version: &str, body: &[u8]) -> SyncAnswer {
    run_to_completion(super::run(host, IDENTITY, &eas_request(version), body)).expect("completes")
}

pub fn run(host: &FakeHost, version: &str, root: Element) -> SyncAnswer {
    run_raw(host, version, &eas_wbxml::encode(&Document::new(root)).expect("encodes"))
}

/// One `Collection` of a request.
pub fn collection(key: &str, id: &str) -> Element {
    Element::new(air_sync::COLLECTION)
        .text_child(air_sync::SYNC_KEY, key)
        .text_child(air_sync::COLLECTION_ID, id)
}

pub fn with_window(collection: Element, size: usize) -> Element {
    collection.text_child(air_sync::WINDOW_SIZE, size.to_string())
}

pub fn with_options(collection: Element, children: Vec<Element>) -> Element {
    collection.with_child(Element::with_children(air_sync::OPTIONS, children))
}

pub fn plain_text(truncation: u32) -> Element {
    Element::new(base::BODY_PREFERENCE)
        .text_child(base::TYPE, "1")
        .text_child(base::TRUNCATION_SIZE, truncation.to_string())
}

pub fn sync_request(collections: Vec<Element>) -> Element {
    Element::new(air_sync::SYNC)
        .with_child(Element::with_children(air_sync::COLLECTIONS, collections))
}

/// The answer's bytes (a Document answer, encoded).
pub fn bytes(answer: &SyncAnswer) -> Vec<u8> {
    match answer {
        SyncAnswer::Document(document) => eas_wbxml::encode(document).expect("encodes"),
        other => panic!("expected a document, got {other:?}"),
    }
}

pub fn collections(answer: &SyncAnswer) -> Vec<Element> {
    match answer {
        SyncAnswer::Document(document) => document
            .root
            .child(air_sync::COLLECTIONS)
            .map(|c| c.child_elements().to_vec())
            .unwrap_or_default(),
        other => panic!("expected a document, got {other:?}"),
    }
}

pub fn only_collection(answer: &SyncAnswer) -> Element {
    let mut list = collections(answer);
    assert_eq!(list.len(), 1, "{answer:?}");
    list.remove(0)
}

pub fn status_of(collection: &Element) -> &str {
    collection.text_of(air_sync::STATUS).expect("Status")
}

pub fn key_of(collection: &Element) -> String {
    collection.text_of(air_sync::SYNC_KEY).expect("SyncKey").to_owned()
}

pub fn commands(collection: &Element) -> &[Element] {
    collection.child(air_sync::COMMANDS).map_or(&[], Element::child_elements)
}

/// (element, Status) of each Responses entry.
pub fn responses(collection: &Element) -> Vec<(eas_wbxml::Tag, String)> {
    collection
        .child(air_sync::RESPONSES)
        .map(|r| {
            r.child_elements()
                .iter()
                .map(|e| (e.tag, e.text_of(air_sync::STATUS).unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

pub fn uid_of(server_id: &str) -> u32 {
    server_id.rsplit_once(':').and_then(|(_, uid)| uid.parse().ok()).expect("uid")
}

/// What a device holds of one collection: ServerId → Read, plus its key.
#[derive(Debug, Default)]
pub struct Device {
    pub key: String,
    pub items: BTreeMap<u32, bool>,
    /// How often each UID was added.
    pub added: BTreeMap<u32, usize>,
    pub soft_deleted: Vec<u32>,
}

impl Device {
    /// Applies a collection answer; returns whether MoreAvailable was set.
    pub fn apply(&mut self, collection: &Element) -> bool {
        assert_eq!(status_of(collection), "1", "{collection:?}");
        self.key = key_of(collection);
        for command in commands(collection) {
            let uid = uid_of(command.text_of(air_sync::SERVER_ID).expect("ServerId"));
            let read = || {
                command
                    .child(air_sync::APPLICATION_DATA)
                    .and_then(|data| data.text_of(email::READ))
                    .map(|read| read == "1")
            };
            match command.tag {
                tag if tag == air_sync::ADD => {
                    *self.added.entry(uid).or_default() += 1;
                    self.items.insert(uid, read().expect("Read"));
                }
                tag if tag == air_sync::CHANGE => {
                    let entry = self.items.get_mut(&uid).expect("a Change of a held item");
                    *entry = read().expect("Read");
                }
                tag if tag == air_sync::DELETE => {
                    self.items.remove(&uid).expect("a Delete of a held item");
                }
                tag if tag == air_sync::SOFT_DELETE => {
                    self.items.remove(&uid).expect("a SoftDelete of a held item");
                    self.soft_deleted.push(uid);
                }
                other => panic!("unexpected command {other:?}"),
            }
        }
        collection.child(air_sync::MORE_AVAILABLE).is_some()
    }

    /// SyncKey 0 for `id`, then Syncs until nothing more is available; returns the number of
    /// Syncs after the first.
    pub fn initial_sync(
        &mut self,
        host: &FakeHost,
        version: &str,
        id: &str,
        extra: &[Element],
    ) -> usize {
        let mut first = collection("0", id);
        for element in extra {
            first.push(element.clone());
        }
        let answer = run(host, version, sync_request(vec![first]));
        let bootstrap = only_collection(&answer);
        assert!(commands(&bootstrap).is_empty(), "the first Sync returns no items");
        self.apply(&bootstrap);
        self.sync_until_done(host, version, id, None)
    }

    pub fn sync_until_done(
        &mut self,
        host: &FakeHost,
        version: &str,
        id: &str,
        window: Option<usize>,
    ) -> usize {
        let mut rounds = 0;
        loop {
            rounds += 1;
            assert!(rounds < 10_000, "no end");
            let mut request = collection(&self.key, id);
            if let Some(window) = window {
                request = with_window(request, window);
            }
            match run(host, version, sync_request(vec![request])) {
                SyncAnswer::Empty { .. } => return rounds,
                answer => {
                    if !self.apply(&only_collection(&answer)) {
                        return rounds;
                    }
                }
            }
        }
    }

    /// One Sync with the current key; the answer's collection (None for an empty answer).
    pub fn sync_once(&mut self, host: &FakeHost, version: &str, id: &str) -> Option<Element> {
        match run(host, version, sync_request(vec![collection(&self.key, id)])) {
            SyncAnswer::Empty { .. } => None,
            answer => {
                let collection = only_collection(&answer);
                self.apply(&collection);
                Some(collection)
            }
        }
    }
}

pub fn device_scope() -> StateScope {
    StateScope::Device(DEVICE.to_owned())
}
