//! Server changes after the first listing: new mail, flags, expunges, UIDVALIDITY, the date
//! window, servers without CONDSTORE; retries and keys.

use super::*;

fn synced(host: &FakeHost, count: usize) -> Device {
    fill(host, "INBOX", count, 0);
    let mut device = Device::default();
    device.initial_sync(host, "16.1", INBOX, &[]);
    assert_eq!(device.items.len(), count);
    device
}

#[test]
fn new_mail_flag_changes_and_expunges() {
    for without_condstore in [false, true] {
        let host = host();
        host.mailbox.borrow_mut().without_condstore = without_condstore;
        let mut device = synced(&host, 5);

        let new = host.mailbox.borrow_mut().append("INBOX", &message("new", "hi"), &["\\Seen"], 0);
        host.mailbox.borrow_mut().set_flags("INBOX", 2, &["\\Seen"]);
        host.mailbox.borrow_mut().expunge("INBOX", 3);
        let batch = device.sync_once(&host, "16.1", INBOX).expect("changes");
        let kinds: Vec<_> = commands(&batch).iter().map(|c| c.tag).collect();
        assert_eq!(
            kinds,
            [air_sync::DELETE, air_sync::CHANGE, air_sync::ADD],
            "{without_condstore}"
        );
        assert_eq!(device.items.get(&new), Some(&true));
        assert_eq!(device.items.get(&2), Some(&true));
        assert!(!device.items.contains_key(&3));

        // The Change carries only the flag fields.
        let change = &commands(&batch)[1];
        let data = change.child(air_sync::APPLICATION_DATA).expect("data");
        assert!(data.child(email::SUBJECT).is_none() && data.child(base::BODY).is_none());

        // Nothing new: no answer; a flag set that looks the same to the device: none either.
        assert_eq!(device.sync_once(&host, "16.1", INBOX), None, "{without_condstore}");
        host.mailbox.borrow_mut().set_flags("INBOX", 2, &["\\Recent", "\\SEEN"]);
        assert_eq!(device.sync_once(&host, "16.1", INBOX), None, "{without_condstore}");
    }
}

#[test]
fn deleted_flag_counts_as_gone() {
    let host = host();
    let mut device = synced(&host, 3);
    host.mailbox.borrow_mut().set_flags("INBOX", 1, &["\\Deleted"]);
    let batch = device.sync_once(&host, "16.1", INBOX).expect("a delete");
    assert_eq!(commands(&batch)[0].tag, air_sync::DELETE);
    assert!(!device.items.contains_key(&1));
    // Undeleted: it comes back.
    host.mailbox.borrow_mut().set_flags("INBOX", 1, &[]);
    let batch = device.sync_once(&host, "16.1", INBOX).expect("an add");
    assert_eq!(commands(&batch)[0].tag, air_sync::ADD);
    assert!(device.items.contains_key(&1));
}

#[test]
fn a_retry_with_the_previous_key_gets_the_same_bytes_and_changes_nothing() {
    let host = host();
    let mut device = synced(&host, 2);
    let old_key = device.key.clone();
    host.mailbox.borrow_mut().append("INBOX", &message("a", "1"), &[], 0);
    host.mailbox.borrow_mut().set_flags("INBOX", 1, &["\\Flagged"]);
    let first = run(&host, "16.1", sync_request(vec![collection(&old_key, INBOX)]));
    let state_after = host.stored(&device_scope(), "sync/1");
    // More mail arrives; the retry must still be the lost answer, not a new one.
    host.mailbox.borrow_mut().append("INBOX", &message("b", "2"), &[], 0);
    let retry = run(&host, "16.1", sync_request(vec![collection(&old_key, INBOX)]));
    assert_eq!(bytes(&retry), bytes(&first));
    assert_eq!(host.stored(&device_scope(), "sync/1"), state_after, "a replay stores nothing");

    device.apply(&only_collection(&retry));
    let next = device.sync_once(&host, "16.1", INBOX).expect("the second message");
    assert_eq!(commands(&next).len(), 1);
    assert_eq!(device.items.len(), 4);
    assert!(device.added.values().all(|&n| n == 1));
    // Two keys back is unknown.
    let stale =
        only_collection(&run(&host, "16.1", sync_request(vec![collection(&old_key, INBOX)])));
    assert_eq!((status_of(&stale), key_of(&stale).as_str()), ("3", "0"));
}

