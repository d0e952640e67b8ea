//! Ping through the whole engine: folder set caching, bounds, Status 2 against the device's
//! synced state, and holds whose tokens the host can watch.

use crate::commands::test_support::{decoded, post, post_raw, provisioned_host};
use crate::http::Response;
use crate::testing::FakeHost;
use eas_wbxml::tags::{air_sync, folder_hierarchy as fh, ping};
use eas_wbxml::{Document, Element};

const VERSION: &str = "16.1";

fn ping_body(heartbeat: Option<u32>, folders: &[&str]) -> Document {
    let mut root = Element::new(ping::PING);
    if let Some(seconds) = heartbeat {
        root.push(Element::with_text(ping::HEARTBEAT_INTERVAL, seconds.to_string()));
    }
    if !folders.is_empty() {
        root.push(Element::with_children(
            ping::FOLDERS,
            folders
                .iter()
                .map(|id| {
                    Element::new(ping::FOLDER)
                        .text_child(ping::ID, *id)
                        .text_child(ping::CLASS, "Email")
                })
                .collect(),
        ));
    }
    Document::new(root)
}

fn status(response: &Response) -> String {
    decoded(response).text_of(ping::STATUS).unwrap_or_default().to_owned()
}

/// FolderSync, then Sync the inbox to the end; returns the inbox's ServerId.
fn synced_inbox(host: &FakeHost) -> String {
    let folders = decoded(&post(
        host,
        "FolderSync",
        VERSION,
        &Document::new(Element::new(fh::FOLDER_SYNC).text_child(fh::SYNC_KEY, "0")),
    ));
    let inbox = folders
        .child(fh::CHANGES)
        .into_iter()
        .flat_map(|changes| changes.children(fh::ADD))
        .find(|add| add.text_of(fh::TYPE) == Some("2"))
        .and_then(|add| add.text_of(fh::SERVER_ID))
        .expect("an inbox")
        .to_owned();
    let mut key = "0".to_owned();
    for _ in 0..100 {
        let request = Element::new(air_sync::SYNC).with_child(
            Element::new(air_sync::COLLECTIONS).with_child(
                Element::new(air_sync::COLLECTION)
                    .text_child(air_sync::SYNC_KEY, key.as_str())
                    .text_child(air_sync::COLLECTION_ID, inbox.as_str()),
            ),
        );
        let response = post(host, "Sync", VERSION, &Document::new(request));
        // the empty answer: nothing left to send
        if response.body.is_empty() {
            return inbox;
        }
        key = decoded(&response)
            .child(air_sync::COLLECTIONS)
            .and_then(|c| c.child(air_sync::COLLECTION))
            .and_then(|c| c.text_of(air_sync::SYNC_KEY))
            .expect("a key")
            .to_owned();
    }
    panic!("the inbox never finished syncing");
}

fn grip_channels(response: &Response) -> Vec<&str> {
    response
        .headers
        .iter()
        .filter(|(name, _)| name == "Grip-Channel")
        .map(|(_, value)| value.as_str())
        .collect()
}

#[test]
fn an_up_to_date_device_gets_a_hold_with_the_timeout_answer_inside() {
    let host = provisioned_host();
    host.mailbox.borrow_mut().append("INBOX", b"Subject: one\r\n\r\nhi\r\n", &[], 1_800_000_000);
    let inbox = synced_inbox(&host);
    let response = post(&host, "Ping", VERSION, &ping_body(Some(300), &[&inbox]));
    assert_eq!(response.header("Grip-Hold"), Some("response"));
    assert_eq!(response.header("Grip-Timeout"), Some("300"));
    let status = host.mailbox.borrow().status("INBOX").expect("inbox");
    let token = crate::push::folder_token(&status);
    let names = host.mailbox.borrow().folder_names();
    let hierarchy = crate::push::hierarchy_token(names.iter().map(String::as_str));
    assert_eq!(
        grip_channels(&response),
        [format!("INBOX; prev-id={token}"), format!("%00hierarchy; prev-id={hierarchy}")]
    );
    assert_eq!(self::status(&response), "1", "the timeout answer is Status 1");
}

#[test]
fn a_hierarchy_change_since_the_last_folder_sync_gives_status_7() {
    let host = provisioned_host();
    let inbox = synced_inbox(&host);
    let parked = post(&host, "Ping", VERSION, &ping_body(Some(300), &[&inbox]));
    let watched = grip_channels(&parked)[1].to_owned();
    // another client creates a folder: the hierarchy token moves (the host wakes the Ping)
    // and the Ping run again answers 7, as does any Ping until the device runs FolderSync
    host.mailbox.borrow_mut().add_folder("Projects", None);
    let names = host.mailbox.borrow().folder_names();
    let now = crate::push::hierarchy_token(names.iter().map(String::as_str));
    assert_ne!(watched, format!("%00hierarchy; prev-id={now}"));
    assert_eq!(status(&post(&host, "Ping", VERSION, &ping_body(None, &[]))), "7");
    assert_eq!(synced_inbox(&host), inbox);
    assert_eq!(
        post(&host, "Ping", VERSION, &ping_body(None, &[])).header("Grip-Hold"),
        Some("response")
    );
    // a rename by another client too
    host.mailbox.borrow_mut().rename_folder("Projects", "Done");
    assert_eq!(status(&post(&host, "Ping", VERSION, &ping_body(None, &[]))), "7");
}

