//! XML text → [`Document`] (convention in `xml/mod.rs`), with quick-xml's namespace reader and
//! an explicit stack.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::{NsReader, XmlVersion};

use super::{BASE64_ATTRIBUTE, BASE64_OPAQUE, BASE64_TEXT};
use crate::error::XmlError;
use crate::model::{Content, Document, Element};
use crate::{Limits, Tag};

/// Parses XML written by [`crate::to_xml`] (or by hand, or by libwbxml's `wbxml2xml`) with the
/// default [`Limits`].
pub fn from_xml(xml: &str) -> Result<Document, XmlError> {
    from_xml_with_limits(xml, &Limits::DEFAULT)
}

/// [`from_xml`] with caller-set depth and element-count limits (the size limits do not apply).
pub fn from_xml_with_limits(xml: &str, limits: &Limits) -> Result<Document, XmlError> {
    let mut parser = Parser {
        reader: NsReader::from_str(xml),
        open: Vec::new(),
        root: None,
        element_count: 0,
        limits,
    };
    loop {
        let position = parser.reader.buffer_position();
        let (namespace, event) = match parser.reader.read_resolved_event() {
            Ok(resolved) => resolved,
            Err(error) => {
                let message = error.to_string();
                return Err(XmlError::Syntax { position: parser.reader.error_position(), message });
            }
        };
        match event {
            Event::Start(start) => {
                let tag = resolve_tag(namespace, &start, position)?;
                let marker = base64_marker(&start, position)?;
                parser.open(tag, marker, position)?;
            }
            Event::Empty(start) => {
                let tag = resolve_tag(namespace, &start, position)?;
                let marker = base64_marker(&start, position)?;
                parser.open(tag, marker, position)?;
                parser.close(position, true)?;
            }
            Event::End(_) => parser.close(position, false)?,
            Event::Text(text) => parser.text(&text.xml10_content(), position)?,
            Event::CData(data) => {
                parser.text(&data.xml10_content(), position)?;
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref() {
                    Ok(Some(c)) => c,
                    Ok(None) => predefined_entity(&reference).ok_or_else(|| XmlError::Syntax {
                        position,
                        message: format!("unknown entity &{};", &*reference),
                    })?,
                    Err(error) => {
                        return Err(XmlError::Syntax { position, message: error.to_string() });
                    }
                };
                parser.text(resolved.encode_utf8(&mut [0; 4]), position)?;
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
            Event::Eof if !parser.open.is_empty() => {
                return Err(XmlError::Syntax {
                    position,
                    message: "unclosed element at end of input".into(),
                });
            }
            Event::Eof => break,
        }
    }
    parser.root.map(Document::new).ok_or(XmlError::NoRoot)
}

/// How the element's text is to be read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Marker {
    Plain,
    Base64Opaque,
    Base64Text,
}

struct OpenElement {
    tag: Tag,
    marker: Marker,
    text: String,
    children: Vec<Element>,
}

struct Parser<'a, 'x> {
    reader: NsReader<&'x [u8]>,
    open: Vec<OpenElement>,
    root: Option<Element>,
    element_count: usize,
    limits: &'a Limits,
}

impl Parser<'_, '_> {
    fn open(&mut self, tag: Tag, marker: Marker, position: u64) -> Result<(), XmlError> {
        if self.root.is_some() {
            return Err(XmlError::OutsideRoot { position });
        }
        self.element_count += 1;
        if self.element_count > self.limits.max_elements {
            return Err(XmlError::TooManyElements { limit: self.limits.max_elements, position });
        }
        if self.open.len() >= self.limits.max_depth {
            return Err(XmlError::TooDeep { limit: self.limits.max_depth, position });
        }
        if let Some(parent) = self.open.last()
            && (parent.marker != Marker::Plain || !parent.text.trim_ascii().is_empty())
        {
            return Err(XmlError::MixedContent { position });
        }
        self.open.push(OpenElement { tag, marker, text: String::new(), children: Vec::new() });
        Ok(())
    }

