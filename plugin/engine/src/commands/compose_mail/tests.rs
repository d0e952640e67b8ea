use super::*;
use crate::capabilities::StateScope;
use crate::commands::policy::PolicyRecord;
use crate::commands::test_support::{DEVICE, IDENTITY, decoded, post, provisioned_host};
use crate::drive::run_to_completion;
use crate::http::{IDENTITY_HEADER, Request};
use crate::submission::SubmissionError;
use crate::testing::FakeHost;
use crate::{ENDPOINT, Engine};
use eas_wbxml::Document;
use mail_parser::{MessageParser, MimeHeaders};

const NEW_MAIL: &[u8] = b"From: Jane <jane@example.test>\r\nTo: Bob <bob@example.test>\r\n\
Bcc: carol@example.org\r\nSubject: Lunch\r\nMIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\nSee you at noon.\r\n";

/// The original a reply or forward answers: text + HTML, and a PDF.
const ORIGINAL: &[u8] = b"From: Ann <ann@example.org>\r\nTo: jane@example.test\r\n\
Subject: Report\r\nMessage-ID: <r1@example.org>\r\nReferences: <r0@example.org>\r\n\
Date: Tue, 3 Nov 2026 10:00:00 +0000\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=outer\r\n\r\n\
--outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n\
--inner\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe report is attached.\r\nAnn\r\n\
--inner\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><head><title>t</title></head>\
<body><p>The <b>report</b> is attached.</p></body></html>\r\n\
--inner--\r\n\
--outer\r\nContent-Type: application/pdf; name=report.pdf\r\n\
Content-Disposition: attachment; filename=report.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n\
JVBERi0xLjQgZmFrZSBwZGYgYnl0ZXM=\r\n\
--outer--\r\n";

const PDF: &[u8] = b"%PDF-1.4 fake pdf bytes";

/// What a phone sends as the new part of a reply or forward.
const ANSWER: &[u8] = b"From: jane@example.test\r\nTo: ann@example.org\r\n\
Subject: Re: Report\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThanks!\r\n";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A provisioned host with `raw` as INBOX UID 1; returns it and INBOX's CollectionId.
fn host_with_original(raw: &[u8]) -> (FakeHost, String) {
    let host = provisioned_host();
    host.mailbox.borrow_mut().append("INBOX", raw, &["\\Seen"], 1_793_000_000);
    let map = run_to_completion(folders::refresh(&host)).expect("completes").expect("refreshes");
    let inbox = map.entries().iter().find(|e| e.imap_name == "INBOX").expect("inbox");
    let id = inbox.server_id.clone();
    (host, id)
}

/// A 12.1-style request: raw MIME body, parameters in the query.
fn post_mime(host: &FakeHost, command: &str, version: &str, params: &str, body: &[u8]) -> Response {
    let record =
        host.stored(&StateScope::Device(DEVICE.into()), "provisioning").expect("provisioned");
    let key = PolicyRecord::decode(&record).and_then(|r| r.permanent).expect("key");
    let request = Request {
        method: "POST".into(),
        path: ENDPOINT.into(),
        query: format!("Cmd={command}&User=jane&DeviceId={DEVICE}&DeviceType=iPhone{params}"),
        headers: vec![
            (IDENTITY_HEADER.to_owned(), IDENTITY.as_bytes().to_vec()),
            ("ms-asprotocolversion".to_owned(), version.as_bytes().to_vec()),
            ("content-type".to_owned(), b"message/rfc822".to_vec()),
            ("x-ms-policykey".to_owned(), key.to_string().into_bytes()),
        ],
        body: body.to_vec(),
    };
    run_to_completion(Engine::new().handle(host, &request)).expect("engine completes")
}

fn send_mail(client_id: &str, save: bool, mime: &[u8]) -> Document {
    let mut root = Element::new(cm::SEND_MAIL).text_child(cm::CLIENT_ID, client_id);
    if save {
        root = root.empty_child(cm::SAVE_IN_SENT_ITEMS);
    }
    Document::new(root.opaque_child(cm::MIME, mime.to_vec()))
}