#[test]
fn new_mail_and_flag_changes_give_status_2_with_the_folder() {
    let host = provisioned_host();
    let uid = host.mailbox.borrow_mut().append("INBOX", b"Subject: a\r\n\r\nx\r\n", &[], 1);
    let inbox = synced_inbox(&host);
    host.mailbox.borrow_mut().append("INBOX", b"Subject: b\r\n\r\ny\r\n", &[], 2);
    let response = post(&host, "Ping", VERSION, &ping_body(Some(300), &[&inbox]));
    assert_eq!(response.header("Grip-Hold"), None);
    let root = decoded(&response);
    assert_eq!(root.text_of(ping::STATUS), Some("2"));
    let listed: Vec<_> = root
        .child(ping::FOLDERS)
        .into_iter()
        .flat_map(|f| f.children(ping::FOLDER))
        .filter_map(Element::text)
        .collect();
    assert_eq!(listed, [inbox.as_str()]);

    synced_inbox_again(&host, &inbox);
    host.mailbox.borrow_mut().set_flags("INBOX", uid, &["\\Seen"]);
    assert_eq!(status(&post(&host, "Ping", VERSION, &ping_body(None, &[]))), "2");
}

/// Syncs an already known inbox to the end with a fresh key chain.
fn synced_inbox_again(host: &FakeHost, inbox: &str) {
    assert_eq!(synced_inbox(host), inbox);
}

#[test]
fn the_folder_set_and_interval_are_cached_per_device() {
    let host = provisioned_host();
    let inbox = synced_inbox(&host);
    assert_eq!(status(&post_raw(&host, "Ping", VERSION, Vec::new(), &[])), "3");
    let first = post(&host, "Ping", VERSION, &ping_body(Some(120), &[&inbox]));
    assert_eq!(first.header("Grip-Timeout"), Some("120"));
    let empty = post_raw(&host, "Ping", VERSION, Vec::new(), &[]);
    assert_eq!(empty.header("Grip-Timeout"), Some("120"));
    let only_interval = post(&host, "Ping", VERSION, &ping_body(Some(900), &[]));
    assert_eq!(only_interval.header("Grip-Timeout"), Some("900"));
    assert_eq!(grip_channels(&only_interval).len(), 2, "the inbox and the hierarchy");
}

#[test]
fn bounds_folder_limits_and_unknown_folders() {
    let host = provisioned_host();
    let inbox = synced_inbox(&host);
    let too_short = decoded(&post(&host, "Ping", VERSION, &ping_body(Some(10), &[&inbox])));
    assert_eq!(too_short.text_of(ping::STATUS), Some("5"));
    assert_eq!(too_short.text_of(ping::HEARTBEAT_INTERVAL), Some("60"));
    let too_long = decoded(&post(&host, "Ping", VERSION, &ping_body(Some(99_999), &[&inbox])));
    assert_eq!(too_long.text_of(ping::HEARTBEAT_INTERVAL), Some("3540"));

    host.settings.borrow_mut().max_ping_folders = 1;
    let too_many = decoded(&post(&host, "Ping", VERSION, &ping_body(Some(300), &[&inbox, "2"])));
    assert_eq!(too_many.text_of(ping::STATUS), Some("6"));
    assert_eq!(too_many.text_of(ping::MAX_FOLDERS), Some("1"));

    host.settings.borrow_mut().max_ping_folders = 10;
    assert_eq!(status(&post(&host, "Ping", VERSION, &ping_body(Some(300), &["4711"]))), "7");
    assert_eq!(
        status(&post_raw(
            &host,
            "Ping",
            VERSION,
            b"\x03\x01\x6a\x00\x00\x07\x56\x01".to_vec(),
            &[]
        )),
        "4",
        "a body that is not a Ping is a syntax error"
    );
}

#[test]
fn a_deleted_folder_or_a_dead_mailbox_are_reported() {
    let host = provisioned_host();
    host.mailbox.borrow_mut().add_folder("Lists", None);
    let inbox = synced_inbox(&host);
    let lists = crate::drive::run_to_completion(crate::folders::stored(&host))
        .expect("completes")
        .expect("map")
        .entries()
        .iter()
        .find(|e| e.imap_name == "Lists")
        .map(|e| e.server_id.clone())
        .expect("listed");
    host.mailbox.borrow_mut().delete_folder("Lists");
    assert_eq!(
        status(&post(&host, "Ping", VERSION, &ping_body(Some(300), &[&inbox, &lists]))),
        "7"
    );
    host.mailbox.borrow_mut().unavailable = true;
    assert_eq!(status(&post(&host, "Ping", VERSION, &ping_body(Some(300), &[&inbox]))), "8");
}
