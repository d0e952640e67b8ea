use super::*;
use crate::commands::test_support::{decoded, post, post_raw, provisioned_host};
use crate::testing::FakeHost;
use base64::Engine as _;
use eas_wbxml::Limits;

/// text/plain + text/html alternatives and a base64 PDF.
const MIXED: &[u8] = b"From: Ann <ann@example.org>\r\nTo: jane@example.test\r\n\
Subject: Report\r\nMessage-ID: <r1@example.org>\r\nDate: Tue, 3 Nov 2026 10:00:00 +0000\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=outer\r\n\r\n\
--outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n\
--inner\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe report is attached.\r\n\
--inner\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>The <b>report</b> is attached.</p>\r\n\
--inner--\r\n\
--outer\r\nContent-Type: application/pdf; name=report.pdf\r\n\
Content-Disposition: attachment; filename=report.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n\
JVBERi0xLjQgZmFrZSBwZGYgYnl0ZXM=\r\n\
--outer--\r\n";

const PDF: &[u8] = b"%PDF-1.4 fake pdf bytes";

/// A host with `MIXED` as INBOX UID 1; returns the host and INBOX's CollectionId.
fn host_with_mail(with_body_structure: bool) -> (FakeHost, String) {
    let host = provisioned_host();
    host.mailbox.borrow_mut().with_body_structure = with_body_structure;
    host.mailbox.borrow_mut().append("INBOX", MIXED, &["\\Seen"], 1_793_000_000);
    let map = crate::drive::run_to_completion(folders::refresh(&host))
        .expect("completes")
        .expect("refreshes");
    let inbox =
        map.entries().iter().find(|e| e.imap_name == "INBOX").expect("inbox").server_id.clone();
    (host, inbox)
}

fn store() -> Element {
    Element::with_text(io::STORE, "Mailbox")
}

fn fetch_item(collection: &str, server_id: &str, preferences: &[(u8, Option<u32>)]) -> Element {
    let mut options = Element::new(io::OPTIONS);
    for (body_type, truncation) in preferences {
        let mut preference =
            Element::new(base::BODY_PREFERENCE).text_child(base::TYPE, body_type.to_string());
        if let Some(size) = truncation {
            preference.push(Element::with_text(base::TRUNCATION_SIZE, size.to_string()));
        }
        options.push(preference);
    }
    Element::new(io::FETCH)
        .with_child(store())
        .text_child(air_sync::COLLECTION_ID, collection)
        .text_child(air_sync::SERVER_ID, server_id)
        .with_child(options)
}

fn fetch_attachment(reference: &str, range: Option<&str>) -> Element {
    let mut fetch =
        Element::new(io::FETCH).with_child(store()).text_child(base::FILE_REFERENCE, reference);
    if let Some(range) = range {
        fetch.push(Element::new(io::OPTIONS).text_child(io::RANGE, range));
    }
    fetch
}

fn request(operations: Vec<Element>) -> Document {
    Document::new(Element::with_children(io::ITEM_OPERATIONS, operations))
}

/// The Fetch answers of a WBXML response.
fn answers(host: &FakeHost, version: &str, operations: Vec<Element>) -> Vec<Element> {
    let root = decoded(&post(host, "ItemOperations", version, &request(operations)));
    assert_eq!(root.text_of(io::STATUS), Some("1"), "{root:?}");
    root.child(io::RESPONSE).expect("Response").child_elements().to_vec()
}

fn properties(answer: &Element) -> &Element {
    answer.child(io::PROPERTIES).expect("Properties")
}

fn body_of(answer: &Element) -> &Element {
    properties(answer).child(base::BODY).expect("Body")
}

