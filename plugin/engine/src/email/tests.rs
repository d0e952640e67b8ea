//! End-to-end conversion tests over hand-written fixtures (`fixtures/*.eml`), the body
//! preference rules (MS-ASAIRS §2.2.2.12) and hostile input.

use proptest::prelude::*;

use super::parsed::ParsedMessage;
use super::*;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/src/email/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|error| panic!("{path}: {error}"))
}

/// What an IMAP server would report as BODYSTRUCTURE: the structure of the full message.
fn imap_structure(raw: &[u8]) -> Vec<BodyPart> {
    ParsedMessage::parse(raw, true).derived_structure()
}

/// Leaked so conversions (which borrow the summary) can outlive a test expression.
fn full(name: &str, flags: &[&str]) -> &'static MessageSummary {
    let flags = flags.iter().map(|f| f.to_string()).collect();
    Box::leak(Box::new(MessageSummary::from_full_message(42, flags, 1_709_632_800, fixture(name))))
}

/// The summary a host sends with only the first `prefix_len` bytes.
fn summary_with_prefix(name: &str, prefix_len: usize) -> &'static mut MessageSummary {
    let raw = fixture(name);
    Box::leak(Box::new(MessageSummary {
        uid: 7,
        flags: Vec::new(),
        internal_date: 1_709_632_800,
        size: raw.len() as u32,
        body_structure: imap_structure(&raw),
        prefix: raw[..prefix_len.min(raw.len())].to_vec(),
        rendered: None,
    }))
}

fn text_of(selection: &BodySelection<'_>) -> String {
    match &selection.body.data {
        Some(BodyData::Text(text)) => text.clone(),
        Some(BodyData::Mime(bytes)) => String::from_utf8_lossy(bytes).into_owned(),
        None => String::new(),
    }
}

fn select<'a>(email: &ConvertedEmail<'a>, prefs: &[BodyPreference]) -> BodySelection<'a> {
    email.body.select_body(prefs, MimeSupport::Never)
}

fn pref(body_type: BodyType) -> BodyPreference {
    BodyPreference::new(body_type)
}

fn truncated(body_type: BodyType, size: u32) -> BodyPreference {
    BodyPreference { truncation_size: Some(size), ..pref(body_type) }
}

// ---- message fields ----------------------------------------------------------------------

#[test]
fn plain_utf8_message_fields() {
    let summary = full("plain_utf8.eml", &["\\Seen", "\\Flagged", "$label2", "$Forwarded"]);
    let email = convert(summary, "5:42");
    let item = &email.item;
    assert_eq!(item.from, "\"Jürgen Müller\" <juergen@example.de>");
    assert_eq!(item.to, "\"Doe, Jane\" <jane@example.com>, bob@example.com");
    assert_eq!(item.cc, "\"Carol\" <carol@example.org>");
    assert_eq!(item.reply_to, "a@example.com; \"B\" <b@example.com>");
    assert_eq!(item.display_to, "Doe, Jane; bob@example.com");
    assert_eq!(item.subject, "Grüße aus Köln");
    assert_eq!(item.thread_topic, "Grüße aus Köln");
    assert_eq!(item.date_received, "2024-03-05T10:00:00.000Z");
    assert_eq!(item.importance, Importance::High);
    assert!(item.read);
    assert_eq!(item.flag.status, FlagStatus::Active);
    assert_eq!(item.categories, ["Work"]);
    assert_eq!(item.last_verb_executed, LastVerb::Forward);
    assert_eq!(item.message_class, MessageClass::Note);
    assert_eq!(item.content_class, "urn:content-classes:message");
    assert_eq!(item.internet_cpid, 65001);
    assert_eq!(item.native_body_type, NativeBodyType::PlainText);
    assert!(item.attachments.is_empty());
    assert_eq!(item.sender, None);
    assert_eq!(item.conversation_index[0], 1);
    assert_eq!(item.conversation_index[6..], item.conversation_id);

    // The thread root of References decides the conversation.
    let root = MessageSummary::from_full_message(
        1,
        Vec::new(),
        0,
        b"Message-ID: <root@example.de>\r\nSubject: other\r\n\r\nx".to_vec(),
    );
    assert_eq!(convert(&root, "").item.conversation_id, item.conversation_id);

    let body = select(&email, &[pref(BodyType::PlainText)]);
    assert_eq!(text_of(&body), "Grüße aus Köln!\r\nZweite   Zeile.\r\n");
    assert!(!body.body.truncated && !body.needs_full_fetch);
    assert_eq!(body.body.estimated_data_size as usize, text_of(&body).len());
}

