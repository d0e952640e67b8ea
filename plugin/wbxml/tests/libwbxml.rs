//! Cross-check against libwbxml 0.11.8 (Debian `libwbxml2-utils`: `wbxml2xml`, `xml2wbxml`).
//!
//! * our encoder → `wbxml2xml -l ACTIVESYNC` → the same tree (namespace, libwbxml's name for
//!   the tag, text; OPAQUE as libwbxml shows it);
//! * libwbxml-style XML → `xml2wbxml -n -a` → our decoder → the same document;
//! * libwbxml's own header variants decode.
//!
//! libwbxml 0.11.8 lacks Find (page 25), MeetingResponse 0x10/0x11 and Provision 0x3B, and
//! names 66 tags differently (DISCREPANCIES.md #2–#10, #15): `tests/data/libwbxml-0.11.8-names.tsv`
//! maps every spec tag to libwbxml's name, or `-` for the unknown ones, which are left out.
//!
//! These tests fail (they do not skip) when the tools are missing.

mod common;
#[path = "../benches/support/sync_response.rs"]
mod sync_response;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use eas_wbxml::{
    Content, DecodeError, Document, Element, EncodedElement, Limits, Tag, decode, encode, from_xml,
    page_namespace, tags,
};
use proptest::prelude::*;
use quick_xml::NsReader;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

// ---------------------------------------------------------------------------------------------
// libwbxml's view of the code pages

struct LibwbxmlTag {
    name: String,
    /// WBXML_TAG_OPTION_BINARY: shown as base64, encoded from base64 to OPAQUE.
    binary: bool,
}

/// (page, token) → libwbxml 0.11.8's name, for the tags it knows.
fn libwbxml_tags() -> &'static HashMap<Tag, LibwbxmlTag> {
    static TABLE: OnceLock<HashMap<Tag, LibwbxmlTag>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let path =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/libwbxml-0.11.8-names.tsv");
        let text = std::fs::read_to_string(&path).expect("tests/data/libwbxml-0.11.8-names.tsv");
        let mut table = HashMap::new();
        let mut rows = 0;
        for line in text.lines().filter(|line| !line.starts_with('#')).skip(1) {
            let fields: Vec<&str> = line.split('\t').collect();
            let [page, token, spec_name, libwbxml_name, binary] = fields[..] else {
                panic!("bad row {line:?}")
            };
            let page: u8 = page.parse().expect("page");
            let token = u8::from_str_radix(token.trim_start_matches("0x"), 16).expect("token");
            let tag = Tag::from_token(page, token).expect("row is a spec tag");
            assert_eq!(tag.name(), spec_name, "{line}");
            rows += 1;
            if libwbxml_name != "-" {
                table.insert(
                    tag,
                    LibwbxmlTag { name: libwbxml_name.to_string(), binary: binary == "yes" },
                );
            }
        }
        assert_eq!(rows, Tag::all().len(), "the name map covers every spec tag");
        table
    })
}

fn known_to_libwbxml(tag: Tag) -> bool {
    libwbxml_tags().contains_key(&tag)
}

fn libwbxml_name(tag: Tag) -> &'static str {
    &libwbxml_tags()[&tag].name
}

fn is_binary(tag: Tag) -> bool {
    libwbxml_tags().get(&tag).is_some_and(|entry| entry.binary)
}

fn libwbxml_namespace(tag: Tag) -> String {
    format!("{}:", page_namespace(tag.page()).expect("page"))
}

fn uses_only_known_tags(element: &Element) -> bool {
    known_to_libwbxml(element.tag) && element.child_elements().iter().all(uses_only_known_tags)
}

// ---------------------------------------------------------------------------------------------
// Running the tools

fn scratch_path(extension: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("eas-wbxml-libwbxml-{}-{n}.{extension}", std::process::id()))
}

