use super::test_mail::{
    BASE_DATE, HOUR, Ids, append, conversation_id, host, message, rich_message,
};
use super::*;
use crate::commands::test_support::{decoded, post, post_raw};
use crate::email::format_eas_datetime;
use crate::testing::FakeHost;
use eas_wbxml::tags::{air_sync_base as base, email2};

fn and(children: Vec<Element>) -> Element {
    Element::new(search::QUERY).with_child(Element::with_children(search::AND, children))
}

fn class() -> Element {
    Element::with_text(air_sync::CLASS, "Email")
}

fn free_text(text: &str) -> Element {
    Element::with_text(search::FREE_TEXT, text)
}

fn collection(id: &str) -> Element {
    Element::with_text(air_sync::COLLECTION_ID, id)
}

fn date(tag: eas_wbxml::Tag, value: i64) -> Element {
    Element::new(tag)
        .with_child(Element::new(mail::DATE_RECEIVED))
        .text_child(search::VALUE, format_eas_datetime(value))
}

fn options(children: Vec<Element>) -> Element {
    Element::with_children(search::OPTIONS, children)
}

fn range(text: &str) -> Element {
    Element::with_text(search::RANGE, text)
}

fn preference(body_type: u8, truncation: Option<u32>) -> Element {
    let mut element =
        Element::new(base::BODY_PREFERENCE).text_child(base::TYPE, body_type.to_string());
    if let Some(size) = truncation {
        element.push(Element::with_text(base::TRUNCATION_SIZE, size.to_string()));
    }
    element
}

/// The Store of a Mailbox search's response.
fn search_store(
    host: &FakeHost,
    version: &str,
    query: Element,
    options: Option<Element>,
) -> Element {
    let mut store =
        Element::new(search::STORE).text_child(search::NAME, "Mailbox").with_child(query);
    if let Some(options) = options {
        store.push(options);
    }
    store_of(host, version, store)
}

fn store_of(host: &FakeHost, version: &str, store: Element) -> Element {
    let body = Document::new(Element::new(search::SEARCH).with_child(store));
    let answer = decoded(&post(host, "Search", version, &body));
    assert_eq!(answer.text_of(search::STATUS), Some("1"), "{answer:?}");
    answer.child(search::RESPONSE).and_then(|r| r.child(search::STORE)).expect("Store").clone()
}

fn results(store: &Element) -> Vec<&Element> {
    store.children(search::RESULT).filter(|r| !r.is_empty()).collect()
}

fn long_ids(store: &Element) -> Vec<String> {
    results(store).iter().filter_map(|r| r.text_of(search::LONG_ID)).map(str::to_owned).collect()
}

fn subjects(store: &Element) -> Vec<String> {
    results(store)
        .iter()
        .filter_map(|r| r.child(search::PROPERTIES).and_then(|p| p.text_of(mail::SUBJECT)))
        .map(str::to_owned)
        .collect()
}

/// INBOX: three budget mails and one other; Sent: one budget mail; Projects: one.
fn budget_mailbox() -> (FakeHost, Ids) {
    let (host, ids) = host();
    let ann = "Ann Lee <ann@example.org>";
    let jane = "jane@example.test";
    append(
        &host,
        "INBOX",
        &message(ann, jane, "Budget 2027", "b1@x", "", "First draft."),
        &[],
        BASE_DATE,
    );
    append(
        &host,
        "INBOX",
        &message(ann, jane, "Lunch", "l1@x", "", "Pizza?"),
        &["\\Seen"],
        BASE_DATE + HOUR,
    );
    append(
        &host,
        "INBOX",
        &message(ann, jane, "Re: Budget 2027", "b2@x", "", "Numbers attached."),
        &[],
        BASE_DATE + 2 * HOUR,
    );
    append(
        &host,
        "Sent",
        &message(jane, ann, "Re: Budget 2027", "b3@x", "", "Thanks, the budget is fine."),
        &["\\Seen"],
        BASE_DATE + 3 * HOUR,
    );
    append(
        &host,
        "INBOX/Projects",
        &message(ann, jane, "Budget for the project", "b4@x", "", "Later."),
        &[],
        BASE_DATE + 4 * HOUR,
    );
    append(
        &host,
        "INBOX",
        &message(ann, jane, "budget (deleted)", "b5@x", "", "Gone."),
        &["\\Deleted"],
        BASE_DATE + 5 * HOUR,
    );
    (host, ids)
}