#[test]
fn latin1_quoted_printable() {
    let email = convert(full("latin1_qp.eml", &[]), "");
    assert_eq!(email.item.subject, "Café");
    assert_eq!(email.item.internet_cpid, 28591);
    assert_eq!(
        text_of(&select(&email, &[pref(BodyType::PlainText)])),
        "Un café crème, s'il vous plaît. Une trÃ¨s longue ligne qui continue ici.\r\n"
    );
}

#[test]
fn windows_1252() {
    let email = convert(full("windows1252.eml", &[]), "");
    assert_eq!(email.item.internet_cpid, 1252);
    assert_eq!(
        text_of(&select(&email, &[pref(BodyType::PlainText)])),
        "“Smart quotes” cost € 5\r\n"
    );
}

#[test]
fn japanese_charsets() {
    let email = convert(full("iso2022jp.eml", &[]), "");
    assert_eq!(email.item.subject, "こんにちは");
    assert_eq!(email.item.from, "\"山田\" <yamada@example.jp>");
    assert_eq!(email.item.internet_cpid, 50220);
    assert_eq!(text_of(&select(&email, &[pref(BodyType::PlainText)])), "日本語のメールです。\r\n");

    let email = convert(full("shift_jis.eml", &[]), "");
    assert_eq!(email.item.internet_cpid, 932);
    assert_eq!(text_of(&select(&email, &[pref(BodyType::PlainText)])), "東京タワー");
}

#[test]
fn eight_bit_headers_are_utf8_or_latin1() {
    let email = convert(full("eightbit_headers.eml", &[]), "");
    assert_eq!(email.item.from, "\"Élodie\" <elodie@example.fr>");
    assert_eq!(email.item.to, "\"François\" <francois@example.fr>");
    assert_eq!(email.item.subject, "Réunion demain");
    // No charset: us-ascii by RFC 2045, but the 8-bit body is valid UTF-8 and read as such.
    assert_eq!(email.item.internet_cpid, 20127);
    assert_eq!(text_of(&select(&email, &[pref(BodyType::PlainText)])), "Body é\r\n");
}

#[test]
fn alternative_text_and_html() {
    let email = convert(full("alternative.eml", &[]), "");
    assert_eq!(email.item.native_body_type, NativeBodyType::Html);
    let html = select(&email, &[pref(BodyType::Html)]);
    assert!(text_of(&html).contains("<p>HTML version: héllo.</p>"));
    // Type 1 uses the real text/plain alternative, not a conversion.
    assert_eq!(text_of(&select(&email, &[pref(BodyType::PlainText)])), "Plain version: héllo.");
}

#[test]
fn mixed_with_pdf_attachment() {
    let summary = full("mixed_pdf.eml", &[]);
    let email = convert(summary, "5:1234");
    let [pdf] = email.item.attachments.as_slice() else {
        panic!("one attachment expected: {:?}", email.item.attachments);
    };
    assert_eq!(pdf.display_name, "Rapport € 2024.pdf");
    assert_eq!(pdf.file_reference, "5:1234:2");
    assert_eq!(pdf.method, AttachmentMethod::Normal);
    assert_eq!(pdf.content_type, "application/pdf");
    assert!(!pdf.is_inline);
    // 1 033 decoded bytes; the estimate from the encoded size is close.
    assert!((1_000..1_100).contains(&pdf.estimated_data_size), "{}", pdf.estimated_data_size);
    assert_eq!(text_of(&select(&email, &[pref(BodyType::PlainText)])), "See attached.");
}

