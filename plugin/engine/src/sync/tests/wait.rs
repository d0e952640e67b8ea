//! Sync with Wait / HeartbeatInterval: an empty answer becomes a wait on the collections'
//! folders, based on the state the empty answer saw; anything to send answers at once.

use super::*;
use crate::push::folder_token;

fn waiting(collections: Vec<Element>, heartbeat: &str) -> Element {
    sync_request(collections).text_child(air_sync::HEARTBEAT_INTERVAL, heartbeat)
}

fn inbox_token(host: &FakeHost) -> String {
    folder_token(&host.mailbox.borrow().status("INBOX").expect("INBOX status"))
}

#[test]
fn an_empty_sync_with_a_heartbeat_waits_on_its_folders() {
    let host = host();
    fill(&host, "INBOX", 2, 0);
    let mut device = Device::default();
    device.initial_sync(&host, "16.1", INBOX, &[]);
    let request = waiting(vec![collection(&device.key, INBOX)], "120");
    let answer = run(&host, "16.1", request.clone());
    let expected = vec![("INBOX".to_owned(), inbox_token(&host))];
    assert_eq!(answer, SyncAnswer::Wait { folders: expected.clone(), seconds: 120 });

    // Mail arrives: the folder's token moves away from the one waited on, and the same
    // request run again (what the host does on a wake-up) sends it.
    host.mailbox.borrow_mut().append("INBOX", &message("new", "x"), &[], 0);
    assert_ne!(inbox_token(&host), expected[0].1);
    let woken = only_collection(&run(&host, "16.1", request));
    assert_eq!(commands(&woken).len(), 1);
    device.apply(&woken);

    // Wait is in minutes; the cached request (empty body) keeps it.
    let minutes =
        sync_request(vec![collection(&device.key, INBOX)]).text_child(air_sync::WAIT, "2");
    let answer = run(&host, "16.1", minutes);
    assert_eq!(
        answer,
        SyncAnswer::Wait { folders: vec![("INBOX".to_owned(), inbox_token(&host))], seconds: 120 }
    );
    assert!(matches!(run_raw(&host, "16.1", &[]), SyncAnswer::Wait { seconds: 120, .. }));
}

#[test]
fn the_token_is_the_state_the_empty_answer_saw() {
    let host = host();
    fill(&host, "INBOX", 1, 0);
    let mut device = Device::default();
    device.initial_sync(&host, "16.1", INBOX, &[]);
    let seen = inbox_token(&host);
    // A flag change made by another client after the device synced is sent, not waited on.
    let uid = *device.items.keys().next().expect("one item");
    host.mailbox.borrow_mut().set_flags("INBOX", uid, &["\\Seen"]);
    let request = waiting(vec![collection(&device.key, INBOX)], "300");
    let changed = only_collection(&run(&host, "16.1", request));
    device.apply(&changed);
    assert_eq!(commands(&changed).len(), 1);
    // Now nothing is left: the wait is based on the state after the flag change.
    let request = waiting(vec![collection(&device.key, INBOX)], "300");
    let SyncAnswer::Wait { folders, .. } = run(&host, "16.1", request) else {
        panic!("expected a wait")
    };
    assert_eq!(folders, [("INBOX".to_owned(), inbox_token(&host))]);
    assert_ne!(folders[0].1, seen);
}

#[test]
fn client_changes_answer_at_once_even_with_a_wait() {
    let host = host();
    fill(&host, "INBOX", 1, 0);
    let mut device = Device::default();
    device.initial_sync(&host, "16.1", INBOX, &[]);
    let uid = *device.items.keys().next().expect("one item");
    let change = Element::new(air_sync::CHANGE)
        .text_child(air_sync::SERVER_ID, format!("{INBOX}:{uid}"))
        .with_child(Element::new(air_sync::APPLICATION_DATA).text_child(email::READ, "1"));
    let with_change = collection(&device.key, INBOX)
        .with_child(Element::with_children(air_sync::COMMANDS, vec![change]));
    let answer = run(&host, "16.1", waiting(vec![with_change], "300"));
    assert!(matches!(answer, SyncAnswer::Document(_)), "{answer:?}");
}
