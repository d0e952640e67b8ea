//! The device's own changes: flags, deletes, conflicts and drafts, checked in the mailbox (as
//! a separate IMAP client would see it) and for not bouncing back to the device.

use super::*;
use crate::compose::dedupe;
use eas_wbxml::tags::{email2, tasks};

/// The folder map's ServerIds of the standard mailbox.
const DRAFTS: &str = "2";
const TRASH: &str = "4";

fn synced(host: &FakeHost, count: usize) -> Device {
    fill(host, "INBOX", count, 0);
    let mut device = Device::default();
    device.initial_sync(host, "16.1", INBOX, &[]);
    assert_eq!(device.items.len(), count);
    device
}

fn data(children: Vec<Element>) -> Element {
    Element::with_children(air_sync::APPLICATION_DATA, children)
}

fn change(server_id: &str, children: Vec<Element>) -> Element {
    Element::new(air_sync::CHANGE)
        .text_child(air_sync::SERVER_ID, server_id)
        .with_child(data(children))
}

fn delete(server_id: &str) -> Element {
    Element::new(air_sync::DELETE).text_child(air_sync::SERVER_ID, server_id)
}

fn add(client_id: &str, children: Vec<Element>) -> Element {
    Element::new(air_sync::ADD)
        .text_child(air_sync::CLIENT_ID, client_id)
        .with_child(data(children))
}

fn with_commands(collection: Element, list: Vec<Element>) -> Element {
    collection.with_child(Element::with_children(air_sync::COMMANDS, list))
}

/// One Sync of `id` with the device's key carrying `list`; the answer's collection.
fn send_raw(host: &FakeHost, version: &str, key: &str, id: &str, list: Vec<Element>) -> Element {
    let request = with_commands(collection(key, id), list);
    only_collection(&run(host, version, sync_request(vec![request])))
}

/// [`send_raw`], applied to the device.
fn send(device: &mut Device, host: &FakeHost, id: &str, list: Vec<Element>) -> Element {
    let answer = send_raw(host, "16.1", &device.key, id, list);
    device.apply(&answer);
    answer
}

fn flags(host: &FakeHost, folder: &str, uid: u32) -> Vec<String> {
    let mut flags = host.mailbox.borrow().flags(folder, uid);
    flags.sort();
    flags
}

fn read(value: &str) -> Element {
    Element::with_text(email::READ, value)
}

fn flag(status: &str, due: Option<&str>) -> Element {
    let mut element = Element::new(email::FLAG)
        .text_child(email::STATUS, status)
        .text_child(email::FLAG_TYPE, "Flag for follow up");
    if let Some(due) = due {
        element.push(Element::with_text(tasks::DUE_DATE, due));
        element.push(Element::with_text(tasks::UTC_DUE_DATE, due));
    }
    element
}

fn categories(names: &[&str]) -> Element {
    Element::with_children(
        email::CATEGORIES,
        names.iter().map(|name| Element::with_text(email::CATEGORY, *name)).collect(),
    )
}

/// What a freshly synced device is told about each message: ServerId → ApplicationData.
fn fresh_view(host: &FakeHost, id: &str) -> BTreeMap<String, Element> {
    let bootstrap = only_collection(&run(host, "16.1", sync_request(vec![collection("0", id)])));
    let answer = run(host, "16.1", sync_request(vec![collection(&key_of(&bootstrap), id)]));
    let mut view = BTreeMap::new();
    if let SyncAnswer::Document(_) = answer {
        for command in commands(&only_collection(&answer)) {
            let server_id = command.text_of(air_sync::SERVER_ID).expect("ServerId").to_owned();
            let data = command.child(air_sync::APPLICATION_DATA).expect("data").clone();
            view.insert(server_id, data);
        }
    }
    view
}

