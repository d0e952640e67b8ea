//! XML rendering (for logs and debugging) and parsing (for fixtures and tools).
//!
//! Convention, chosen so that `from_xml(&to_xml(doc)) == doc` for every document:
//! * namespaces are the code pages' XML namespaces from the table (`AirSync`, `Email`, `Gal`, …);
//!   the root element declares its page as the default namespace (`xmlns="AirSync"`) and every
//!   other page used anywhere gets a prefix declaration on the root: the page name in lower
//!   case (`xmlns:email="Email"`, `xmlns:airsyncbase="AirSyncBase"`, `xmlns:gal="Gal"`);
//! * `Content::Empty` is `<Tag/>`, text is `<Tag>escaped text</Tag>` (`Text(vec![])` is
//!   `<Tag></Tag>`);
//! * OPAQUE content is `<Tag base64="opaque">…standard base64…</Tag>` (libwbxml also renders
//!   EAS byte arrays as base64);
//! * text that XML cannot carry verbatim (invalid UTF-8, or control characters other than tab,
//!   LF and CR) is `<Tag base64="text">…</Tag>`; CR is written `&#13;` so XML end-of-line
//!   normalisation cannot eat it;
//! * containers are indented by two spaces per level; the parser ignores whitespace-only text
//!   between child elements and keeps a leaf's text exactly.
//!
//! The parser accepts any prefixes, namespace names case-insensitively and with libwbxml's
//! trailing colon (`AirSync:`), tag names case-insensitively, a DOCTYPE, comments and CDATA.

mod parse;
mod render;

pub use parse::{from_xml, from_xml_with_limits};
pub use render::to_xml;