fn smart(tag: eas_wbxml::Tag, collection: &str, item: &str, mime: Option<&[u8]>) -> Element {
    let source = Element::new(cm::SOURCE)
        .text_child(cm::FOLDER_ID, collection)
        .text_child(cm::ITEM_ID, item);
    let mut root = Element::new(tag)
        .text_child(cm::CLIENT_ID, format!("{tag:?}-{item}"))
        .with_child(source)
        .empty_child(cm::SAVE_IN_SENT_ITEMS);
    if let Some(mime) = mime {
        root = root.opaque_child(cm::MIME, mime.to_vec());
    }
    root
}

fn assert_success(response: &Response) {
    assert_eq!(response.status, 200, "{response:?}");
    assert!(response.body.is_empty(), "{response:?}");
    assert_eq!(response.header("Content-Length"), Some("0"));
}

fn status_of(response: &Response) -> Option<String> {
    decoded(response).text_of(cm::STATUS).map(str::to_owned)
}

fn only_sent(host: &FakeHost) -> (Vec<u8>, Vec<String>) {
    let sent = host.sent.borrow();
    assert_eq!(sent.len(), 1, "one message sent");
    sent[0].clone()
}

fn sent_folder_copies(host: &FakeHost) -> Vec<Vec<u8>> {
    let mailbox = host.mailbox.borrow();
    mailbox.uids("Sent").into_iter().filter_map(|uid| mailbox.raw("Sent", uid)).collect()
}

#[test]
fn send_mail_12_1_raw_mime_with_save_in_sent() {
    let host = provisioned_host();
    let response = post_mime(&host, "SendMail", "12.1", "&SaveInSent=T", NEW_MAIL);
    assert_success(&response);
    let (message, recipients) = only_sent(&host);
    assert_eq!(recipients, ["bob@example.test", "carol@example.org"]);
    assert!(!text(&message).contains("Bcc"), "{}", text(&message));
    let copies = sent_folder_copies(&host);
    assert_eq!(copies.len(), 1);
    assert!(text(&copies[0]).contains("Bcc: carol@example.org"));

    // Without SaveInSent nothing is stored (a different message: not a resend).
    let host = provisioned_host();
    assert_success(&post_mime(&host, "SendMail", "12.1", "", NEW_MAIL));
    assert_eq!(host.sent.borrow().len(), 1);
    assert!(sent_folder_copies(&host).is_empty());
}

#[test]
fn send_mail_16_1_wbxml() {
    let host = provisioned_host();
    let response = post(&host, "SendMail", "16.1", &send_mail("c-1", true, NEW_MAIL));
    assert_success(&response);
    let (message, recipients) = only_sent(&host);
    assert_eq!(recipients, ["bob@example.test", "carol@example.org"]);
    let parsed = MessageParser::new().parse(&message).expect("parses");
    assert_eq!(parsed.body_text(0).as_deref(), Some("See you at noon.\r\n"));
    assert!(parsed.bcc().is_none());
    assert_eq!(sent_folder_copies(&host).len(), 1);

    let host = provisioned_host();
    assert_success(&post(&host, "SendMail", "14.0", &send_mail("c-2", false, NEW_MAIL)));
    assert_eq!(host.sent.borrow().len(), 1);
    assert!(sent_folder_copies(&host).is_empty());
}

#[test]
fn a_retried_client_id_is_sent_once() {
    let host = provisioned_host();
    let request = send_mail("retry-1", true, NEW_MAIL);
    assert_success(&post(&host, "SendMail", "16.1", &request));
    assert_success(&post(&host, "SendMail", "16.1", &request));
    assert_eq!(host.sent.borrow().len(), 1);
    assert_eq!(sent_folder_copies(&host).len(), 1);
    // Another ClientId is another message, even with the same bytes.
    assert_success(&post(&host, "SendMail", "16.1", &send_mail("retry-2", true, NEW_MAIL)));
    assert_eq!(host.sent.borrow().len(), 2);
}

#[test]
fn a_retried_12_1_message_is_sent_once() {
    let host = provisioned_host();
    assert_success(&post_mime(&host, "SendMail", "12.1", "&SaveInSent=T", NEW_MAIL));
    assert_success(&post_mime(&host, "SendMail", "12.1", "&SaveInSent=T", NEW_MAIL));
    assert_eq!(host.sent.borrow().len(), 1);
    assert_eq!(sent_folder_copies(&host).len(), 1);
}

