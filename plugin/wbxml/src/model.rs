//! The owned document model: a tree of [`Element`]s keyed by [`Tag`].
//!
//! Text is kept as raw bytes: clients send invalid UTF-8, and refusing the whole request for a
//! bad Subject would be worse than passing the bytes on. [`Element::text`] validates on read.

use crate::Tag;
use crate::fragment::EncodedElement;

/// A WBXML document: the root element (the command, e.g. `AirSync:Sync`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub root: Element,
}

impl Document {
    pub fn new(root: Element) -> Document {
        Document { root }
    }
}

/// One element: its tag and its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    pub tag: Tag,
    pub content: Content,
}

/// What an element holds. EAS never mixes child elements with text.
///
/// On the wire, `Empty` and `Children(vec![])` are both a tag without the content bit, and the
/// decoder returns `Empty` for both; `Text(vec![])` is `STR_I ""` and stays distinct.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Content {
    /// `<Tag/>`: no content bit.
    #[default]
    Empty,
    /// STR_I content: the bytes between `03` and the terminating NUL (one or more pieces
    /// concatenated), not validated as UTF-8.
    Text(Vec<u8>),
    /// OPAQUE content (byte arrays such as `email2:ConversationId`, `composemail:Mime`). An
    /// element whose pieces mix STR_I and OPAQUE decodes as `Opaque`.
    Opaque(Vec<u8>),
    /// Child elements.
    Children(Vec<Element>),
    /// The element encoded ahead of time ([`EncodedElement`]), written as it is; only the
    /// encoder looks inside (it reads as a leaf without text to everything else).
    Encoded(EncodedElement),
}

impl Element {
    /// An element without content (`<Tag/>`); add children with [`Element::with_child`].
    pub fn new(tag: Tag) -> Element {
        Element { tag, content: Content::Empty }
    }

    /// An element with STR_I content.
    pub fn with_text(tag: Tag, text: impl Into<Vec<u8>>) -> Element {
        Element { tag, content: Content::Text(text.into()) }
    }

    /// An element with OPAQUE content.
    pub fn with_opaque(tag: Tag, bytes: impl Into<Vec<u8>>) -> Element {
        Element { tag, content: Content::Opaque(bytes.into()) }
    }

    /// An element with the given children.
    pub fn with_children(tag: Tag, children: Vec<Element>) -> Element {
        Element { tag, content: Content::Children(children) }
    }

    /// Builder: appends `child` (see [`Element::push`]).
    #[must_use]
    pub fn with_child(mut self, child: Element) -> Element {
        self.push(child);
        self
    }

    /// Builder: appends a child with STR_I content.
    #[must_use]
    pub fn text_child(self, tag: Tag, text: impl Into<Vec<u8>>) -> Element {
        self.with_child(Element::with_text(tag, text))
    }

    /// Builder: appends a child with OPAQUE content.
    #[must_use]
    pub fn opaque_child(self, tag: Tag, bytes: impl Into<Vec<u8>>) -> Element {
        self.with_child(Element::with_opaque(tag, bytes))
    }

    /// Builder: appends an empty child (`<MoreAvailable/>`).
    #[must_use]
    pub fn empty_child(self, tag: Tag) -> Element {
        self.with_child(Element::new(tag))
    }

    /// Appends `child`. An element holds either children or text: pushing a child onto a text
    /// or opaque element replaces that content (a debug assertion flags it as a bug).
    pub fn push(&mut self, child: Element) {
        match &mut self.content {
            Content::Children(children) => children.push(child),
            other => {
                debug_assert!(
                    matches!(other, Content::Empty),
                    "child pushed onto a leaf element {:?}",
                    self.tag
                );
                *other = Content::Children(vec![child]);
            }
        }
    }

    /// Whether an [`EncodedElement`] is anywhere in the tree.
    pub fn holds_encoded(&self) -> bool {
        match &self.content {
            Content::Encoded(_) => true,
            Content::Children(children) => children.iter().any(Element::holds_encoded),
            _ => false,
        }
    }

    /// A copy of the tree with every [`EncodedElement`] decoded back into elements (one that
    /// does not decode stays as it is).
    pub fn expand_encoded(&self) -> Element {
        match &self.content {
            Content::Encoded(encoded) => encoded.decode().unwrap_or_else(|_| self.clone()),
            Content::Children(children) => Element::with_children(
                self.tag,
                children.iter().map(Element::expand_encoded).collect(),
            ),
            _ => self.clone(),
        }
    }

    /// All child elements (empty for leaves).
    pub fn child_elements(&self) -> &[Element] {
        match &self.content {
            Content::Children(children) => children,
            _ => &[],
        }
    }