/// The attribute marking base64 content, and its two values.
const BASE64_ATTRIBUTE: &str = "base64";
const BASE64_OPAQUE: &str = "opaque";
const BASE64_TEXT: &str = "text";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tags::{air_sync, compose_mail, email, email2, gal, search};
    use crate::{Content, Document, Element, Limits, XmlError};

    fn round_trip(document: &Document) -> Document {
        let xml = to_xml(document);
        from_xml(&xml).unwrap_or_else(|error| panic!("{error}\n{xml}"))
    }

    #[test]
    fn renders_namespaces_prefixes_and_markers() {
        let document = Document::new(
            Element::new(air_sync::SYNC)
                .text_child(email::SUBJECT, "a < b & c > d")
                .opaque_child(email2::CONVERSATION_ID, [0xFF, 0x00])
                .empty_child(air_sync::GET_CHANGES),
        );
        assert_eq!(
            to_xml(&document),
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
             <Sync xmlns=\"AirSync\" xmlns:email=\"Email\" xmlns:email2=\"Email2\">\n\
             \x20 <email:Subject>a &lt; b &amp; c &gt; d</email:Subject>\n\
             \x20 <email2:ConversationId base64=\"opaque\">/wA=</email2:ConversationId>\n\
             \x20 <GetChanges/>\n\
             </Sync>\n"
        );
        assert_eq!(round_trip(&document), document);
    }

    #[test]
    fn text_xml_cannot_carry_goes_as_base64_text() {
        for bytes in [&b"bad \xC3\x28 utf8"[..], b"bell \x07", b"\x1B[0m", "\u{FFFE}".as_bytes()] {
            let document = Document::new(Element::with_text(email::SUBJECT, bytes));
            let xml = to_xml(&document);
            assert!(xml.contains("base64=\"text\""), "{xml}");
            assert_eq!(round_trip(&document), document);
        }
    }

    #[test]
    fn whitespace_and_line_ends_survive() {
        for text in ["  padded  ", "\r\n", "a\rb", "\t", "\n\n", "", " "] {
            let document =
                Document::new(Element::new(email::FLAG).text_child(email::SUBJECT, text));
            assert_eq!(round_trip(&document), document, "{text:?}");
        }
        let empty_opaque = Document::new(Element::with_opaque(compose_mail::MIME, Vec::new()));
        assert_eq!(round_trip(&empty_opaque), empty_opaque);
    }

    #[test]
    fn root_page_tags_nested_under_other_pages_stay_unprefixed() {
        let document = Document::new(
            Element::new(search::SEARCH).with_child(
                Element::new(search::PROPERTIES)
                    .with_child(Element::new(gal::PICTURE).text_child(search::STATUS, "1")),
            ),
        );
        let xml = to_xml(&document);
        assert!(xml.contains("<gal:Picture>") && xml.contains("<Status>1</Status>"), "{xml}");
        assert_eq!(round_trip(&document), document);
    }

    #[test]
    fn parses_libwbxml_output() {
        let xml = "<?xml version=\"1.0\"?><!DOCTYPE ActiveSync PUBLIC \"-//MICROSOFT//DTD ActiveSync//EN\" \
                   \"http://www.microsoft.com/\"><SendMail xmlns=\"ComposeMail:\"><ClientId>msg-1</ClientId>\
                   <SaveInSentItems/><MIME>aGVsbG8=</MIME><Subject xmlns=\"Email:\">x</Subject></SendMail>";
        let document = from_xml(xml).expect("parses");
        assert_eq!(document.root.tag, compose_mail::SEND_MAIL);
        assert_eq!(
            document.root.text_of(compose_mail::MIME),
            Some("aGVsbG8="),
            "no marker: plain text"
        );
        assert_eq!(document.root.text_of(email::SUBJECT), Some("x"));
    }

    #[test]
    fn parses_references_and_cdata() {
        let xml =
            "<Subject xmlns=\"Email\">&lt;&#x41;&#66;&amp;&quot;&apos;<![CDATA[<raw>]]></Subject>";
        let document = from_xml(xml).expect("parses");
        assert_eq!(document.root.content, Content::Text(b"<AB&\"'<raw>".to_vec()));
    }

    #[test]
    fn errors() {
        let error = |xml: &str| from_xml(xml).expect_err(xml);
        assert!(matches!(error("<Sync>"), XmlError::MissingNamespace { .. }));
        assert!(matches!(error("<Sync xmlns=\"Nope\"/>"), XmlError::UnknownNamespace { .. }));
        assert!(matches!(error("<x:Sync/>"), XmlError::UnknownNamespace { .. }));
        assert!(matches!(error("<Nope xmlns=\"AirSync\"/>"), XmlError::UnknownElement { .. }));
        assert!(matches!(
            error("<Sync xmlns=\"AirSync\" a=\"1\"/>"),
            XmlError::UnexpectedAttribute { .. }
        ));
        assert!(matches!(
            error("<Sync xmlns=\"AirSync\" base64=\"hex\">00</Sync>"),
            XmlError::InvalidBase64 { .. }
        ));
        assert!(matches!(
            error("<Sync xmlns=\"AirSync\" base64=\"opaque\">!!</Sync>"),
            XmlError::InvalidBase64 { .. }
        ));
        assert!(matches!(
            error("<Sync xmlns=\"AirSync\">x<Add/></Sync>"),
            XmlError::MixedContent { .. }
        ));
        assert!(matches!(
            error("<Sync xmlns=\"AirSync\"><Add/>x</Sync>"),
            XmlError::MixedContent { .. }
        ));
        assert!(matches!(
            error("<Sync xmlns=\"AirSync\"/><Sync xmlns=\"AirSync\"/>"),
            XmlError::OutsideRoot { .. }
        ));
        assert!(matches!(error("<Sync xmlns=\"AirSync\"/>text"), XmlError::OutsideRoot { .. }));
        assert!(matches!(error("<Sync xmlns=\"AirSync\"></Add>"), XmlError::Syntax { .. }));
        assert!(matches!(error("<Sync xmlns=\"AirSync\">&bogus;</Sync>"), XmlError::Syntax { .. }));
        assert!(matches!(error("<Sync xmlns=\"AirSync\">"), XmlError::Syntax { .. }));
        assert_eq!(error("  "), XmlError::NoRoot);
        let limits = Limits { max_depth: 2, max_elements: 3, ..Limits::default() };
        let deep = "<Sync xmlns=\"AirSync\"><Add><Add/></Add></Sync>";
        assert!(matches!(
            from_xml_with_limits(deep, &limits),
            Err(XmlError::TooDeep { limit: 2, .. })
        ));
        let many = "<Sync xmlns=\"AirSync\"><Add/><Add/><Add/></Sync>";
        assert!(matches!(
            from_xml_with_limits(many, &limits),
            Err(XmlError::TooManyElements { limit: 3, .. })
        ));
    }
}
