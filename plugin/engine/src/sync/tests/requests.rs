//! Request handling: cached and Partial requests, limits, statuses, client commands, races.

use super::*;

fn global_status(answer: &SyncAnswer) -> (Option<String>, Option<String>) {
    match answer {
        SyncAnswer::Document(document) => (
            document.root.text_of(air_sync::STATUS).map(str::to_owned),
            document.root.text_of(air_sync::LIMIT).map(str::to_owned),
        ),
        other => panic!("expected a document, got {other:?}"),
    }
}

#[test]
fn an_empty_request_repeats_the_cached_one_with_the_latest_keys() {
    let host = host();
    assert_eq!(global_status(&run_raw(&host, "16.1", &[])).0.as_deref(), Some("13"));
    fill(&host, "INBOX", 3, 0);
    let mut device = Device::default();
    device.initial_sync(&host, "16.1", INBOX, &[]);
    host.mailbox.borrow_mut().append("INBOX", &message("late", "x"), &[], 0);
    let answer = run_raw(&host, "16.1", &[]);
    let batch = only_collection(&answer);
    assert_eq!(commands(&batch).len(), 1);
    device.apply(&batch);
    assert_eq!(run_raw(&host, "16.1", &[]), SyncAnswer::Empty { hold_seconds: None });
}

#[test]
fn partial_requests_add_the_cached_collections() {
    let host = host();
    fill(&host, "INBOX", 1, 0);
    fill(&host, "Sent", 1, 0);
    let bootstrap =
        run(&host, "16.1", sync_request(vec![collection("0", INBOX), collection("0", SENT)]));
    let keys: Vec<String> = collections(&bootstrap).iter().map(key_of).collect();
    // A Partial request naming INBOX only still syncs Sent, with its latest key.
    let mut partial = sync_request(vec![collection(&keys[0], INBOX)]);
    partial.push(Element::new(air_sync::PARTIAL));
    let answer = run(&host, "16.1", partial);
    let answered: Vec<_> = collections(&answer)
        .iter()
        .map(|c| (c.text_of(air_sync::COLLECTION_ID).map(str::to_owned), commands(c).len()))
        .collect();
    assert_eq!(answered, [(Some(INBOX.to_owned()), 1), (Some(SENT.to_owned()), 1)]);
    // A request with only a Wait also means "the cached collections": both are waited on.
    let wait = Element::new(air_sync::SYNC).text_child(air_sync::WAIT, "5");
    let SyncAnswer::Wait { folders, seconds: 300 } = run(&host, "16.1", wait) else {
        panic!("expected a wait of 300 s")
    };
    let names: Vec<&str> = folders.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["INBOX", "Sent"]);
}

#[test]
fn request_level_statuses() {
    let host = host();
    let heartbeat =
        sync_request(vec![collection("0", INBOX)]).text_child(air_sync::HEARTBEAT_INTERVAL, "30");
    assert_eq!(
        global_status(&run(&host, "16.1", heartbeat)),
        (Some("14".into()), Some("60".into()))
    );
    let many = (0..101).map(|i| collection("0", &i.to_string())).collect();
    assert_eq!(global_status(&run(&host, "16.1", sync_request(many))).0.as_deref(), Some("15"));
    assert_eq!(run_raw(&host, "16.1", b"not wbxml"), SyncAnswer::NotWbxml);
    let not_sync = Element::new(air_sync::COLLECTIONS);
    assert_eq!(global_status(&run(&host, "16.1", not_sync)).0.as_deref(), Some("4"));
}

#[test]
fn collection_statuses() {
    let host = host();
    let unknown = only_collection(&run(&host, "16.1", sync_request(vec![collection("0", "99")])));
    assert_eq!(status_of(&unknown), "12");
    let bad_options = with_options(
        collection("0", INBOX),
        vec![Element::new(base::BODY_PREFERENCE).text_child(base::TYPE, "9")],
    );
    assert_eq!(
        status_of(&only_collection(&run(&host, "16.1", sync_request(vec![bad_options])))),
        "4"
    );
    let no_key = Element::new(air_sync::COLLECTION).text_child(air_sync::COLLECTION_ID, INBOX);
    assert_eq!(status_of(&only_collection(&run(&host, "16.1", sync_request(vec![no_key])))), "4");
}

#[test]
fn mailbox_outage_is_a_retryable_server_error_and_state_is_kept() {
    let host = host();
    fill(&host, "INBOX", 2, 0);
    let mut device = Device::default();
    device.initial_sync(&host, "16.1", INBOX, &[]);
    // The folder map is cached, so the outage shows at the change listing.
    host.mailbox.borrow_mut().append("INBOX", &message("n", "x"), &[], 0);
    let before = host.stored(&device_scope(), "sync/1");
    host.mailbox.borrow_mut().unavailable = true;
    let answer = run(&host, "16.1", sync_request(vec![collection(&device.key, INBOX)]));
    assert_eq!(answer, SyncAnswer::Unavailable);
    assert_eq!(host.stored(&device_scope(), "sync/1"), before);
    host.mailbox.borrow_mut().unavailable = false;
    let batch = device.sync_once(&host, "16.1", INBOX).expect("the new mail");
    assert_eq!(commands(&batch).len(), 1);
}

fn client_commands(key: &str, list: Vec<Element>) -> Element {
    collection(key, INBOX).with_child(Element::with_children(air_sync::COMMANDS, list))
}