#[test]
fn free_text_finds_items_in_every_folder_newest_first() {
    let (host, ids) = budget_mailbox();
    let store = search_store(&host, "16.1", and(vec![class(), free_text("budget")]), None);
    assert_eq!(store.text_of(search::STATUS), Some("1"));
    assert_eq!(
        subjects(&store),
        ["Budget for the project", "Re: Budget 2027", "Re: Budget 2027", "Budget 2027"]
    );
    assert_eq!(
        long_ids(&store),
        [
            format!("{}:1", ids.projects),
            format!("{}:1", ids.sent),
            format!("{}:3", ids.inbox),
            format!("{}:1", ids.inbox)
        ]
    );
    let first = results(&store)[0];
    assert_eq!(first.text_of(air_sync::CLASS), Some("Email"));
    assert_eq!(first.text_of(air_sync::COLLECTION_ID), Some(ids.projects.as_str()));
    assert_eq!(store.text_of(search::RANGE), Some("0-3"));
    assert_eq!(store.text_of(search::TOTAL), Some("4"));
    // Element order: Status, Result*, Range, Total.
    let tags: Vec<_> = store.child_elements().iter().map(|e| e.tag).collect();
    assert_eq!(tags.first(), Some(&search::STATUS));
    assert_eq!(&tags[tags.len() - 2..], [search::RANGE, search::TOTAL]);
}

#[test]
fn collections_and_deep_traversal() {
    let (host, ids) = budget_mailbox();
    let inbox_only = search_store(
        &host,
        "14.1",
        and(vec![class(), collection(&ids.inbox), free_text("budget")]),
        None,
    );
    assert_eq!(long_ids(&inbox_only), [format!("{}:3", ids.inbox), format!("{}:1", ids.inbox)]);
    let deep = search_store(
        &host,
        "14.1",
        and(vec![class(), collection(&ids.inbox), free_text("budget")]),
        Some(options(vec![Element::new(search::DEEP_TRAVERSAL)])),
    );
    assert_eq!(long_ids(&deep)[0], format!("{}:1", ids.projects));
    assert_eq!(deep.text_of(search::TOTAL), Some("3"));
    let two = search_store(
        &host,
        "14.1",
        and(vec![class(), collection(&ids.sent), collection(&ids.projects), free_text("budget")]),
        None,
    );
    assert_eq!(two.text_of(search::TOTAL), Some("2"));
    // No FreeText: everything in the folder (the deleted message left out).
    let all = search_store(&host, "14.1", and(vec![class(), collection(&ids.inbox)]), None);
    assert_eq!(all.text_of(search::TOTAL), Some("3"));
}

#[test]
fn date_bounds_are_exact() {
    let (host, ids) = budget_mailbox();
    let query = |children: Vec<Element>| {
        let mut all = vec![class(), collection(&ids.inbox)];
        all.extend(children);
        search_store(&host, "16.1", and(all), None)
    };
    // Strictly after the first message, strictly before the third.
    let between = query(vec![
        date(search::GREATER_THAN, BASE_DATE),
        date(search::LESS_THAN, BASE_DATE + 2 * HOUR),
    ]);
    assert_eq!(subjects(&between), ["Lunch"]);
    let after = query(vec![date(search::GREATER_THAN, BASE_DATE + HOUR - 1), free_text("budget")]);
    assert_eq!(subjects(&after), ["Re: Budget 2027"]);
    let before = query(vec![date(search::LESS_THAN, BASE_DATE + 1)]);
    assert_eq!(subjects(&before), ["Budget 2027"]);
}

#[test]
fn range_pages_through_the_matches() {
    let (host, ids) = host();
    for n in 0..7 {
        let raw = message(
            "a@example.org",
            "jane@example.test",
            &format!("Report {n}"),
            &format!("r{n}@x"),
            "",
            "report",
        );
        append(&host, "INBOX", &raw, &[], BASE_DATE + n * HOUR);
    }
    let page = |text: &str| {
        search_store(
            &host,
            "16.1",
            and(vec![class(), collection(&ids.inbox), free_text("report")]),
            Some(options(vec![range(text)])),
        )
    };
    let first = page("0-2");
    assert_eq!(subjects(&first), ["Report 6", "Report 5", "Report 4"]);
    assert_eq!(first.text_of(search::RANGE), Some("0-2"));
    assert_eq!(first.text_of(search::TOTAL), Some("7"));
    let last = page("5-9");
    assert_eq!(subjects(&last), ["Report 1", "Report 0"]);
    assert_eq!(last.text_of(search::RANGE), Some("5-6"));
    let past = page("10-19");
    assert!(results(&past).is_empty());
    assert!(past.child(search::RESULT).is_some_and(Element::is_empty), "an empty Result");
    assert_eq!(past.text_of(search::TOTAL), Some("7"));
    assert_eq!(page("0-100").text_of(search::STATUS), Some("12"));
    assert_eq!(page("0-99").text_of(search::TOTAL), Some("7"));
    assert_eq!(page("9-3").text_of(search::STATUS), Some("2"));
}

