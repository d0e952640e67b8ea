use super::*;
use crate::commands::search::test_mail::{
    BASE_DATE, HOUR, Ids, append, host, message, rich_message,
};
use crate::commands::test_support::{DEVICE, decoded, post};
use crate::testing::FakeHost;
use eas_wbxml::tags::gal;

const SEARCH_ID: &str = "0C6BF8F1-1E0A-4A43-9A4D-1BB1E4A4B6A1";

fn mailbox_criterion(query: Vec<Element>, options: Vec<Element>) -> Element {
    let mut criterion = Element::new(find::MAIL_BOX_SEARCH_CRITERION)
        .with_child(Element::with_children(find::QUERY, query));
    if !options.is_empty() {
        criterion.push(Element::with_children(find::OPTIONS, options));
    }
    criterion
}

fn request(search_id: &str, criterion: Element) -> Document {
    Document::new(
        Element::new(find::FIND)
            .text_child(find::SEARCH_ID, search_id)
            .with_child(Element::new(find::EXECUTE_SEARCH).with_child(criterion)),
    )
}

fn find_answer(host: &FakeHost, search_id: &str, criterion: Element) -> Element {
    decoded(&post(host, "Find", "16.1", &request(search_id, criterion)))
}

/// `Find > Response` of a successful request.
fn response(host: &FakeHost, search_id: &str, criterion: Element) -> Element {
    let answer = find_answer(host, search_id, criterion);
    assert_eq!(answer.text_of(find::STATUS), Some("1"), "{answer:?}");
    answer.child(find::RESPONSE).expect("Response").clone()
}

fn query(collection: Option<&str>, text: &str) -> Vec<Element> {
    let mut query = vec![Element::with_text(air_sync::CLASS, "Email")];
    if let Some(id) = collection {
        query.push(Element::with_text(air_sync::COLLECTION_ID, id));
    }
    query.push(Element::with_text(find::FREE_TEXT, text));
    query
}

fn range(text: &str) -> Element {
    Element::with_text(find::RANGE, text)
}

fn server_ids(response: &Element) -> Vec<String> {
    response
        .children(find::RESULT)
        .filter_map(|r| r.text_of(air_sync::SERVER_ID))
        .map(str::to_owned)
        .collect()
}

fn mailbox() -> (FakeHost, Ids) {
    let (host, ids) = host();
    append(&host, "INBOX", &rich_message("Quarterly report", "q1@x"), &["\\Seen"], BASE_DATE);
    let jane = "jane@example.test";
    for n in 1..=4 {
        let raw = message(
            "Bob <bob@example.org>",
            jane,
            &format!("Report {n}"),
            &format!("r{n}@x"),
            "",
            "The weekly report.",
        );
        append(&host, "INBOX", &raw, &[], BASE_DATE + n * HOUR);
    }
    let draft = message(
        jane,
        "Bob <bob@example.org>",
        "Report draft",
        "d1@x",
        "Bcc: boss@example.org\r\n",
        "Unfinished report.",
    );
    append(&host, "Drafts", &draft, &["\\Draft"], BASE_DATE + 10 * HOUR);
    append(
        &host,
        "INBOX/Projects",
        &message("Bob <bob@example.org>", jane, "Project report", "p1@x", "", "Report."),
        &[],
        BASE_DATE + 5 * HOUR,
    );
    (host, ids)
}