    /// Mutable access to the children; a leaf element becomes a container with no children.
    pub fn child_elements_mut(&mut self) -> &mut Vec<Element> {
        if !matches!(self.content, Content::Children(_)) {
            self.content = Content::Children(Vec::new());
        }
        match &mut self.content {
            Content::Children(children) => children,
            _ => unreachable!("content was just set to Children"),
        }
    }

    /// The first child with `tag`.
    pub fn child(&self, tag: Tag) -> Option<&Element> {
        self.child_elements().iter().find(|child| child.tag == tag)
    }

    /// The first child with `tag`, mutably.
    pub fn child_mut(&mut self, tag: Tag) -> Option<&mut Element> {
        match &mut self.content {
            Content::Children(children) => children.iter_mut().find(|child| child.tag == tag),
            _ => None,
        }
    }

    /// All children with `tag`, in document order.
    pub fn children(&self, tag: Tag) -> impl Iterator<Item = &Element> {
        self.child_elements().iter().filter(move |child| child.tag == tag)
    }

    /// The content as a string: `Some("")` for an empty element, the bytes of text or opaque
    /// content if they are valid UTF-8, `None` for containers and invalid UTF-8.
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(self.bytes()?).ok()
    }

    /// The raw bytes of text or opaque content (`Some(&[])` for an empty element, `None` for a
    /// container). EAS leaves may come as STR_I or OPAQUE (EAS-NOTES §2.4): read them with this.
    pub fn bytes(&self) -> Option<&[u8]> {
        match &self.content {
            Content::Empty => Some(&[]),
            Content::Text(bytes) | Content::Opaque(bytes) => Some(bytes),
            Content::Children(children) if children.is_empty() => Some(&[]),
            Content::Children(_) | Content::Encoded(_) => None,
        }
    }

    /// [`Element::text`] of the first child with `tag`.
    pub fn text_of(&self, tag: Tag) -> Option<&str> {
        self.child(tag)?.text()
    }

    /// [`Element::bytes`] of the first child with `tag`.
    pub fn bytes_of(&self, tag: Tag) -> Option<&[u8]> {
        self.child(tag)?.bytes()
    }

    /// True if the element has no content (no content bit on the wire).
    pub fn is_empty(&self) -> bool {
        match &self.content {
            Content::Empty => true,
            Content::Children(children) => children.is_empty(),
            Content::Text(_) | Content::Opaque(_) | Content::Encoded(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tags::{air_sync, email, email2, folder_hierarchy};

    fn sample() -> Element {
        Element::new(air_sync::APPLICATION_DATA)
            .text_child(email::SUBJECT, "Hello")
            .text_child(email::TO, "a@example.com")
            .text_child(email::TO, "b@example.com")
            .opaque_child(email2::CONVERSATION_ID, [0xFF, 0x00, 0x41])
            .empty_child(email::READ)
    }

    #[test]
    fn builders_make_the_expected_tree() {
        let element = sample();
        assert_eq!(element.child_elements().len(), 5);
        assert_eq!(element.child_elements()[3].content, Content::Opaque(vec![0xFF, 0x00, 0x41]));
        assert!(element.child_elements()[4].is_empty());
    }

    #[test]
    fn readers_find_children_by_tag() {
        let element = sample();
        assert_eq!(element.text_of(email::SUBJECT), Some("Hello"));
        assert_eq!(
            element.children(email::TO).filter_map(Element::text).collect::<Vec<_>>(),
            ["a@example.com", "b@example.com"]
        );
        assert_eq!(element.bytes_of(email2::CONVERSATION_ID), Some(&[0xFF, 0x00, 0x41][..]));
        assert_eq!(element.text_of(email2::CONVERSATION_ID), None, "not UTF-8");
        assert_eq!(element.text_of(email::READ), Some(""));
        assert_eq!(element.text_of(folder_hierarchy::DISPLAY_NAME), None);
        assert_eq!(element.text(), None, "a container has no text");
    }

    #[test]
    fn invalid_utf8_text_is_kept_as_bytes() {
        let element = Element::with_text(email::SUBJECT, vec![b'a', 0xC3, 0x28]);
        assert_eq!(element.text(), None);
        assert_eq!(element.bytes(), Some(&[b'a', 0xC3, 0x28][..]));
    }

    #[test]
    fn mutable_access() {
        let mut element = sample();
        if let Some(subject) = element.child_mut(email::SUBJECT) {
            subject.content = Content::Text(b"Changed".to_vec());
        }
        assert_eq!(element.text_of(email::SUBJECT), Some("Changed"));
        let mut leaf = Element::new(air_sync::COMMANDS);
        leaf.child_elements_mut().push(Element::new(air_sync::ADD));
        assert_eq!(leaf.child_elements().len(), 1);
    }
}