#[test]
fn fetch_by_server_id_in_each_body_type() {
    let (host, inbox) = host_with_mail(false);
    let server_id = format!("{inbox}:1");
    let fetched = answers(
        &host,
        "16.1",
        vec![
            fetch_item(&inbox, &server_id, &[(1, None)]),
            fetch_item(&inbox, &server_id, &[(2, None)]),
            fetch_item(&inbox, &server_id, &[(4, None)]),
            fetch_item(&inbox, &server_id, &[(1, Some(10))]),
        ],
    );
    for answer in &fetched {
        assert_eq!(answer.text_of(io::STATUS), Some("1"));
        assert_eq!(answer.text_of(air_sync::COLLECTION_ID), Some(inbox.as_str()));
        assert_eq!(answer.text_of(air_sync::SERVER_ID), Some(server_id.as_str()));
        assert_eq!(answer.text_of(air_sync::CLASS), Some("Email"));
        let properties = properties(answer);
        assert!(properties.child(eas_wbxml::tags::email::SUBJECT).is_some());
        let attachments = properties.child(base::ATTACHMENTS).expect("attachments");
        let reference =
            attachments.child(base::ATTACHMENT).and_then(|a| a.text_of(base::FILE_REFERENCE));
        assert_eq!(reference, Some(format!("{inbox}:1:2").as_str()));
    }
    let plain = body_of(&fetched[0]);
    assert_eq!(plain.text_of(base::TYPE), Some("1"));
    assert!(plain.text_of(base::DATA).is_some_and(|d| d.contains("The report is attached.")));
    let html = body_of(&fetched[1]);
    assert_eq!(html.text_of(base::TYPE), Some("2"));
    assert!(html.text_of(base::DATA).is_some_and(|d| d.contains("<b>report</b>")));
    let mime = body_of(&fetched[2]);
    assert_eq!(mime.text_of(base::TYPE), Some("4"));
    assert_eq!(mime.bytes_of(base::DATA), Some(MIXED));
    let cut = body_of(&fetched[3]);
    assert_eq!(cut.text_of(base::TRUNCATED), Some("1"));
    assert_eq!(cut.text_of(base::DATA).map(str::len), Some(10));
}

#[test]
fn fetch_by_server_id_alone_and_in_12_1() {
    let (host, inbox) = host_with_mail(true);
    let fetch = Element::new(io::FETCH)
        .with_child(store())
        .text_child(air_sync::SERVER_ID, format!("{inbox}:1"));
    let fetched = answers(&host, "12.1", vec![fetch]);
    assert_eq!(fetched[0].text_of(io::STATUS), Some("1"));
    let properties = properties(&fetched[0]);
    assert!(properties.child(eas_wbxml::tags::email2::CONVERSATION_ID).is_none());
    // No preference: plain text.
    assert_eq!(body_of(&fetched[0]).text_of(base::TYPE), Some("1"));
}

#[test]
fn fetch_by_long_id_from_search() {
    let (host, inbox) = host_with_mail(false);
    let long_id = format!("{inbox}:1");
    let preference = Element::new(base::BODY_PREFERENCE).text_child(base::TYPE, "2");
    let fetch = Element::new(io::FETCH)
        .with_child(store())
        .text_child(search::LONG_ID, long_id.as_str())
        .with_child(Element::new(io::OPTIONS).with_child(preference));
    let fetched = answers(&host, "16.1", vec![fetch]);
    assert_eq!(fetched[0].text_of(io::STATUS), Some("1"));
    assert_eq!(fetched[0].text_of(search::LONG_ID), Some(long_id.as_str()), "echoed");
    assert_eq!(fetched[0].text_of(air_sync::CLASS), Some("Email"));
    let html = body_of(&fetched[0]);
    assert_eq!(html.text_of(base::TYPE), Some("2"));
    assert!(html.text_of(base::DATA).is_some_and(|d| d.contains("<b>report</b>")));
    // Gone, malformed or foreign LongIds: Status 6 each.
    for bad in [format!("{inbox}:2"), format!("{inbox}:"), String::new(), "RgAAAA".into()] {
        let fetch =
            Element::new(io::FETCH).with_child(store()).text_child(search::LONG_ID, bad.as_str());
        let fetched = answers(&host, "16.1", vec![fetch]);
        assert_eq!(fetched[0].text_of(io::STATUS), Some("6"), "{bad:?}");
    }
}