/// Runs `tool args… -o OUT IN` on `input`, returning OUT's bytes.
fn run_tool(tool: &str, args: &[&str], input: &[u8], in_ext: &str, out_ext: &str) -> Vec<u8> {
    // The tools are fast; serialising keeps temp files and error output readable.
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let input_path = scratch_path(in_ext);
    let output_path = scratch_path(out_ext);
    std::fs::write(&input_path, input).expect("write scratch input");
    let output =
        Command::new(tool).args(args).arg("-o").arg(&output_path).arg(&input_path).output();
    let output = match output {
        Ok(output) => output,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => panic!(
            "`{tool}` not found: the libwbxml cross-check needs Debian's libwbxml2-utils 0.11.8 \
             (apt-get install libwbxml2-utils)"
        ),
        Err(error) => panic!("running {tool}: {error}"),
    };
    let result = std::fs::read(&output_path);
    let _ = std::fs::remove_file(&input_path);
    let _ = std::fs::remove_file(&output_path);
    assert!(
        output.status.success(),
        "{tool} {args:?} failed: {}\n{}\ninput:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(input)
    );
    result.unwrap_or_else(|error| panic!("{tool} wrote no output: {error}"))
}

fn wbxml2xml(wbxml: &[u8]) -> String {
    // -m 0: compact, -k: keep whitespace in text (libwbxml trims it otherwise).
    let xml = run_tool("wbxml2xml", &["-l", "ACTIVESYNC", "-m", "0", "-k"], wbxml, "wbxml", "xml");
    String::from_utf8(xml).expect("wbxml2xml output is UTF-8")
}

fn xml2wbxml(xml: &str, args: &[&str]) -> Vec<u8> {
    run_tool("xml2wbxml", args, xml.as_bytes(), "xml", "wbxml")
}

// ---------------------------------------------------------------------------------------------
// Comparing trees

/// An element as libwbxml shows it in XML.
#[derive(Debug, PartialEq, Eq)]
struct Node {
    namespace: String,
    name: String,
    text: String,
    children: Vec<Node>,
}

/// Parses `wbxml2xml` output into nodes (namespace URI, local name, text).
fn parse_libwbxml_xml(xml: &str) -> Node {
    let mut reader = NsReader::from_str(xml);
    let mut stack: Vec<Node> = Vec::new();
    let mut root = None;
    loop {
        let (namespace, event) =
            reader.read_resolved_event().unwrap_or_else(|e| panic!("{e}\n{xml}"));
        let namespace = match namespace {
            ResolveResult::Bound(namespace) => namespace.0.to_string(),
            _ => String::new(),
        };
        let close = matches!(event, Event::End(_) | Event::Empty(_));
        match event {
            Event::Start(start) | Event::Empty(start) => {
                let local_name = start.local_name();
                let name: &str = local_name.as_ref();
                stack.push(Node {
                    namespace,
                    name: name.to_string(),
                    text: String::new(),
                    children: Vec::new(),
                });
            }
            Event::Text(text) => {
                if let Some(node) = stack.last_mut() {
                    // Raw, not end-of-line normalised: wbxml2xml writes CR bytes as they are.
                    node.text.push_str(&text.into_inner());
                }
            }
            Event::GeneralRef(reference) => {
                let c = match reference.resolve_char_ref().expect("valid reference") {
                    Some(c) => c,
                    None => match &*reference {
                        "lt" => '<',
                        "gt" => '>',
                        "amp" => '&',
                        "quot" => '"',
                        "apos" => '\'',
                        other => panic!("entity {other} in libwbxml output"),
                    },
                };
                stack.last_mut().expect("reference inside an element").text.push(c);
            }
            Event::Eof => break,
            _ => {}
        }
        if close {
            let node = stack.pop().expect("balanced");
            match stack.last_mut() {
                Some(parent) => parent.children.push(node),
                None => root = Some(node),
            }
        }
    }
    root.expect("libwbxml produced a root element")
}

/// How libwbxml 0.11.8 shows `element`: its name, binary tags as base64, OPAQUE elsewhere as the
/// raw bytes, an empty string like an empty element.
fn expected_node(element: &Element) -> Node {
    let content_text = |bytes: &[u8]| {
        if is_binary(element.tag) {
            STANDARD.encode(bytes)
        } else {
            String::from_utf8(bytes.to_vec()).expect("cross-check documents use UTF-8 leaf content")
        }
    };
    let (text, children) = match &element.content {
        Content::Empty => (String::new(), Vec::new()),
        Content::Text(bytes) | Content::Opaque(bytes) => (content_text(bytes), Vec::new()),
        Content::Children(children) => {
            (String::new(), children.iter().map(expected_node).collect())
        }
        Content::Encoded(encoded) => {
            return expected_node(&encoded.decode().expect("an encoded element decodes"));
        }
    };
    Node {
        namespace: libwbxml_namespace(element.tag),
        name: libwbxml_name(element.tag).to_string(),
        text,
        children,
    }
}