    fn text(&mut self, text: &str, position: u64) -> Result<(), XmlError> {
        match self.open.last_mut() {
            Some(element) if element.children.is_empty() => {
                element.text.push_str(text);
                Ok(())
            }
            // Indentation between child elements is dropped; anything else there is mixed content.
            Some(_) if text.trim_ascii().is_empty() => Ok(()),
            Some(_) => Err(XmlError::MixedContent { position }),
            None if text.trim_ascii().is_empty() => Ok(()),
            None => Err(XmlError::OutsideRoot { position }),
        }
    }

    /// Closes the innermost element; `self_closing` tells `<a/>` (empty) from `<a></a>` (text "").
    fn close(&mut self, position: u64, self_closing: bool) -> Result<(), XmlError> {
        // quick-xml checks that end names match, so an End always has an open element.
        let Some(element) = self.open.pop() else {
            return Err(XmlError::Syntax { position, message: "end tag without start tag".into() });
        };
        let content = match element.marker {
            Marker::Base64Opaque => Content::Opaque(decode_base64(&element.text, position)?),
            Marker::Base64Text => Content::Text(decode_base64(&element.text, position)?),
            // Whitespace between child elements is indentation, not content.
            Marker::Plain if !element.children.is_empty() => Content::Children(element.children),
            Marker::Plain if self_closing => Content::Empty,
            Marker::Plain => Content::Text(element.text.into_bytes()),
        };
        let element = Element { tag: element.tag, content };
        match self.open.last_mut() {
            Some(parent) => parent.children.push(element),
            None => self.root = Some(element),
        }
        Ok(())
    }
}

fn resolve_tag(
    namespace: ResolveResult<'_>,
    start: &BytesStart<'_>,
    position: u64,
) -> Result<Tag, XmlError> {
    let name = start.local_name();
    let name: &str = name.as_ref();
    let namespace = match namespace {
        ResolveResult::Bound(namespace) => namespace.0,
        ResolveResult::Unbound => {
            return Err(XmlError::MissingNamespace { name: name.to_string(), position });
        }
        ResolveResult::Unknown(prefix) => {
            return Err(XmlError::UnknownNamespace {
                namespace: format!("{prefix}: (undeclared prefix)"),
                position,
            });
        }
    };
    let page = crate::tag::page_for_namespace(namespace)
        .ok_or_else(|| XmlError::UnknownNamespace { namespace: namespace.to_string(), position })?;
    Tag::from_page_and_name(page, name).ok_or_else(|| XmlError::UnknownElement {
        namespace: namespace.to_string(),
        name: name.to_string(),
        position,
    })
}

/// Reads the `base64` attribute; namespace declarations are allowed, any other attribute is an
/// error (EAS XML has none).
fn base64_marker(start: &BytesStart<'_>, position: u64) -> Result<Marker, XmlError> {
    let mut marker = Marker::Plain;
    for attribute in start.attributes() {
        let attribute =
            attribute.map_err(|error| XmlError::Syntax { position, message: error.to_string() })?;
        let key: &str = attribute.key.as_ref();
        if key == "xmlns" || key.starts_with("xmlns:") {
            continue;
        }
        if key != BASE64_ATTRIBUTE {
            return Err(XmlError::UnexpectedAttribute { name: key.to_string(), position });
        }
        let value = attribute
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|error| XmlError::Syntax { position, message: error.to_string() })?;
        marker = match &*value {
            BASE64_OPAQUE => Marker::Base64Opaque,
            BASE64_TEXT => Marker::Base64Text,
            other => {
                return Err(XmlError::InvalidBase64 {
                    position,
                    message: format!("base64 marker must be \"opaque\" or \"text\", not {other:?}"),
                });
            }
        };
    }
    Ok(marker)
}

fn decode_base64(text: &str, position: u64) -> Result<Vec<u8>, XmlError> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD
        .decode(compact)
        .map_err(|error| XmlError::InvalidBase64 { position, message: error.to_string() })
}

fn predefined_entity(name: &str) -> Option<char> {
    Some(match name {
        "lt" => '<',
        "gt" => '>',
        "amp" => '&',
        "apos" => '\'',
        "quot" => '"',
        _ => return None,
    })
}
