//! Bootstrap and the first listing, in windows.

use super::*;
use crate::ashttp::ProtocolVersion;
use crate::sync::state::{CollectionState, state_key};
use eas_wbxml::tags::email2;

#[test]
fn sync_key_zero_creates_a_key_and_sends_nothing() {
    let host = host();
    fill(&host, "INBOX", 3, 0);
    let answer = run(&host, "16.1", sync_request(vec![collection("0", INBOX)]));
    let bootstrap = only_collection(&answer);
    assert_eq!(status_of(&bootstrap), "1");
    assert!(commands(&bootstrap).is_empty());
    assert!(bootstrap.child(air_sync::MORE_AVAILABLE).is_none());
    let key = key_of(&bootstrap);
    assert_ne!(key, "0");
    let stored = host.stored(&device_scope(), &state_key(INBOX)).expect("state stored");
    let state = CollectionState::decode(&stored).expect("decodes");
    assert_eq!(state.current_key().to_string(), key);
    assert!(!state.primed, "the listing is taken at the next Sync");
    assert_eq!(host.mailbox.borrow().calls.get().changes, 0);

    // SyncKey 0 again: a new relationship with a different key.
    let again = only_collection(&run(&host, "16.1", sync_request(vec![collection("0", INBOX)])));
    assert_ne!(key_of(&again), key);
}

#[test]
fn two_thousand_messages_page_in_windows_of_100_each_uid_once() {
    let host = host();
    let uids = fill(&host, "INBOX", 2000, 0);
    let mut device = Device::default();
    let first = only_collection(&run(&host, "14.1", sync_request(vec![collection("0", INBOX)])));
    device.apply(&first);
    let calls_before = host.mailbox.borrow().calls.get();

    let mut rounds = 0;
    let mut previous_first_uid = u32::MAX;
    let mut hinted: Option<Vec<u32>> = None;
    loop {
        rounds += 1;
        let hints_before = host.prefetched.borrow().len();
        let answer = run(
            &host,
            "14.1",
            sync_request(vec![with_window(collection(&device.key, INBOX), 100)]),
        );
        let batch = only_collection(&answer);
        let sent: Vec<u32> = commands(&batch)
            .iter()
            .map(|c| uid_of(c.text_of(air_sync::SERVER_ID).expect("ServerId")))
            .collect();
        if let Some(hinted) = hinted.take() {
            assert!(
                sent.iter().all(|uid| hinted.binary_search(uid).is_ok()),
                "the previous batch told the host of this one"
            );
            assert!(hinted.len() <= 200, "and of the one after it, no more");
        }
        let hints = host.prefetched.borrow();
        assert!(hints.len() <= hints_before + 1, "one hint per batch");
        hinted = hints.get(hints_before).map(|(folder, uids, prefix_bytes)| {
            assert_eq!(folder, "INBOX");
            assert!(*prefix_bytes > 0);
            uids.clone()
        });
        drop(hints);
        assert!(sent.len() <= 100);
        assert!(sent.windows(2).all(|w| w[0] > w[1]), "newest first within a batch");
        assert!(sent.first().is_none_or(|&uid| uid < previous_first_uid), "and across batches");
        previous_first_uid = sent.last().copied().unwrap_or(previous_first_uid);
        if !device.apply(&batch) {
            break;
        }
    }
    assert_eq!(rounds, 20);
    assert_eq!(host.prefetched.borrow().len(), 19, "no hint after the last batch");
    assert_eq!(device.items.len(), 2000);
    assert!(device.added.values().all(|&n| n == 1), "every UID exactly once");
    assert_eq!(device.added.keys().copied().collect::<Vec<_>>(), uids);

    let calls = host.mailbox.borrow().calls.get();
    assert_eq!(calls.changes - calls_before.changes, 20, "one changes call per request");
    assert_eq!(calls.summaries - calls_before.summaries, 20, "one fetch per batch");
    assert_eq!(calls.messages, 0, "small messages come whole with their summary");

    // Up to date: an empty answer, the key unchanged.
    let answer = run(&host, "14.1", sync_request(vec![collection(&device.key, INBOX)]));
    assert_eq!(answer, SyncAnswer::Empty { hold_seconds: None });
}

#[test]
fn the_window_is_capped_at_512() {
    let host = host();
    fill(&host, "INBOX", 600, 0);
    let mut device = Device::default();
    device.apply(&only_collection(&run(&host, "16.1", sync_request(vec![collection("0", INBOX)]))));
    let batch = only_collection(&run(
        &host,
        "16.1",
        sync_request(vec![with_window(collection(&device.key, INBOX), 5000)]),
    ));
    assert_eq!(commands(&batch).len(), 512);
    assert!(device.apply(&batch), "MoreAvailable");
}

#[test]
fn large_messages_split_batches_by_bytes_and_short_prefixes_are_fetched_whole() {
    let host = host();
    let body = "x".repeat(100 * 1024);
    // three batches' worth of bytes
    let count = 3 * crate::sync::limits::COLLECTION_BYTES / body.len();
    for i in 0..count {
        host.mailbox.borrow_mut().append("INBOX", &message(&format!("big{i}"), &body), &[], 0);
    }
    let mut device = Device::default();
    let rounds = device.initial_sync(&host, "16.1", INBOX, &[]);
    assert!(rounds >= 3, "{count} × 100 KiB do not fit one batch ({rounds} rounds)");
    assert_eq!(device.items.len(), count);
    assert!(device.added.values().all(|&n| n == 1));
    // Bodies larger than the 64 KiB prefix were fetched whole (no TruncationSize asked).
    assert_eq!(host.mailbox.borrow().calls.get().messages as usize, count);
}

