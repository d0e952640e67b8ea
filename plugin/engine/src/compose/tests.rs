use super::*;
use crate::drive::run_to_completion;
use crate::testing::{FakeHost, FakeMailbox};

const USER: &str = "jane@example.test";

fn run<F: std::future::Future>(future: F) -> F::Output {
    run_to_completion(future).expect("completes")
}

fn host() -> FakeHost {
    let host = FakeHost::default();
    *host.mailbox.borrow_mut() = FakeMailbox::standard();
    host
}

fn stamp() -> Stamp {
    Stamp { now_ms: 1_793_000_000_000, random: Some(0xabcdef), message_id_seed: None }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const PLAIN: &[u8] = b"From: Jane <jane@example.test>\r\nTo: Bob <bob@example.test>\r\n\
Cc: carol@example.org\r\nBcc: dave@example.net, \"Eve\" <eve@example.net>\r\n\
Subject: Lunch\r\n\r\nSee you at noon.\r\n";

#[test]
fn bcc_is_stripped_from_the_wire_but_its_recipients_get_the_message() {
    let prepared = prepare(PLAIN, Some(USER), &[], &stamp()).expect("prepares");
    assert_eq!(
        prepared.recipients,
        ["bob@example.test", "carol@example.org", "dave@example.net", "eve@example.net"]
    );
    let wire = text(&prepared.wire());
    assert!(!wire.contains("Bcc") && !wire.contains("dave@"), "{wire}");
    assert!(wire.ends_with("\r\n\r\nSee you at noon.\r\n"), "{wire}");
    let copy = text(&prepared.sent_copy());
    assert!(copy.contains("Bcc: dave@example.net, \"Eve\" <eve@example.net>\r\n"), "{copy}");
}

#[test]
fn date_message_id_and_mime_version_are_added_when_missing() {
    let prepared = prepare(PLAIN, Some(USER), &[], &stamp()).expect("prepares");
    let wire = text(&prepared.wire());
    assert!(wire.contains("Date: Mon, 26 Oct 2026 07:33:20 +0000\r\n"), "{wire}");
    assert_eq!(prepared.message_id, "eas.0000000000abcdef.1793000000000@example.test");
    assert!(wire.contains(&format!("Message-ID: <{}>\r\n", prepared.message_id)), "{wire}");
    assert!(wire.contains("MIME-Version: 1.0\r\n"));

    let own = b"Date: Tue, 1 Dec 2026 10:00:00 +0100\r\nMessage-ID: <mine@phone>\r\n\
MIME-Version: 1.0\r\nFrom: jane@example.test\r\nTo: bob@example.test\r\n\r\nhi";
    let prepared = prepare(own, Some(USER), &[], &stamp()).expect("prepares");
    assert_eq!(prepared.message_id, "mine@phone");
    assert_eq!(text(&prepared.wire()).matches("Date:").count(), 1);
    assert_eq!(text(&prepared.wire()).matches("Message-ID:").count(), 1);
    assert_eq!(text(&prepared.wire()).matches("MIME-Version:").count(), 1);
}

#[test]
fn from_is_the_user() {
    // The user's own address, in another case and with a display name: kept as written.
    let own = b"From: =?UTF-8?Q?Jane_D=C3=B6e?= <Jane@Example.TEST>\r\nTo: b@x.org\r\n\r\nx";
    let wire = text(&prepare(own, Some(USER), &[], &stamp()).expect("prepares").wire());
    assert!(wire.starts_with("From: =?UTF-8?Q?Jane_D=C3=B6e?= <Jane@Example.TEST>\r\n"), "{wire}");

    // Someone else's address: replaced, the display name kept; a foreign Sender dropped.
    let spoof = b"From: \"Boss\" <boss@example.test>\r\nSender: boss@example.test\r\n\
To: b@x.org\r\n\r\nx";
    let wire = text(&prepare(spoof, Some(USER), &[], &stamp()).expect("prepares").wire());
    assert!(wire.starts_with("From: \"Boss\" <jane@example.test>\r\n"), "{wire}");
    assert!(!wire.contains("boss@"), "{wire}");

    // No From: the user's address.
    let none = b"To: b@x.org\r\n\r\nx";
    let wire = text(&prepare(none, Some(USER), &[], &stamp()).expect("prepares").wire());
    assert!(wire.contains("From: <jane@example.test>\r\n"), "{wire}");

    // A login that is not an address (or a draft, without identity): From left alone.
    let wire = text(&prepare(spoof, Some("jane"), &[], &stamp()).expect("prepares").wire());
    assert!(wire.starts_with("From: \"Boss\" <boss@example.test>\r\n"), "{wire}");
    let wire = text(&prepare(spoof, None, &[], &stamp()).expect("prepares").wire());
    assert!(wire.starts_with("From: \"Boss\" <boss@example.test>\r\n"), "{wire}");
}

#[test]
fn line_endings_are_normalized() {
    let lf = b"From: jane@example.test\nTo: b@x.org\n\nline 1\nline 2\n";
    let prepared = prepare(lf, Some(USER), &[], &stamp()).expect("prepares");
    assert!(text(&prepared.wire()).ends_with("\r\n\r\nline 1\r\nline 2\r\n"));
    assert!(!prepared.wire().windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r'));
}

#[test]
fn recipients_are_checked() {
    let none = b"From: jane@example.test\r\nTo: undisclosed-recipients:;\r\n\r\nx";
    assert_eq!(prepare(none, Some(USER), &[], &stamp()), Err(SendError::NoRecipients));
    let broken = b"From: jane@example.test\r\nTo: bob\r\n\r\nx";
    assert_eq!(
        prepare(broken, Some(USER), &[], &stamp()),
        Err(SendError::InvalidRecipient("bob".into()))
    );
    assert_eq!(
        prepare(b"not a message at all", Some(USER), &[], &stamp()).map(|p| p.recipients),
        Err(SendError::InvalidMime("no header fields".into()))
    );
    // Groups are flattened, duplicates (any case) sent once.
    let group = b"To: team: a@x.org, b@x.org;, A@X.org\r\nCc: b@x.org\r\n\r\nx";
    let prepared = prepare(group, Some(USER), &[], &stamp()).expect("prepares");
    assert_eq!(prepared.recipients, ["a@x.org", "b@x.org"]);
    assert!(!is_valid_address("a@b>\r\nRCPT TO:<c@d"));
    assert!(!is_valid_address("@x.org"));
    assert!(is_valid_address("first.last+tag@sub.example.org"));
}

#[test]
fn extra_recipients_join_the_envelope_and_to() {
    let extra = [
        (Some("Fred".to_owned()), "fred@example.org".to_owned()),
        (None, "BOB@example.test".into()),
    ];
    let prepared = prepare(PLAIN, Some(USER), &extra, &stamp()).expect("prepares");
    assert_eq!(prepared.recipients.last().map(String::as_str), Some("fred@example.org"));
    assert_eq!(prepared.recipients.len(), 5);
    let wire = text(&prepared.wire());
    assert!(wire.contains("To: Bob <bob@example.test>, \"Fred\" <fred@example.org>\r\n"), "{wire}");
}

#[test]
fn a_seeded_message_id_is_the_same_at_every_attempt_and_an_own_one_is_kept() {
    let first = Stamp { message_id_seed: Some(0x1234), ..stamp() };
    let retry = Stamp { now_ms: first.now_ms + 60_000, random: Some(99), ..first };
    let ids = [first, retry].map(|stamp| prepare(PLAIN, Some(USER), &[], &stamp).expect("ok"));
    assert_eq!(ids[0].message_id, "eas.0000000000001234@example.test");
    assert_eq!(ids[1].message_id, ids[0].message_id);
    let own = b"Message-ID: <mine@phone>\r\nFrom: jane@example.test\r\nTo: b@x.org\r\n\r\nhi";
    assert_eq!(prepare(own, Some(USER), &[], &first).expect("ok").message_id, "mine@phone");
}

#[test]
fn submit_sends_and_keeps_a_seen_copy_in_sent() {
    let host = host();
    let outcome = run(submit(&host, USER, PLAIN, true, None, None)).expect("sent");
    let sent = host.sent.borrow();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1, outcome.recipients);
    assert!(!text(&sent[0].0).contains("Bcc"));
    let SentCopy::Saved { folder, uid: Some(uid) } = &outcome.sent_copy else {
        panic!("{:?}", outcome.sent_copy)
    };
    assert_eq!(folder, "Sent");
    let mailbox = host.mailbox.borrow();
    let copy = mailbox.raw("Sent", *uid).expect("stored");
    assert!(text(&copy).contains("Bcc: dave@example.net"));
    assert_eq!(mailbox.flags("Sent", *uid), ["\\Seen"]);
}

#[test]
fn submit_without_save_in_sent_leaves_sent_alone() {
    let host = host();
    let outcome = run(submit(&host, USER, PLAIN, false, None, None)).expect("sent");
    assert_eq!(outcome.sent_copy, SentCopy::NotAsked);
    assert_eq!(host.sent.borrow().len(), 1);
    assert!(host.mailbox.borrow().uids("Sent").is_empty());
}

#[test]
fn a_failed_submission_saves_nothing() {
    for failure in [
        SubmissionError::Unavailable("connection refused".into()),
        SubmissionError::Rejected("550 no such user".into()),
        SubmissionError::TooLarge("552".into()),
    ] {
        let host = host();
        *host.submission_failure.borrow_mut() = Some(failure.clone());
        let error = run(submit(&host, USER, PLAIN, true, None, None)).expect_err("not sent");
        assert_eq!(error, SendError::Submission(failure));
        assert!(host.mailbox.borrow().uids("Sent").is_empty());
    }
    assert_eq!(
        SendError::Submission(SubmissionError::Unavailable(String::new())).status(),
        CommonStatus::ServerErrorRetryLater
    );
    assert_eq!(
        SendError::Submission(SubmissionError::Rejected(String::new())).status(),
        CommonStatus::MailSubmissionFailed
    );
    assert_eq!(SendError::NoRecipients.status(), CommonStatus::MessageHasNoRecipient);
}

#[test]
fn without_a_sent_folder_the_message_still_goes() {
    let host = FakeHost::default();
    host.mailbox.borrow_mut().add_folder("INBOX", Some(crate::mailbox::FolderRole::Inbox));
    let outcome = run(submit(&host, USER, PLAIN, true, None, None)).expect("sent");
    assert!(matches!(outcome.sent_copy, SentCopy::Failed(_)), "{:?}", outcome.sent_copy);
    assert_eq!(host.sent.borrow().len(), 1);
}

#[test]
fn a_draft_keeps_its_from() {
    let host = host();
    let draft = b"From: \"J\" <jane.alias@example.test>\r\nTo: b@x.org\r\nSubject: d\r\n\r\nx";
    let outcome = run(submit_draft(&host, draft, true, None)).expect("sent");
    assert_eq!(outcome.recipients, ["b@x.org"]);
    assert!(text(&host.sent.borrow()[0].0).starts_with("From: \"J\" <jane.alias@example.test>"));
    assert!(matches!(outcome.sent_copy, SentCopy::Saved { .. }));
}

#[test]
fn refused_recipients_get_a_notice_in_the_inbox() {
    let host = host();
    let prepared = prepare(PLAIN, Some(USER), &[], &stamp()).expect("prepares");
    let refused = [RefusedRecipient {
        address: "carol@example.org".into(),
        reply: "550 5.1.1 no such user".into(),
    }];
    run(notify_refusals(&host, &prepared, &refused, &stamp()));
    let mailbox = host.mailbox.borrow();
    let uids = mailbox.uids("INBOX");
    assert_eq!(uids.len(), 1);
    assert!(mailbox.flags("INBOX", uids[0]).is_empty(), "unread");
    let notice = mailbox.raw("INBOX", uids[0]).expect("stored");
    let parsed = MessageParser::new().parse(&notice).expect("parses");
    assert_eq!(parsed.subject(), Some("Undeliverable: Lunch"));
    assert_eq!(parsed.to().and_then(|to| to.first()).and_then(|a| a.address()), Some(USER));
    let body = parsed.body_text(0).expect("text");
    assert!(
        body.contains("carol@example.org") && body.contains("550 5.1.1 no such user"),
        "{body}"
    );
    assert_eq!(parsed.in_reply_to().as_text(), Some(prepared.message_id.as_str()));
}