#[test]
fn missing_and_malformed_items_get_per_operation_statuses() {
    let (host, inbox) = host_with_mail(false);
    let other = if inbox == "2" { "1" } else { "2" };
    let cases: Vec<(Element, &str)> = vec![
        (fetch_item(&inbox, &format!("{inbox}:99"), &[]), "6"),
        (fetch_item(&inbox, "abc", &[]), "6"),
        (fetch_item(&inbox, &format!("{inbox}:0"), &[]), "6"),
        (fetch_item(&inbox, &format!("{inbox}:-1"), &[]), "6"),
        (fetch_item(&inbox, "999:1", &[]), "6"),
        (fetch_item("999", "999:1", &[]), "6"),
        (fetch_item(other, &format!("{inbox}:1"), &[]), "6"),
        (fetch_item(&inbox, &format!("{inbox}:1"), &[(9, None)]), "2"),
        (
            Element::new(io::FETCH)
                .text_child(air_sync::COLLECTION_ID, inbox.as_str())
                .text_child(air_sync::SERVER_ID, format!("{inbox}:1")),
            "2",
        ),
        (
            Element::new(io::FETCH)
                .text_child(io::STORE, "DocumentLibrary")
                .text_child(base::FILE_REFERENCE, "x"),
            "9",
        ),
        (Element::new(io::FETCH).with_child(store()), "2"),
        (Element::new(io::FETCH).with_child(store()).text_child(search::LONG_ID, "RgAAAA"), "6"),
    ];
    let (operations, expected): (Vec<_>, Vec<_>) = cases.into_iter().unzip();
    let fetched = answers(&host, "14.1", operations);
    let statuses: Vec<_> = fetched.iter().map(|a| a.text_of(io::STATUS).unwrap_or("?")).collect();
    assert_eq!(statuses, expected);
    assert!(fetched.iter().all(|answer| answer.child(io::PROPERTIES).is_none()));
    assert_eq!(fetched[1].text_of(air_sync::SERVER_ID), Some("abc"), "ids are echoed");
}

#[test]
fn attachments_by_file_reference_with_and_without_a_host_structure() {
    for with_body_structure in [true, false] {
        let (host, inbox) = host_with_mail(with_body_structure);
        let reference = format!("{inbox}:1:2");
        let fetched = answers(&host, "16.1", vec![fetch_attachment(&reference, None)]);
        let answer = &fetched[0];
        assert_eq!(answer.text_of(io::STATUS), Some("1"), "{with_body_structure}");
        assert_eq!(answer.text_of(base::FILE_REFERENCE), Some(reference.as_str()));
        assert!(answer.child(air_sync::CLASS).is_none());
        let properties = properties(answer);
        assert_eq!(properties.text_of(base::CONTENT_TYPE), Some("application/pdf"));
        let data = properties.text_of(io::DATA).expect("Data");
        let decoded = base64::engine::general_purpose::STANDARD.decode(data).expect("base64");
        assert_eq!(decoded, PDF);
        assert!(properties.child(io::TOTAL).is_none());
    }
}

#[test]
fn attachment_ranges_and_bad_references() {
    let (host, inbox) = host_with_mail(true);
    let reference = format!("{inbox}:1:2");
    let cases = vec![
        fetch_attachment(&reference, Some("2-5")),
        fetch_attachment(&reference, Some("20-999")),
        fetch_attachment(&reference, Some("23-30")),
        fetch_attachment(&reference, Some("5-2")),
        fetch_attachment(&reference, Some("x")),
        fetch_attachment(&format!("{inbox}:1:9"), None),
        fetch_attachment(&format!("{inbox}:1:1"), None),
        fetch_attachment(&format!("{inbox}:1"), None),
        fetch_attachment(&format!("{inbox}:7:2"), None),
        fetch_attachment(&format!("{inbox}:1:2."), None),
        fetch_attachment("999:1:2", None),
        fetch_attachment("", None),
    ];
    let fetched = answers(&host, "14.0", cases);
    let statuses: Vec<_> = fetched.iter().map(|a| a.text_of(io::STATUS).unwrap_or("?")).collect();
    assert_eq!(statuses, ["1", "1", "8", "8", "8", "15", "15", "15", "15", "15", "15", "15"]);
    let data = |answer: &Element| {
        let properties = properties(answer);
        let text = properties.text_of(io::DATA).expect("Data");
        let bytes = base64::engine::general_purpose::STANDARD.decode(text).expect("base64");
        let text_of = |tag| properties.text_of(tag).map(str::to_owned);
        (text_of(io::RANGE), text_of(io::TOTAL), bytes)
    };
    let expected =
        |range: &str, bytes: &[u8]| (Some(range.to_owned()), Some("23".to_owned()), bytes.to_vec());
    assert_eq!(data(&fetched[0]), expected("2-5", &PDF[2..=5]));
    assert_eq!(data(&fetched[1]), expected("20-22", &PDF[20..]));
}