#[test]
fn truncation_size_is_honoured_without_fetching_whole_messages() {
    let host = host();
    host.mailbox.borrow_mut().append("INBOX", &message("long", &"y".repeat(50_000)), &[], 0);
    let mut device = Device::default();
    let first = with_options(collection("0", INBOX), vec![plain_text(500)]);
    device.apply(&only_collection(&run(&host, "16.1", sync_request(vec![first]))));
    let batch = device.sync_once(&host, "16.1", INBOX).expect("an Add");
    let add = &commands(&batch)[0];
    let body =
        add.child(air_sync::APPLICATION_DATA).and_then(|d| d.child(base::BODY)).expect("Body");
    assert_eq!(body.text_of(base::TRUNCATED), Some("1"));
    assert_eq!(body.text_of(base::DATA).map(str::len), Some(500));
    assert_eq!(host.mailbox.borrow().calls.get().messages, 0);
}

#[test]
fn every_version_syncs_with_its_own_fields() {
    for version in ProtocolVersion::ALL {
        let host = host();
        fill(&host, "INBOX", 3, 0);
        let mut device = Device::default();
        let class = Element::with_text(air_sync::CLASS, "Email");
        let extra = if version < ProtocolVersion::V14_0 { vec![class] } else { vec![] };
        device.initial_sync(&host, version.as_str(), INBOX, &extra);
        assert_eq!(device.items.len(), 3, "{version}");
        let mut sent = collection("0", SENT);
        sent.child_elements_mut().extend(extra.iter().cloned());
        let answered = only_collection(&run(&host, version.as_str(), sync_request(vec![sent])));
        let echoed = answered.child_elements()[0].tag == air_sync::CLASS;
        assert_eq!(echoed, version < ProtocolVersion::V14_0, "{version}: Class echoed first");
        // Threading fields only from 14.0 (EAS-NOTES §7).
        host.mailbox.borrow_mut().append("INBOX", &message("new", "hi"), &[], 0);
        let batch = device.sync_once(&host, version.as_str(), INBOX).expect("an Add");
        let data = commands(&batch)[0].child(air_sync::APPLICATION_DATA).expect("data");
        assert_eq!(
            data.child(email2::CONVERSATION_ID).is_some(),
            version >= ProtocolVersion::V14_0,
            "{version}"
        );
    }
}

/// Every MIME fixture (HTML, attachments, inline images, charsets, S/MIME, broken MIME) with
/// assorted flags, paged in windows of 4, for each kind of small body a phone asks for: a
/// host that renders the next page ahead (`render_ahead`) gives byte for byte the pages a
/// host that does not gives, and the renderings made ahead are used.
#[test]
fn pages_rendered_ahead_are_the_pages_rendered_in_the_request() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/email/fixtures");
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .expect("fixtures")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
        .collect();
    names.sort();
    let fixtures: Vec<Vec<u8>> =
        names.iter().map(|path| std::fs::read(path).expect("read")).collect();
    let flag_sets: [&[&str]; 4] =
        [&[], &["\\Seen"], &["\\Flagged", "$label1"], &["\\Answered", "\\Seen"]];
    let html = |truncation: u32| {
        Element::new(base::BODY_PREFERENCE)
            .text_child(base::TYPE, "2")
            .text_child(base::TRUNCATION_SIZE, truncation.to_string())
    };
    let cases: Vec<(&str, Vec<Element>)> = vec![
        ("14.1", vec![plain_text(255)]),
        ("16.1", vec![html(4_096)]),
        ("16.1", vec![plain_text(255), html(512)]),
        ("12.1", vec![plain_text(4_096)]),
    ];
    for (version, options) in cases {
        let pages = |renders_ahead: bool, broken: bool| {
            let host = host();
            host.renders_ahead.set(renders_ahead);
            host.rendered_ahead_broken.set(broken);
            {
                let mut mailbox = host.mailbox.borrow_mut();
                for round in 0..2 {
                    for (index, raw) in fixtures.iter().enumerate() {
                        let flags = flag_sets[(index + round) % flag_sets.len()];
                        mailbox.append("INBOX", raw, flags, 1_700_000_000 + index as i64);
                    }
                }
            }
            let first = run(&host, version, sync_request(vec![collection("0", INBOX)]));
            let mut key = key_of(&only_collection(&first));
            let mut pages = Vec::new();
            loop {
                let request =
                    with_options(with_window(collection(&key, INBOX), 4), options.clone());
                let answer = run(&host, version, sync_request(vec![request]));
                pages.push(bytes(&answer));
                let batch = only_collection(&answer);
                key = key_of(&batch);
                if batch.child(air_sync::MORE_AVAILABLE).is_none() {
                    break;
                }
            }
            (pages, host.rendered_ahead_used.get())
        };
        let (plain, none_used) = pages(false, false);
        let (ahead, used) = pages(true, false);
        assert_eq!(none_used, 0);
        assert!(used >= 2 * fixtures.len() - 8, "{version} {options:?}: only {used} used");
        // renderings that arrive broken are fetched and converted again
        let (refetched, _) = pages(true, true);
        for other in [&ahead, &refetched] {
            assert_eq!(plain.len(), other.len(), "{version} {options:?}");
            for (index, (plain, other)) in plain.iter().zip(other).enumerate() {
                assert!(plain == other, "{version} {options:?}: page {index} differs");
            }
        }
    }
}