/// Another request's claim of the message `client_id`, made by the host as that request's
/// message was about to leave.
fn claim_made_elsewhere(host: &FakeHost, client_id: &str) {
    let key = SubmissionKey::ClientId(client_id.into());
    let Some(Ok(Claim::Claimed(claimed))) = run_to_completion(dedupe::claim(host, DEVICE, &key))
    else {
        panic!("{client_id} is already in the ledger");
    };
    let record = claimed.record;
    let swap = host.state_compare_and_swap(
        &record.scope,
        &record.key,
        record.expected,
        Some(record.value),
    );
    assert_eq!(run_to_completion(swap), Some(Ok(true)));
}

#[test]
fn a_message_claimed_by_a_concurrent_request_at_its_end_is_sent_by_that_one_only() {
    let host = provisioned_host();
    // another request for the same message makes its claim first, just before our final dot
    *host.race_next_swap.borrow_mut() = Some("compose/".into());
    let response = post(&host, "SendMail", "16.1", &send_mail("race-1", true, NEW_MAIL));
    assert_eq!(status_of(&response).as_deref(), Some("111"));
    assert!(host.sent.borrow().is_empty(), "sent by both");
    assert!(sent_folder_copies(&host).is_empty());
}

#[test]
fn a_resend_while_the_first_is_still_sending_is_told_to_retry() {
    let host = provisioned_host();
    claim_made_elsewhere(&host, "busy");
    let response = post(&host, "SendMail", "16.1", &send_mail("busy", true, NEW_MAIL));
    assert_eq!(status_of(&response).as_deref(), Some("111"));
    assert!(host.sent.borrow().is_empty());
}

#[test]
fn a_send_presumed_sent_gets_its_missing_sent_copy_once() {
    const WITH_ID: &[u8] = b"From: jane@example.test\r\nTo: bob@example.test\r\n\
Subject: Lunch\r\nMessage-ID: <lunch-1@example.test>\r\n\r\nSee you at noon.\r\n";
    let host = provisioned_host();
    // The request that claimed it died after the SMTP server took it, before the APPEND.
    claim_made_elsewhere(&host, "died-1");
    host.now_ms.set(dedupe::IN_FLIGHT_STALE_MS + 1);
    let request = send_mail("died-1", true, WITH_ID);
    assert_success(&post(&host, "SendMail", "16.1", &request));
    assert!(host.sent.borrow().is_empty(), "sent again");
    let copies = sent_folder_copies(&host);
    assert_eq!(copies.len(), 1);
    assert!(text(&copies[0]).contains("Message-ID: <lunch-1@example.test>"));
    // a further retry finds the copy in Sent
    assert_success(&post(&host, "SendMail", "16.1", &request));
    assert_eq!(sent_folder_copies(&host).len(), 1);
    assert!(host.sent.borrow().is_empty());

    // Without a Message-ID of its own the message got one made from its ClientId, which
    // the retry makes again: the copy carries the very Message-ID that went out, once.
    let host = provisioned_host();
    claim_made_elsewhere(&host, "died-2");
    host.now_ms.set(dedupe::IN_FLIGHT_STALE_MS + 1);
    let request = send_mail("died-2", true, NEW_MAIL);
    assert_success(&post(&host, "SendMail", "16.1", &request));
    assert!(host.sent.borrow().is_empty(), "sent again");
    let seed = SubmissionKey::ClientId("died-2".into()).message_id_seed(IDENTITY, DEVICE);
    let id = format!("Message-ID: <eas.{:016x}@example.test>", seed.expect("a ClientId's seed"));
    let copies = sent_folder_copies(&host);
    assert_eq!(copies.len(), 1);
    assert!(text(&copies[0]).contains(&id), "{}", text(&copies[0]));
    assert_success(&post(&host, "SendMail", "16.1", &request));
    assert_eq!(sent_folder_copies(&host).len(), 1);

    // the first attempt of such a message went out with that same Message-ID
    let host = provisioned_host();
    assert_success(&post(&host, "SendMail", "16.1", &request));
    let (message, _) = only_sent(&host);
    assert!(text(&message).contains(&id), "{}", text(&message));

    // without a ClientId (12.1) a made-up Message-ID is random: no copy can be told apart,
    // and none is made
    assert_eq!(SubmissionKey::for_mime(NEW_MAIL).message_id_seed(IDENTITY, DEVICE), None);
}

