//! Which parts of a MIME tree are the message body and which are attachments, decided on the
//! flattened BODYSTRUCTURE so that it works before any body byte is fetched. The body choice
//! follows the JMAP algorithm (RFC 8621 §4.1.4): a text list and an HTML list, alternatives
//! resolved, inline text parts of multipart/mixed concatenated.

use super::input::BodyPart;
use super::limits::{MAX_BODY_NESTING, MAX_PARTS};

/// Body and attachment parts of a message, as indices into the structure.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MimeLayout {
    /// Parts rendered for a plain-text body (text/plain, or text/html when no text exists).
    pub text_body: Vec<usize>,
    /// Parts rendered for an HTML body (text/html, or text/plain when no HTML exists).
    pub html_body: Vec<usize>,
    /// Leaf parts that are not body text, outside embedded messages, in structure order.
    pub attachments: Vec<usize>,
    /// Parent of each part in the tree (`None` for roots and parts past [`MAX_PARTS`]).
    pub parent: Vec<Option<usize>>,
}

impl MimeLayout {
    /// True when a text/html part is among the HTML body parts (NativeBodyType 2).
    pub fn has_html_body(&self, parts: &[BodyPart]) -> bool {
        self.html_body.iter().any(|&i| parts.get(i).is_some_and(|p| p.is("text", "html")))
    }
}

pub fn layout(parts: &[BodyPart]) -> MimeLayout {
    let parts = &parts[..parts.len().min(MAX_PARTS)];
    let tree = Tree::build(parts);
    let mut text_body = Vec::new();
    let mut html_body = Vec::new();
    let mut walker =
        BodyWalker { parts, children: &tree.children, text: &mut text_body, html: &mut html_body };
    walker.walk(&tree.roots, "mixed", false, (true, true), 0);
    // JMAP also lists inline images among body parts; an EAS body is text only.
    let is_text_or_html =
        |&index: &usize| parts[index].is("text", "plain") || parts[index].is("text", "html");
    text_body.retain(is_text_or_html);
    html_body.retain(is_text_or_html);

    let is_body_text = |index: usize| text_body.contains(&index) || html_body.contains(&index);
    let attachments = (0..parts.len())
        .filter(|&i| !parts[i].is_multipart && !tree.inside_embedded_message[i] && !is_body_text(i))
        .collect();
    MimeLayout { text_body, html_body, attachments, parent: tree.parent }
}

/// Parent/child links rebuilt from the pre-order depths. A depth that jumps by more than one
/// still nests under the nearest shallower part; extra roots are tolerated.
struct Tree {
    roots: Vec<usize>,
    children: Vec<Vec<usize>>,
    parent: Vec<Option<usize>>,
    inside_embedded_message: Vec<bool>,
}

impl Tree {
    fn build(parts: &[BodyPart]) -> Self {
        let mut tree = Tree {
            roots: Vec::new(),
            children: vec![Vec::new(); parts.len()],
            parent: vec![None; parts.len()],
            inside_embedded_message: vec![false; parts.len()],
        };
        let mut ancestors: Vec<usize> = Vec::new();
        for (index, part) in parts.iter().enumerate() {
            while ancestors.last().is_some_and(|&top| parts[top].depth >= part.depth) {
                ancestors.pop();
            }
            match ancestors.last() {
                Some(&parent) => {
                    tree.parent[index] = Some(parent);
                    tree.children[parent].push(index);
                    tree.inside_embedded_message[index] =
                        tree.inside_embedded_message[parent] || parts[parent].is_embedded_message();
                }
                None => tree.roots.push(index),
            }
            ancestors.push(index);
        }
        tree
    }
}

struct BodyWalker<'w> {
    parts: &'w [BodyPart],
    children: &'w [Vec<usize>],
    text: &'w mut Vec<usize>,
    html: &'w mut Vec<usize>,
}