#[test]
fn results_carry_the_body_the_client_prefers() {
    let (host, ids) = host();
    let raw = rich_message("Quarterly report", "q1@x");
    append(&host, "INBOX", &raw, &[], BASE_DATE);
    let query = || and(vec![class(), collection(&ids.inbox), free_text("quarterly")]);
    let body = |version: &str, prefs: Vec<Element>| {
        let store = search_store(&host, version, query(), Some(options(prefs)));
        results(&store)[0].child(search::PROPERTIES).expect("Properties").clone()
    };
    let html = body("16.1", vec![preference(2, None)]);
    let html_body = html.child(base::BODY).expect("Body");
    assert_eq!(html_body.text_of(base::TYPE), Some("2"));
    assert!(html_body.text_of(base::DATA).is_some_and(|d| d.contains("<b>report</b>")));
    let attachment =
        html.child(base::ATTACHMENTS).and_then(|a| a.child(base::ATTACHMENT)).expect("attachment");
    assert_eq!(
        attachment.text_of(base::FILE_REFERENCE),
        Some(format!("{}:1:2", ids.inbox).as_str())
    );
    assert!(html.child(email2::CONVERSATION_ID).is_some());

    let cut = body("16.1", vec![preference(1, Some(10))]);
    let cut_body = cut.child(base::BODY).expect("Body");
    assert_eq!(cut_body.text_of(base::TYPE), Some("1"));
    assert_eq!(cut_body.text_of(base::TRUNCATED), Some("1"));
    assert_eq!(cut_body.text_of(base::DATA).map(str::len), Some(10));

    let mime =
        body("16.1", vec![preference(4, None), Element::with_text(air_sync::MIME_SUPPORT, "2")]);
    assert_eq!(mime.child(base::BODY).and_then(|b| b.bytes_of(base::DATA)), Some(raw.as_slice()));

    // No preference: plain text; 12.1 has no email2 properties.
    let plain = body("12.1", vec![]);
    assert_eq!(plain.child(base::BODY).and_then(|b| b.text_of(base::TYPE)), Some("1"));
    assert!(plain.child(email2::CONVERSATION_ID).is_none());

    let duplicate = search_store(
        &host,
        "16.1",
        query(),
        Some(options(vec![preference(1, None), preference(1, Some(5))])),
    );
    assert_eq!(duplicate.text_of(search::STATUS), Some("2"));
}

#[test]
fn large_messages_are_fetched_whole_for_a_full_body() {
    let (host, ids) = host();
    let text = "All the details. ".repeat(10_000);
    let raw = message("a@example.org", "jane@example.test", "Long story", "long@x", "", &text);
    append(&host, "INBOX", &raw, &[], BASE_DATE);
    let store = search_store(
        &host,
        "14.0",
        and(vec![class(), collection(&ids.inbox), free_text("story")]),
        Some(options(vec![preference(1, Some(200_000))])),
    );
    let body = results(&store)[0]
        .child(search::PROPERTIES)
        .and_then(|p| p.child(base::BODY))
        .expect("Body");
    assert_eq!(body.text_of(base::TRUNCATED), Some("0"));
    assert!(body.text_of(base::DATA).is_some_and(|d| d.len() >= text.trim_end().len()));
}