#[test]
fn multipart_responses_carry_the_data_as_parts() {
    let (host, inbox) = host_with_mail(true);
    let operations = vec![
        fetch_attachment(&format!("{inbox}:1:2"), None),
        fetch_item(&inbox, &format!("{inbox}:1"), &[(4, None)]),
        fetch_item(&inbox, &format!("{inbox}:99"), &[(4, None)]),
    ];
    let body = eas_wbxml::encode(&request(operations)).expect("encodes");
    let response =
        post_raw(&host, "ItemOperations", "16.1", body.clone(), &[("MS-ASAcceptMultiPart", "T")]);
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some(multipart::CONTENT_TYPE));
    let parts = multipart::split(&response.body).expect("well-framed");
    assert_eq!(parts.len(), 3);
    // Offsets: right after the header, back to back.
    let header_len = 4 + 8 * parts.len();
    assert_eq!(parts[0].as_ptr() as usize - response.body.as_ptr() as usize, header_len);
    let total: usize = header_len + parts.iter().map(|p| p.len()).sum::<usize>();
    assert_eq!(total, response.body.len());

    let root = eas_wbxml::decode(parts[0], &Limits::default()).expect("part 0 is WBXML").root;
    assert_eq!(root.text_of(io::STATUS), Some("1"));
    let fetched = root.child(io::RESPONSE).expect("Response").child_elements();
    let attachment = properties(&fetched[0]);
    assert!(attachment.child(io::DATA).is_none());
    let index: usize = attachment.text_of(io::PART).expect("Part").parse().expect("index");
    assert_eq!(parts[index], PDF);
    let item_body = body_of(&fetched[1]);
    assert!(item_body.child(base::DATA).is_none());
    let index: usize = item_body.text_of(io::PART).expect("Part").parse().expect("index");
    assert_eq!(parts[index], MIXED);
    assert_eq!(fetched[2].text_of(io::STATUS), Some("6"));
    // Without the header (or the base64 form's option bit): plain WBXML.
    let plain = post_raw(&host, "ItemOperations", "16.1", body, &[]);
    assert_eq!(plain.header("content-type"), Some(crate::WBXML_CONTENT_TYPE));
}

#[test]
fn multipart_is_kept_for_request_level_errors() {
    let host = provisioned_host();
    let body = eas_wbxml::encode(&request(vec![])).expect("encodes");
    let response =
        post_raw(&host, "ItemOperations", "16.1", body, &[("MS-ASAcceptMultiPart", "T")]);
    let parts = multipart::split(&response.body).expect("well-framed");
    assert_eq!(parts.len(), 1);
    let root = eas_wbxml::decode(parts[0], &Limits::default()).expect("WBXML").root;
    assert_eq!(root.text_of(io::STATUS), Some("2"));
}

#[test]
fn request_level_errors() {
    let host = provisioned_host();
    let top = |document: &Document| {
        decoded(&post(&host, "ItemOperations", "16.1", document))
            .text_of(io::STATUS)
            .map(str::to_owned)
    };
    assert_eq!(top(&request(vec![])), Some("2".into()));
    assert_eq!(top(&request(vec![Element::with_text(io::STORE, "Mailbox")])), Some("2".into()));
    let many = (0..=MAX_OPERATIONS).map(|_| fetch_attachment("1:1:1", None)).collect();
    assert_eq!(top(&request(many)), Some("11".into()));
    // Not an ItemOperations document at all, or not WBXML.
    let other = Document::new(Element::new(eas_wbxml::tags::folder_hierarchy::FOLDER_SYNC));
    assert_eq!(top(&other), Some("103".into()));
    let garbage = vec![0x03, 0x01, 0x6A, 0x00, 0x45];
    assert_eq!(post_raw(&host, "ItemOperations", "12.1", garbage.clone(), &[]).status, 400);
    let in_body = decoded(&post_raw(&host, "ItemOperations", "14.0", garbage, &[]));
    assert_eq!(in_body.text_of(io::STATUS), Some("102"));
}