#[test]
fn unknown_and_malformed_keys_are_status_3() {
    let host = host();
    let device = synced(&host, 1);
    let (generation, counter) = device.key.split_once('-').expect("our format");
    let other_generation = format!("{}-{counter}", if generation == "1" { "2" } else { "1" });
    let future = format!("{generation}-{}", counter.parse::<u32>().expect("counter") + 5);
    for key in ["garbage", "1-2-3", other_generation.as_str(), future.as_str()] {
        let answer =
            only_collection(&run(&host, "16.1", sync_request(vec![collection(key, INBOX)])));
        assert_eq!(status_of(&answer), "3", "{key}");
        assert_eq!(key_of(&answer), "0");
    }
    // The real key still works.
    let answer = run(&host, "16.1", sync_request(vec![collection(&device.key, INBOX)]));
    assert_eq!(answer, SyncAnswer::Empty { hold_seconds: None });
}

#[test]
fn a_recreated_folder_makes_the_device_start_over() {
    let host = host();
    let device = synced(&host, 2);
    host.mailbox.borrow_mut().recreate_folder("INBOX");
    host.mailbox.borrow_mut().append("INBOX", &message("fresh", "x"), &[], 0);
    let answer =
        only_collection(&run(&host, "16.1", sync_request(vec![collection(&device.key, INBOX)])));
    assert_eq!((status_of(&answer), key_of(&answer).as_str()), ("3", "0"));
    // Starting over syncs the new folder.
    let mut fresh = Device::default();
    fresh.initial_sync(&host, "16.1", INBOX, &[]);
    assert_eq!(fresh.items.len(), 1);
}

#[test]
fn filter_type_limits_the_listing_and_moving_it_soft_deletes_or_adds() {
    let host = host();
    // now = 0 in the fake host: a one-day window starts one day back.
    let old = fill(&host, "INBOX", 3, -10 * 86_400);
    let recent = fill(&host, "INBOX", 2, -3600);
    let one_day = vec![Element::with_text(air_sync::FILTER_TYPE, "1")];
    let mut device = Device::default();
    device.initial_sync(
        &host,
        "14.1",
        INBOX,
        &[Element::with_children(air_sync::OPTIONS, one_day)],
    );
    assert_eq!(device.items.keys().copied().collect::<Vec<_>>(), recent);

    // New mail with an old date (moved in) stays out; new mail of today comes in.
    let moved =
        host.mailbox.borrow_mut().append("INBOX", &message("moved", "x"), &[], -20 * 86_400);
    let today = host.mailbox.borrow_mut().append("INBOX", &message("today", "x"), &[], 0);
    device.sync_once(&host, "14.1", INBOX).expect("today's mail");
    assert!(device.items.contains_key(&today) && device.items.len() == 3);

    // A wider window (1 month) brings the old mail in.
    let month = with_options(
        collection(&device.key, INBOX),
        vec![Element::with_text(air_sync::FILTER_TYPE, "5")],
    );
    device.apply(&only_collection(&run(&host, "14.1", sync_request(vec![month]))));
    for uid in &old {
        assert!(device.items.contains_key(uid), "UID {uid}");
    }
    // A narrower one again: what fell out is soft-deleted.
    let day = with_options(
        collection(&device.key, INBOX),
        vec![Element::with_text(air_sync::FILTER_TYPE, "1")],
    );
    device.apply(&only_collection(&run(&host, "14.1", sync_request(vec![day]))));
    let mut fell_out = old.clone();
    fell_out.push(moved);
    assert_eq!(device.soft_deleted, fell_out);
    // No filter: everything, the moved-in message too.
    let all = with_options(
        collection(&device.key, INBOX),
        vec![Element::with_text(air_sync::FILTER_TYPE, "0")],
    );
    device.apply(&only_collection(&run(&host, "14.1", sync_request(vec![all]))));
    assert_eq!(device.items.len(), 7);
}