#[test]
fn read_flag_and_categories_reach_the_mailbox_and_do_not_bounce() {
    for without_condstore in [false, true] {
        let host = host();
        host.mailbox.borrow_mut().without_condstore = without_condstore;
        let mut device = synced(&host, 3);
        let answer = send(
            &mut device,
            &host,
            INBOX,
            vec![
                change("1:1", vec![read("1")]),
                change("1:2", vec![flag("2", Some("2026-03-15T07:00:00.000Z"))]),
                change("1:3", vec![categories(&["Project-X", "Important", "two words"])]),
            ],
        );
        assert!(responses(&answer).is_empty(), "{answer:?}");
        assert!(commands(&answer).is_empty(), "{answer:?}");
        assert_eq!(flags(&host, "INBOX", 1), ["\\Seen"]);
        assert_eq!(flags(&host, "INBOX", 2), ["$FlagDue.20260315T070000Z", "\\Flagged"]);
        assert_eq!(flags(&host, "INBOX", 3), ["$label1", "Project-X"]);
        assert_eq!(device.sync_once(&host, "16.1", INBOX), None, "{without_condstore}");

        // Another device sees the same: the mapping round-trips.
        let view = fresh_view(&host, INBOX);
        assert_eq!(view["1:1"].text_of(email::READ), Some("1"));
        let flagged = view["1:2"].child(email::FLAG).expect("Flag");
        assert_eq!(flagged.text_of(email::STATUS), Some("2"));
        assert_eq!(flagged.text_of(tasks::DUE_DATE), Some("2026-03-15T07:00:00.000Z"));
        let names: Vec<_> = view["1:3"]
            .child(email::CATEGORIES)
            .map(|c| c.children(email::CATEGORY).filter_map(Element::text).collect())
            .unwrap_or_default();
        assert_eq!(names, ["Project-X", "Important"]);
    }
}

#[test]
fn completing_clearing_and_unreading_replace_what_was_there() {
    let host = host();
    let mut device = synced(&host, 2);
    host.mailbox.borrow_mut().set_flags(
        "INBOX",
        1,
        &["\\Seen", "\\Flagged", "$FlagDue.20260315T070000Z", "Work"],
    );
    device.sync_once(&host, "16.1", INBOX).expect("the server's change");
    let complete = Element::new(email::FLAG)
        .text_child(email::STATUS, "1")
        .text_child(email::COMPLETE_TIME, "2026-03-16T08:00:00.000Z");
    let answer = send(
        &mut device,
        &host,
        INBOX,
        vec![
            change("1:1", vec![read("0"), complete, categories(&[])]),
            change("1:2", vec![flag("2", None)]),
            change("1:2", vec![Element::new(email::FLAG)]),
        ],
    );
    assert!(responses(&answer).is_empty() && commands(&answer).is_empty(), "{answer:?}");
    assert_eq!(flags(&host, "INBOX", 1), ["$FlagComplete", "$FlagDone.20260316T080000Z"]);
    assert!(flags(&host, "INBOX", 2).is_empty(), "the later Change of one item wins");
    assert_eq!(device.sync_once(&host, "16.1", INBOX), None);
    let view = fresh_view(&host, INBOX);
    let done = view["1:1"].child(email::FLAG).expect("Flag");
    assert_eq!(done.text_of(email::STATUS), Some("1"));
    assert_eq!(done.text_of(email::COMPLETE_TIME), Some("2026-03-16T08:00:00.000Z"));
}

#[test]
fn a_server_short_of_keywords_keeps_the_flag_status_and_refuses_categories() {
    let host = host();
    let mut device = synced(&host, 2);
    host.mailbox.borrow_mut().refuse_keywords = true;
    let answer = send(
        &mut device,
        &host,
        INBOX,
        vec![
            change("1:1", vec![flag("2", Some("2026-03-15T07:00:00.000Z"))]),
            change("1:2", vec![read("1"), categories(&["Work"])]),
        ],
    );
    assert_eq!(responses(&answer), [(air_sync::CHANGE, "6".to_owned())]);
    // The refused Change is undone on the device: the server's version is sent.
    let undo: Vec<_> = commands(&answer).iter().map(|c| c.text_of(air_sync::SERVER_ID)).collect();
    assert_eq!(undo, [Some("1:2")]);
    assert_eq!(flags(&host, "INBOX", 1), ["\\Flagged"]);
    assert!(flags(&host, "INBOX", 2).is_empty());
    assert_eq!(device.sync_once(&host, "16.1", INBOX), None);
}