#[test]
fn empty_folder_contents_empties_the_folder_and_its_subfolders_when_asked() {
    let (host, inbox) = host_with_mail(false);
    host.mailbox.borrow_mut().append("Trash", MIXED, &[], 0);
    host.mailbox.borrow_mut().append("Trash", MIXED, &[], 0);
    host.mailbox.borrow_mut().add_folder("Trash/Old", None);
    host.mailbox.borrow_mut().add_folder("Trash/Old/Older", None);
    host.mailbox.borrow_mut().append("Trash/Old", MIXED, &[], 0);
    let map = crate::drive::run_to_completion(folders::refresh(&host))
        .expect("completes")
        .expect("refreshes");
    let trash = map.entries().iter().find(|e| e.imap_name == "Trash").expect("trash");
    let empty = |id: &str, subfolders: bool| {
        let mut element =
            Element::new(io::EMPTY_FOLDER_CONTENTS).text_child(air_sync::COLLECTION_ID, id);
        if subfolders {
            element.push(Element::new(io::OPTIONS).empty_child(io::DELETE_SUB_FOLDERS));
        }
        element
    };
    let answered = answers(
        &host,
        "16.1",
        vec![
            empty(&inbox, false),
            empty("99", false),
            empty(&trash.server_id, true),
            Element::new(io::EMPTY_FOLDER_CONTENTS),
            fetch_item(&inbox, &format!("{inbox}:1"), &[]),
        ],
    );
    let statuses: Vec<_> = answered.iter().map(|a| a.text_of(io::STATUS)).collect();
    assert_eq!(
        statuses,
        [Some("1"), Some("6"), Some("1"), Some("2"), Some("6")],
        "the emptied INBOX has no message 1 left to fetch"
    );
    assert_eq!(answered[2].text_of(air_sync::COLLECTION_ID), Some(trash.server_id.as_str()));
    let mailbox = host.mailbox.borrow();
    assert!(mailbox.uids("INBOX").is_empty() && mailbox.uids("Trash").is_empty());
    assert_eq!(mailbox.folder_names(), ["INBOX", "Drafts", "Sent", "Trash"]);
}

#[test]
fn a_folder_gone_from_imap_and_the_conversation_move_get_clear_statuses() {
    let (host, inbox) = host_with_mail(false);
    host.mailbox.borrow_mut().add_folder("Gone", None);
    let map = crate::drive::run_to_completion(folders::refresh(&host))
        .expect("completes")
        .expect("refreshes");
    let gone = map.entries().iter().find(|e| e.imap_name == "Gone").expect("listed");
    host.mailbox.borrow_mut().delete_folder("Gone");
    let empty = Element::new(io::EMPTY_FOLDER_CONTENTS)
        .text_child(air_sync::COLLECTION_ID, gone.server_id.as_str());
    let conversation_move = |always: bool| {
        let mut element = Element::new(io::MOVE)
            .opaque_child(io::CONVERSATION_ID, vec![1, 2, 3])
            .text_child(io::DST_FLD_ID, inbox.as_str());
        if always {
            element.push(Element::new(io::OPTIONS).empty_child(io::MOVE_ALWAYS));
        }
        element
    };
    let answered = answers(
        &host,
        "16.1",
        vec![
            empty,
            conversation_move(false),
            conversation_move(true),
            fetch_item(&inbox, &format!("{inbox}:1"), &[]),
        ],
    );
    assert_eq!(answered[0].text_of(io::STATUS), Some("6"));
    assert_eq!(answered[1].tag, io::MOVE);
    assert_eq!(answered[1].text_of(io::STATUS), Some("155"));
    assert_eq!(answered[1].bytes_of(io::CONVERSATION_ID), Some(&[1u8, 2, 3][..]));
    assert_eq!(answered[2].text_of(io::STATUS), Some("16"));
    assert_eq!(answered[3].text_of(io::STATUS), Some("1"), "later operations still run");
}