#[test]
fn a_gateway_gone_after_the_send_gets_the_retry_that_makes_the_sent_copy() {
    const WITH_ID: &[u8] = b"From: jane@example.test\r\nTo: bob@example.test\r\n\
Subject: Gone\r\nMessage-ID: <gone-1@example.test>\r\n\r\nSent, then the lights went out.\r\n";
    let host = provisioned_host();
    host.dies_after_send.set(true);
    let request = send_mail("gone-1", true, WITH_ID);
    let response = post(&host, "SendMail", "16.1", &request);
    assert_eq!(status_of(&response).as_deref(), Some("111"));
    assert_eq!(host.sent.borrow().len(), 1);

    // The gateway is back and its journal presumes the claim sent (here: the claim is stale,
    // which the engine reads the same way). The retry is not sent again; it makes the copy.
    host.state_down.set(false);
    host.mailbox.borrow_mut().unavailable = false;
    assert!(sent_folder_copies(&host).is_empty());
    host.now_ms.set(dedupe::IN_FLIGHT_STALE_MS + 1);
    assert_success(&post(&host, "SendMail", "16.1", &request));
    assert_eq!(host.sent.borrow().len(), 1, "sent again");
    let copies = sent_folder_copies(&host);
    assert_eq!(copies.len(), 1);
    assert!(text(&copies[0]).contains("Message-ID: <gone-1@example.test>"));

    // Only the mailbox failing (the outcome recorded): "sent", the copy is logged as missing.
    let host = provisioned_host();
    host.mailbox.borrow_mut().unavailable = true;
    assert_success(&post(&host, "SendMail", "16.1", &send_mail("imap-down-1", true, WITH_ID)));
    assert_eq!(host.sent.borrow().len(), 1);
}

#[test]
fn a_reply_presumed_sent_gets_its_rebuilt_sent_copy_and_its_flag() {
    let (host, inbox) = host_with_original(ORIGINAL);
    let item = format!("{inbox}:1");
    let request = Document::new(smart(cm::SMART_REPLY, &inbox, &item, Some(ANSWER)));
    // the request that sent it died after SMTP took it, before the APPEND and the flag
    let client_id = format!("{:?}-{item}", cm::SMART_REPLY);
    claim_made_elsewhere(&host, &client_id);
    host.now_ms.set(dedupe::IN_FLIGHT_STALE_MS + 1);
    assert_success(&post(&host, "SmartReply", "16.1", &request));
    assert!(host.sent.borrow().is_empty(), "sent again");
    let copies = sent_folder_copies(&host);
    assert_eq!(copies.len(), 1);
    let parsed = MessageParser::new().parse(&copies[0]).expect("parses");
    assert_eq!(parsed.subject(), Some("Re: Report"));
    assert_eq!(parsed.in_reply_to().as_text(), Some("r1@example.org"));
    let seed = SubmissionKey::ClientId(client_id).message_id_seed(IDENTITY, DEVICE);
    let id = format!("eas.{:016x}@example.test", seed.expect("a ClientId's seed"));
    assert_eq!(parsed.message_id(), Some(id.as_str()), "the Message-ID that went out");
    assert!(text(&copies[0]).contains("> The report is attached."));
    assert!(host.mailbox.borrow().flags("INBOX", 1).contains(&"\\Answered".to_owned()));
    // a further retry finds the copy
    assert_success(&post(&host, "SmartReply", "16.1", &request));
    assert_eq!(sent_folder_copies(&host).len(), 1);
}

#[test]
fn a_forward_whose_gateway_died_after_the_send_gets_its_copy_on_the_retry() {
    let (host, inbox) = host_with_original(ORIGINAL);
    let item = format!("{inbox}:1");
    let forward = smart(cm::SMART_FORWARD, &inbox, &item, None).with_child(
        Element::new(cm::FORWARDEES).with_child(
            Element::new(cm::FORWARDEE)
                .text_child(cm::NAME, "Carl")
                .text_child(cm::EMAIL, "carl@example.net"),
        ),
    );
    let request = Document::new(forward);
    host.dies_after_send.set(true);
    let response = post(&host, "SmartForward", "16.1", &request);
    assert_eq!(status_of(&response).as_deref(), Some("111"));
    assert_eq!(host.sent.borrow().len(), 1);
    host.state_down.set(false);
    host.mailbox.borrow_mut().unavailable = false;
    host.now_ms.set(dedupe::IN_FLIGHT_STALE_MS + 1);
    assert_success(&post(&host, "SmartForward", "16.1", &request));
    assert_eq!(host.sent.borrow().len(), 1, "sent again");
    let copies = sent_folder_copies(&host);
    assert_eq!(copies.len(), 1);
    let copy = text(&copies[0]);
    assert!(copy.contains("Subject: Fw: Report"), "{copy}");
    assert!(copy.contains("carl@example.net"), "the Forwardee is in To: {copy}");
    assert!(host.mailbox.borrow().flags("INBOX", 1).contains(&"$Forwarded".to_owned()));
}

