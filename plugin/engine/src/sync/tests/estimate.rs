//! GetItemEstimate counts and Ping's view of pending changes.

use super::*;
use crate::drive::run_to_completion;
use crate::sync::{Estimate, estimate, pending_changes};

fn estimate_of(host: &FakeHost, id: &str, key: &str) -> Estimate {
    run_to_completion(estimate(host, DEVICE, id, key, None)).expect("completes").expect("estimates")
}

fn pending(host: &FakeHost, id: &str) -> bool {
    run_to_completion(pending_changes(host, DEVICE, id)).expect("completes").expect("answers")
}

#[test]
fn estimates_count_what_the_next_sync_sends_without_advancing() {
    let host = host();
    fill(&host, "INBOX", 250, 0);
    assert_eq!(estimate_of(&host, INBOX, "0"), Estimate::NotPrimed);
    assert_eq!(estimate_of(&host, "99", "0"), Estimate::InvalidCollection);
    let mut device = Device::default();
    device.apply(&only_collection(&run(&host, "16.1", sync_request(vec![collection("0", INBOX)]))));
    assert_eq!(estimate_of(&host, INBOX, &device.key), Estimate::Count(250));
    assert_eq!(estimate_of(&host, INBOX, &device.key), Estimate::Count(250), "nothing advanced");
    assert_eq!(estimate_of(&host, INBOX, "1-1"), Estimate::InvalidKey);
    assert_eq!(estimate_of(&host, INBOX, "junk"), Estimate::InvalidKey);

    let previous = device.key.clone();
    device.sync_once(&host, "16.1", INBOX).expect("a batch");
    assert_eq!(estimate_of(&host, INBOX, &device.key), Estimate::Count(150));
    assert_eq!(estimate_of(&host, INBOX, &previous), Estimate::Count(150), "the retry key counts");
    device.sync_until_done(&host, "16.1", INBOX, None);
    assert_eq!(estimate_of(&host, INBOX, &device.key), Estimate::Count(0));

    host.mailbox.borrow_mut().append("INBOX", &message("new", "x"), &[], 0);
    host.mailbox.borrow_mut().set_flags("INBOX", 1, &["\\Seen"]);
    host.mailbox.borrow_mut().expunge("INBOX", 2);
    assert_eq!(estimate_of(&host, INBOX, &device.key), Estimate::Count(3));
    // With a filter that excludes everything but today's mail... all are dated 0 = today.
    let filtered = run_to_completion(estimate(&host, DEVICE, INBOX, &device.key, Some(1)))
        .expect("completes")
        .expect("estimates");
    assert_eq!(filtered, Estimate::Count(3));
}

#[test]
fn pending_changes_follow_the_folder_status() {
    let host = host();
    fill(&host, "INBOX", 120, 0);
    assert!(!pending(&host, INBOX), "never synced");
    let mut device = Device::default();
    device.apply(&only_collection(&run(&host, "16.1", sync_request(vec![collection("0", INBOX)]))));
    assert!(pending(&host, INBOX), "not listed yet");
    device.sync_once(&host, "16.1", INBOX).expect("first batch");
    assert!(pending(&host, INBOX), "more available");
    device.sync_until_done(&host, "16.1", INBOX, None);
    assert!(!pending(&host, INBOX));
    host.mailbox.borrow_mut().append("INBOX", &message("new", "x"), &[], 0);
    assert!(pending(&host, INBOX));
    device.sync_once(&host, "16.1", INBOX).expect("the new mail");
    assert!(!pending(&host, INBOX));
}