#[test]
fn related_inline_cid_image() {
    let email = convert(full("related_cid.eml", &[]), "9:1");
    let [logo] = email.item.attachments.as_slice() else {
        panic!("one attachment expected");
    };
    assert_eq!(logo.display_name, "logo.png");
    assert_eq!(logo.content_id.as_deref(), Some("logo.123@example.com"));
    assert!(logo.is_inline);
    assert_eq!(logo.file_reference, "9:1:2");
    assert_eq!(email.item.native_body_type, NativeBodyType::Html);
    assert_eq!(text_of(&select(&email, &[pref(BodyType::PlainText)])), "Hello");
}

#[test]
fn embedded_message_is_one_attachment() {
    let email = convert(full("rfc822_attachment.eml", &[]), "p");
    let names: Vec<_> = email
        .item
        .attachments
        .iter()
        .map(|a| (a.display_name.as_str(), a.method, a.file_reference.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("message.eml", AttachmentMethod::EmbeddedMessage, "p:2"),
            ("notes.txt", AttachmentMethod::Normal, "p:3"),
        ]
    );
    assert_eq!(email.item.thread_topic, "Original");
    assert_eq!(text_of(&select(&email, &[pref(BodyType::PlainText)])), "Forwarding this.");
}

#[test]
fn smime_message_classes_and_mime_support() {
    let signed_summary = full("smime_signed.eml", &[]);
    let signed = convert(signed_summary, "");
    assert_eq!(signed.item.message_class, MessageClass::SmimeMultipartSigned);
    assert_eq!(signed.item.message_class.as_str(), "IPM.Note.SMIME.MultipartSigned");
    assert_eq!(text_of(&select(&signed, &[pref(BodyType::PlainText)])), "This is signed.");

    let opaque_summary = full("smime_opaque.eml", &[]);
    let opaque = convert(opaque_summary, "");
    assert_eq!(opaque.item.message_class.as_str(), "IPM.Note.SMIME");
    assert_eq!(opaque.item.attachments[0].display_name, "smime.p7m");

    // MIMESupport 1: S/MIME messages go out as Type 4 even when HTML is listed first.
    let prefs = [pref(BodyType::Html), pref(BodyType::Mime)];
    let chosen = opaque.body.select_body(&prefs, MimeSupport::SmimeOnly);
    assert_eq!(chosen.body.body_type, BodyType::Mime);
    assert_eq!(chosen.body.data, Some(BodyData::Mime(opaque_summary.prefix.as_slice())));
    let plain_summary = full("alternative.eml", &[]);
    let plain = convert(plain_summary, "");
    assert_eq!(
        plain.body.select_body(&prefs, MimeSupport::SmimeOnly).body.body_type,
        BodyType::Html
    );
    assert_eq!(plain.body.select_body(&prefs, MimeSupport::Always).body.body_type, BodyType::Mime);
}

#[test]
fn calendar_invitation() {
    let email = convert(full("calendar.eml", &[]), "");
    assert_eq!(email.item.message_class.as_str(), "IPM.Schedule.Meeting.Request");
    assert_eq!(email.item.content_class, "urn:content-classes:calendarmessage");
    assert_eq!(email.item.attachments[0].display_name, "invite.ics");
}

#[test]
fn delivery_status_notification() {
    let email = convert(full("dsn.eml", &[]), "");
    assert_eq!(email.item.message_class.as_str(), "REPORT.IPM.Note.NDR");
    assert_eq!(email.item.attachments.len(), 2);
    assert!(
        text_of(&select(&email, &[pref(BodyType::PlainText)]))
            .starts_with("This is the mail system.")
    );
}

#[test]
fn missing_boundary_still_gives_an_item() {
    let email = convert(full("missing_boundary.eml", &[]), "");
    assert_eq!(email.item.subject, "Broken");
    let body = select(&email, &[pref(BodyType::PlainText)]);
    assert!(text_of(&body).contains("text that never meets its boundary"), "{body:?}");
}

// ---- body preferences (MS-ASAIRS §2.2.2.12) ----------------------------------------------