#[test]
fn smtp_down_fails_and_nothing_lands_in_sent() {
    let host = provisioned_host();
    *host.submission_failure.borrow_mut() =
        Some(SubmissionError::Unavailable("connection refused".into()));
    let request = send_mail("down-1", true, NEW_MAIL);
    let response = post(&host, "SendMail", "16.1", &request);
    assert_eq!(status_of(&response).as_deref(), Some("111"));
    assert!(host.sent.borrow().is_empty());
    assert!(sent_folder_copies(&host).is_empty());

    // The phone's retry once SMTP is back sends it.
    host.submission_failure.borrow_mut().take();
    assert_success(&post(&host, "SendMail", "16.1", &request));
    assert_eq!(host.sent.borrow().len(), 1);
    assert_eq!(sent_folder_copies(&host).len(), 1);

    // 12.1 gets the HTTP form: 503 with Retry-After.
    let host = provisioned_host();
    *host.submission_failure.borrow_mut() = Some(SubmissionError::Unavailable("timeout".into()));
    let response = post_mime(&host, "SendMail", "12.1", "&SaveInSent=T", NEW_MAIL);
    assert_eq!(response.status, 503);
    assert!(response.header("Retry-After").is_some());
    assert!(sent_folder_copies(&host).is_empty());
}

#[test]
fn a_send_cut_after_the_final_dot_is_never_sent_again() {
    const WITH_ID: &[u8] = b"From: jane@example.test\r\nTo: bob@example.test\r\n\
Subject: Cut\r\nMessage-ID: <cut-1@example.test>\r\n\r\nThe server has it, maybe.\r\n";
    let host = provisioned_host();
    // the connection was lost between the message's end and the server's reply
    *host.submission_failure.borrow_mut() =
        Some(SubmissionError::OutcomeUnknown("the server closed the connection".into()));
    let request = send_mail("cut-1", true, WITH_ID);
    let response = post(&host, "SendMail", "16.1", &request);
    assert_eq!(status_of(&response).as_deref(), Some("111"));
    assert!(sent_folder_copies(&host).is_empty());

    // SMTP is fine again; the phone's retry is not sent while the claim is fresh...
    host.submission_failure.borrow_mut().take();
    let response = post(&host, "SendMail", "16.1", &request);
    assert_eq!(status_of(&response).as_deref(), Some("111"));
    assert!(host.sent.borrow().is_empty(), "sent again");

    // ...and then is told "sent", with the Sent copy the cut submission never made
    host.now_ms.set(host.now_ms.get() + dedupe::IN_FLIGHT_STALE_MS + 1);
    assert_success(&post(&host, "SendMail", "16.1", &request));
    assert!(host.sent.borrow().is_empty(), "sent again");
    assert_eq!(sent_folder_copies(&host).len(), 1);
}

#[test]
fn refused_recipients_and_missing_recipients() {
    let host = provisioned_host();
    *host.submission_failure.borrow_mut() =
        Some(SubmissionError::Rejected("550 5.1.1 recipients refused".into()));
    let response = post(&host, "SendMail", "16.1", &send_mail("r-1", true, NEW_MAIL));
    assert_eq!(status_of(&response).as_deref(), Some("120"));
    assert!(sent_folder_copies(&host).is_empty());
    let response = post_mime(&host, "SendMail", "12.1", "&SaveInSent=T", NEW_MAIL);
    assert_eq!(response.status, 500);

    let host = provisioned_host();
    let nobody = b"From: jane@example.test\r\nSubject: x\r\n\r\nx";
    let response = post(&host, "SendMail", "16.1", &send_mail("r-2", true, nobody));
    assert_eq!(status_of(&response).as_deref(), Some("119"));
    assert!(host.sent.borrow().is_empty());
}