/// Our encoder → wbxml2xml → same tree.
fn check_encoded_by_us_decoded_by_libwbxml(document: &Document, what: &str) {
    let bytes = encode(document).expect("encodes");
    let xml = wbxml2xml(&bytes);
    let actual = parse_libwbxml_xml(&xml);
    assert_eq!(actual, expected_node(&document.root), "{what}: wbxml2xml disagrees\n{xml}");
}

/// Renders a document as XML libwbxml's `xml2wbxml` understands: the ActiveSync DOCTYPE (without
/// it only an AirSync root is recognised), libwbxml names, `Ns:` namespaces declared where the
/// page changes, binary tags in base64.
fn libwbxml_xml(document: &Document) -> String {
    let mut out = String::from(
        "<?xml version=\"1.0\"?>\n<!DOCTYPE ActiveSync PUBLIC \"-//MICROSOFT//DTD ActiveSync//EN\" \
         \"http://www.microsoft.com/\">\n",
    );
    write_libwbxml_element(&document.root, None, &mut out);
    out
}

fn write_libwbxml_element(element: &Element, parent_page: Option<u8>, out: &mut String) {
    let name = libwbxml_name(element.tag);
    out.push('<');
    out.push_str(name);
    if parent_page != Some(element.tag.page()) {
        out.push_str(&format!(" xmlns=\"{}\"", libwbxml_namespace(element.tag)));
    }
    let body = match &element.content {
        Content::Empty => None,
        Content::Text(bytes) | Content::Opaque(bytes) if is_binary(element.tag) => {
            Some(STANDARD.encode(bytes))
        }
        Content::Text(bytes) | Content::Opaque(bytes) => {
            Some(escape(std::str::from_utf8(bytes).expect("UTF-8")))
        }
        Content::Children(children) => {
            out.push('>');
            for child in children {
                write_libwbxml_element(child, Some(element.tag.page()), out);
            }
            out.push_str(&format!("</{name}>"));
            return;
        }
        Content::Encoded(_) => unreachable!("only documents for our encoder hold encoded elements"),
    };
    match body {
        None => out.push_str("/>"),
        Some(body) => out.push_str(&format!(">{body}</{name}>")),
    }
}

/// CR as a character reference: expat would otherwise turn CR LF into LF.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('\r', "&#13;")
}

/// What our decoder must return for libwbxml's encoding of `document`: binary tags as OPAQUE,
/// other leaves as STR_I, an empty string as an empty element.
fn libwbxml_normal_form(element: &Element) -> Element {
    let content = match &element.content {
        Content::Empty => Content::Empty,
        Content::Text(bytes) | Content::Opaque(bytes)
            if bytes.is_empty() && !is_binary(element.tag) =>
        {
            Content::Empty
        }
        Content::Text(bytes) | Content::Opaque(bytes) if is_binary(element.tag) => {
            Content::Opaque(bytes.clone())
        }
        Content::Text(bytes) | Content::Opaque(bytes) => Content::Text(bytes.clone()),
        Content::Children(children) => {
            Content::Children(children.iter().map(libwbxml_normal_form).collect())
        }
        Content::Encoded(_) => unreachable!("only documents for our encoder hold encoded elements"),
    };
    Element { tag: element.tag, content }
}

/// libwbxml-style XML → xml2wbxml -n -a → our decoder → same document.
fn check_encoded_by_libwbxml_decoded_by_us(document: &Document, what: &str) {
    let xml = libwbxml_xml(document);
    let bytes = xml2wbxml(&xml, &["-n", "-a", "-k"]);
    assert_eq!(&bytes[..4], &[0x03, 0x01, 0x6A, 0x00], "{what}: -n -a gives the EAS header");
    let decoded =
        decode(&bytes, &Limits::default()).unwrap_or_else(|e| panic!("{what}: {e}\n{xml}"));
    assert_eq!(decoded.root, libwbxml_normal_form(&document.root), "{what}\n{xml}");
}