impl BodyWalker<'_> {
    /// `collecting` says whether the text and HTML lists still take parts at this level: inside
    /// an alternative, a text/plain part ends the HTML list and vice versa (RFC 8621 §4.1.4).
    fn walk(
        &mut self,
        siblings: &[usize],
        multipart_subtype: &str,
        in_alternative: bool,
        collecting: (bool, bool),
        nesting: usize,
    ) {
        if nesting > MAX_BODY_NESTING {
            return;
        }
        let (mut collect_text, mut collect_html) = collecting;
        let text_length_before = self.text.len();
        let html_length_before = self.html.len();
        let is_alternative = multipart_subtype.eq_ignore_ascii_case("alternative");
        let is_related = multipart_subtype.eq_ignore_ascii_case("related");

        for (position, &index) in siblings.iter().enumerate() {
            let part = &self.parts[index];
            let is_text_or_html = part.is("text", "plain") || part.is("text", "html");
            let is_inline_media = ["image", "audio", "video"].iter().any(|t| part.is_type(t));
            let has_name = part.has_file_name();
            let is_inline = !part.has_attachment_disposition()
                && (is_text_or_html || is_inline_media)
                && (position == 0 || (!is_related && (is_inline_media || !has_name)));

            if part.is_multipart {
                let subtype = part.media_subtype.as_str();
                let nested_alternative =
                    in_alternative || subtype.eq_ignore_ascii_case("alternative");
                let children = self.children;
                self.walk(
                    &children[index],
                    subtype,
                    nested_alternative,
                    (collect_text, collect_html),
                    nesting + 1,
                );
            } else if is_inline && is_alternative {
                if part.is("text", "plain") {
                    self.text.push(index);
                } else if part.is("text", "html") {
                    self.html.push(index);
                }
            } else if is_inline {
                if in_alternative {
                    if part.is("text", "plain") {
                        collect_html = false;
                    }
                    if part.is("text", "html") {
                        collect_text = false;
                    }
                }
                if collect_text {
                    self.text.push(index);
                }
                if collect_html {
                    self.html.push(index);
                }
            }
        }

        // An alternative with only one kind of body serves that body for both lists.
        if is_alternative && collect_text && collect_html {
            if self.text.len() == text_length_before && self.html.len() != html_length_before {
                let html_parts = self.html[html_length_before..].to_vec();
                self.text.extend(html_parts);
            }
            if self.html.len() == html_length_before && self.text.len() != text_length_before {
                let text_parts = self.text[text_length_before..].to_vec();
                self.html.extend(text_parts);
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn part(section: &str, depth: u32, mime: &str) -> BodyPart {
        let (media_type, media_subtype) = mime.split_once('/').unwrap_or((mime, ""));
        BodyPart {
            section: section.into(),
            depth,
            is_multipart: media_type == "multipart",
            media_type: media_type.into(),
            media_subtype: media_subtype.into(),
            ..BodyPart::default()
        }
    }

    #[test]
    fn single_text_part() {
        let parts = [part("1", 0, "text/plain")];
        let layout = layout(&parts);
        assert_eq!(
            (layout.text_body, layout.html_body, layout.attachments),
            (vec![0], vec![0], vec![])
        );
    }

    #[test]
    fn alternative_inside_mixed_with_attachment() {
        let mut pdf = part("2", 1, "application/pdf");
        pdf.disposition = Some("attachment".into());
        let parts = [
            part("", 0, "multipart/mixed"),
            part("1", 1, "multipart/alternative"),
            part("1.1", 2, "text/plain"),
            part("1.2", 2, "text/html"),
            pdf,
        ];
        let layout = layout(&parts);
        assert_eq!(layout.text_body, vec![2]);
        assert_eq!(layout.html_body, vec![3]);
        assert_eq!(layout.attachments, vec![4]);
        assert!(layout.has_html_body(&parts));
    }

    #[test]
    fn related_images_are_attachments_and_embedded_messages_are_opaque() {
        let parts = [
            part("", 0, "multipart/mixed"),
            part("1", 1, "multipart/related"),
            part("1.1", 2, "text/html"),
            part("1.2", 2, "image/png"),
            part("2", 1, "message/rfc822"),
            part("2.1", 2, "text/plain"),
        ];
        let layout = layout(&parts);
        assert_eq!(layout.html_body, vec![2]);
        assert_eq!(layout.text_body, vec![2]);
        assert_eq!(layout.attachments, vec![3, 4]);
        assert_eq!(layout.parent[3], Some(1));
    }

    #[test]
    fn deep_nesting_and_bad_depths_do_not_break() {
        let mut parts: Vec<BodyPart> = (0..100).map(|d| part("", d, "multipart/mixed")).collect();
        parts.push(part("1", 100, "text/plain"));
        parts.push(part("2", 7, "image/gif"));
        parts.push(part("3", 0, "text/plain"));
        let layout = layout(&parts);
        // The part past the nesting limit is an attachment; a stray second root is a body.
        assert_eq!(layout.text_body, vec![102]);
        assert_eq!(layout.attachments, vec![100, 101]);
    }
}
