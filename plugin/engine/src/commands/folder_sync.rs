//! FolderSync: the folder hierarchy and its SyncKey ([MS-ASCMD] §2.2.1.5, §2.2.3.181.2;
//! EAS-NOTES §4.2).
//!
//! SyncKey `0` lists every folder as an Add. A device holding the current key gets the changes
//! since (Add / Update on rename or move with the same ServerId / Delete) and, when there are
//! any, a new key; with none it keeps its key. The key before the current one is answered
//! again with the changes that were sent for it, for a client that lost the response. Any other
//! key is Status 9, which makes the client start over at 0.
//!
//! Keys are a per-device counter: it only grows (a device resetting to 0 gets a key it never
//! held before), so a stale key can never match by accident.

use super::{answer_common_status, decode_body, wbxml_response};
use crate::ashttp::{CommonStatus, EasRequest, PROTOCOL_VERSIONS_HEADER, SUPPORTED_VERSIONS};
use crate::capabilities::{Capabilities, Level};
use crate::folders::hierarchy::{self, FolderChange, Hierarchy, KnownFolder, LastAnswer, next_key};
use crate::http::Response;
use eas_wbxml::tags::folder_hierarchy as fh;
use eas_wbxml::{Document, Element};

/// `FolderSync > Status` values (MS-ASCMD §2.2.3.177.5).
const STATUS_SUCCESS: u8 = 1;
const STATUS_SERVER_ERROR: u8 = 6;
const STATUS_INVALID_KEY: u8 = 9;
const STATUS_MALFORMED: u8 = 10;

/// Compare-and-swap attempts before answering a server error (another FolderSync of the same
/// device keeps changing the record).
const ATTEMPTS: usize = 3;

/// The SyncKey a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SentKey {
    Initial,
    Key(u32),
    /// Not a key this server ever hands out.
    Invalid,
}

impl SentKey {
    pub(super) fn parse(text: &str) -> SentKey {
        if text == "0" {
            return SentKey::Initial;
        }
        // Only the canonical decimal form we send: no sign, no leading zeros, no spaces.
        match text.parse::<u32>() {
            Ok(key) if key != 0 && key.to_string() == text => SentKey::Key(key),
            _ => SentKey::Invalid,
        }
    }
}

/// The answer to a key against the stored record.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    /// Send `changes` with `key`; store `update` first when there is one.
    Changes {
        key: u32,
        changes: Vec<FolderChange>,
        update: Option<Hierarchy>,
    },
    InvalidKey,
}

/// Decides the answer; pure, so the retry and key rules are tested without a host.
fn answer(stored: &Hierarchy, sent: SentKey, current: Vec<KnownFolder>) -> Answer {
    match sent {
        SentKey::Initial => {
            let key = next_key(stored.key);
            let changes = hierarchy::all_as_adds(&current);
            let update = Hierarchy { key, folders: current, last: None };
            Answer::Changes { key, changes, update: Some(update) }
        }
        SentKey::Key(key) if key == stored.key => {
            let changes = hierarchy::diff(&stored.folders, &current);
            if changes.is_empty() {
                return Answer::Changes { key, changes, update: None };
            }
            let new_key = next_key(key);
            let update = Hierarchy {
                key: new_key,
                folders: current,
                last: Some(LastAnswer { from_key: key, changes: changes.clone() }),
            };
            Answer::Changes { key: new_key, changes, update: Some(update) }
        }
        SentKey::Key(key) => match &stored.last {
            Some(last) if last.from_key == key => {
                Answer::Changes { key: stored.key, changes: last.changes.clone(), update: None }
            }
            _ => Answer::InvalidKey,
        },
        SentKey::Invalid => Answer::InvalidKey,
    }
}