#[test]
fn conversation_search_finds_the_whole_thread() {
    let (host, ids) = host();
    let root =
        message("Ann <ann@example.org>", "jane@example.test", "Plans", "root@x", "", "Shall we?");
    append(&host, "INBOX", &root, &[], BASE_DATE);
    // Newer mail pushes the root out of the scanned window; the reply is recent.
    for n in 0..210 {
        let filler = message(
            "news@example.org",
            "jane@example.test",
            &format!("News {n}"),
            &format!("n{n}@x"),
            "",
            "news",
        );
        append(&host, "INBOX", &filler, &["\\Seen"], BASE_DATE + HOUR + n);
    }
    let reply = message(
        "jane@example.test",
        "Ann <ann@example.org>",
        "Re: Plans",
        "reply@x",
        "In-Reply-To: <root@x>\r\nReferences: <root@x>\r\n",
        "Yes.",
    );
    append(&host, "Sent", &reply, &["\\Seen"], BASE_DATE + 2 * HOUR);
    let again = message(
        "Ann <ann@example.org>",
        "jane@example.test",
        "Re: Re: Plans",
        "again@x",
        "In-Reply-To: <reply@x>\r\nReferences: <root@x> <reply@x>\r\n",
        "Great.",
    );
    let again_uid = append(&host, "INBOX", &again, &[], BASE_DATE + 3 * HOUR);
    let conversation = conversation_id(&reply);
    assert_eq!(conversation, conversation_id(&root));
    let query =
        and(vec![class(), Element::with_opaque(search::CONVERSATION_ID, conversation.to_vec())]);
    let store = search_store(&host, "16.1", query, None);
    assert_eq!(
        long_ids(&store),
        [
            format!("{}:{again_uid}", ids.inbox),
            format!("{}:1", ids.sent),
            format!("{}:1", ids.inbox)
        ]
    );
    // As base64 text, and limited to one folder.
    let text = base64::engine::general_purpose::STANDARD.encode(conversation);
    let query = and(vec![
        class(),
        collection(&ids.sent),
        Element::with_text(search::CONVERSATION_ID, text),
    ]);
    assert_eq!(long_ids(&search_store(&host, "16.1", query, None)), [format!("{}:1", ids.sent)]);
    // Nobody's conversation.
    let query = and(vec![class(), Element::with_opaque(search::CONVERSATION_ID, vec![7; 16])]);
    let none = search_store(&host, "16.1", query, None);
    assert_eq!(none.text_of(search::TOTAL), Some("0"));
    let query = and(vec![class(), Element::with_opaque(search::CONVERSATION_ID, vec![7; 3])]);
    assert_eq!(search_store(&host, "16.1", query, None).text_of(search::STATUS), Some("2"));
}

#[test]
fn malformed_queries_get_their_status() {
    let (host, ids) = budget_mailbox();
    let status = |query: Element| {
        search_store(&host, "16.1", query, None)
            .text_of(search::STATUS)
            .map(str::to_owned)
            .expect("status")
    };
    let email_property = Element::with_text(mail::TO, "ann@example.org");
    assert_eq!(status(and(vec![class(), email_property])), "2");
    let two_ands = Element::new(search::QUERY)
        .with_child(Element::with_children(search::AND, vec![class()]))
        .with_child(Element::with_children(search::AND, vec![free_text("x")]));
    assert_eq!(status(two_ands), "8");
    let outside = Element::new(search::QUERY)
        .with_child(free_text("budget"))
        .with_child(Element::with_children(search::AND, vec![class()]));
    assert_eq!(status(outside), "8");
    assert_eq!(
        status(and(vec![class(), Element::with_children(search::OR, vec![free_text("a")])])),
        "8"
    );
    assert_eq!(status(and(vec![class(), free_text("a OR b")])), "8");
    let bad_date = Element::new(search::GREATER_THAN)
        .with_child(Element::new(mail::DATE_RECEIVED))
        .text_child(search::VALUE, "yesterday");
    assert_eq!(status(and(vec![class(), bad_date])), "2");
    let wrong_property = Element::new(search::LESS_THAN)
        .with_child(Element::new(mail::SUBJECT))
        .text_child(search::VALUE, "2026-01-01T00:00:00.000Z");
    assert_eq!(status(and(vec![class(), wrong_property])), "2");
    assert_eq!(status(Element::new(search::QUERY)), "2");
    assert_eq!(status(and(vec![class(), collection("999")])), "11");
    assert_eq!(status(and(vec![class(), collection("")])), "2");
    // Other classes: nothing here, but a success.
    let calendar = search_store(
        &host,
        "16.1",
        and(vec![Element::with_text(air_sync::CLASS, "Calendar"), collection(&ids.inbox)]),
        None,
    );
    assert_eq!(calendar.text_of(search::STATUS), Some("1"));
    assert_eq!(calendar.text_of(search::TOTAL), Some("0"));

    let library = Element::new(search::STORE)
        .text_child(search::NAME, "DocumentLibrary")
        .with_child(Element::with_text(search::QUERY, "x"));
    assert_eq!(store_of(&host, "14.1", library).text_of(search::STATUS), Some("2"));
    let no_store =
        decoded(&post(&host, "Search", "16.1", &Document::new(Element::new(search::SEARCH))));
    let store =
        no_store.child(search::RESPONSE).and_then(|r| r.child(search::STORE)).expect("Store");
    assert_eq!(store.text_of(search::STATUS), Some("2"));
    let garbage = vec![0x03, 0x01, 0x6A, 0x00, 0x00, 0x0F, 0x45];
    assert_eq!(post_raw(&host, "Search", "12.1", garbage.clone(), &[]).status, 400);
    assert_eq!(
        decoded(&post_raw(&host, "Search", "16.1", garbage, &[])).text_of(search::STATUS),
        Some("102")
    );
}