#[test]
fn deletes_go_to_trash_unless_deletes_as_moves_is_off() {
    let host = host();
    let mut device = synced(&host, 4);
    let answer = send(&mut device, &host, INBOX, vec![delete("1:1")]);
    assert!(responses(&answer).is_empty() && commands(&answer).is_empty(), "{answer:?}");
    assert_eq!(host.mailbox.borrow().uids("INBOX"), [2, 3, 4]);
    assert_eq!(host.mailbox.borrow().uids("Trash"), [1]);
    assert_eq!(device.sync_once(&host, "16.1", INBOX), None, "no Delete bounces back");

    // DeletesAsMoves 0: gone for good.
    let request = with_commands(
        collection(&device.key, INBOX).text_child(air_sync::DELETES_AS_MOVES, "0"),
        vec![delete("1:2")],
    );
    let answer = only_collection(&run(&host, "16.1", sync_request(vec![request])));
    device.apply(&answer);
    assert!(responses(&answer).is_empty());
    assert_eq!(host.mailbox.borrow().uids("INBOX"), [3, 4]);
    assert_eq!(host.mailbox.borrow().uids("Trash"), [1]);

    // In Deleted Items a delete is final.
    let mut trash = Device::default();
    trash.initial_sync(&host, "16.1", TRASH, &[]);
    assert_eq!(trash.items.len(), 1, "the moved message arrives in Trash");
    let answer = send(&mut trash, &host, TRASH, vec![delete("4:1")]);
    assert!(responses(&answer).is_empty());
    assert!(host.mailbox.borrow().uids("Trash").is_empty());

    // Trash deleted under our feet: the delete is final too, and the map learns it.
    host.mailbox.borrow_mut().delete_folder("Trash");
    let answer = send(&mut device, &host, INBOX, vec![delete("1:3")]);
    assert!(responses(&answer).is_empty(), "{answer:?}");
    assert_eq!(host.mailbox.borrow().uids("INBOX"), [4]);
    let answer = send(&mut device, &host, INBOX, vec![delete("1:4")]);
    assert!(responses(&answer).is_empty(), "{answer:?}");
    assert!(host.mailbox.borrow().uids("INBOX").is_empty());
    assert_eq!(device.sync_once(&host, "16.1", INBOX), None);
}

#[test]
fn conflicts_follow_the_conflict_option() {
    let host = host();
    let mut device = synced(&host, 2);
    // Another client flags both messages after the device's last Sync.
    host.mailbox.borrow_mut().set_flags("INBOX", 1, &["\\Flagged"]);
    host.mailbox.borrow_mut().set_flags("INBOX", 2, &["\\Flagged"]);
    // Server wins (the default): Status 7, and the server's version goes to the device.
    let answer = send(&mut device, &host, INBOX, vec![change("1:1", vec![read("1")])]);
    assert_eq!(responses(&answer), [(air_sync::CHANGE, "7".to_owned())]);
    assert_eq!(flags(&host, "INBOX", 1), ["\\Flagged"]);
    let sent: Vec<_> = commands(&answer).iter().map(|c| c.text_of(air_sync::SERVER_ID)).collect();
    assert!(sent.contains(&Some("1:1")), "{sent:?}");
    assert_eq!(device.items.get(&1), Some(&false));

    // Client wins (Conflict 0): applied over the server's change.
    host.mailbox.borrow_mut().set_flags("INBOX", 2, &["\\Flagged", "Work"]);
    let request = with_commands(
        with_options(
            collection(&device.key, INBOX).text_child(air_sync::GET_CHANGES, "0"),
            vec![Element::with_text(air_sync::CONFLICT, "0")],
        ),
        vec![change("1:2", vec![read("1")])],
    );
    let answer = only_collection(&run(&host, "16.1", sync_request(vec![request])));
    device.apply(&answer);
    assert!(responses(&answer).is_empty(), "{answer:?}");
    assert_eq!(flags(&host, "INBOX", 2), ["Work", "\\Flagged", "\\Seen"]);
    // What the device did not have yet (the flag and the category) still reaches it.
    let next = device.sync_once(&host, "16.1", INBOX);
    assert!(next.is_none(), "the client's change made the device current: {next:?}");
}

#[test]
fn unknown_items_and_bad_data_get_item_statuses() {
    let host = host();
    let mut device = synced(&host, 2);
    host.mailbox.borrow_mut().expunge("INBOX", 2);
    let answer = send(
        &mut device,
        &host,
        INBOX,
        vec![
            change("1:1", vec![read("maybe")]),
            change("1:2", vec![read("1")]),
            change("1:99", vec![read("1")]),
            change("3:1", vec![read("1")]),
            Element::new(air_sync::CHANGE).text_child(air_sync::SERVER_ID, "1:1"),
            delete("1:99"),
            delete("garbage"),
            add("c1", vec![Element::with_text(email::SUBJECT, "not in Drafts")]),
        ],
    );
    let statuses: Vec<_> = responses(&answer).into_iter().map(|(_, s)| s).collect();
    assert_eq!(statuses, ["6", "8", "8", "8", "8", "8", "6"]);
    assert!(flags(&host, "INBOX", 1).is_empty());
    assert!(!device.items.contains_key(&2), "the gone item is deleted on the device");
}