pub async fn run(caps: &impl Capabilities, request: &EasRequest, body: &[u8]) -> Response {
    let Some(document) = decode_body(caps, request, body) else {
        return answer_common_status(request, CommonStatus::InvalidWbxml);
    };
    if document.root.tag != fh::FOLDER_SYNC {
        return answer_common_status(request, CommonStatus::InvalidXml);
    }
    let Some(sent) = document.root.text_of(fh::SYNC_KEY) else {
        return wbxml_response(&status_only(STATUS_MALFORMED), request);
    };
    let sent = SentKey::parse(sent);
    let device = request.device_id.as_str();
    match sync(caps, device, sent).await {
        Ok(Answer::Changes { key, changes, .. }) => {
            let response = wbxml_response(&changes_document(key, &changes), request);
            if sent == SentKey::Initial && response.status == 200 {
                // What Exchange sends with an initial FolderSync (MS-ASHTTP §2.2.2.1.2.7–9).
                response
                    .with_header("X-MS-RP", SUPPORTED_VERSIONS)
                    .with_header(PROTOCOL_VERSIONS_HEADER, SUPPORTED_VERSIONS)
                    .with_header("MS-ASProtocolCommands", super::IMPLEMENTED.join(","))
            } else {
                response
            }
        }
        Ok(Answer::InvalidKey) => {
            caps.log(Level::Info, &format!("FolderSync of {device}: unknown SyncKey {sent:?}"));
            wbxml_response(&status_only(STATUS_INVALID_KEY), request)
        }
        Err(why) => {
            caps.log(Level::Error, &format!("FolderSync of {device}: {why}"));
            wbxml_response(&status_only(STATUS_SERVER_ERROR), request)
        }
    }
}

/// Refreshes the folder map, answers `sent` and stores the device's new state.
async fn sync(caps: &impl Capabilities, device: &str, sent: SentKey) -> Result<Answer, String> {
    let map = crate::folders::refresh(caps).await.map_err(|error| error.to_string())?;
    let current = hierarchy::current_folders(&map);
    for _ in 0..ATTEMPTS {
        let stored = hierarchy::load(caps, device).await.map_err(|error| error.to_string())?;
        let answer = answer(&stored.hierarchy, sent, current.clone());
        let Answer::Changes { update: Some(update), .. } = &answer else {
            return Ok(answer);
        };
        if hierarchy::replace(caps, device, &stored, update)
            .await
            .map_err(|error| error.to_string())?
        {
            return Ok(answer);
        }
    }
    Err("the device's hierarchy record kept changing".to_owned())
}

fn status_only(status: u8) -> Document {
    Document::new(Element::new(fh::FOLDER_SYNC).text_child(fh::STATUS, status.to_string()))
}

fn changes_document(key: u32, changes: &[FolderChange]) -> Document {
    let mut list = Element::new(fh::CHANGES).text_child(fh::COUNT, changes.len().to_string());
    for change in changes {
        list.push(match change {
            FolderChange::Add(folder) => folder_element(fh::ADD, folder),
            FolderChange::Update(folder) => folder_element(fh::UPDATE, folder),
            FolderChange::Delete(server_id) => {
                Element::new(fh::DELETE).text_child(fh::SERVER_ID, server_id.as_str())
            }
        });
    }
    Document::new(
        Element::new(fh::FOLDER_SYNC)
            .text_child(fh::STATUS, STATUS_SUCCESS.to_string())
            .text_child(fh::SYNC_KEY, key.to_string())
            .with_child(list),
    )
}