#[test]
fn free_text_results_carry_find_properties_and_previews() {
    let (host, ids) = mailbox();
    let found =
        response(&host, SEARCH_ID, mailbox_criterion(query(Some(&ids.inbox), "quarterly"), vec![]));
    assert_eq!(found.text_of(item_operations::STORE), Some("Mailbox"));
    assert_eq!(found.text_of(find::STATUS), Some("1"));
    assert_eq!(server_ids(&found), [format!("{}:1", ids.inbox)]);
    assert_eq!(found.text_of(find::RANGE), Some("0-0"));
    assert_eq!(found.text_of(find::TOTAL), Some("1"));
    let result = found.child(find::RESULT).expect("Result");
    assert_eq!(result.text_of(air_sync::CLASS), Some("Email"));
    assert_eq!(result.text_of(air_sync::COLLECTION_ID), Some(ids.inbox.as_str()));
    let properties = result.child(find::PROPERTIES).expect("Properties");
    let tags: Vec<_> = properties.child_elements().iter().map(|e| e.tag).collect();
    assert_eq!(
        tags,
        [
            mail::SUBJECT,
            mail::DATE_RECEIVED,
            mail::DISPLAY_TO,
            find::DISPLAY_CC,
            find::DISPLAY_BCC,
            mail::IMPORTANCE,
            mail::READ,
            email2::IS_DRAFT,
            find::PREVIEW,
            find::HAS_ATTACHMENTS,
            mail::FROM
        ]
    );
    assert_eq!(properties.text_of(mail::SUBJECT), Some("Quarterly report"));
    assert_eq!(
        properties.text_of(mail::DATE_RECEIVED),
        Some(email::format_eas_datetime(BASE_DATE).as_str())
    );
    assert_eq!(properties.text_of(mail::DISPLAY_TO), Some("Jane"));
    assert_eq!(properties.text_of(find::DISPLAY_CC), Some("Carl; dora@example.org"));
    assert_eq!(properties.text_of(mail::READ), Some("1"));
    assert_eq!(properties.text_of(email2::IS_DRAFT), Some("0"));
    assert_eq!(properties.text_of(find::PREVIEW), Some("The quarterly report is attached."));
    assert_eq!(properties.text_of(find::HAS_ATTACHMENTS), Some("1"));
    assert_eq!(properties.text_of(mail::FROM), Some("\"Ann Lee\" <ann@example.org>"));
}

#[test]
fn every_folder_without_a_collection_and_subfolders_with_deep_traversal() {
    let (host, ids) = mailbox();
    let all = response(&host, SEARCH_ID, mailbox_criterion(query(None, "report"), vec![]));
    assert_eq!(all.text_of(find::TOTAL), Some("7"));
    let ids_found = server_ids(&all);
    assert_eq!(ids_found[0], format!("{}:1", ids_of_drafts(&host)));
    let draft = all.child(find::RESULT).and_then(|r| r.child(find::PROPERTIES)).expect("draft");
    assert_eq!(draft.text_of(email2::IS_DRAFT), Some("1"));
    assert_eq!(draft.text_of(find::DISPLAY_BCC), Some("boss@example.org"));
    assert_eq!(draft.text_of(find::HAS_ATTACHMENTS), Some("0"));

    let inbox =
        response(&host, SEARCH_ID, mailbox_criterion(query(Some(&ids.inbox), "report"), vec![]));
    assert_eq!(inbox.text_of(find::TOTAL), Some("5"));
    let deep = response(
        &host,
        SEARCH_ID,
        mailbox_criterion(
            query(Some(&ids.inbox), "report"),
            vec![Element::new(find::DEEP_TRAVERSAL)],
        ),
    );
    assert_eq!(deep.text_of(find::TOTAL), Some("6"));
    assert_eq!(server_ids(&deep)[0], format!("{}:1", ids.projects));
}

fn ids_of_drafts(host: &FakeHost) -> String {
    let map =
        crate::drive::run_to_completion(crate::folders::stored(host)).expect("runs").expect("map");
    map.entries().iter().find(|e| e.imap_name == "Drafts").expect("Drafts").server_id.clone()
}

#[test]
fn range_paging_keeps_the_search_id() {
    let (host, ids) = mailbox();
    let criterion =
        |text: &str| mailbox_criterion(query(Some(&ids.inbox), "report"), vec![range(text)]);
    let first = response(&host, SEARCH_ID, criterion("0-1"));
    assert_eq!(server_ids(&first), [format!("{}:5", ids.inbox), format!("{}:4", ids.inbox)]);
    assert_eq!(first.text_of(find::RANGE), Some("0-1"));
    assert_eq!(first.text_of(find::TOTAL), Some("5"));
    let stored = host.stored(&StateScope::Device(DEVICE.into()), LAST_SEARCH_KEY);
    assert_eq!(stored.as_deref(), Some(SEARCH_ID.as_bytes()));
    let next = response(&host, SEARCH_ID, criterion("2-3"));
    assert_eq!(server_ids(&next), [format!("{}:3", ids.inbox), format!("{}:2", ids.inbox)]);
    assert_eq!(next.text_of(find::RANGE), Some("2-3"));
    // A new search must start at 0.
    let fresh = response(&host, "another-search", criterion("2-3"));
    assert_eq!(fresh.text_of(find::STATUS), Some("4"));
    assert!(fresh.child(find::RESULT).is_none());
    // Past the end: no Result, the Total.
    let past = response(&host, SEARCH_ID, criterion("20-29"));
    assert!(past.child(find::RESULT).is_none() && past.child(find::RANGE).is_none());
    assert_eq!(past.text_of(find::TOTAL), Some("5"));
    // More than a response holds: the first MAX_RESULTS.
    let wide = response(&host, SEARCH_ID, criterion("0-999"));
    assert_eq!(wide.text_of(find::RANGE), Some("0-4"));
}