#[test]
fn nothing_found_and_server_errors() {
    let (host, ids) = budget_mailbox();
    let none = search_store(
        &host,
        "16.1",
        and(vec![class(), collection(&ids.trash), free_text("budget")]),
        None,
    );
    assert_eq!(none.text_of(search::STATUS), Some("1"));
    assert!(none.child(search::RESULT).is_some_and(Element::is_empty));
    assert!(none.child(search::RANGE).is_none());
    assert_eq!(none.text_of(search::TOTAL), Some("0"));
    host.mailbox.borrow_mut().unavailable = true;
    let failed = search_store(&host, "16.1", and(vec![class(), free_text("budget")]), None);
    assert_eq!(failed.text_of(search::STATUS), Some("3"));
}

#[test]
fn gal_search_answers_from_the_address_book() {
    let (host, _) = host();
    let raw = message(
        "Ann Lee <ann@example.org>",
        "Jane <jane@example.test>, Annie Hall <annie@example.net>",
        "Hi",
        "h1@x",
        "",
        "Hello",
    );
    append(&host, "INBOX", &raw, &[], BASE_DATE);
    let sent =
        message("jane@example.test", "\"Smith, Bob\" <bob@example.org>", "Hi", "h2@x", "", "Hello");
    append(&host, "Sent", &sent, &[], BASE_DATE);
    let gal = |query: &str, options: Vec<Element>| {
        let mut store = Element::new(search::STORE)
            .text_child(search::NAME, "GAL")
            .text_child(search::QUERY, query);
        if !options.is_empty() {
            store.push(Element::with_children(search::OPTIONS, options));
        }
        store_of(&host, "14.1", store)
    };
    let ann = gal("ann", vec![range("0-9")]);
    assert_eq!(ann.text_of(search::STATUS), Some("1"));
    let names: Vec<_> = results(&ann)
        .iter()
        .map(|r| {
            r.child(search::PROPERTIES)
                .and_then(|p| p.text_of(gal::DISPLAY_NAME))
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(names, ["Ann Lee", "Annie Hall"]);
    let first = results(&ann)[0].child(search::PROPERTIES).expect("Properties");
    assert_eq!(first.text_of(gal::EMAIL_ADDRESS), Some("ann@example.org"));
    assert_eq!(first.text_of(gal::FIRST_NAME), Some("Ann"));
    assert_eq!(first.text_of(gal::LAST_NAME), Some("Lee"));
    assert_eq!(ann.text_of(search::TOTAL), Some("2"));
    let bob = gal("smith", vec![Element::new(search::PICTURE)]);
    let properties = results(&bob)[0].child(search::PROPERTIES).expect("Properties");
    assert_eq!(properties.text_of(gal::FIRST_NAME), Some("Bob"));
    assert_eq!(properties.child(gal::PICTURE).and_then(|p| p.text_of(gal::STATUS)), Some("173"));
    assert_eq!(gal("jane", vec![]).text_of(search::TOTAL), Some("0"), "the user is not listed");
    assert_eq!(gal("", vec![]).text_of(search::STATUS), Some("2"));
    assert_eq!(gal("a", vec![range("0-200")]).text_of(search::STATUS), Some("12"));
}

#[test]
fn conversation_ids_in_every_spelling() {
    let id: Vec<u8> = (1..=16).collect();
    let opaque = Element::with_opaque(search::CONVERSATION_ID, id.clone());
    assert_eq!(super::conversation_id(&opaque).map(|c| c.to_vec()), Some(id.clone()));
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        super::conversation_id(&Element::with_text(search::CONVERSATION_ID, hex))
            .map(|c| c.to_vec()),
        Some(id)
    );
    assert_eq!(super::conversation_id(&Element::with_text(search::CONVERSATION_ID, "nope")), None);
    assert_eq!(split_name("Lee, Ann"), Some(("Ann".into(), "Lee".into())));
    assert_eq!(split_name("Cher"), None);
}