#[test]
fn native_type_wins_when_requested() {
    let email = convert(full("alternative.eml", &[]), "");
    let body = select(&email, &[pref(BodyType::PlainText), pref(BodyType::Html)]);
    assert_eq!(body.body.body_type, BodyType::Html);
    let text_only = convert(full("windows1252.eml", &[]), "");
    let body = select(&text_only, &[pref(BodyType::Html), pref(BodyType::PlainText)]);
    assert_eq!(body.body.body_type, BodyType::PlainText);
}

#[test]
fn conversion_when_native_not_requested() {
    let html_only = convert(full("related_cid.eml", &[]), "");
    let text = select(&html_only, &[pref(BodyType::PlainText)]);
    assert_eq!((text.body.body_type, text_of(&text).as_str()), (BodyType::PlainText, "Hello"));
    let text_only = convert(full("windows1252.eml", &[]), "");
    let html = select(&text_only, &[pref(BodyType::Html)]);
    assert_eq!(text_of(&html), "<div>“Smart quotes” cost € 5<br>\n</div>");
}

#[test]
fn truncation_at_a_char_boundary() {
    let email = convert(full("plain_utf8.eml", &[]), "");
    // "Grüße": 'ü' spans bytes 2..4; a 3-byte limit must not split it.
    let body = select(&email, &[truncated(BodyType::PlainText, 3)]);
    assert_eq!(text_of(&body), "Gr");
    assert!(body.body.truncated && !body.needs_full_fetch);
    assert_eq!(
        body.body.estimated_data_size,
        "Grüße aus Köln!\r\nZweite   Zeile.\r\n".len() as u32
    );
    // A limit above the size is no truncation.
    let body = select(&email, &[truncated(BodyType::PlainText, 10_000)]);
    assert!(!body.body.truncated);
}

#[test]
fn all_or_none_falls_to_the_next_preference() {
    let email = convert(full("alternative.eml", &[]), "");
    let html_all_or_none = BodyPreference { all_or_none: true, ..truncated(BodyType::Html, 20) };
    let body = select(&email, &[html_all_or_none, pref(BodyType::PlainText)]);
    assert_eq!(body.body.body_type, BodyType::PlainText);
    assert_eq!(text_of(&body), "Plain version: héllo.");

    // Nothing fits: the first preference, no data, truncated.
    let text_all_or_none =
        BodyPreference { all_or_none: true, ..truncated(BodyType::PlainText, 5) };
    let body = select(&email, &[html_all_or_none, text_all_or_none]);
    assert_eq!(body.body.body_type, BodyType::Html);
    assert!(body.body.data.is_none() && body.body.truncated);
    assert!(body.body.estimated_data_size > 20);

    // AllOrNone with a body that fits is served whole.
    let fits = BodyPreference { all_or_none: true, ..truncated(BodyType::PlainText, 1_000) };
    assert!(!select(&email, &[fits]).body.truncated);
}

#[test]
fn preview_is_collapsed_plain_text() {
    let email = convert(full("alternative.eml", &[]), "");
    let html_with_preview = BodyPreference { preview: Some(18), ..pref(BodyType::Html) };
    let body = select(&email, &[html_with_preview]);
    assert_eq!(body.body.preview.as_deref(), Some("Plain version: hél"));
    let html_only = convert(full("long_html.eml", &[]), "");
    let long_preview = BodyPreference { preview: Some(1_000), ..truncated(BodyType::Html, 10) };
    let preview = select(&html_only, &[long_preview]).body.preview.unwrap_or_default();
    assert_eq!(preview.chars().count(), 17, "plain part is short: {preview}");
    let spaced = convert(full("plain_utf8.eml", &[]), "");
    let body = select(&spaced, &[BodyPreference { preview: Some(255), ..pref(BodyType::Html) }]);
    assert_eq!(body.body.preview.as_deref(), Some("Grüße aus Köln! Zweite Zeile."));
}

#[test]
fn rtf_or_nothing_requested_gives_plain_text() {
    let email = convert(full("alternative.eml", &[]), "");
    assert_eq!(select(&email, &[]).body.body_type, BodyType::PlainText);
    assert_eq!(select(&email, &[pref(BodyType::Rtf)]).body.body_type, BodyType::PlainText);
}

