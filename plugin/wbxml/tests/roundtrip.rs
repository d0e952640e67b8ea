//! Round-trip properties over generated documents that use every tag of every page:
//! encode → decode is the identity, re-encoding a decoded document gives identical bytes, and
//! XML rendering → parsing is the identity. Plus: arbitrary and mutated input never panics.

use eas_wbxml::{Content, Document, Element, Limits, Tag, decode, encode, from_xml, tags, to_xml};
use proptest::prelude::*;

fn any_tag() -> impl Strategy<Value = Tag> {
    prop::sample::select(Tag::all().collect::<Vec<_>>())
}

/// Leaf content: empty, text (arbitrary non-NUL bytes, including invalid UTF-8 and control
/// characters, or arbitrary Unicode), or opaque (any bytes).
fn leaf_content() -> impl Strategy<Value = Content> {
    prop_oneof![
        Just(Content::Empty),
        prop::collection::vec(1u8..=255, 0..48).prop_map(Content::Text),
        any::<String>().prop_map(|text| Content::Text(text.replace('\0', "").into_bytes())),
        "[ -~\\t\\r\\n]{0,24}".prop_map(|text| Content::Text(text.into_bytes())),
        prop::collection::vec(any::<u8>(), 0..48).prop_map(Content::Opaque),
    ]
}

fn any_element() -> impl Strategy<Value = Element> {
    let leaf = (any_tag(), leaf_content()).prop_map(|(tag, content)| Element { tag, content });
    leaf.prop_recursive(5, 96, 6, |inner| {
        (any_tag(), prop::collection::vec(inner, 1..6))
            .prop_map(|(tag, children)| Element::with_children(tag, children))
    })
}

fn any_document() -> impl Strategy<Value = Document> {
    any_element().prop_map(Document::new)
}

fn assert_round_trips(document: &Document) {
    let bytes = encode(document).expect("current tags without NUL in text encode");
    let decoded = decode(&bytes, &Limits::default()).expect("our own output decodes");
    assert_eq!(&decoded, document);
    assert_eq!(encode(&decoded).expect("re-encodes"), bytes);
    let xml = to_xml(document);
    assert_eq!(&from_xml(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}")), document);
}

proptest! {
    #[test]
    fn encode_decode_and_xml_round_trip(document in any_document()) {
        assert_round_trips(&document);
    }

    #[test]
    fn arbitrary_bodies_never_panic(body in prop::collection::vec(any::<u8>(), 0..256)) {
        let input = [&[0x03, 0x01, 0x6A, 0x00][..], &body].concat();
        let _ = decode(&input, &Limits::default());
        let _ = decode(&body, &Limits::default());
    }

    #[test]
    fn mutated_documents_never_panic_and_stay_stable(
        document in any_document(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = encode(&document).expect("encodes");
        for (index, value) in flips {
            let at = index.index(bytes.len());
            bytes[at] = value;
        }
        if let Ok(decoded) = decode(&bytes, &Limits::default()) {
            // Whatever decodes and has no legacy tags re-encodes to something that decodes the same.
            if let Ok(again) = encode(&decoded) {
                prop_assert_eq!(decode(&again, &Limits::default()), Ok(decoded.clone()));
            }
            let xml = to_xml(&decoded);
            prop_assert_eq!(from_xml(&xml), Ok(decoded));
        }
    }
}

#[test]
fn every_tag_as_root_leaf_and_container() {
    for tag in Tag::all() {
        assert_round_trips(&Document::new(Element::with_text(tag, "x")));
        assert_round_trips(&Document::new(Element::new(tag)));
        assert_round_trips(&Document::new(
            Element::new(tags::air_sync::SYNC).with_child(Element::new(tag).text_child(tag, "1")),
        ));
        assert_round_trips(&Document::new(
            Element::new(tag).opaque_child(tags::air_sync::SYNC, [0, 1, 2]),
        ));
    }
}

#[test]
fn one_document_with_every_tag_of_every_page() {
    let mut root = Element::new(tags::air_sync::SYNC);
    let all: Vec<Tag> = Tag::all().collect();
    for page in all.chunk_by(|a, b| a.page() == b.page()) {
        let mut container = Element::new(page[0]);
        for (index, &tag) in page.iter().enumerate() {
            container.push(match index % 3 {
                0 => Element::with_text(tag, tag.name()),
                1 => Element::with_opaque(tag, tag.name().as_bytes().to_vec()),
                _ => Element::new(tag),
            });
        }
        root.push(container);
    }
    assert_eq!(root.child_elements().len(), 25, "every page but AirNotify (legacy only) has tags");
    assert_round_trips(&Document::new(root));
}

#[test]
fn legacy_tags_decode_and_render_but_never_encode() {
    for tag in Tag::all_legacy() {
        let mut bytes = vec![0x03, 0x01, 0x6A, 0x00, 0x00, tag.page(), tag.token()];
        if tag.page() == 0 {
            bytes.drain(4..6);
        }
        let document =
            decode(&bytes, &Limits::default()).unwrap_or_else(|e| panic!("{tag:?}: {e}"));
        assert_eq!(document.root.tag, tag);
        assert!(document.root.tag.is_legacy());
        assert_eq!(from_xml(&to_xml(&document)), Ok(document.clone()));
        assert!(encode(&document).is_err());
    }
}