#[test]
fn several_collections_share_the_request_window() {
    let host = host();
    fill(&host, "INBOX", 30, 0);
    fill(&host, "Sent", 30, 0);
    let bootstrap =
        run(&host, "16.0", sync_request(vec![collection("0", INBOX), collection("0", SENT)]));
    let keys: Vec<String> = collections(&bootstrap).iter().map(key_of).collect();
    let mut inbox = Device { key: keys[0].clone(), ..Device::default() };
    let mut sent = Device { key: keys[1].clone(), ..Device::default() };
    let mut rounds = 0;
    loop {
        rounds += 1;
        let mut request =
            sync_request(vec![collection(&inbox.key, INBOX), collection(&sent.key, SENT)]);
        request.push(Element::with_text(air_sync::WINDOW_SIZE, "25"));
        let answer = run(&host, "16.0", request);
        let mut total = 0;
        let mut more = false;
        for answered in collections(&answer) {
            total += commands(&answered).len();
            let device = if answered.text_of(air_sync::COLLECTION_ID) == Some(INBOX) {
                &mut inbox
            } else {
                &mut sent
            };
            more |= device.apply(&answered);
        }
        assert!(total <= 25, "the request-level window caps all collections");
        if !more && inbox.items.len() == 30 && sent.items.len() == 30 {
            break;
        }
        assert!(rounds < 10);
    }
    assert_eq!(rounds, 3);
}

#[test]
fn get_changes_false_sends_no_server_changes() {
    let host = host();
    let mut device = synced(&host, 1);
    host.mailbox.borrow_mut().append("INBOX", &message("n", "x"), &[], 0);
    let request = collection(&device.key, INBOX).text_child(air_sync::GET_CHANGES, "0");
    assert_eq!(
        run(&host, "16.1", sync_request(vec![request])),
        SyncAnswer::Empty { hold_seconds: None }
    );
    device.sync_once(&host, "16.1", INBOX).expect("the new mail");
    assert_eq!(device.items.len(), 2);
}

#[test]
fn get_changes_with_sync_key_0_is_a_protocol_error() {
    let host = host();
    let device = synced(&host, 1);
    let empty = collection("0", INBOX).empty_child(air_sync::GET_CHANGES);
    for request in [empty, collection("0", INBOX).text_child(air_sync::GET_CHANGES, "1")] {
        let answer = only_collection(&run(&host, "16.1", sync_request(vec![request])));
        assert_eq!((status_of(&answer), key_of(&answer).as_str()), ("4", "0"));
    }
    // The relationship is untouched: the device's key still works.
    let answer = run(&host, "16.1", sync_request(vec![collection(&device.key, INBOX)]));
    assert_eq!(answer, SyncAnswer::Empty { hold_seconds: None });
    // GetChanges 0 with key 0 is an ordinary bootstrap.
    let request = collection("0", INBOX).text_child(air_sync::GET_CHANGES, "0");
    let answer = only_collection(&run(&host, "16.1", sync_request(vec![request])));
    assert_eq!(status_of(&answer), "1");
    assert_ne!(key_of(&answer), "0");
}

#[test]
fn deletes_and_changes_beyond_the_window_wait_for_the_next_batch() {
    for without_condstore in [false, true] {
        let host = host();
        host.mailbox.borrow_mut().without_condstore = without_condstore;
        let mut device = synced(&host, 300);
        for uid in 1..=150 {
            host.mailbox.borrow_mut().expunge("INBOX", uid);
        }
        for uid in 151..=220 {
            host.mailbox.borrow_mut().set_flags("INBOX", uid, &["\\Seen"]);
        }
        let new = host.mailbox.borrow_mut().append("INBOX", &message("late", "x"), &[], 0);
        let rounds = device.sync_until_done(&host, "16.1", INBOX, Some(100));
        assert_eq!(rounds, 3, "150 deletes + 70 changes + 1 add in windows of 100");
        assert_eq!(device.items.len(), 151, "{without_condstore}");
        assert!((151..=220).all(|uid| device.items.get(&uid) == Some(&true)));
        assert!((221..=300).all(|uid| device.items.get(&uid) == Some(&false)));
        assert_eq!(device.added.get(&new), Some(&1));
        assert_eq!(device.sync_once(&host, "16.1", INBOX), None);
    }
}