#[test]
fn mime_body_needs_the_whole_message() {
    let summary = summary_with_prefix("mixed_pdf.eml", 300);
    let email = convert(summary, "");
    let mime = email.body.select_body(&[pref(BodyType::Mime)], MimeSupport::Always);
    assert!(mime.needs_full_fetch && mime.body.truncated);
    assert_eq!(mime.body.estimated_data_size, summary.size);
    // A truncated MIME body can be served from the prefix.
    let mime = email.body.select_body(&[truncated(BodyType::Mime, 200)], MimeSupport::Always);
    assert!(!mime.needs_full_fetch && mime.body.truncated);
    assert_eq!(mime.body.data, Some(BodyData::Mime(&summary.prefix[..200])));
}

// ---- prefixes cut in the middle ------------------------------------------------------------

#[test]
fn prefix_cut_inside_the_html_part() {
    let raw = fixture("long_html.eml");
    let summary = summary_with_prefix("long_html.eml", 4_000);
    let email = convert(summary, "");
    let full_email_summary = MessageSummary::from_full_message(7, Vec::new(), 0, raw);
    let full_email = convert(&full_email_summary, "");
    let full_html = text_of(&select(&full_email, &[pref(BodyType::Html)]));

    assert_eq!(email.item.native_body_type, NativeBodyType::Html);
    assert_eq!(email.item.subject, "Long");
    // Enough bytes in the prefix for the requested truncation: served, no fetch.
    let body = select(&email, &[truncated(BodyType::Html, 1_000)]);
    assert!(body.body.truncated && !body.needs_full_fetch);
    assert_eq!(text_of(&body), full_html[..1_000]);
    // The estimated size comes from the BODYSTRUCTURE (base64 → ~3/4).
    let estimate = body.body.estimated_data_size as f64;
    assert!(
        (estimate / full_html.len() as f64 - 1.0).abs() < 0.05,
        "{estimate} vs {}",
        full_html.len()
    );
    // The whole body was asked for: the full message must be fetched.
    let body = select(&email, &[pref(BodyType::Html)]);
    assert!(body.needs_full_fetch && body.body.truncated);
    assert!(full_html.starts_with(&text_of(&body)));
    // More than the prefix holds: also a fetch.
    assert!(select(&email, &[truncated(BodyType::Html, 20_000)]).needs_full_fetch);
    // The plain part before the cut is complete.
    let plain = select(&email, &[pref(BodyType::PlainText)]);
    assert_eq!((text_of(&plain).as_str(), plain.needs_full_fetch), ("Short plain part.", false));
    // Once fetched, the same selection is complete.
    let body = select(&full_email, &[pref(BodyType::Html)]);
    assert!(!body.needs_full_fetch && !body.body.truncated);
}

#[test]
fn prefix_cut_inside_the_headers() {
    let summary = summary_with_prefix("plain_utf8.eml", 80);
    let email = convert(summary, "");
    assert!(email.item.from.starts_with("\"Jürgen"));
    let body = select(&email, &[truncated(BodyType::PlainText, 100)]);
    assert!(body.needs_full_fetch && body.body.truncated);
    assert_eq!(body.body.estimated_data_size, summary.body_structure[0].size);
}

#[test]
fn attachments_come_from_the_structure_even_when_not_in_the_prefix() {
    let email = convert(summary_with_prefix("mixed_pdf.eml", 150), "1:2");
    assert_eq!(email.item.attachments.len(), 1);
    assert_eq!(email.item.attachments[0].display_name, "Rapport € 2024.pdf");
}

// ---- hostile input ----------------------------------------------------------------------------

