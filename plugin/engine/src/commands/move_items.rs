//! MoveItems ([MS-ASCMD] §2.2.1.12, EAS-NOTES §4.8): the device moves messages between
//! folders.
//!
//! Each `Move` names an item (`SrcMsgId`, a ServerId `"{collection}:{uid}"` as Sync hands
//! out), its folder and the destination. Moves between the same two folders go to IMAP as one
//! MOVE. The answer per item (§2.2.3.177.10): 3 success with `DstMsgId` (the new ServerId,
//! from the server's COPYUID, or found by Message-ID in the destination when the server does
//! not say); 1 unknown source folder or item; 2 unknown destination; 4 same folder; 5 the
//! server refused; 7 the mailbox is unreachable (retry later).
//!
//! The device's collection states learn the moves (`sync::record_moves`): it gets no Delete in
//! the source for an item it moved, and no Add in the destination for the item it already
//! knows by its DstMsgId. So a retried move whose first answer was lost (the source item is
//! gone) is answered from the device's recent moves with the same DstMsgId (`sync::recent_move`).

use super::{answer_common_status, decode_body, wbxml_response};
use crate::ashttp::{CommonStatus, EasRequest};
use crate::capabilities::{Capabilities, Level};
use crate::folders::{self, FolderEntry};
use crate::http::Response;
use crate::mailbox::{MailboxError, SearchQuery};
use crate::sync::{self, Moved};
use eas_wbxml::tags::r#move as mv;
use eas_wbxml::{Document, Element};
use std::collections::HashMap;

/// Move elements in one request (MS-ASCMD §3.1.5.10: 1000 by default).
const MAX_MOVES: usize = 1000;

/// Bytes of each message read before the move, for its Message-ID.
const HEADER_BYTES: u32 = 8 * 1024;

/// MoveItems Status values (MS-ASCMD §2.2.3.177.10).
mod status {
    pub const INVALID_SOURCE: u8 = 1;
    pub const INVALID_DESTINATION: u8 = 2;
    pub const SUCCESS: u8 = 3;
    pub const SAME_FOLDER: u8 = 4;
    pub const FAILURE: u8 = 5;
    pub const LOCKED: u8 = 7;
}

/// One Move of the request and its answer.
#[derive(Clone)]
struct Item {
    src_msg_id: String,
    status: u8,
    dst_msg_id: Option<String>,
}

/// A move that passed the checks: (source, destination, uid, index into the items).
struct Planned {
    index: usize,
    uid: u32,
}

pub async fn run(caps: &impl Capabilities, request: &EasRequest, body: &[u8]) -> Response {
    let Some(document) = decode_body(caps, request, body) else {
        return answer_common_status(request, CommonStatus::InvalidWbxml);
    };
    let root = &document.root;
    let moves: Vec<&Element> = root.children(mv::MOVE).collect();
    if root.tag != mv::MOVE_ITEMS || moves.is_empty() || moves.len() > MAX_MOVES {
        return answer_common_status(request, CommonStatus::InvalidXml);
    }
    let mut items: Vec<Item> = Vec::with_capacity(moves.len());
    // (source ServerId, destination ServerId) → the moves between them.
    let mut groups: Vec<((String, String), Vec<Planned>)> = Vec::new();
    let mut resolved: HashMap<String, Option<FolderEntry>> = HashMap::new();
    for element in moves {
        let text = |tag| element.text_of(tag).map(str::trim).unwrap_or_default().to_owned();
        let (src_msg_id, src, dst) =
            (text(mv::SRC_MSG_ID), text(mv::SRC_FLD_ID), text(mv::DST_FLD_ID));
        let index = items.len();
        items.push(Item {
            src_msg_id: src_msg_id.clone(),
            status: status::SUCCESS,
            dst_msg_id: None,
        });
        let code = check(caps, &mut resolved, &src_msg_id, &src, &dst).await;
        match code {
            Ok(uid) => match groups.iter_mut().find(|(key, _)| key.0 == src && key.1 == dst) {
                Some((_, planned)) => planned.push(Planned { index, uid }),
                None => groups.push(((src, dst), vec![Planned { index, uid }])),
            },
            Err(code) => items[index].status = code,
        }
    }
    let mut recorded: Vec<Moved> = Vec::new();
    for ((src, dst), planned) in groups {
        let (Some(Some(source)), Some(Some(destination))) =
            (resolved.get(&src), resolved.get(&dst))
        else {
            continue;
        };
        let device = request.device_id.as_str();
        move_group(caps, device, source, destination, &planned, &mut items, &mut recorded).await;
    }
    let device = request.device_id.as_str();
    if !recorded.is_empty()
        && let Err(error) = sync::record_moves(caps, device, &recorded).await
    {
        // The moves happened; the device then gets a Delete and an Add for them.
        caps.log(Level::Warn, &format!("{device}: recording moves in sync state: {error}"));
    }
    let moved = items.iter().filter(|item| item.status == status::SUCCESS).count();
    caps.log(Level::Info, &format!("{device}: MoveItems: {moved} of {} moved", items.len()));
    wbxml_response(&answer(&items), request)
}