#[test]
fn a_folder_deleted_under_the_device_is_status_12() {
    let host = host();
    host.mailbox.borrow_mut().add_folder("Work", None);
    fill(&host, "Work", 2, 0);
    let mut device = Device::default();
    device.initial_sync(&host, "16.1", "5", &[]);
    assert_eq!(device.items.len(), 2);
    host.mailbox.borrow_mut().delete_folder("Work");
    for list in [vec![change("5:1", vec![read("1")])], vec![delete("5:2")], vec![]] {
        let answer = send_raw(&host, "16.1", &device.key, "5", list);
        assert_eq!(status_of(&answer), "12", "{answer:?}");
    }
}

fn draft_fields(subject: &str) -> Vec<Element> {
    vec![
        Element::with_text(email::TO, "\"Bob\" <bob@example.org>"),
        Element::with_text(email2::BCC, "carol@example.org"),
        Element::with_text(email::SUBJECT, subject),
        Element::new(base::BODY).text_child(base::TYPE, "1").text_child(base::DATA, "Draft text"),
    ]
}

fn attachment_add(client_id: &str, name: &str) -> Element {
    Element::new(base::ATTACHMENTS).with_child(
        Element::new(base::ADD)
            .text_child(base::CLIENT_ID, client_id)
            .text_child(base::DISPLAY_NAME, name)
            .text_child(base::METHOD, "1")
            .text_child(base::CONTENT_TYPE, "text/plain")
            .opaque_child(base::CONTENT, b"attached".to_vec()),
    )
}

fn raw_text(host: &FakeHost, folder: &str, uid: u32) -> String {
    String::from_utf8(host.mailbox.borrow().raw(folder, uid).expect("stored")).expect("utf-8")
}

#[test]
fn drafts_written_on_the_device_are_imap_drafts_and_sending_empties_drafts() {
    let host = host();
    let mut drafts = Device::default();
    drafts.initial_sync(&host, "16.1", DRAFTS, &[]);
    let mut fields = draft_fields("Plans");
    fields.push(attachment_add("att1", "notes.txt"));
    let answer = send(&mut drafts, &host, DRAFTS, vec![add("d1", fields)]);
    let added = answer
        .child(air_sync::RESPONSES)
        .and_then(|r| r.child(air_sync::ADD))
        .expect("Responses > Add");
    assert_eq!(added.text_of(air_sync::CLIENT_ID), Some("d1"));
    assert_eq!(added.text_of(air_sync::STATUS), Some("1"));
    assert_eq!(added.text_of(air_sync::SERVER_ID), Some("2:1"));
    let attachment = added
        .child(air_sync::APPLICATION_DATA)
        .and_then(|d| d.child(base::ATTACHMENTS))
        .and_then(|a| a.child(base::ATTACHMENT))
        .expect("attachment ids");
    assert_eq!(attachment.text_of(base::CLIENT_ID), Some("att1"));
    assert_eq!(attachment.text_of(base::FILE_REFERENCE), Some("2:1:2"));
    assert!(commands(&answer).is_empty(), "the new draft does not bounce: {answer:?}");
    drafts.items.insert(1, true);

    // A separate IMAP client sees a real draft.
    assert_eq!(flags(&host, "Drafts", 1), ["\\Draft", "\\Seen"]);
    let stored = raw_text(&host, "Drafts", 1);
    for expected in [
        "Subject: Plans",
        "From: <jane@example.test>",
        "Bcc: <carol@example.org>",
        "Draft text",
        "notes.txt",
    ] {
        assert!(stored.contains(expected), "{expected} in {stored}");
    }
    assert_eq!(drafts.sync_once(&host, "16.1", DRAFTS), None);

    // A Change replaces the draft (a new UID), but the device keeps its ServerId: no Delete
    // and Add, and the next Change by the same id works.
    let answer = send(
        &mut drafts,
        &host,
        DRAFTS,
        vec![change("2:1", vec![Element::with_text(email::SUBJECT, "Plans v2")])],
    );
    assert!(responses(&answer).is_empty(), "{answer:?}");
    assert!(commands(&answer).is_empty(), "the device's id stays: {answer:?}");
    assert_eq!(host.mailbox.borrow().uids("Drafts"), [2]);
    let stored = raw_text(&host, "Drafts", 2);
    assert!(stored.contains("Subject: Plans v2") && stored.contains("notes.txt"), "{stored}");
    assert!(stored.contains("Draft text"), "the body is kept: {stored}");
    let answer = send(
        &mut drafts,
        &host,
        DRAFTS,
        vec![change("2:1", vec![Element::with_text(email::SUBJECT, "Plans v3")])],
    );
    assert!(responses(&answer).is_empty() && commands(&answer).is_empty(), "{answer:?}");
    assert_eq!(host.mailbox.borrow().uids("Drafts"), [3]);
    assert!(raw_text(&host, "Drafts", 3).contains("Subject: Plans v3"));
    // A flag change made elsewhere comes under the device's id.
    host.mailbox.borrow_mut().set_flags("Drafts", 3, &["\\Draft", "\\Seen", "\\Flagged"]);
    let answer = send(&mut drafts, &host, DRAFTS, vec![]);
    let kinds: Vec<_> =
        commands(&answer).iter().map(|c| (c.tag, c.text_of(air_sync::SERVER_ID))).collect();
    assert_eq!(kinds, [(air_sync::CHANGE, Some("2:1"))]);

    // Send: submitted with its Bcc as envelope recipient, removed from Drafts, kept in Sent;
    // the device is told to delete it by its own id.
    let answer =
        send(&mut drafts, &host, DRAFTS, vec![change("2:1", vec![Element::new(email2::SEND)])]);
    assert!(responses(&answer).is_empty(), "{answer:?}");
    let kinds: Vec<_> =
        commands(&answer).iter().map(|c| (c.tag, c.text_of(air_sync::SERVER_ID))).collect();
    assert_eq!(kinds, [(air_sync::DELETE, Some("2:1"))]);
    assert!(host.mailbox.borrow().uids("Drafts").is_empty());
    let sent = host.sent.borrow();
    assert_eq!(sent.len(), 1);
    let (wire, recipients) = &sent[0];
    assert!(recipients.iter().any(|r| r == "carol@example.org"), "{recipients:?}");
    assert!(!String::from_utf8_lossy(wire).contains("Bcc:"), "Bcc is not sent");
    assert_eq!(host.mailbox.borrow().uids("Sent").len(), 1);
    assert!(drafts.items.is_empty());
}