#[test]
fn deep_nesting_nul_bytes_and_huge_headers() {
    let mut raw = Vec::new();
    for level in 0..100 {
        raw.extend_from_slice(
            format!("Content-Type: multipart/mixed; boundary=\"b{level}\"\r\n\r\n--b{level}\r\n")
                .as_bytes(),
        );
    }
    raw.extend_from_slice(b"Content-Type: text/plain\r\n\r\ndeep \0 text\r\n");
    let summary = MessageSummary::from_full_message(1, Vec::new(), 0, raw);
    let email = convert(&summary, "");
    assert!(email.item.attachments.len() <= 1000);

    let mut huge = b"Subject: ".to_vec();
    huge.extend(std::iter::repeat_n(b'x', 200_000));
    huge.extend_from_slice(b"\r\nTo: ");
    for i in 0..20_000 {
        huge.extend_from_slice(format!("u{i}@example.com, ").as_bytes());
    }
    huge.extend_from_slice(b"\r\n\r\nbody\0with nul");
    let summary = MessageSummary::from_full_message(1, Vec::new(), 0, huge);
    let email = convert(&summary, "");
    assert_eq!(email.item.subject.chars().count(), 4_096);
    assert!(email.item.to.chars().count() <= 32_768);
    assert_eq!(text_of(&select(&email, &[pref(BodyType::PlainText)])), "bodywith nul");
}

#[test]
fn absurd_declared_sizes_and_empty_input() {
    let summary = summary_with_prefix("mixed_pdf.eml", 400);
    for part in &mut summary.body_structure {
        part.size = u32::MAX;
    }
    summary.size = 50_000_000;
    let email = convert(summary, "");
    assert_eq!(
        email.item.attachments[0].estimated_data_size,
        (u64::from(u32::MAX) * 57 / 78) as u32
    );
    let body = select(&email, &[truncated(BodyType::PlainText, 10)]);
    assert_eq!(text_of(&body), "See attach");

    let empty = MessageSummary::default();
    let email = convert(&empty, "");
    assert_eq!(email.item.subject, "");
    assert_eq!(email.item.date_received, "1970-01-01T00:00:00.000Z");
    assert!(!select(&email, &[pref(BodyType::Html)]).needs_full_fetch);
}

/// The preference lists whose decoding needs differ: each type alone, with and without a
/// preview and truncation, the usual pairs, and nothing usable.
fn preference_lists() -> Vec<Vec<BodyPreference>> {
    let with_preview = |p: BodyPreference| BodyPreference { preview: Some(100), ..p };
    let mut lists = Vec::new();
    for body_type in [BodyType::PlainText, BodyType::Html, BodyType::Rtf, BodyType::Mime] {
        lists.push(vec![pref(body_type)]);
        lists.push(vec![truncated(body_type, 200)]);
        lists.push(vec![with_preview(truncated(body_type, 50))]);
    }
    lists.push(vec![pref(BodyType::Html), pref(BodyType::PlainText)]);
    lists.push(vec![truncated(BodyType::Mime, 100), pref(BodyType::Html)]);
    lists.push(Vec::new());
    lists
}

/// Decoding only what the preferences need selects exactly what decoding everything does.
/// Only the size of a truncated body may differ: it is an estimate when a long part was not
/// decoded to its end, and it must still say that more than the data sent exists.
fn assert_needs_preserve_selection(summary: &MessageSummary, what: &str) {
    let everything = convert(summary, "f");
    for preferences in preference_lists() {
        let needs = BodyNeeds::for_preferences(&preferences);
        let partial = convert_for(summary, "f", needs);
        assert_eq!(partial.item, everything.item, "{what}: item with {preferences:?}");
        for mime_support in [MimeSupport::Never, MimeSupport::Always] {
            let mut selected = partial.body.select_body(&preferences, mime_support);
            let expected = everything.body.select_body(&preferences, mime_support);
            if selected.body.truncated && expected.body.truncated {
                let sent = selected.body.data.as_ref().map_or(0, BodyData::len);
                assert!(
                    selected.body.estimated_data_size as usize > sent,
                    "{what}: estimate {} for {sent} bytes sent",
                    selected.body.estimated_data_size
                );
                selected.body.estimated_data_size = expected.body.estimated_data_size;
            }
            assert_eq!(selected, expected, "{what}: body for {preferences:?}, {mime_support:?}");
        }
    }
}