/// The UID to move, or the item's status.
async fn check(
    caps: &impl Capabilities,
    resolved: &mut HashMap<String, Option<FolderEntry>>,
    src_msg_id: &str,
    src: &str,
    dst: &str,
) -> Result<u32, u8> {
    let (collection, uid) = src_msg_id.rsplit_once(':').ok_or(status::INVALID_SOURCE)?;
    let uid = (!uid.is_empty() && uid.bytes().all(|b| b.is_ascii_digit()))
        .then(|| uid.parse::<u32>().ok())
        .flatten()
        .filter(|&uid| uid != 0)
        .ok_or(status::INVALID_SOURCE)?;
    if src.is_empty() || collection != src {
        return Err(status::INVALID_SOURCE);
    }
    if src == dst {
        return Err(status::SAME_FOLDER);
    }
    if folder(caps, resolved, src).await?.is_none() {
        return Err(status::INVALID_SOURCE);
    }
    if dst.is_empty() || folder(caps, resolved, dst).await?.is_none() {
        return Err(status::INVALID_DESTINATION);
    }
    Ok(uid)
}

/// The selectable folder with this ServerId, looked up once per request.
async fn folder(
    caps: &impl Capabilities,
    resolved: &mut HashMap<String, Option<FolderEntry>>,
    server_id: &str,
) -> Result<Option<FolderEntry>, u8> {
    if let Some(known) = resolved.get(server_id) {
        return Ok(known.clone());
    }
    let entry = match folders::resolve(caps, server_id).await {
        Ok(entry) => entry.filter(|entry| entry.selectable),
        Err(error) => {
            caps.log(Level::Error, &format!("MoveItems: folder {server_id}: {error}"));
            return Err(status::LOCKED);
        }
    };
    resolved.insert(server_id.to_owned(), entry.clone());
    Ok(entry)
}

/// Status for a mailbox failure of a whole group.
fn group_status(
    caps: &impl Capabilities,
    error: &MailboxError,
    source: &FolderEntry,
    destination: &FolderEntry,
) -> u8 {
    caps.log(
        Level::Warn,
        &format!("MoveItems {} → {}: {error}", source.imap_name, destination.imap_name),
    );
    match error {
        MailboxError::NoSuchFolder(name) if *name == destination.imap_name => {
            status::INVALID_DESTINATION
        }
        MailboxError::NoSuchFolder(_) => status::INVALID_SOURCE,
        MailboxError::Unavailable(_) | MailboxError::Unauthenticated => status::LOCKED,
        MailboxError::TooLarge(_) | MailboxError::Refused(_) => status::FAILURE,
    }
}