// ---------------------------------------------------------------------------------------------
// Documents

/// One document per page and content style, holding every libwbxml-known tag of the page as a
/// leaf (binary tags get arbitrary bytes, others UTF-8 text or printable OPAQUE or nothing).
fn every_known_tag_documents() -> Vec<(String, Document)> {
    let known: Vec<Tag> = Tag::all().filter(|&tag| known_to_libwbxml(tag)).collect();
    let mut documents = Vec::new();
    for page in known.chunk_by(|a, b| a.page() == b.page()) {
        for style in 0..3 {
            let mut root = Element::new(page[0]);
            for (index, &tag) in page.iter().enumerate() {
                root.push(match (style + index) % 3 {
                    _ if is_binary(tag) => {
                        Element::with_opaque(tag, [0x00, 0xFF, 0x10, index as u8])
                    }
                    0 => Element::with_text(tag, format!("{} é <&> {index}", tag.name())),
                    1 => Element::with_opaque(tag, format!("opaque-{index}").into_bytes()),
                    _ => Element::new(tag),
                });
            }
            documents.push((format!("page {} style {style}", page[0].page()), Document::new(root)));
        }
    }
    assert_eq!(known.len(), 561, "libwbxml 0.11.8 knows 561 of the 586 tags");
    documents
}

/// Every page's tags nested inside an AirSync root, so SWITCH_PAGE runs between all pages.
fn all_pages_document() -> Document {
    let mut root = Element::new(tags::air_sync::SYNC);
    for (_, document) in every_known_tag_documents().into_iter().step_by(3) {
        root.push(document.root);
    }
    Document::new(root)
}