/// Long bodies, so that the bound on decoding cuts them: every transfer encoding, charsets
/// that grow, keep and shrink in UTF-8, and the type conversions, at several truncations.
#[test]
fn decoding_long_bodies_only_in_part_selects_the_same() {
    let line = "Grüße, ça va? Ünïcödé text & <markup> with  double  spaces\r\n";
    let text: String = line.repeat(600);
    let encodings: [(&str, &str, Vec<u8>); 5] = [
        ("utf-8", "8bit", text.as_bytes().to_vec()),
        ("utf-8", "base64", wrap_base64(text.as_bytes())),
        ("iso-8859-1", "quoted-printable", quoted_printable(&latin1(&text))),
        ("iso-8859-1", "8bit", latin1(&text)),
        ("utf-16le", "base64", wrap_base64(&utf16le(&text))),
    ];
    for (charset, encoding, body) in encodings {
        for subtype in ["plain", "html"] {
            let mut raw = format!(
                "Subject: long\r\nMIME-Version: 1.0\r\nContent-Type: text/{subtype}; \
                 charset={charset}\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n"
            )
            .into_bytes();
            raw.extend_from_slice(&body);
            let summary = MessageSummary::from_full_message(1, Vec::new(), 0, raw);
            let what = format!("text/{subtype} {charset} {encoding}");
            assert_needs_preserve_selection(&summary, &what);
            for size in [1, 255, 5_000, 20_000] {
                for body_type in [BodyType::PlainText, BodyType::Html] {
                    let preferences = [truncated(body_type, size)];
                    let partial =
                        convert_for(&summary, "f", BodyNeeds::for_preferences(&preferences));
                    let everything = convert(&summary, "f");
                    let mut selected = partial.body.select_body(&preferences, MimeSupport::Never);
                    let expected = everything.body.select_body(&preferences, MimeSupport::Never);
                    assert!(selected.body.truncated, "{what}: {size} {body_type:?}");
                    assert!(!selected.needs_full_fetch, "{what}: {size} {body_type:?}");
                    selected.body.estimated_data_size = expected.body.estimated_data_size;
                    assert_eq!(selected, expected, "{what}: {size} {body_type:?}");
                }
            }
        }
    }
}

fn wrap_base64(bytes: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    encoded.as_bytes().chunks(76).flat_map(|line| line.iter().chain(b"\r\n")).copied().collect()
}

fn latin1(text: &str) -> Vec<u8> {
    text.chars().map(|ch| u8::try_from(u32::from(ch)).unwrap_or(b'?')).collect()
}