async fn move_group(
    caps: &impl Capabilities,
    device: &str,
    source: &FolderEntry,
    destination: &FolderEntry,
    planned: &[Planned],
    items: &mut [Item],
    recorded: &mut Vec<Moved>,
) {
    let mut uids: Vec<u32> = planned.iter().map(|p| p.uid).collect();
    uids.sort_unstable();
    uids.dedup();
    let fail_all = |items: &mut [Item], code: u8| {
        for p in planned {
            items[p.index].status = code;
        }
    };
    // Which messages exist (a move of a missing UID is Status 1), their flags and Message-IDs.
    let summaries = match caps.fetch_summaries(&source.imap_name, &uids, HEADER_BYTES, None).await {
        Ok(summaries) => summaries,
        Err(error) => {
            let code = group_status(caps, &error, source, destination);
            if matches!(error, MailboxError::NoSuchFolder(_)) {
                let _ = folders::refresh(caps).await;
            }
            return fail_all(items, code);
        }
    };
    let present = |uid: u32| summaries.iter().find(|s| s.uid == uid && !sync::is_deleted(&s.flags));
    let existing: Vec<u32> = uids.iter().copied().filter(|&uid| present(uid).is_some()).collect();
    let pairs = if existing.is_empty() {
        Vec::new()
    } else {
        match caps.move_messages(&source.imap_name, &existing, &destination.imap_name).await {
            Ok(pairs) => pairs,
            Err(error) => {
                let code = group_status(caps, &error, source, destination);
                if matches!(error, MailboxError::NoSuchFolder(_)) {
                    let _ = folders::refresh(caps).await;
                }
                return fail_all(items, code);
            }
        }
    };
    for p in planned {
        let Some(summary) = present(p.uid) else {
            items[p.index] = moved_before(caps, device, source, destination, p, &items[p.index])
                .await
                .unwrap_or(Item { status: status::INVALID_SOURCE, ..items[p.index].clone() });
            continue;
        };
        let new_uid = match pairs.iter().find(|&&(old, _)| old == p.uid) {
            Some(&(_, new_uid)) => Some(new_uid),
            None => find_by_message_id(caps, destination, &summary.prefix).await,
        };
        items[p.index].dst_msg_id = new_uid.map(|uid| format!("{}:{uid}", destination.server_id));
        recorded.push(Moved {
            source: source.server_id.clone(),
            source_uid: p.uid,
            destination: destination.server_id.clone(),
            destination_uid: new_uid,
            flags_hash: sync::flags_hash(&summary.flags),
        });
    }
}

/// The answer of an earlier move of this item by this device to the same destination, if
/// there was one (the retry of a move whose answer was lost).
async fn moved_before(
    caps: &impl Capabilities,
    device: &str,
    source: &FolderEntry,
    destination: &FolderEntry,
    planned: &Planned,
    item: &Item,
) -> Option<Item> {
    let (moved_to, new_uid) =
        sync::recent_move(caps, device, &source.server_id, planned.uid).await.ok()??;
    (moved_to == destination.server_id).then(|| Item {
        status: status::SUCCESS,
        dst_msg_id: new_uid.map(|uid| format!("{}:{uid}", destination.server_id)),
        ..item.clone()
    })
}

/// The UID a moved message has in `destination`, by its Message-ID (servers without UIDPLUS
/// do not say).
async fn find_by_message_id(
    caps: &impl Capabilities,
    destination: &FolderEntry,
    header_bytes: &[u8],
) -> Option<u32> {
    let message = crate::email::header_parser().parse_headers(header_bytes)?;
    let message_id = message.message_id()?.trim();
    if message_id.is_empty() {
        return None;
    }
    let query = SearchQuery {
        header: Some(("Message-ID".to_owned(), message_id.to_owned())),
        ..SearchQuery::default()
    };
    caps.search(&destination.imap_name, &query).await.ok()?.into_iter().max()
}