#[test]
fn invalid_requests_and_unknown_folders() {
    let (host, ids) = mailbox();
    let top = |search_id: &str, criterion: Element| {
        find_answer(&host, search_id, criterion)
            .text_of(find::STATUS)
            .map(str::to_owned)
            .expect("status")
    };
    let good = || mailbox_criterion(query(Some(&ids.inbox), "report"), vec![]);
    assert_eq!(top("", good()), "2");
    assert_eq!(top(SEARCH_ID, mailbox_criterion(query(Some("999"), "x"), vec![])), "3");
    assert_eq!(top(SEARCH_ID, mailbox_criterion(query(None, "a OR b"), vec![])), "2");
    assert_eq!(top(SEARCH_ID, mailbox_criterion(query(None, "x"), vec![range("0-1000")])), "2");
    assert_eq!(
        top(SEARCH_ID, mailbox_criterion(vec![Element::with_text(mail::SUBJECT, "x")], vec![])),
        "2"
    );
    let two_collections = vec![
        Element::with_text(air_sync::COLLECTION_ID, ids.inbox.as_str()),
        Element::with_text(air_sync::COLLECTION_ID, ids.sent.as_str()),
        Element::with_text(find::FREE_TEXT, "report"),
    ];
    assert_eq!(top(SEARCH_ID, mailbox_criterion(two_collections, vec![])), "2");
    let no_criterion = Document::new(
        Element::new(find::FIND)
            .text_child(find::SEARCH_ID, SEARCH_ID)
            .with_child(Element::new(find::EXECUTE_SEARCH)),
    );
    assert_eq!(
        decoded(&post(&host, "Find", "16.1", &no_criterion)).text_of(find::STATUS),
        Some("2")
    );
    // Find is 16.1 only.
    assert_ne!(post(&host, "Find", "16.0", &request(SEARCH_ID, good())).status, 200);

    let nothing = response(&host, SEARCH_ID, mailbox_criterion(query(None, "zebra"), vec![]));
    assert!(nothing.child(find::RESULT).is_none());
    assert_eq!(nothing.text_of(find::TOTAL), Some("0"));

    host.mailbox.borrow_mut().unavailable = true;
    assert_eq!(top(SEARCH_ID, good()), "110");
}

#[test]
fn gal_criterion_answers_from_the_address_book() {
    let (host, _) = mailbox();
    let criterion = |text: &str| {
        Element::new(find::GAL_SEARCH_CRITERION)
            .text_child(find::QUERY, text)
            .with_child(Element::new(find::OPTIONS).text_child(find::RANGE, "0-9"))
    };
    let found = response(&host, SEARCH_ID, criterion("bob"));
    assert_eq!(found.text_of(item_operations::STORE), Some("GAL"));
    assert_eq!(found.text_of(find::TOTAL), Some("1"));
    let properties =
        found.child(find::RESULT).and_then(|r| r.child(find::PROPERTIES)).expect("Properties");
    assert_eq!(properties.text_of(gal::DISPLAY_NAME), Some("Bob"));
    assert_eq!(properties.text_of(gal::EMAIL_ADDRESS), Some("bob@example.org"));
    let none = response(&host, SEARCH_ID, criterion("zebra"));
    assert_eq!(none.text_of(find::TOTAL), Some("0"));
    assert_eq!(find_answer(&host, SEARCH_ID, criterion("")).text_of(find::STATUS), Some("2"));
}