fn utf16le(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// Every byte outside printable ASCII (and `=`) escaped, soft line breaks every 72 columns.
fn quoted_printable(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut column = 0;
    for &byte in bytes {
        let piece = match byte {
            b'\r' | b'\n' => {
                out.push(byte);
                column = 0;
                continue;
            }
            b' '..=b'~' if byte != b'=' => vec![byte],
            _ => format!("={byte:02X}").into_bytes(),
        };
        if column + piece.len() > 72 {
            out.extend_from_slice(b"=\r\n");
            column = 0;
        }
        column += piece.len();
        out.extend_from_slice(&piece);
    }
    out
}

#[test]
fn decoding_only_the_needed_bodies_selects_the_same() {
    let names = std::fs::read_dir(format!("{}/src/email/fixtures", env!("CARGO_MANIFEST_DIR")))
        .expect("fixtures")
        .map(|entry| entry.expect("fixture").file_name().into_string().expect("name"))
        .collect::<Vec<_>>();
    assert!(names.len() >= 10, "fixtures found: {names:?}");
    for name in names {
        assert_needs_preserve_selection(full(&name, &[]), &name);
        let length = fixture(&name).len();
        for cut in [200, length / 2, length.saturating_sub(10)] {
            assert_needs_preserve_selection(
                summary_with_prefix(&name, cut),
                &format!("{name} cut at {cut}"),
            );
        }
    }
}

fn arbitrary_part() -> impl Strategy<Value = BodyPart> {
    let mime = prop::sample::select(vec![
        ("multipart", "mixed"),
        ("multipart", "alternative"),
        ("multipart", "related"),
        ("text", "plain"),
        ("text", "html"),
        ("text", "calendar"),
        ("message", "rfc822"),
        ("image", "png"),
        ("application", "pkcs7-mime"),
    ]);
    (
        mime,
        "[0-9.]{0,6}",
        0u32..6,
        any::<u32>(),
        prop::option::of("[a-z0-9]{0,3}"),
        prop::option::of("(inline|attachment|x)"),
    )
        .prop_map(
            |((media_type, media_subtype), section, depth, size, encoding, disposition)| BodyPart {
                section,
                depth,
                is_multipart: media_type == "multipart",
                media_type: media_type.into(),
                media_subtype: media_subtype.into(),
                params: vec![
                    ("name*0*".into(), "utf-8''%E2%8".into()),
                    ("charset".into(), "x".into()),
                ],
                content_id: Some("<c>".into()),
                encoding,
                size,
                disposition,
                ..BodyPart::default()
            },
        )
}

/// Bytes that look enough like MIME to reach deep into the parser.
fn mime_like_bytes() -> impl Strategy<Value = Vec<u8>> {
    let token = prop::sample::select(vec![
        &b"Content-Type: multipart/mixed; boundary=b\r\n"[..],
        b"Content-Type: text/html; charset=iso-2022-jp\r\n",
        b"Content-Type: message/rfc822\r\n",
        b"Content-Transfer-Encoding: base64\r\n",
        b"Content-Transfer-Encoding: quoted-printable\r\n",
        b"Subject: =?utf-8?q?=C3?=\r\n",
        b"\r\n",
        b"--b\r\n",
        b"--b--\r\n",
        b"<p>&amp;&#x110000;<script>",
        b"=E9=\r\n",
        b"\x00\xff\xc3",
    ]);
    prop::collection::vec(
        prop_oneof![token.prop_map(<[u8]>::to_vec), prop::collection::vec(any::<u8>(), 0..16)],
        0..40,
    )
    .prop_map(|chunks| chunks.concat())
}

proptest! {
    // No regression files: the crate's directory belongs to others; shrunk inputs are printed.
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn never_panics(
        prefix in prop_oneof![prop::collection::vec(any::<u8>(), 0..512), mime_like_bytes()],
        structure in prop::collection::vec(arbitrary_part(), 0..12),
        size in any::<u32>(),
        flags in prop::collection::vec("[\\\\$]?[A-Za-z0-9 ]{0,8}", 0..4),
        truncation in prop::option::of(0u32..600),
        preview in prop::option::of(0u32..300),
        all_or_none in any::<bool>(),
    ) {
        let summary = MessageSummary { uid: 1, flags, internal_date: i64::from(size) * 1000, size, body_structure: structure, prefix, rendered: None };
        let email = convert(&summary, "f");
        assert_needs_preserve_selection(&summary, "generated");
        for body_type in [BodyType::PlainText, BodyType::Html, BodyType::Rtf, BodyType::Mime] {
            let preference = BodyPreference { body_type, truncation_size: truncation, all_or_none, preview };
            let alone = email.body.select_body(&[preference], MimeSupport::SmimeOnly);
            // A truncated preference never gets more bytes than it allows (RTF falls back to
            // untruncated plain text).
            let data_len = match &alone.body.data {
                Some(BodyData::Text(text)) => text.len(),
                Some(BodyData::Mime(bytes)) => bytes.len(),
                None => 0,
            };
            if let (Some(limit), false) = (truncation, body_type == BodyType::Rtf) {
                prop_assert!(data_len <= limit as usize, "{data_len} > {limit}");
            }
            prop_assert!(alone.body.preview.as_ref().is_none_or(|p| p.chars().count() <= 255));
            let with_fallback = [preference, pref(BodyType::PlainText)];
            let _ = email.body.select_body(&with_fallback, MimeSupport::Always);
        }
        // The same bytes as a full message take the other path.
        let whole = MessageSummary::from_full_message(1, Vec::new(), 0, summary.prefix.clone());
        let _ = convert(&whole, "");
    }
}