fn answer(items: &[Item]) -> Document {
    let mut root = Element::new(mv::MOVE_ITEMS);
    for item in items {
        let mut response = Element::new(mv::RESPONSE)
            .text_child(mv::SRC_MSG_ID, item.src_msg_id.as_str())
            .text_child(mv::STATUS, item.status.to_string());
        if let Some(dst) = &item.dst_msg_id {
            response.push(Element::with_text(mv::DST_MSG_ID, dst.as_str()));
        }
        root.push(response);
    }
    Document::new(root)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{decoded, post, post_raw, provisioned_host};
    use crate::testing::FakeHost;
    use eas_wbxml::tags::{air_sync, r#move as mv};
    use eas_wbxml::{Document, Element};

    const INBOX: &str = "1";
    const ARCHIVE: &str = "5";

    fn message(subject: &str) -> Vec<u8> {
        format!(
            "From: ann@example.org\r\nSubject: {subject}\r\nMessage-ID: <{subject}@example.org>\r\n\r\nhi\r\n"
        )
        .into_bytes()
    }

    /// INBOX with three messages and an empty Archive, both synced by the device.
    fn host() -> (FakeHost, String, String) {
        let host = provisioned_host();
        host.mailbox.borrow_mut().add_folder("Archive", None);
        for subject in ["a", "b", "c"] {
            host.mailbox.borrow_mut().append("INBOX", &message(subject), &[], 0);
        }
        let inbox = sync_until_quiet(&host, INBOX, "0");
        let archive = sync_until_quiet(&host, ARCHIVE, "0");
        (host, inbox, archive)
    }

    fn sync(host: &FakeHost, id: &str, key: &str) -> Option<Element> {
        let body = Document::new(
            Element::new(air_sync::SYNC).with_child(
                Element::new(air_sync::COLLECTIONS).with_child(
                    Element::new(air_sync::COLLECTION)
                        .text_child(air_sync::SYNC_KEY, key)
                        .text_child(air_sync::COLLECTION_ID, id),
                ),
            ),
        );
        let response = post(host, "Sync", "16.1", &body);
        if response.body.is_empty() {
            return None;
        }
        decoded(&response)
            .child(air_sync::COLLECTIONS)
            .and_then(|c| c.child(air_sync::COLLECTION))
            .cloned()
    }

    /// Syncs from `key` until the answer is empty; the last key.
    fn sync_until_quiet(host: &FakeHost, id: &str, key: &str) -> String {
        let mut key = key.to_owned();
        while let Some(collection) = sync(host, id, &key) {
            key = collection.text_of(air_sync::SYNC_KEY).expect("key").to_owned();
        }
        key
    }

    fn move_element(src_msg: &str, src: &str, dst: &str) -> Element {
        Element::new(mv::MOVE)
            .text_child(mv::SRC_MSG_ID, src_msg)
            .text_child(mv::SRC_FLD_ID, src)
            .text_child(mv::DST_FLD_ID, dst)
    }

    /// (SrcMsgId, Status, DstMsgId) of each Response.
    fn move_items(host: &FakeHost, moves: Vec<Element>) -> Vec<(String, String, Option<String>)> {
        let root = decoded(&post(
            host,
            "MoveItems",
            "16.1",
            &Document::new(Element::with_children(mv::MOVE_ITEMS, moves)),
        ));
        root.children(mv::RESPONSE)
            .map(|r| {
                (
                    r.text_of(mv::SRC_MSG_ID).unwrap_or_default().to_owned(),
                    r.text_of(mv::STATUS).unwrap_or_default().to_owned(),
                    r.text_of(mv::DST_MSG_ID).map(str::to_owned),
                )
            })
            .collect()
    }

    fn answer(src: &str, status: &str, dst: Option<&str>) -> (String, String, Option<String>) {
        (src.to_owned(), status.to_owned(), dst.map(str::to_owned))
    }

    #[test]
    fn moves_answer_new_ids_and_do_not_bounce() {
        let (host, inbox, archive) = host();
        let answered = move_items(
            &host,
            vec![
                move_element("1:1", INBOX, ARCHIVE),
                move_element("1:99", INBOX, ARCHIVE),
                move_element("1:2", INBOX, "99"),
                move_element("1:3", INBOX, INBOX),
                move_element("5:1", INBOX, ARCHIVE),
                move_element("1:3", "", ARCHIVE),
            ],
        );
        assert_eq!(
            answered,
            [
                answer("1:1", "3", Some("5:1")),
                answer("1:99", "1", None),
                answer("1:2", "2", None),
                answer("1:3", "4", None),
                answer("5:1", "1", None),
                answer("1:3", "1", None),
            ]
        );
        // A separate IMAP client sees the move.
        assert_eq!(host.mailbox.borrow().uids("INBOX"), [2, 3]);
        assert_eq!(host.mailbox.borrow().uids("Archive"), [1]);
        // The device gets neither a Delete in INBOX nor an Add in Archive for it.
        assert_eq!(sync(&host, INBOX, &inbox), None);
        assert_eq!(sync(&host, ARCHIVE, &archive), None);
    }

    #[test]
    fn a_retried_move_whose_answer_was_lost_gets_the_same_answer() {
        let (host, inbox, archive) = host();
        let first = move_items(&host, vec![move_element("1:2", INBOX, ARCHIVE)]);
        assert_eq!(first, [answer("1:2", "3", Some("5:1"))]);
        // the phone never got that answer and sends the same move again
        let retried = move_items(&host, vec![move_element("1:2", INBOX, ARCHIVE)]);
        assert_eq!(retried, first);
        // elsewhere than it went, and an item never moved: still no such item
        let other = move_items(
            &host,
            vec![move_element("1:2", INBOX, "99"), move_element("1:77", INBOX, ARCHIVE)],
        );
        assert_eq!(other, [answer("1:2", "2", None), answer("1:77", "1", None)]);
        assert_eq!(host.mailbox.borrow().uids("Archive"), [1]);
        assert_eq!(sync(&host, INBOX, &inbox), None);
        assert_eq!(sync(&host, ARCHIVE, &archive), None);
    }

    #[test]
    fn without_uidplus_the_new_id_is_found_by_message_id() {
        let (host, inbox, archive) = host();
        host.mailbox.borrow_mut().without_uidplus = true;
        let answered = move_items(
            &host,
            vec![move_element("1:2", INBOX, ARCHIVE), move_element("1:3", INBOX, ARCHIVE)],
        );
        assert_eq!(answered, [answer("1:2", "3", Some("5:1")), answer("1:3", "3", Some("5:2"))]);
        assert_eq!(sync(&host, INBOX, &inbox), None);
        assert_eq!(sync(&host, ARCHIVE, &archive), None);
    }

    #[test]
    fn folders_deleted_under_the_device_get_statuses_1_and_2() {
        let (host, _, _) = host();
        host.mailbox.borrow_mut().delete_folder("Archive");
        let answered = move_items(&host, vec![move_element("1:1", INBOX, ARCHIVE)]);
        assert_eq!(answered, [answer("1:1", "2", None)]);
        host.mailbox.borrow_mut().add_folder("Archive2", None);
        host.mailbox.borrow_mut().delete_folder("INBOX");
        let answered = move_items(&host, vec![move_element("1:1", INBOX, "6")]);
        assert_eq!(answered, [answer("1:1", "1", None)]);
    }

    #[test]
    fn malformed_requests_are_refused_whole() {
        let (host, _, _) = host();
        let refused = |body: Document| decoded(&post(&host, "MoveItems", "16.1", &body));
        let empty = refused(Document::new(Element::new(mv::MOVE_ITEMS)));
        assert_eq!(empty.text_of(mv::STATUS), Some("103"));
        let too_many =
            (0..=super::MAX_MOVES).map(|_| move_element("1:1", INBOX, ARCHIVE)).collect();
        let many = refused(Document::new(Element::with_children(mv::MOVE_ITEMS, too_many)));
        assert_eq!(many.text_of(mv::STATUS), Some("103"));
        assert_eq!(post_raw(&host, "MoveItems", "12.1", b"junk".to_vec(), &[]).status, 400);
        assert_eq!(host.mailbox.borrow().uids("INBOX"), [1, 2, 3]);
    }
}