#[test]
fn a_draft_added_with_send_is_sent_and_a_failed_send_keeps_it() {
    let host = host();
    host.mailbox.borrow_mut().without_uidplus = true;
    let key = key_of(&send_raw(&host, "16.1", "0", DRAFTS, vec![]));
    let mut fields = draft_fields("Now");
    fields.push(Element::new(email2::SEND));
    let answer = send_raw(&host, "16.1", &key, DRAFTS, vec![add("d1", fields)]);
    let added =
        answer.child(air_sync::RESPONSES).and_then(|r| r.child(air_sync::ADD)).expect("Add");
    assert_eq!(added.text_of(air_sync::STATUS), Some("1"));
    assert_eq!(added.text_of(air_sync::SERVER_ID), Some("2:1"), "found by Message-ID");
    assert_eq!(host.sent.borrow().len(), 1);
    assert!(host.mailbox.borrow().uids("Drafts").is_empty());
    let kinds: Vec<_> =
        commands(&answer).iter().map(|c| (c.tag, c.text_of(air_sync::SERVER_ID))).collect();
    assert_eq!(kinds, [(air_sync::DELETE, Some("2:1"))]);

    // The SMTP server refuses: the draft stays in Drafts and comes to the device as an Add.
    *host.submission_failure.borrow_mut() =
        Some(crate::submission::SubmissionError::Rejected("550 no".into()));
    let mut fields = draft_fields("Later");
    fields.push(Element::new(email2::SEND));
    let answer = send_raw(&host, "16.1", &key_of(&answer), DRAFTS, vec![add("d2", fields)]);
    assert_eq!(responses(&answer), [(air_sync::ADD, "6".to_owned())]);
    assert_eq!(host.mailbox.borrow().uids("Drafts"), [2]);
    let kinds: Vec<_> = commands(&answer).iter().map(|c| c.tag).collect();
    assert_eq!(kinds, [air_sync::ADD]);
}

