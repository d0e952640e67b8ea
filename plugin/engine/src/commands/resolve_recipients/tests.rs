use super::address_book::KEY;
use super::*;
use crate::capabilities::StateScope;
use crate::commands::search::test_mail::{BASE_DATE, HOUR, append, host, message};
use crate::commands::test_support::{decoded, post, post_raw};
use crate::testing::FakeHost;

/// Ann and Carl wrote to Jane (Carl with Dora in Cc); Jane wrote to Bob and Anna.
fn mailbox() -> FakeHost {
    let (host, _) = host();
    let jane = "Jane <jane@example.test>";
    append(
        &host,
        "INBOX",
        &message("Ann Lee <ann@example.org>", jane, "Hi", "1@x", "", "."),
        &[],
        BASE_DATE,
    );
    let cc = "Cc: Dora <dora@example.org>\r\n";
    append(
        &host,
        "INBOX",
        &message("Carl <carl@example.org>", jane, "Hi", "2@x", cc, "."),
        &[],
        BASE_DATE + HOUR,
    );
    let sent = message(
        "jane@example.test",
        "\"Bob Smith\" <bob@example.org>, Anna <anna@example.net>",
        "Hi",
        "3@x",
        "",
        ".",
    );
    append(&host, "Sent", &sent, &["\\Seen"], BASE_DATE + 2 * HOUR);
    host
}

fn request(to: &[&str], options: Option<Element>) -> Document {
    let mut root = Element::new(rr::RESOLVE_RECIPIENTS);
    for name in to {
        root.push(Element::with_text(rr::TO, *name));
    }
    if let Some(options) = options {
        root.push(options);
    }
    Document::new(root)
}

fn resolve_all(host: &FakeHost, version: &str, to: &[&str], options: Option<Element>) -> Element {
    decoded(&post(host, "ResolveRecipients", version, &request(to, options)))
}

/// (To, Status, RecipientCount, [(DisplayName, EmailAddress)]) of one Response.
type Answer = (String, String, String, Vec<(String, String)>);

fn answers_of(root: &Element) -> Vec<Answer> {
    assert_eq!(root.text_of(rr::STATUS), Some("1"), "{root:?}");
    root.children(rr::RESPONSE)
        .map(|response| {
            let text = |tag| response.text_of(tag).unwrap_or_default().to_owned();
            let recipients = response
                .children(rr::RECIPIENT)
                .map(|r| {
                    assert_eq!(r.text_of(rr::TYPE), Some("2"));
                    (
                        r.text_of(rr::DISPLAY_NAME).unwrap_or_default().to_owned(),
                        r.text_of(rr::EMAIL_ADDRESS).unwrap_or_default().to_owned(),
                    )
                })
                .collect();
            (text(rr::TO), text(rr::STATUS), text(rr::RECIPIENT_COUNT), recipients)
        })
        .collect()
}

fn pair(name: &str, address: &str) -> (String, String) {
    (name.to_owned(), address.to_owned())
}

#[test]
fn names_and_addresses_resolve_from_sent_and_inbox() {
    let host = mailbox();
    let root = resolve_all(
        &host,
        "14.1",
        &[
            "bob@example.org",
            "carl",
            "Dora <DORA@example.org>",
            "smith",
            "an",
            "zed",
            "nobody@example.org",
        ],
        None,
    );
    let answers = answers_of(&root);
    assert_eq!(
        answers[0],
        (
            "bob@example.org".into(),
            "1".into(),
            "1".into(),
            vec![pair("Bob Smith", "bob@example.org")]
        )
    );
    assert_eq!(answers[1].1, "1");
    assert_eq!(answers[1].3, [pair("Carl", "carl@example.org")]);
    assert_eq!(answers[2].3, [pair("Dora", "dora@example.org")]);
    assert_eq!(answers[3].3, [pair("Bob Smith", "bob@example.org")]);
    // "an": Ann Lee and Anna; Anna first, as the user wrote to her.
    assert_eq!(answers[4].1, "2");
    assert_eq!(answers[4].2, "2");
    assert_eq!(
        answers[4].3,
        [pair("Anna", "anna@example.net"), pair("Ann Lee", "ann@example.org")]
    );
    for unresolved in &answers[5..] {
        assert_eq!((unresolved.1.as_str(), unresolved.2.as_str()), ("4", "0"));
        assert!(unresolved.3.is_empty());
    }
    assert_eq!(answers[6].0, "nobody@example.org");
    // The user's own address is not learnt from the mail they receive.
    assert_eq!(answers_of(&resolve_all(&host, "14.1", &["jane"], None))[0].1, "4");
}

#[test]
fn max_ambiguous_recipients_gives_a_partial_list() {
    let host = mailbox();
    let options = Element::new(rr::OPTIONS).text_child(rr::MAX_AMBIGUOUS_RECIPIENTS, "1");
    let answers = answers_of(&resolve_all(&host, "14.0", &["an"], Some(options)));
    assert_eq!(answers[0].1, "3");
    assert_eq!(answers[0].2, "1");
    assert_eq!(answers[0].3, [pair("Anna", "anna@example.net")]);
}