fn folder_element(tag: eas_wbxml::Tag, folder: &KnownFolder) -> Element {
    Element::new(tag)
        .text_child(fh::SERVER_ID, folder.server_id.as_str())
        .text_child(fh::PARENT_ID, folder.parent_id.as_str())
        .text_child(fh::DISPLAY_NAME, folder.display_name.as_str())
        .text_child(fh::TYPE, folder.folder_type.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(id: &str, parent: &str, name: &str, folder_type: u8) -> KnownFolder {
        KnownFolder {
            server_id: id.into(),
            parent_id: parent.into(),
            display_name: name.into(),
            folder_type,
        }
    }

    #[test]
    fn keys_are_canonical_decimals() {
        assert_eq!(SentKey::parse("0"), SentKey::Initial);
        assert_eq!(SentKey::parse("17"), SentKey::Key(17));
        for bad in ["", "00", "017", " 1", "+1", "-1", "x", "4294967296"] {
            assert_eq!(SentKey::parse(bad), SentKey::Invalid, "{bad:?}");
        }
        assert_eq!(next_key(u32::MAX), 1);
    }

    #[test]
    fn unchanged_hierarchy_keeps_the_key_and_stores_nothing() {
        let folders = vec![folder("1", "0", "Inbox", 2)];
        let stored = Hierarchy { key: 4, folders: folders.clone(), last: None };
        assert_eq!(
            answer(&stored, SentKey::Key(4), folders),
            Answer::Changes { key: 4, changes: vec![], update: None }
        );
    }

    #[test]
    fn only_the_current_and_the_previous_key_are_answered() {
        let before = vec![folder("1", "0", "Inbox", 2)];
        let after = vec![folder("1", "0", "Inbox", 2), folder("2", "0", "Work", 12)];
        let stored = Hierarchy { key: 4, folders: before, last: None };
        let Answer::Changes { key, changes, update: Some(update) } =
            answer(&stored, SentKey::Key(4), after.clone())
        else {
            panic!("changes expected");
        };
        assert_eq!((key, changes.len()), (5, 1));
        // The lost response is sent again, with the same key.
        assert_eq!(
            answer(&update, SentKey::Key(4), after.clone()),
            Answer::Changes { key: 5, changes, update: None }
        );
        assert_eq!(answer(&update, SentKey::Key(3), after.clone()), Answer::InvalidKey);
        assert_eq!(answer(&update, SentKey::Key(6), after.clone()), Answer::InvalidKey);
        assert_eq!(answer(&update, SentKey::Invalid, after), Answer::InvalidKey);
        // A device that never synced has no key but 0.
        assert_eq!(answer(&Hierarchy::default(), SentKey::Key(1), vec![]), Answer::InvalidKey);
    }

    #[test]
    fn adds_come_parents_first_and_deletes_children_first() {
        let known = vec![folder("1", "0", "Inbox", 2), folder("3", "0", "Old", 12)];
        let known = [known, vec![folder("4", "3", "Older", 12)]].concat();
        let current = vec![
            folder("1", "0", "Inbox", 2),
            folder("6", "5", "Child", 12),
            folder("5", "1", "Parent", 12),
        ];
        let changes = hierarchy::diff(&known, &current);
        assert_eq!(
            changes,
            vec![
                FolderChange::Add(folder("5", "1", "Parent", 12)),
                FolderChange::Add(folder("6", "5", "Child", 12)),
                FolderChange::Delete("4".into()),
                FolderChange::Delete("3".into()),
            ]
        );
    }

    mod through_the_engine {
        use super::super::super::test_support::{
            DEVICE, decoded, post, post_raw, provisioned_host,
        };
        use crate::drive::run_to_completion;
        use crate::mailbox::FolderRole;
        use crate::testing::FakeHost;
        use eas_wbxml::tags::folder_hierarchy as fh;
        use eas_wbxml::{Document, Element};

        fn folder_sync(host: &FakeHost, key: &str, version: &str) -> Element {
            let body = Document::new(Element::new(fh::FOLDER_SYNC).text_child(fh::SYNC_KEY, key));
            decoded(&post(host, "FolderSync", version, &body))
        }

        /// (element, ServerId, ParentId, DisplayName, Type) of each change.
        fn changes(answer: &Element) -> Vec<(&'static str, String, String, String, String)> {
            let list = answer.child(fh::CHANGES).expect("Changes");
            let count: usize = list.text_of(fh::COUNT).expect("Count").parse().expect("number");
            let text = |e: &Element, tag| e.text_of(tag).unwrap_or_default().to_owned();
            let listed: Vec<_> = list
                .child_elements()
                .iter()
                .filter(|e| e.tag != fh::COUNT)
                .map(|e| {
                    let kind = match e.tag {
                        t if t == fh::ADD => "Add",
                        t if t == fh::UPDATE => "Update",
                        t if t == fh::DELETE => "Delete",
                        _ => "?",
                    };
                    let fields = [fh::SERVER_ID, fh::PARENT_ID, fh::DISPLAY_NAME, fh::TYPE];
                    let [id, parent, name, kind_code] = fields.map(|tag| text(e, tag));
                    (kind, id, parent, name, kind_code)
                })
                .collect();
            assert_eq!(listed.len(), count, "Count matches the changes");
            listed
        }

        fn id_of(answer: &Element, name: &str) -> String {
            changes(answer)
                .into_iter()
                .find(|change| change.3 == name)
                .map(|change| change.1)
                .expect("listed")
        }

        #[test]
        fn initial_sync_lists_every_folder_with_its_type() {
            let host = provisioned_host();
            host.mailbox.borrow_mut().add_folder("INBOX/Projects", None);
            let response = post(
                &host,
                "FolderSync",
                "16.1",
                &Document::new(Element::new(fh::FOLDER_SYNC).text_child(fh::SYNC_KEY, "0")),
            );
            assert!(response.header("X-MS-RP").is_some());
            assert!(
                response.header("MS-ASProtocolCommands").is_some_and(|c| c.contains("FolderSync"))
            );
            let answer = decoded(&response);
            assert_eq!(answer.text_of(fh::STATUS), Some("1"));
            assert_eq!(answer.text_of(fh::SYNC_KEY), Some("1"));
            let listed = changes(&answer);
            let summary: Vec<_> = listed
                .iter()
                .map(|(kind, _, _, name, code)| (*kind, name.as_str(), code.as_str()))
                .collect();
            assert_eq!(
                summary,
                [
                    ("Add", "INBOX", "2"),
                    ("Add", "Drafts", "3"),
                    ("Add", "Sent", "5"),
                    ("Add", "Trash", "4"),
                    ("Add", "Projects", "12"),
                ]
            );
            let inbox = id_of(&answer, "INBOX");
            assert_eq!(listed[4].2, inbox, "Projects sits under INBOX");
            assert!(listed[..4].iter().all(|change| change.2 == "0"));
        }

        #[test]
        fn changes_come_as_add_update_delete_with_stable_ids() {
            let host = provisioned_host();
            let initial = folder_sync(&host, "0", "14.1");
            let sent = id_of(&initial, "Sent");
            let drafts = id_of(&initial, "Drafts");

            // Nothing changed: same key, no changes.
            let quiet = folder_sync(&host, "1", "14.1");
            assert_eq!(quiet.text_of(fh::SYNC_KEY), Some("1"));
            assert!(changes(&quiet).is_empty());

            host.mailbox.borrow_mut().add_folder("Work", None);
            let added = folder_sync(&host, "1", "14.1");
            assert_eq!(added.text_of(fh::SYNC_KEY), Some("2"));
            let work = id_of(&added, "Work");
            assert_eq!(
                changes(&added),
                [("Add", work.clone(), "0".into(), "Work".into(), "12".into())]
            );

            host.mailbox.borrow_mut().rename_folder("Work", "Jobs");
            let renamed = folder_sync(&host, "2", "14.1");
            assert_eq!(
                changes(&renamed),
                [("Update", work.clone(), "0".into(), "Jobs".into(), "12".into())]
            );

            host.mailbox.borrow_mut().delete_folder("Jobs");
            host.mailbox.borrow_mut().delete_folder("Sent");
            host.mailbox.borrow_mut().add_folder("Sent", Some(FolderRole::Sent));
            let replaced = folder_sync(&host, "3", "14.1");
            assert_eq!(replaced.text_of(fh::SYNC_KEY), Some("4"));
            let listed = changes(&replaced);
            assert_eq!(listed.len(), 3, "{listed:?}");
            assert!(listed.contains(&(
                "Delete",
                work,
                String::new(),
                String::new(),
                String::new()
            )));
            assert!(listed.contains(&(
                "Delete",
                sent.clone(),
                String::new(),
                String::new(),
                String::new()
            )));
            let new_sent = listed.iter().find(|c| c.0 == "Add").expect("new Sent").1.clone();
            assert_ne!(new_sent, sent, "a recreated folder is a new folder");
            assert!(!listed.iter().any(|c| c.1 == drafts), "untouched folders stay quiet");
        }

        #[test]
        fn a_lost_response_is_answered_again_and_other_keys_get_status_9() {
            let host = provisioned_host();
            folder_sync(&host, "0", "16.1");
            host.mailbox.borrow_mut().add_folder("Later", None);
            let body = eas_wbxml::encode(&Document::new(
                Element::new(fh::FOLDER_SYNC).text_child(fh::SYNC_KEY, "1"),
            ))
            .expect("encodes");
            let first = post_raw(&host, "FolderSync", "16.1", body.clone(), &[]);
            let retry = post_raw(&host, "FolderSync", "16.1", body, &[]);
            assert_eq!(first.body, retry.body, "the retry gets the same bytes");
            assert_eq!(decoded(&retry).text_of(fh::SYNC_KEY), Some("2"));
            assert_eq!(changes(&decoded(&first)).len(), 1);

            // The client moved on: the key after is still current, older ones are refused.
            assert!(changes(&folder_sync(&host, "2", "16.1")).is_empty());
            for stale in ["3", "7", "abc", ""] {
                let refused = folder_sync(&host, stale, "16.1");
                assert_eq!(refused.text_of(fh::STATUS), Some("9"), "{stale:?}");
                assert!(refused.child(fh::SYNC_KEY).is_none());
            }
            // Starting over works, with a key never handed out before.
            let again = folder_sync(&host, "0", "12.1");
            assert_eq!(again.text_of(fh::SYNC_KEY), Some("3"));
            assert_eq!(folder_sync(&host, "2", "12.1").text_of(fh::STATUS), Some("9"));
        }

        #[test]
        fn a_device_that_never_synced_gets_status_9() {
            let host = provisioned_host();
            assert_eq!(folder_sync(&host, "1", "14.0").text_of(fh::STATUS), Some("9"));
        }

        #[test]
        fn malformed_requests_and_server_failures() {
            let host = provisioned_host();
            let no_key = decoded(&post(
                &host,
                "FolderSync",
                "16.1",
                &Document::new(Element::new(fh::FOLDER_SYNC)),
            ));
            assert_eq!(no_key.text_of(fh::STATUS), Some("10"));
            let garbage = vec![0x03, 0x01, 0x6A, 0x00, 0x45, 0xFF];
            assert_eq!(post_raw(&host, "FolderSync", "12.1", garbage.clone(), &[]).status, 400);
            let in_body = decoded(&post_raw(&host, "FolderSync", "16.1", garbage, &[]));
            assert_eq!(in_body.text_of(fh::STATUS), Some("102"));

            host.mailbox.borrow_mut().unavailable = true;
            for version in ["12.1", "16.1"] {
                let failed = folder_sync(&host, "0", version);
                assert_eq!(failed.text_of(fh::STATUS), Some("6"), "{version}");
            }
            host.mailbox.borrow_mut().unavailable = false;
            assert_eq!(folder_sync(&host, "0", "16.1").text_of(fh::STATUS), Some("1"));
        }

        #[test]
        fn hierarchy_changed_compares_with_what_the_device_holds() {
            let host = provisioned_host();
            let changed = || {
                run_to_completion(crate::folders::hierarchy::hierarchy_changed(&host, DEVICE))
                    .expect("completes")
                    .expect("answers")
            };
            assert!(changed(), "a device that never synced is out of date");
            folder_sync(&host, "0", "16.1");
            assert!(!changed());
            host.mailbox.borrow_mut().rename_folder("Trash", "Bin");
            assert!(changed());
            folder_sync(&host, "1", "16.1");
            assert!(!changed());
        }
    }
}