#[test]
fn a_draft_send_retried_after_the_gateway_died_goes_out_once_with_one_sent_copy() {
    let host = host();
    let mut drafts = Device::default();
    drafts.initial_sync(&host, "16.1", DRAFTS, &[]);
    let answer = send(&mut drafts, &host, DRAFTS, vec![add("d1", draft_fields("Once"))]);
    assert_eq!(responses(&answer), [(air_sync::ADD, "1".to_owned())]);
    let key = drafts.key.clone();
    let send_it = || vec![change("2:1", vec![Element::new(email2::SEND)])];

    // The message leaves, then the gateway dies: no Sent copy, the draft stays, nothing is
    // committed.
    host.dies_after_send.set(true);
    let request = with_commands(collection(&key, DRAFTS), send_it());
    let died = run(&host, "16.1", sync_request(vec![request]));
    assert!(matches!(died, SyncAnswer::Unavailable), "{died:?}");
    assert_eq!(host.sent.borrow().len(), 1);
    assert_eq!(host.mailbox.borrow().uids("Drafts"), [1]);
    host.state_down.set(false);
    host.mailbox.borrow_mut().unavailable = false;

    // The device retries the same Sync: the claim is in flight, so it is neither sent again
    // nor touched, and the device is told to retry.
    let answer = send_raw(&host, "16.1", &key, DRAFTS, send_it());
    assert_eq!(responses(&answer), [(air_sync::CHANGE, "5".to_owned())]);
    assert_eq!(host.sent.borrow().len(), 1, "sent again");
    assert_eq!(host.mailbox.borrow().uids("Drafts"), [1]);

    // Once the claim is presumed sent (at once, after a restart with the send journal): the
    // draft leaves Drafts, its Sent copy is made once, and it is still sent only once.
    host.now_ms.set(host.now_ms.get() + dedupe::IN_FLIGHT_STALE_MS + 1);
    let answer = send_raw(&host, "16.1", &key_of(&answer), DRAFTS, send_it());
    assert!(responses(&answer).is_empty(), "{answer:?}");
    assert_eq!(host.sent.borrow().len(), 1, "sent again");
    assert!(host.mailbox.borrow().uids("Drafts").is_empty());
    assert_eq!(host.mailbox.borrow().uids("Sent").len(), 1);
}

#[test]
fn a_draft_change_retried_after_a_failed_expunge_stores_one_new_version() {
    let host = host();
    let mut drafts = Device::default();
    drafts.initial_sync(&host, "16.1", DRAFTS, &[]);
    send(&mut drafts, &host, DRAFTS, vec![add("d1", draft_fields("Plans"))]);
    drafts.items.insert(1, true);
    let edit = || vec![change("2:1", vec![Element::with_text(email::SUBJECT, "Plans v2")])];
    // the new version is stored, then the connection is lost before the old one is removed:
    // nothing is committed, and the device sends the same Sync again
    host.mailbox.borrow_mut().expunge_fails = true;
    let request = with_commands(collection(&drafts.key, DRAFTS), edit());
    let lost = run(&host, "16.1", sync_request(vec![request]));
    assert!(matches!(lost, SyncAnswer::Unavailable), "{lost:?}");
    assert_eq!(host.mailbox.borrow().uids("Drafts"), [1, 2]);
    // the retry finds the version it stored instead of storing a second one
    host.mailbox.borrow_mut().expunge_fails = false;
    let answer = send(&mut drafts, &host, DRAFTS, edit());
    assert!(responses(&answer).is_empty(), "{answer:?}");
    assert_eq!(host.mailbox.borrow().uids("Drafts"), [2]);
    assert!(raw_text(&host, "Drafts", 2).contains("Subject: Plans v2"));
}

#[test]
fn drafts_need_16_and_the_drafts_folder() {
    let host = host();
    let bootstrap = send_raw(&host, "14.1", "0", DRAFTS, vec![]);
    let answer =
        send_raw(&host, "14.1", &key_of(&bootstrap), DRAFTS, vec![add("d1", draft_fields("x"))]);
    assert_eq!(responses(&answer), [(air_sync::ADD, "6".to_owned())]);
    assert!(host.mailbox.borrow().uids("Drafts").is_empty());
    let bootstrap = send_raw(&host, "16.1", "0", INBOX, vec![]);
    let answer =
        send_raw(&host, "16.1", &key_of(&bootstrap), INBOX, vec![add("d1", draft_fields("x"))]);
    assert_eq!(responses(&answer), [(air_sync::ADD, "6".to_owned())]);
    assert!(host.mailbox.borrow().uids("INBOX").is_empty());
}