/// A message over the fetch budget: text first, then a base64 attachment of `MAX_FETCH_BYTES`.
fn huge_message() -> Vec<u8> {
    let head = b"From: ann@example.org\r\nSubject: Huge\r\n\
Content-Type: multipart/mixed; boundary=big\r\n\r\n\
--big\r\nContent-Type: text/plain\r\n\r\nA very large attachment follows.\r\n\
--big\r\nContent-Type: application/octet-stream; name=big.bin\r\n\
Content-Transfer-Encoding: base64\r\n\r\n";
    let line = b"QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB\r\n";
    let mut raw = head.to_vec();
    while raw.len() < MAX_FETCH_BYTES {
        raw.extend_from_slice(line);
    }
    raw.extend_from_slice(b"--big--\r\n");
    raw
}

#[test]
fn huge_messages_are_fetched_from_their_first_bytes_and_huge_attachments_refused() {
    let (host, inbox) = host_with_mail(true);
    let huge = huge_message();
    let uid = host.mailbox.borrow_mut().append("INBOX", &huge, &[], 0);
    let server_id = format!("{inbox}:{uid}");
    let fetched = answers(
        &host,
        "16.1",
        vec![
            fetch_item(&inbox, &server_id, &[(1, Some(10_000))]),
            fetch_item(&inbox, &server_id, &[(4, None)]),
            fetch_attachment(&format!("{server_id}:2"), None),
            fetch_item(&inbox, &format!("{inbox}:1"), &[]),
        ],
    );
    let statuses: Vec<_> = fetched.iter().map(|a| a.text_of(io::STATUS).unwrap_or("?")).collect();
    assert_eq!(statuses, ["1", "1", "11", "1"]);
    let text = body_of(&fetched[0]);
    assert_eq!(text.text_of(base::TRUNCATED), Some("0"));
    assert!(text.text_of(base::DATA).is_some_and(|d| d.contains("A very large attachment")));
    let mime = body_of(&fetched[1]);
    assert_eq!(mime.text_of(base::TRUNCATED), Some("1"));
    assert_eq!(mime.text_of(base::ESTIMATED_DATA_SIZE), Some(huge.len().to_string().as_str()));
    let sent = mime.bytes_of(base::DATA).expect("Data");
    assert!(!sent.is_empty() && huge.starts_with(sent));
}

#[test]
fn mailbox_failures_are_server_errors() {
    let (host, inbox) = host_with_mail(false);
    host.mailbox.borrow_mut().unavailable = true;
    let fetched = answers(&host, "16.1", vec![fetch_item(&inbox, &format!("{inbox}:1"), &[])]);
    assert_eq!(fetched[0].text_of(io::STATUS), Some("3"));
}

#[test]
fn identifiers_and_ranges_parse_strictly() {
    assert_eq!(parse_server_id("5:12"), Some(("5", 12)));
    for bad in ["5", ":12", "5:", "5:0", "5:+1", "5:1:2", "5:4294967296"] {
        assert_eq!(parse_server_id(bad), None, "{bad:?}");
    }
    assert_eq!(parse_file_reference("5:12:1.2"), Some(("5", 12, "1.2")));
    for bad in ["5:12", "5:12:", "5:12:1..2", "5:12:a", "5:x:1", "5:12:1:2", "5:12:1234567890"] {
        assert_eq!(parse_file_reference(bad), None, "{bad:?}");
    }
    assert_eq!(ByteRange::parse("0-999"), Some(ByteRange { first: 0, last: 999 }));
    assert_eq!(ByteRange::parse("7-7").and_then(|r| r.within(8)), Some((7, 7)));
    assert_eq!(ByteRange::parse("0-9").and_then(|r| r.within(0)), None);
    for bad in ["", "-", "1-", "-1", "2-1", "a-b", "1 2"] {
        assert_eq!(ByteRange::parse(bad), None, "{bad:?}");
    }
}