#[test]
fn malformed_requests() {
    let host = provisioned_host();
    // 12.1 with a WBXML body: InvalidContent, HTTP 400.
    let wbxml = eas_wbxml::encode(&send_mail("x", true, NEW_MAIL)).expect("encodes");
    let response = crate::commands::test_support::post_raw(&host, "SendMail", "12.1", wbxml, &[]);
    assert_eq!(response.status, 400);
    // No Mime element.
    let root = Element::new(cm::SEND_MAIL).text_child(cm::CLIENT_ID, "x");
    let response = post(&host, "SendMail", "16.1", &Document::new(root));
    assert_eq!(status_of(&response).as_deref(), Some("103"));
    // A SmartReply without Source.
    let root = Element::new(cm::SMART_REPLY)
        .text_child(cm::CLIENT_ID, "y")
        .opaque_child(cm::MIME, ANSWER.to_vec());
    let response = post(&host, "SmartReply", "16.1", &Document::new(root));
    assert_eq!(status_of(&response).as_deref(), Some("103"));
    assert!(host.sent.borrow().is_empty());
}

#[test]
fn smart_reply_quotes_the_original_and_threads() {
    let (host, inbox) = host_with_original(ORIGINAL);
    let item = format!("{inbox}:1");
    let response = post(
        &host,
        "SmartReply",
        "16.1",
        &Document::new(smart(cm::SMART_REPLY, &inbox, &item, Some(ANSWER))),
    );
    assert_success(&response);
    let (message, recipients) = only_sent(&host);
    assert_eq!(recipients, ["ann@example.org"]);
    let parsed = MessageParser::new().parse(&message).expect("parses");
    assert_eq!(parsed.subject(), Some("Re: Report"));
    assert_eq!(parsed.in_reply_to().as_text(), Some("r1@example.org"));
    let references: Vec<&str> =
        parsed.references().as_text_list().unwrap_or_default().iter().map(|r| r.as_ref()).collect();
    assert_eq!(references, ["r0@example.org", "r1@example.org"]);
    let plain = parsed.body_text(0).expect("text part");
    assert!(
        plain.starts_with(
            "Thanks!\r\n\r\nOn Tue, 3 Nov 2026 10:00:00 +0000, \"Ann\" <ann@example.org> wrote:\r\n"
        ),
        "{plain}"
    );
    assert!(plain.contains("> The report is attached.\r\n> Ann\r\n"), "{plain}");
    let html = parsed.body_html(0).expect("html part");
    assert!(html.contains("<blockquote type=\"cite\""), "{html}");
    assert!(html.contains("<p>The <b>report</b> is attached.</p>"), "{html}");
    assert!(!html.contains("<title>"), "the original's head is left out: {html}");
    // A reply does not carry the original's attachments.
    assert_eq!(parsed.attachment_count(), 0);
    let mailbox = host.mailbox.borrow();
    assert!(mailbox.flags("INBOX", 1).contains(&"\\Answered".to_owned()));
    assert_eq!(mailbox.uids("Sent").len(), 1);
}

