//! Parser tests with captured (Dovecot, RFC examples) and hand-written server responses.

use super::cursor::Cursor;
use super::framing::{Frame, FrameLimits, find_frame};
use super::parser::parse_internal_date;
use super::*;
use crate::imap::bodystructure::{self, BodyPart};

fn parse(text: &str) -> Response {
    let frame = format!("{text}\r\n");
    match parse_response(frame.as_bytes()) {
        Ok(response) => response,
        Err(error) => panic!("{error} in {text:?}"),
    }
}

fn untagged(text: &str) -> Untagged {
    match parse(text) {
        Response::Untagged(data) => data,
        other => panic!("not untagged: {other:?}"),
    }
}

fn fetch(text: &str) -> FetchData {
    match untagged(text) {
        Untagged::Fetch { data, .. } => *data,
        other => panic!("not a FETCH: {other:?}"),
    }
}

fn structure(text: &str) -> Vec<BodyPart> {
    let mut cursor = Cursor::new(text.as_bytes());
    let parts = bodystructure::parse(&mut cursor).unwrap_or_else(|e| panic!("{e} in {text}"));
    assert!(cursor.at_end(), "left over: {:?}", cursor.rest());
    parts
}

fn sections(parts: &[BodyPart]) -> Vec<(&str, u32, String)> {
    parts
        .iter()
        .map(|p| (p.section.as_str(), p.depth, format!("{}/{}", p.media_type, p.media_subtype)))
        .collect()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// multipart/mixed: an alternative body, an attachment with an RFC 2231 name, and a forwarded
/// message whose own body is multipart/alternative (as Dovecot 2.3 sends it).
const MIXED_WITH_FORWARD: &str = concat!(
    r#"((("text" "plain" ("charset" "utf-8") NIL NIL "quoted-printable" 1234 40 NIL NIL NIL NIL)"#,
    r#"("text" "html" ("charset" "utf-8") NIL NIL "quoted-printable" 2345 50 NIL NIL NIL NIL)"#,
    r#" "alternative" ("boundary" "=_alt") NIL NIL NIL)"#,
    r#"("application" "pdf" NIL NIL NIL "base64" 5000 NIL ("attachment" ("filename*" "UTF-8''%C3%9Cbersicht%201.pdf")) NIL NIL)"#,
    r#"("message" "rfc822" NIL NIL "Fwd" "7bit" 3000 ("Mon, 2 Jun 2025 09:00:00 +0000" "inner (subject)" "#,
    r#"(("A" NIL "a" "example.org")) (("A" NIL "a" "example.org")) (("A" NIL "a" "example.org")) "#,
    r#"((NIL NIL "b" "example.org")) NIL NIL NIL "<i@x>") "#,
    r#"(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 10 1 NIL NIL NIL NIL)"#,
    r#"("text" "html" ("charset" "us-ascii") NIL NIL "7bit" 20 1 NIL NIL NIL NIL) "alternative" ("boundary" "in") NIL NIL NIL)"#,
    r#" 60 NIL ("inline" NIL) NIL NIL) "mixed" ("boundary" "=_mix") NIL NIL NIL)"#
);

#[test]
fn nested_multipart_with_forwarded_message() {
    let parts = structure(MIXED_WITH_FORWARD);
    assert_eq!(
        sections(&parts),
        vec![
            ("", 0, "multipart/mixed".to_string()),
            ("1", 1, "multipart/alternative".to_string()),
            ("1.1", 2, "text/plain".to_string()),
            ("1.2", 2, "text/html".to_string()),
            ("2", 1, "application/pdf".to_string()),
            ("3", 1, "message/rfc822".to_string()),
            ("3.TEXT", 2, "multipart/alternative".to_string()),
            ("3.1", 3, "text/plain".to_string()),
            ("3.2", 3, "text/html".to_string()),
        ]
    );
    assert!(parts[0].is_multipart && parts[1].is_multipart && parts[6].is_multipart);
    assert_eq!(param(&parts[0].params, "boundary"), Some("=_mix"));
    assert_eq!(param(&parts[2].params, "charset"), Some("utf-8"));
    assert_eq!(parts[2].encoding.as_deref(), Some("quoted-printable"));
    assert_eq!((parts[2].size, parts[2].lines), (1234, Some(40)));
    let pdf = &parts[4];
    assert_eq!(pdf.disposition.as_deref(), Some("attachment"));
    assert_eq!(
        param(&pdf.disposition_params, "filename*"),
        Some("UTF-8''%C3%9Cbersicht%201.pdf"),
        "RFC 2231 names stay encoded"
    );
    assert_eq!((pdf.size, pdf.lines), (5000, None));
    let forwarded = &parts[5];
    assert_eq!(forwarded.description.as_deref(), Some("Fwd"));
    assert_eq!((forwarded.size, forwarded.lines), (3000, Some(60)));
    assert_eq!(forwarded.disposition.as_deref(), Some("inline"));
}

#[test]
fn single_part_message_is_part_one() {
    let parts =
        structure(r#"("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3028 92 NIL NIL NIL)"#);
    assert_eq!(sections(&parts), vec![("1", 0, "text/plain".to_string())]);
    assert_eq!(param(&parts[0].params, "charset"), Some("US-ASCII"), "values keep their case");
    assert_eq!(parts[0].encoding.as_deref(), Some("7bit"));
}

#[test]
fn rfc_3501_example_without_extension_data() {
    let parts = structure(concat!(
        r#"(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 1152 23)"#,
        r#"("TEXT" "PLAIN" ("CHARSET" "US-ASCII" "NAME" "cc.diff") "<960723163407.20117h@cac.washington.edu>" "Compiler diff" "BASE64" 4554 73) "MIXED")"#
    ));
    assert_eq!(parts.len(), 3);
    assert_eq!(parts[0].media_subtype, "mixed");
    assert_eq!(param(&parts[2].params, "name"), Some("cc.diff"));
    assert_eq!(parts[2].content_id.as_deref(), Some("<960723163407.20117h@cac.washington.edu>"));
    assert_eq!(parts[2].description.as_deref(), Some("Compiler diff"));
    assert_eq!(parts[2].lines, Some(73));
}

#[test]
fn nil_everywhere_literals_and_all_extension_fields() {
    let parts = structure(concat!(
        "((NIL NIL NIL NIL NIL NIL NIL 0)",
        "(\"application\" \"octet-stream\" (\"name\" {10}\r\nodd \"name\") NIL NIL \"base64\" 100 ",
        "\"md5sum\" (\"attachment\" (\"filename\" {10}\r\nodd \"name\")) (\"en\" \"de\") \"http://x\" 42 (1 \"x\"))",
        "(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 50 (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) ",
        "(\"text\" \"plain\" NIL NIL NIL \"7bit\" 5 1 NIL NIL NIL NIL) 3)",
        " \"mixed\" NIL NIL NIL NIL)"
    ));
    assert_eq!(
        sections(&parts),
        vec![
            ("", 0, "multipart/mixed".to_string()),
            ("1", 1, "text/plain".to_string()),
            ("2", 1, "application/octet-stream".to_string()),
            ("3", 1, "message/rfc822".to_string()),
            ("3.1", 2, "text/plain".to_string()),
        ]
    );
    assert_eq!(parts[1].encoding, None);
    assert_eq!((parts[1].size, parts[1].lines), (0, Some(0)), "NIL type means text/plain");
    let attachment = &parts[2];
    assert_eq!(param(&attachment.params, "name"), Some("odd \"name\""));
    assert_eq!(param(&attachment.disposition_params, "filename"), Some("odd \"name\""));
    assert_eq!(attachment.md5.as_deref(), Some("md5sum"));
    assert_eq!(attachment.language, vec!["en", "de"]);
    assert_eq!(attachment.location.as_deref(), Some("http://x"));
    assert_eq!(parts[3].lines, Some(3));
}

#[test]
fn quirks_spaces_between_bodies_and_string_disposition() {
    let parts = structure(
        r#"( ("text" "plain" () NIL NIL "7bit" 1 1) ("image" "png" ("name" NIL) NIL NIL "base64" 2 NIL "attachment" NIL) "related" )"#,
    );
    assert_eq!(parts.len(), 3);
    assert_eq!(parts[2].disposition.as_deref(), Some("attachment"));
    assert_eq!(param(&parts[2].params, "name"), Some(""));
}

#[test]
fn hostile_nesting_is_refused_not_overflowed() {
    let deep = "(".repeat(10_000) + &")".repeat(10_000);
    assert!(bodystructure::parse(&mut Cursor::new(deep.as_bytes())).is_err());
    // inside a FETCH the item is skipped, the rest of the response survives
    let deep = format!("{}\"x\"{}", "(".repeat(10_000), ")".repeat(10_000));
    let data = fetch(&format!("* 1 FETCH (BODYSTRUCTURE {deep} UID 5)"));
    assert_eq!(data.body_structure, Some(Vec::new()));
    assert_eq!(data.uid, Some(5));
}

#[test]
fn summary_fetch_with_literal_prefix() {
    let data = fetch(concat!(
        "* 12 FETCH (UID 42 FLAGS (\\Seen $Forwarded) INTERNALDATE \" 2-Jun-2025 09:00:00 +0200\" ",
        "RFC822.SIZE 4321 BODYSTRUCTURE (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 4000 80 NIL NIL NIL NIL) ",
        "BODY[]<0> {16}\r\nSubject: x\r\n\r\nab MODSEQ (77))"
    ));
    assert_eq!(data.uid, Some(42));
    assert_eq!(data.flags, Some(vec!["\\Seen".to_string(), "$Forwarded".to_string()]));
    assert_eq!(data.internal_date, Some(1_748_847_600));
    assert_eq!(data.size, Some(4321));
    assert_eq!(data.modseq, Some(77));
    assert_eq!(data.body_structure.map(|parts| parts.len()), Some(1));
    let prefix = data.sections.first().cloned();
    assert_eq!(
        prefix,
        Some(SectionData {
            section: String::new(),
            origin: Some(0),
            data: Some(b"Subject: x\r\n\r\nab".to_vec())
        })
    );
}

#[test]
fn other_fetch_items_are_skipped_by_shape() {
    let data = fetch(concat!(
        "* 3 FETCH (ENVELOPE (NIL \"s\" ((NIL NIL \"a\" \"b\")) NIL NIL NIL NIL NIL NIL NIL) ",
        "X-GM-LABELS (\\Inbox \"x y\") BINARY.SIZE[1] 55 BODY[HEADER.FIELDS (SUBJECT \"X-]\")] {3}\r\nabc ",
        "BODY[2] NIL UID 8 BODY (\"text\" \"plain\" NIL NIL NIL \"7bit\" 3 1))"
    ));
    assert_eq!(data.uid, Some(8));
    assert_eq!(
        data.section("HEADER.FIELDS (SUBJECT \"X-]\")").and_then(|s| s.data.clone()),
        Some(b"abc".to_vec())
    );
    assert_eq!(data.section("2").map(|s| s.data.is_none()), Some(true));
    assert_eq!(data.body_structure.map(|p| p.len()), Some(1));
}

#[test]
fn vanished_esearch_search_and_counts() {
    assert_eq!(
        untagged("* VANISHED (EARLIER) 1:3,5,8:10"),
        Untagged::Vanished {
            earlier: true,
            uids: vec![UidRange::new(1, 3), UidRange::single(5), UidRange::new(8, 10)]
        }
    );
    assert_eq!(
        untagged("* VANISHED 7"),
        Untagged::Vanished { earlier: false, uids: vec![UidRange::single(7)] }
    );
    assert_eq!(
        untagged("* ESEARCH (TAG \"e3\") UID ALL 1:5,7 COUNT 6"),
        Untagged::ESearch(ESearch {
            tag: Some("e3".to_string()),
            uid: true,
            count: Some(6),
            all: Some(vec![UidRange::new(1, 5), UidRange::single(7)]),
            ..ESearch::default()
        })
    );
    assert_eq!(
        untagged("* ESEARCH (TAG \"e4\") UID"),
        Untagged::ESearch(ESearch { tag: Some("e4".into()), uid: true, ..ESearch::default() })
    );
    assert_eq!(
        untagged("* SEARCH 2 84 882 (MODSEQ 917162500)"),
        Untagged::Search { numbers: vec![2, 84, 882], modseq: Some(917_162_500) }
    );
    assert_eq!(untagged("* SEARCH"), Untagged::Search { numbers: vec![], modseq: None });
    assert_eq!(untagged("* 3 EXISTS"), Untagged::Exists(3));
    assert_eq!(untagged("* 2 EXPUNGE"), Untagged::Expunge(2));
    assert_eq!(untagged("* 0 RECENT"), Untagged::Recent(0));
    assert_eq!(untagged("* ENABLED QRESYNC"), Untagged::Enabled(vec!["QRESYNC".to_string()]));
    assert_eq!(untagged("* XYZZY whatever (1 2)"), Untagged::Other("XYZZY".to_string()));
}

#[test]
fn status_and_list() {
    assert_eq!(
        untagged(
            "* STATUS \"Entw&APw-rfe\" (MESSAGES 3 UIDNEXT 4 UIDVALIDITY 1700000000 UNSEEN 1 HIGHESTMODSEQ 9 SIZE 77 )"
        ),
        Untagged::Status {
            raw_name: "Entw&APw-rfe".to_string(),
            items: StatusItems {
                messages: Some(3),
                uid_next: Some(4),
                uid_validity: Some(1_700_000_000),
                unseen: Some(1),
                recent: None,
                highest_modseq: Some(9),
                mailbox_id: None,
            }
        }
    );
    // RFC 8474 §4, as a LIST-STATUS answer
    let Untagged::Status { raw_name, items } =
        untagged("* STATUS \"Sent Items\" (MAILBOXID (F2212ea87-6097-4256-9d51-71338625))")
    else {
        panic!("not a STATUS")
    };
    assert_eq!(raw_name, "Sent Items");
    assert_eq!(items.mailbox_id.as_deref(), Some("F2212ea87-6097-4256-9d51-71338625"));
    assert_eq!(
        untagged("* STATUS INBOX (MAILBOXID (id_1) MESSAGES 2)"),
        Untagged::Status {
            raw_name: "INBOX".to_string(),
            items: StatusItems {
                messages: Some(2),
                mailbox_id: Some("id_1".to_string()),
                ..StatusItems::default()
            }
        }
    );
    let Untagged::List(sent) = untagged(r#"* LIST (\HasNoChildren \Sent) "/" "Sent Items""#) else {
        panic!("not a LIST")
    };
    assert_eq!((sent.raw_name.as_str(), sent.delimiter), ("Sent Items", Some('/')));
    assert!(sent.has_attribute("\\sent") && !sent.from_lsub);
    let Untagged::List(odd) = untagged("* LSUB (\\Noselect) \".\" {5}\r\nodd\"n") else { panic!() };
    assert_eq!((odd.raw_name.as_str(), odd.delimiter, odd.from_lsub), ("odd\"n", Some('.'), true));
    let Untagged::List(inbox) = untagged("* LIST () NIL INBOX") else { panic!() };
    assert_eq!((inbox.raw_name.as_str(), inbox.delimiter), ("INBOX", None));
    let Untagged::List(gmail) =
        untagged(r#"* LIST (\Subscribed) "\\" [Gmail]/x ("CHILDINFO" ("SUBSCRIBED"))"#)
    else {
        panic!()
    };
    assert_eq!((gmail.raw_name.as_str(), gmail.delimiter), ("[Gmail]/x", Some('\\')));
}

#[test]
fn tagged_untagged_conditions_and_codes() {
    assert_eq!(
        parse("e1 OK [CAPABILITY IMAP4rev1 LITERAL+ QRESYNC] Logged in"),
        Response::Tagged(Tagged {
            tag: "e1".into(),
            status: Status::Ok,
            code: Some(Code::Capability(crate::imap::Capabilities::from_atoms([
                &b"IMAP4rev1"[..],
                b"LITERAL+",
                b"QRESYNC"
            ]))),
            text: "Logged in".into(),
        })
    );
    let Response::Tagged(refused) = parse("e2 NO [AUTHENTICATIONFAILED] Authentication failed.")
    else {
        panic!()
    };
    assert_eq!(refused.status, Status::No);
    assert_eq!(
        refused.code,
        Some(Code::Other { name: "AUTHENTICATIONFAILED".into(), arguments: String::new() })
    );
    assert_eq!(
        parse("e3 bad"),
        Response::Tagged(Tagged {
            tag: "e3".into(),
            status: Status::Bad,
            code: None,
            text: String::new()
        })
    );
    assert_eq!(parse("+ idling"), Response::Continuation("idling".into()));
    assert_eq!(parse("+"), Response::Continuation(String::new()));
    let code = |text: &str| match untagged(text) {
        Untagged::Condition { code, .. } => code,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        code("* OK [HIGHESTMODSEQ 715194045007] Highest"),
        Some(Code::HighestModSeq(715_194_045_007))
    );
    assert_eq!(
        code("* OK [UIDVALIDITY 3857529045] UIDs valid"),
        Some(Code::UidValidity(3_857_529_045))
    );
    assert_eq!(code("* OK [UIDNEXT 4392] Predicted next UID"), Some(Code::UidNext(4392)));
    assert_eq!(code("* OK [NOMODSEQ] Sorry"), Some(Code::NoModSeq));
    assert_eq!(code("* OK [CLOSED]"), Some(Code::Closed));
    assert_eq!(
        code("* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited"),
        Some(Code::PermanentFlags(vec!["\\Deleted".into(), "\\Seen".into(), "\\*".into()]))
    );
    assert_eq!(
        code("* OK [COPYUID 38505 304,319:320 3956:3958] Done"),
        Some(Code::CopyUid {
            uid_validity: 38505,
            source: vec![UidRange::single(304), UidRange::new(319, 320)],
            destination: vec![UidRange::new(3956, 3958)]
        })
    );
    assert_eq!(
        code("* OK [UIDNEXT x] bad number"),
        Some(Code::Other { name: "UIDNEXT".into(), arguments: "x".into() })
    );
    assert!(matches!(
        untagged("* BYE shutting down"),
        Untagged::Condition { status: Status::Bye, .. }
    ));
    assert!(matches!(
        untagged("* PREAUTH welcome"),
        Untagged::Condition { status: Status::PreAuth, .. }
    ));
}

#[test]
fn broken_responses_are_errors_not_panics() {
    for text in [
        "",
        "*",
        "* 1 FETCH (UID)",
        "* 1 FETCH (UID 5",
        "* 1 FETCH (BODY[] {10}\r\nabc)",
        "* STATUS x (MESSAGES)",
        "* LIST (\\X \"/\" y",
        "e1 MAYBE",
        "* VANISHED (EARLIER) x",
        "* 99999999999 EXISTS",
    ] {
        assert!(parse_response(text.as_bytes()).is_err(), "{text:?}");
    }
}

#[test]
fn internal_dates() {
    assert_eq!(parse_internal_date(b"17-Jul-1996 02:44:25 -0700"), Some(837_596_665));
    assert_eq!(parse_internal_date(b" 2-Jun-2025 09:00:00 +0200"), Some(1_748_847_600));
    assert_eq!(parse_internal_date(b"29-Feb-2000 00:00:00 +0000"), Some(951_782_400));
    assert_eq!(parse_internal_date(b"32-Feb-2000 00:00:00 +0000"), None);
    assert_eq!(parse_internal_date(b"1-Foo-2000 00:00:00 +0000"), None);
    assert_eq!(parse_internal_date(b"garbage"), None);
}

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    const LIMITS: FrameLimits =
        FrameLimits { max_line: 1 << 16, max_literal: 1 << 16, max_response: 1 << 18 };

    fn parse_all(bytes: &[u8]) {
        let mut rest = bytes;
        while let Ok(Frame::Complete(length)) = find_frame(rest, 0, &LIMITS) {
            let _ = parse_response(&rest[..length]);
            rest = &rest[length..];
        }
        let _ = parse_response(bytes);
        let _ = bodystructure::parse(&mut Cursor::new(bytes));
    }

    fn samples() -> Vec<Vec<u8>> {
        let mut samples: Vec<Vec<u8>> = [
            "* 12 FETCH (UID 42 FLAGS (\\Seen) INTERNALDATE \" 2-Jun-2025 09:00:00 +0200\" RFC822.SIZE 4321 BODY[]<0> {5}\r\nabcde)\r\n",
            "* VANISHED (EARLIER) 1:3,5\r\n* ESEARCH (TAG \"e3\") UID ALL 1:5\r\n",
            "* STATUS \"a\" (MESSAGES 3 UIDNEXT 4)\r\n* LIST (\\Sent) \"/\" {4}\r\nSent\r\n",
            "e1 OK [CAPABILITY IMAP4rev1] done\r\n",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
        samples.push(format!("* 1 FETCH (BODYSTRUCTURE {MIXED_WITH_FORWARD})\r\n").into_bytes());
        samples
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            parse_all(&bytes);
        }

        #[test]
        fn mutated_responses(
            sample in 0usize..5,
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
            cut in any::<usize>(),
        ) {
            let samples = samples();
            let mut bytes = samples[sample % samples.len()].clone();
            for (position, byte) in edits {
                let index = position % bytes.len();
                bytes[index] = byte;
            }
            parse_all(&bytes);
            bytes.truncate(cut % (bytes.len() + 1));
            parse_all(&bytes);
        }
    }
}