fn golden_vectors_known_to_libwbxml() -> Vec<(String, Document)> {
    let vectors: Vec<(String, Document)> = common::vectors()
        .into_iter()
        .filter(|vector| !vector.name.starts_with("find-"))
        .map(|vector| {
            let document =
                decode(&vector.bytes(), &Limits::default()).expect("golden vector decodes");
            (vector.name, document)
        })
        .collect();
    for (name, document) in &vectors {
        assert!(uses_only_known_tags(&document.root), "{name} uses a tag libwbxml 0.11.8 lacks");
    }
    vectors
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn libwbxml_decodes_our_encoding_of_every_tag_it_knows() {
    for (what, document) in every_known_tag_documents() {
        check_encoded_by_us_decoded_by_libwbxml(&document, &what);
    }
    check_encoded_by_us_decoded_by_libwbxml(&all_pages_document(), "all pages nested");
}

#[test]
fn libwbxml_decodes_our_golden_vectors() {
    for (name, document) in golden_vectors_known_to_libwbxml() {
        check_encoded_by_us_decoded_by_libwbxml(&document, &name);
    }
}

#[test]
fn we_decode_libwbxml_encoding_of_every_tag_it_knows() {
    for (what, document) in every_known_tag_documents() {
        check_encoded_by_libwbxml_decoded_by_us(&document, &what);
    }
    check_encoded_by_libwbxml_decoded_by_us(&all_pages_document(), "all pages nested");
}

#[test]
fn we_decode_libwbxml_encoding_of_the_golden_vectors() {
    for (name, document) in golden_vectors_known_to_libwbxml() {
        check_encoded_by_libwbxml_decoded_by_us(&document, &name);
    }
}

/// `document` with every element at `depth` below the root encoded ahead ([`EncodedElement`]).
fn with_elements_encoded_ahead(element: &Element, depth: usize) -> Element {
    match (&element.content, depth) {
        (_, 0) => EncodedElement::encode(element).expect("encodes").into(),
        (Content::Children(children), _) => Element::with_children(
            element.tag,
            children.iter().map(|child| with_elements_encoded_ahead(child, depth - 1)).collect(),
        ),
        _ => element.clone(),
    }
}

#[test]
fn libwbxml_decodes_documents_with_elements_encoded_ahead() {
    // the Sync page of the render-ahead: Add elements made earlier, spliced into the page
    let page = sync_response::sync_response(100);
    let mut documents = vec![("benchmark Sync response".to_string(), page)];
    documents.push(("all pages nested".to_string(), all_pages_document()));
    documents.extend(golden_vectors_known_to_libwbxml());
    for (what, document) in documents {
        for depth in 1..=3 {
            let spliced = Document::new(with_elements_encoded_ahead(&document.root, depth));
            check_encoded_by_us_decoded_by_libwbxml(&spliced, &format!("{what}, depth {depth}"));
            let bytes = encode(&spliced).expect("encodes");
            assert_eq!(bytes, encode(&document).expect("encodes"), "{what}, depth {depth}");
        }
    }
}

#[test]
fn libwbxml_agrees_on_the_benchmark_input() {
    let document = sync_response::sync_response(100);
    check_encoded_by_us_decoded_by_libwbxml(&document, "benchmark Sync response");
    check_encoded_by_libwbxml_decoded_by_us(&document, "benchmark Sync response");
}

#[test]
fn libwbxml_and_we_agree_on_the_spec_vectors_bytes() {
    // The four EAS-NOTES §2.5 encodings: libwbxml's encoder produces exactly the spec bytes.
    for vector in common::vectors().into_iter().filter(|vector| vector.name.starts_with("spec-")) {
        let document = from_xml(&vector.xml).expect("vector XML");
        let bytes = xml2wbxml(&libwbxml_xml(&document), &["-n", "-a", "-k"]);
        assert_eq!(bytes, vector.bytes(), "{}", vector.name);
    }
}

#[test]
fn we_decode_libwbxml_headers_with_public_id_zero_and_a_string_table() {
    let document = all_pages_document();
    let xml = libwbxml_xml(&document);
    // -n without -a: public id 0 + index into a string table holding the DTD name.
    let bytes = xml2wbxml(&xml, &["-n", "-k"]);
    assert_eq!(&bytes[..3], &[0x03, 0x00, 0x00], "public id 0, string-table index 0");
    let decoded = decode(&bytes, &Limits::default()).expect("tolerated header");
    assert_eq!(decoded.root, libwbxml_normal_form(&document.root));
    // libwbxml's default also moves repeated strings into the table (STR_T), which EAS never uses.
    let repeated = Document::new(
        Element::new(tags::ping::PING)
            .text_child(tags::ping::CLASS, "Email")
            .text_child(tags::ping::CLASS, "Email"),
    );
    let bytes = xml2wbxml(&libwbxml_xml(&repeated), &[]);
    assert!(
        matches!(
            decode(&bytes, &Limits::default()),
            Err(DecodeError::ForbiddenToken { name: "STR_T", .. })
        ),
        "STR_T is refused"
    );
}

fn known_tag() -> impl Strategy<Value = Tag> {
    prop::sample::select(Tag::all().filter(|&tag| known_to_libwbxml(tag)).collect::<Vec<_>>())
}

/// Random documents over the tags libwbxml knows, with content both tools represent alike.
fn known_document() -> impl Strategy<Value = Document> {
    let leaf = (
        known_tag(),
        prop_oneof![Just(0u8), Just(1), Just(2)],
        "[a-zA-Z0-9 <>&é€-]{1,12}",
        any::<[u8; 3]>(),
    )
        .prop_map(|(tag, kind, text, bytes)| match kind {
            _ if is_binary(tag) => Element::with_opaque(tag, bytes),
            0 => Element::new(tag),
            1 => Element::with_text(tag, text),
            _ => Element::with_opaque(tag, text.into_bytes()),
        });
    leaf.prop_recursive(4, 48, 5, |inner| {
        (known_tag(), prop::collection::vec(inner, 1..5))
            .prop_map(|(tag, children)| Element::with_children(tag, children))
    })
    .prop_map(Document::new)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn random_documents_agree_with_libwbxml_both_ways(document in known_document()) {
        check_encoded_by_us_decoded_by_libwbxml(&document, "random document");
        check_encoded_by_libwbxml_decoded_by_us(&document, "random document");
    }
}