#[test]
fn smart_forward_keeps_the_attachments_and_threads() {
    let (host, inbox) = host_with_original(ORIGINAL);
    let item = format!("{inbox}:1");
    let forward =
        b"From: jane@example.test\r\nTo: fred@example.net\r\nSubject: Fw: Report\r\n\r\nFYI\r\n";
    let response = post(
        &host,
        "SmartForward",
        "14.1",
        &Document::new(smart(cm::SMART_FORWARD, &inbox, &item, Some(forward))),
    );
    assert_success(&response);
    let (message, recipients) = only_sent(&host);
    assert_eq!(recipients, ["fred@example.net"]);
    let parsed = MessageParser::new().parse(&message).expect("parses");
    assert_eq!(parsed.in_reply_to().as_text(), Some("r1@example.org"));
    let plain = parsed.body_text(0).expect("text part");
    assert!(plain.starts_with("FYI\r\n\r\n---------- Forwarded message ----------\r\n"), "{plain}");
    assert!(plain.contains("Subject: Report\r\n"), "{plain}");
    assert!(plain.contains("The report is attached."), "{plain}");
    assert_eq!(parsed.attachment_count(), 1);
    let pdf = parsed.attachment(0).expect("pdf");
    assert_eq!(pdf.contents(), PDF);
    assert_eq!(pdf.attachment_name(), Some("report.pdf"));
    assert!(host.mailbox.borrow().flags("INBOX", 1).contains(&"$Forwarded".to_owned()));
    // Every boundary is ours: mail-builder never made one up (its generator reads the system
    // clock, which panics in wasm32-unknown-unknown).
    let sent = text(&message);
    let boundaries: Vec<&str> = sent
        .split("boundary=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap_or_default())
        .collect();
    assert_eq!(boundaries.len(), 2, "{sent}");
    assert!(boundaries.iter().all(|b| b.starts_with("=_eas-edge_")), "{sent}");
}

#[test]
fn smart_forward_keeps_the_phones_own_attachment_too() {
    let (host, inbox) = host_with_original(ORIGINAL);
    let forward = b"From: jane@example.test\r\nTo: fred@example.net\r\nSubject: Fw\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
--b\r\nContent-Type: text/plain\r\n\r\nsee both\r\n\
--b\r\nContent-Type: image/png; name=photo.png\r\nContent-Disposition: attachment; filename=photo.png\r\n\
Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--b--\r\n";
    let item = format!("{inbox}:1");
    let response = post(
        &host,
        "SmartForward",
        "16.1",
        &Document::new(smart(cm::SMART_FORWARD, &inbox, &item, Some(forward))),
    );
    assert_success(&response);
    let (message, _) = only_sent(&host);
    let parsed = MessageParser::new().parse(&message).expect("parses");
    let names: Vec<_> = parsed.attachments().filter_map(|a| a.attachment_name()).collect();
    assert_eq!(names, ["photo.png", "report.pdf"]);
    assert_eq!(parsed.attachment(0).map(|a| a.contents()), Some(&b"\x89PNG\r\n\x1a\n"[..]));
}

#[test]
fn a_latin1_original_is_quoted_as_utf8() {
    let latin1 = b"From: =?ISO-8859-1?Q?Ren=E9?= <rene@example.fr>\r\nTo: jane@example.test\r\n\
Subject: =?ISO-8859-1?Q?Caf=E9?=\r\nMessage-ID: <fr1@example.fr>\r\n\
Content-Type: text/plain; charset=ISO-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
Un caf\xe9 cr\xe8me, s'il vous pla\xeet.\r\n";
    let (host, inbox) = host_with_original(latin1);
    let item = format!("{inbox}:1");
    let answer = "From: jane@example.test\r\nTo: rene@example.fr\r\nSubject: Re: Café\r\n\
Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nAvec plaisir — à demain.\r\n";
    let response = post(
        &host,
        "SmartReply",
        "16.1",
        &Document::new(smart(cm::SMART_REPLY, &inbox, &item, Some(answer.as_bytes()))),
    );
    assert_success(&response);
    let (message, _) = only_sent(&host);
    let parsed = MessageParser::new().parse(&message).expect("parses");
    let part = parsed.text_part(0).expect("text");
    assert_eq!(part.content_type().and_then(|ct| ct.attribute("charset")), Some("utf-8"));
    let plain = parsed.body_text(0).expect("text");
    assert!(plain.starts_with("Avec plaisir — à demain.\r\n"), "{plain}");
    assert!(plain.contains("\"René\" <rene@example.fr> wrote:"), "{plain}");
    assert!(plain.contains("> Un café crème, s'il vous plaît.\r\n"), "{plain}");
    // No HTML on either side: a single text/plain part.
    assert!(parsed.body_html(0).is_none_or(|html| html.contains("Un café")));
    assert_eq!(parsed.html_body_count(), parsed.text_body_count());
}

#[test]
fn replace_mime_sends_the_phones_message_as_is() {
    let (host, inbox) = host_with_original(ORIGINAL);
    let item = format!("{inbox}:1");
    let whole = b"From: jane@example.test\r\nTo: ann@example.org\r\nSubject: Re: Report\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\nThanks!\r\n\r\n> The report is attached.\r\n";
    let request = smart(cm::SMART_REPLY, &inbox, &item, Some(whole)).empty_child(cm::REPLACE_MIME);
    assert_success(&post(&host, "SmartReply", "16.1", &Document::new(request)));
    let (message, _) = only_sent(&host);
    let sent = text(&message);
    assert!(sent.ends_with("\r\n\r\nThanks!\r\n\r\n> The report is attached.\r\n"), "{sent}");
    assert!(sent.contains("In-Reply-To: <r1@example.org>\r\n"), "{sent}");
    assert!(!sent.contains("report.pdf"), "{sent}");
    assert!(host.mailbox.borrow().flags("INBOX", 1).contains(&"\\Answered".to_owned()));
}

#[test]
fn a_missing_original_is_item_not_found() {
    let (host, inbox) = host_with_original(ORIGINAL);
    for item in [format!("{inbox}:99"), "77:1".to_owned(), "garbage".to_owned()] {
        let request = smart(cm::SMART_REPLY, &inbox, &item, Some(ANSWER));
        let response = post(&host, "SmartReply", "16.1", &Document::new(request));
        assert_eq!(status_of(&response).as_deref(), Some("150"), "{item}");
    }
    let long_id = Element::new(cm::SMART_FORWARD)
        .text_child(cm::CLIENT_ID, "l")
        .with_child(Element::new(cm::SOURCE).text_child(cm::LONG_ID, "RgAAAAB"))
        .opaque_child(cm::MIME, ANSWER.to_vec());
    let response = post(&host, "SmartForward", "16.1", &Document::new(long_id));
    assert_eq!(status_of(&response).as_deref(), Some("150"));
    // 12.1: the HTTP code.
    let response = post_mime(
        &host,
        "SmartReply",
        "12.1",
        &format!("&ItemId={inbox}:99&CollectionId={inbox}"),
        ANSWER,
    );
    assert_eq!(response.status, 400);
    assert!(host.sent.borrow().is_empty());
    assert!(sent_folder_copies(&host).is_empty());
}

#[test]
fn smart_reply_12_1_from_the_query() {
    let (host, inbox) = host_with_original(ORIGINAL);
    let params = format!("&ItemId={inbox}:1&CollectionId={inbox}&SaveInSent=T");
    assert_success(&post_mime(&host, "SmartReply", "12.1", &params, ANSWER));
    let (message, _) = only_sent(&host);
    let sent = text(&message);
    assert!(sent.contains("In-Reply-To: <r1@example.org>\r\n"), "{sent}");
    assert!(sent.contains("> The report is attached."), "{sent}");
    assert_eq!(sent_folder_copies(&host).len(), 1);
}

#[test]
fn smart_forward_16_with_forwardees_and_no_mime() {
    let (host, inbox) = host_with_original(ORIGINAL);
    let item = format!("{inbox}:1");
    let forwardees = Element::new(cm::FORWARDEES).with_child(
        Element::new(cm::FORWARDEE)
            .text_child(cm::NAME, "Fred")
            .text_child(cm::EMAIL, "fred@example.net"),
    );
    let body =
        Element::new(base::BODY).text_child(base::TYPE, "1").text_child(base::DATA, "Have a look");
    let request =
        smart(cm::SMART_FORWARD, &inbox, &item, None).with_child(forwardees).with_child(body);
    assert_success(&post(&host, "SmartForward", "16.1", &Document::new(request)));
    let (message, recipients) = only_sent(&host);
    assert_eq!(recipients, ["fred@example.net"]);
    let parsed = MessageParser::new().parse(&message).expect("parses");
    assert_eq!(parsed.subject(), Some("Fw: Report"));
    assert!(parsed.body_text(0).is_some_and(|t| t.starts_with("Have a look")));
    assert_eq!(parsed.attachment_count(), 1);
    assert_eq!(parsed.from().and_then(|f| f.first()).and_then(|a| a.address()), Some(IDENTITY));
}

#[test]
fn the_commands_are_advertised() {
    for command in ["SendMail", "SmartReply", "SmartForward"] {
        assert!(crate::commands::IMPLEMENTED.contains(&command));
    }
    assert_eq!(parse_item_id("5:12"), Some(("5", 12)));
    assert_eq!(parse_item_id("5:0"), None);
    assert_eq!(parse_item_id("5:x"), None);
    assert_eq!(parse_item_id(":1"), None);
}