#[test]
fn client_commands_get_item_statuses_and_fetch_works() {
    let host = host();
    fill(&host, "INBOX", 3, 0);
    let mut device = Device::default();
    device.initial_sync(&host, "16.1", INBOX, &[]);
    let request = client_commands(
        &device.key,
        vec![
            Element::new(air_sync::FETCH).text_child(air_sync::SERVER_ID, "1:2"),
            Element::new(air_sync::FETCH).text_child(air_sync::SERVER_ID, "1:99"),
            Element::new(air_sync::CHANGE)
                .text_child(air_sync::SERVER_ID, "1:1")
                .with_child(Element::new(air_sync::APPLICATION_DATA).text_child(email::READ, "1")),
            Element::new(air_sync::CHANGE)
                .text_child(air_sync::SERVER_ID, "1:77")
                .with_child(Element::new(air_sync::APPLICATION_DATA).text_child(email::READ, "1")),
            Element::new(air_sync::DELETE).text_child(air_sync::SERVER_ID, "1:3"),
            Element::new(air_sync::ADD).text_child(air_sync::CLIENT_ID, "c1"),
        ],
    );
    let answer = run(&host, "16.1", sync_request(vec![request.clone()]));
    let batch = only_collection(&answer);
    // Successful Change and Delete have no entry; the unknown item and the Add (mail is not
    // added by clients outside Drafts) do.
    assert_eq!(
        responses(&batch),
        [
            (air_sync::CHANGE, "8".to_owned()),
            (air_sync::ADD, "6".to_owned()),
            (air_sync::FETCH, "1".to_owned()),
            (air_sync::FETCH, "8".to_owned()),
        ]
    );
    let fetched = batch
        .child(air_sync::RESPONSES)
        .and_then(|r| r.children(air_sync::FETCH).next())
        .and_then(|f| f.child(air_sync::APPLICATION_DATA))
        .expect("fetched item");
    assert_eq!(fetched.text_of(email::SUBJECT), Some("m1"));
    // Written to the mailbox, and nothing comes back to the device.
    assert!(host.mailbox.borrow().flags("INBOX", 1).contains(&"\\Seen".to_owned()));
    assert_eq!(host.mailbox.borrow().uids("INBOX"), [1, 2]);
    assert!(commands(&batch).is_empty(), "{batch:?}");

    // A retry of that request replays it, Fetch results included, and writes nothing again.
    let trash = host.mailbox.borrow().uids("Trash");
    let retry = run(&host, "16.1", sync_request(vec![request]));
    assert_eq!(bytes(&retry), bytes(&answer));
    assert_eq!(host.mailbox.borrow().uids("Trash"), trash);
}

#[test]
fn a_committed_key_whose_reply_was_lost_replays_its_answer_to_the_retry() {
    let host = host();
    fill(&host, "INBOX", 3, 0);
    let mut device = Device::default();
    device.initial_sync(&host, "16.1", INBOX, &[]);
    host.mailbox.borrow_mut().append("INBOX", &message("late", "x"), &[], 0);
    *host.lose_next_swap_reply.borrow_mut() = Some("sync/".to_owned());
    let request = sync_request(vec![collection(&device.key, INBOX)]);
    let failed = run(&host, "16.1", request.clone());
    assert!(matches!(failed, SyncAnswer::Unavailable), "the store looked down");

    let retry = run(&host, "16.1", request);
    let batch = only_collection(&retry);
    assert_eq!(status_of(&batch), "1", "{retry:?}");
    assert_ne!(key_of(&batch), device.key);
    assert_eq!(commands(&batch).len(), 1, "the new message, once: {retry:?}");
}

#[test]
fn losing_a_race_for_the_key_answers_retry() {
    let inner = host();
    fill(&inner, "INBOX", 2, 0);
    let mut device = Device::default();
    device.initial_sync(&inner, "16.1", INBOX, &[]);
    inner.mailbox.borrow_mut().append("INBOX", &message("n", "x"), &[], 0);
    *inner.race_next_swap.borrow_mut() = Some("sync/".to_owned());
    let stored_answers = |host: &FakeHost| {
        ["0", "1"].map(|slot| host.stored(&device_scope(), &format!("sync/{INBOX}/last/{slot}")))
    };
    let answers_before = stored_answers(&inner);
    let racing = inner;
    let body =
        eas_wbxml::encode(&Document::new(sync_request(vec![collection(&device.key, INBOX)])))
            .expect("encodes");
    let answer =
        run_to_completion(crate::sync::run(&racing, IDENTITY, &eas_request("16.1"), &body))
            .expect("completes");
    let lost = only_collection(&answer);
    assert_eq!(status_of(&lost), "16");
    assert_eq!(key_of(&lost), device.key, "the client keeps its key");
    assert!(commands(&lost).is_empty());
    // The winner's answer, kept for its retry, is not replaced by the loser's.
    assert_eq!(stored_answers(&racing), answers_before);
}

#[test]
fn a_request_like_the_last_one_is_not_cached_again() {
    let host = host();
    fill(&host, "INBOX", 6, 0);
    let mut device = Device::default();
    device.initial_sync(&host, "16.1", INBOX, &[]);
    let cache_writes = |host: &FakeHost| {
        host.put_keys.borrow().iter().filter(|k| *k == crate::sync::request::CACHE_KEY).count()
    };
    let before = cache_writes(&host);
    let same = run(&host, "16.1", sync_request(vec![collection(&device.key, INBOX)]));
    assert!(matches!(same, SyncAnswer::Empty { .. }), "nothing new: {same:?}");
    assert_eq!(cache_writes(&host), before, "the same request again");

    let other = sync_request(vec![with_window(collection(&device.key, INBOX), 2)]);
    run(&host, "16.1", other);
    assert_eq!(cache_writes(&host), before + 1, "another window is cached");
}