#[test]
fn certificates_availability_and_pictures_are_answered_as_missing() {
    let host = mailbox();
    let options = Element::new(rr::OPTIONS)
        .text_child(rr::CERTIFICATE_RETRIEVAL, "2")
        .text_child(rr::MAX_CERTIFICATES, "5")
        .with_child(
            Element::new(rr::AVAILABILITY)
                .text_child(rr::START_TIME, "2026-11-02T08:00:00.000Z")
                .text_child(rr::END_TIME, "2026-11-02T18:00:00.000Z"),
        )
        .with_child(Element::new(rr::PICTURE).text_child(rr::MAX_SIZE, "10000"));
    let root = resolve_all(&host, "16.1", &["carl", "an"], Some(options));
    let responses: Vec<&Element> = root.children(rr::RESPONSE).collect();
    let carl = responses[0].child(rr::RECIPIENT).expect("recipient");
    let tags: Vec<_> = carl.child_elements().iter().map(|e| e.tag).collect();
    assert_eq!(
        tags,
        [
            rr::TYPE,
            rr::DISPLAY_NAME,
            rr::EMAIL_ADDRESS,
            rr::AVAILABILITY,
            rr::CERTIFICATES,
            rr::PICTURE
        ]
    );
    assert_eq!(carl.child(rr::AVAILABILITY).and_then(|a| a.text_of(rr::STATUS)), Some("163"));
    let certificates = carl.child(rr::CERTIFICATES).expect("Certificates");
    assert_eq!(certificates.text_of(rr::STATUS), Some("7"));
    assert_eq!(certificates.text_of(rr::CERTIFICATE_COUNT), Some("0"));
    assert_eq!(carl.child(rr::PICTURE).and_then(|p| p.text_of(rr::STATUS)), Some("173"));
    // Suggestions get no free/busy.
    let suggestion = responses[1].child(rr::RECIPIENT).expect("suggestion");
    assert!(suggestion.child(rr::AVAILABILITY).is_none());
    assert!(suggestion.child(rr::CERTIFICATES).is_some());
}

#[test]
fn malformed_requests_are_protocol_errors() {
    let host = mailbox();
    let status = |version: &str, document: Document| {
        decoded(&post(&host, "ResolveRecipients", version, &document))
            .text_of(rr::STATUS)
            .map(str::to_owned)
            .expect("status")
    };
    assert_eq!(status("14.1", request(&[], None)), "5");
    let many: Vec<String> = (0..=MAX_TO).map(|n| format!("user{n}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    assert_eq!(status("14.1", request(&many, None)), "5");
    let bad = |child: Element| Some(Element::new(rr::OPTIONS).with_child(child));
    assert_eq!(
        status("14.1", request(&["a"], bad(Element::with_text(rr::CERTIFICATE_RETRIEVAL, "9")))),
        "5"
    );
    assert_eq!(
        status("14.1", request(&["a"], bad(Element::with_text(rr::MAX_AMBIGUOUS_RECIPIENTS, "x")))),
        "5"
    );
    let backwards = Element::new(rr::AVAILABILITY)
        .text_child(rr::START_TIME, "2026-11-02T18:00:00.000Z")
        .text_child(rr::END_TIME, "2026-11-02T08:00:00.000Z");
    assert_eq!(status("14.1", request(&["a"], bad(backwards))), "5");
    // Availability is 14.0+, Picture 14.1+.
    let availability = Element::new(rr::AVAILABILITY)
        .text_child(rr::START_TIME, "2026-11-02T08:00:00.000Z")
        .text_child(rr::END_TIME, "2026-11-02T18:00:00.000Z");
    assert_eq!(status("12.1", request(&["a"], bad(availability))), "5");
    assert_eq!(status("14.0", request(&["a"], bad(Element::new(rr::PICTURE)))), "5");
    let stray = Document::new(
        Element::new(rr::RESOLVE_RECIPIENTS).text_child(rr::TO, "a").text_child(rr::TYPE, "1"),
    );
    assert_eq!(status("14.1", stray), "5");
    let long = "x".repeat(300);
    let answers = answers_of(&resolve_all(&host, "14.1", &[long.as_str()], None));
    assert_eq!(answers[0].1, "4");
    let garbage = vec![0x03, 0x01, 0x6A, 0x00, 0x00, 0x0A, 0x45];
    assert_eq!(post_raw(&host, "ResolveRecipients", "12.1", garbage, &[]).status, 400);
}

#[test]
fn the_address_book_is_kept_and_grows_with_new_mail() {
    let host = mailbox();
    resolve_all(&host, "14.1", &["carl"], None);
    assert!(host.stored(&StateScope::Account, KEY).is_some());
    let calls = host.mailbox.borrow().calls.get().summaries;
    // Nothing new: no message is read again.
    resolve_all(&host, "14.1", &["carl"], None);
    assert_eq!(host.mailbox.borrow().calls.get().summaries, calls);
    // A new sent message: only it is read.
    let sent = message("jane@example.test", "Erin <erin@example.org>", "Hi", "4@x", "", ".");
    append(&host, "Sent", &sent, &[], BASE_DATE + 3 * HOUR);
    let answers = answers_of(&resolve_all(&host, "14.1", &["erin"], None));
    assert_eq!(answers[0].3, [pair("Erin", "erin@example.org")]);
    assert_eq!(host.mailbox.borrow().calls.get().summaries, calls + 1);

    // The mailbox is down: the stored book still answers.
    host.mailbox.borrow_mut().unavailable = true;
    let answers = answers_of(&resolve_all(&host, "14.1", &["erin"], None));
    assert_eq!(answers[0].1, "1");
    // Without any book that is a server error.
    let (empty, _) = host_down();
    assert_eq!(resolve_all(&empty, "14.1", &["erin"], None).text_of(rr::STATUS), Some("6"));
}

fn host_down() -> (FakeHost, ()) {
    let (host, _) = host();
    host.mailbox.borrow_mut().unavailable = true;
    (host, ())
}
