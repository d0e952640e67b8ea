//! BODYSTRUCTURE (RFC 9051 §7.5.2 and the `body` rule of §9; RFC 3501 §7.4.2) as a flat list of
//! parts in pre-order: the WIT interface has no recursive types, and a flat list with section
//! numbers and depths is what the engine walks anyway.
//!
//! Section numbers follow RFC 9051 §6.4.5 (FETCH BODY[section]): the parts of a multipart are
//! `1`, `2`, ... and `2.1` inside part 2. The top-level multipart itself gets the section `""`
//! (fetch it as BODY[]); a message that is not multipart has its body as part `1`. A
//! message/rfc822 part `3` carries the embedded message's body after it: `3.TEXT` when that body
//! is multipart (children `3.1`, `3.2`, ...), else `3.1`.

use super::response::cursor::{Cursor, ParseResult, text};

/// Nesting beyond this is refused: real mail stays far below, hostile mail does not.
const MAX_DEPTH: u32 = 40;

/// One part of a message's MIME structure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BodyPart {
    /// The FETCH BODY[section] of this part (see the module docs for the numbering).
    pub section: String,
    /// 0 for the message's own body, +1 per multipart or message/rfc822 level.
    pub depth: u32,
    pub is_multipart: bool,
    /// Lower-case, e.g. `text`, `multipart`, `message`.
    pub media_type: String,
    /// Lower-case, e.g. `plain`, `mixed`, `rfc822`.
    pub media_subtype: String,
    /// Content-Type parameters (charset, name, boundary...): names lower-case, values as sent
    /// (RFC 2231 `name*` forms included, undecoded).
    pub params: Vec<(String, String)>,
    pub content_id: Option<String>,
    pub description: Option<String>,
    /// Content-Transfer-Encoding, lower-case (`7bit`, `base64`, `quoted-printable`...); `None`
    /// for multiparts.
    pub encoding: Option<String>,
    /// Size of the part's body in octets as stored (still transfer-encoded); 0 for multiparts.
    pub size: u32,
    /// Line count, for text and message/rfc822 parts.
    pub lines: Option<u32>,
    pub md5: Option<String>,
    /// Content-Disposition type, lower-case (`inline`, `attachment`).
    pub disposition: Option<String>,
    /// Content-Disposition parameters (filename, filename*, size...), names lower-case.
    pub disposition_params: Vec<(String, String)>,
    pub language: Vec<String>,
    pub location: Option<String>,
}

/// Parses one `body` (the value after BODYSTRUCTURE) into its parts in pre-order.
pub fn parse(cursor: &mut Cursor<'_>) -> ParseResult<Vec<BodyPart>> {
    let mut parts = Vec::new();
    parse_body(cursor, &mut parts, Place::Root, 0)?;
    Ok(parts)
}

/// Where a body sits, which decides its section number.
#[derive(Clone, Copy)]
enum Place<'a> {
    Root,
    Child {
        parent: &'a str,
        index: usize,
    },
    /// The body of the message/rfc822 part with this section.
    Embedded {
        message: &'a str,
    },
}

impl Place<'_> {
    /// (this part's section, the prefix of its children's sections)
    fn sections(self, is_multipart: bool) -> (String, String) {
        match (self, is_multipart) {
            (Place::Root, true) => (String::new(), String::new()),
            (Place::Root, false) => ("1".to_string(), "1".to_string()),
            (Place::Child { parent, index }, _) => {
                let section =
                    if parent.is_empty() { index.to_string() } else { format!("{parent}.{index}") };
                (section.clone(), section)
            }
            (Place::Embedded { message }, true) => (format!("{message}.TEXT"), message.to_string()),
            (Place::Embedded { message }, false) => {
                let section = format!("{message}.1");
                (section.clone(), section)
            }
        }
    }
}

fn parse_body(
    cursor: &mut Cursor<'_>,
    parts: &mut Vec<BodyPart>,
    place: Place<'_>,
    depth: u32,
) -> ParseResult<()> {
    if depth > MAX_DEPTH {
        return cursor.error("a body structure nested less deeply");
    }
    cursor.expect(b'(', "a body")?;
    cursor.skip_spaces();
    if cursor.peek() == Some(b'(') {
        parse_multipart(cursor, parts, place, depth)
    } else {
        parse_single_part(cursor, parts, place, depth)
    }
}

/// `body-type-mpart = 1*body SP media-subtype [SP body-ext-mpart]`
fn parse_multipart(
    cursor: &mut Cursor<'_>,
    parts: &mut Vec<BodyPart>,
    place: Place<'_>,
    depth: u32,
) -> ParseResult<()> {
    let (section, child_prefix) = place.sections(true);
    // pre-order: the multipart comes before its children, but its subtype and parameters
    // follow them on the wire, so they are filled in afterwards
    let slot = parts.len();
    parts.push(BodyPart {
        section,
        depth,
        is_multipart: true,
        media_type: "multipart".to_string(),
        ..BodyPart::default()
    });
    let mut index = 0;
    while cursor.peek() == Some(b'(') {
        index += 1;
        parse_body(cursor, parts, Place::Child { parent: &child_prefix, index }, depth + 1)?;
        // RFC 9051 has no space between the bodies; some servers put one there
        cursor.skip_spaces();
    }
    let subtype = lower(cursor.nstring()?.map(text).unwrap_or_else(|| "mixed".to_string()));
    let mut extension = MultipartExtension::default();
    if at_more(cursor)? {
        extension.params = parse_params(cursor)?;
        if at_more(cursor)? {
            parse_disposition_and_rest(cursor, &mut extension.tail)?;
        }
    }
    finish(cursor)?;
    if let Some(part) = parts.get_mut(slot) {
        part.media_subtype = subtype;
        part.params = extension.params;
        extension.tail.apply(part);
    }
    Ok(())
}

#[derive(Default)]
struct MultipartExtension {
    params: Vec<(String, String)>,
    tail: ExtensionTail,
}

/// A Content-Disposition type with its parameters.
type Disposition = (String, Vec<(String, String)>);

/// The extension fields both kinds of part share: disposition, language, location.
#[derive(Default)]
struct ExtensionTail {
    disposition: Option<Disposition>,
    language: Vec<String>,
    location: Option<String>,
}

impl ExtensionTail {
    fn apply(self, part: &mut BodyPart) {
        if let Some((disposition, params)) = self.disposition {
            part.disposition = Some(disposition);
            part.disposition_params = params;
        }
        part.language = self.language;
        part.location = self.location;
    }
}

/// `body-type-1part = (body-type-basic / body-type-msg / body-type-text) [SP body-ext-1part]`
fn parse_single_part(
    cursor: &mut Cursor<'_>,
    parts: &mut Vec<BodyPart>,
    place: Place<'_>,
    depth: u32,
) -> ParseResult<()> {
    let (section, _) = place.sections(false);
    // RFC 2045 §5.2: a missing type means text/plain
    let media_type = lower(cursor.nstring()?.map(text).unwrap_or_else(|| "text".to_string()));
    cursor.space()?;
    let media_subtype = lower(cursor.nstring()?.map(text).unwrap_or_else(|| "plain".to_string()));
    cursor.space()?;
    let params = parse_params(cursor)?;
    cursor.space()?;
    let content_id = cursor.nstring()?.map(text);
    cursor.space()?;
    let description = cursor.nstring()?.map(text);
    cursor.space()?;
    // quirk: some servers send NIL for the encoding
    let encoding = cursor.nstring()?.map(text).map(lower);
    cursor.space()?;
    let size = if cursor.eat_nil() { 0 } else { saturate(cursor.number()?) };

    let slot = parts.len();
    parts.push(BodyPart {
        section,
        depth,
        is_multipart: false,
        media_type,
        media_subtype,
        params,
        content_id,
        description,
        encoding,
        size,
        ..BodyPart::default()
    });

    let is_message = parts.get(slot).is_some_and(|part| {
        part.media_type == "message"
            && (part.media_subtype == "rfc822" || part.media_subtype == "global")
    });
    let mut lines = None;
    if is_message && peek_after_space(cursor) == Some(b'(') {
        // body-type-msg: envelope, the embedded message's body, its line count
        cursor.space()?;
        cursor.skip_value()?;
        cursor.space()?;
        let message_section = parts.get(slot).map(|part| part.section.clone()).unwrap_or_default();
        parse_body(cursor, parts, Place::Embedded { message: &message_section }, depth + 1)?;
        if peek_after_space(cursor).is_some_and(|b| b.is_ascii_digit()) {
            cursor.space()?;
            lines = Some(saturate(cursor.number()?));
        }
    } else if peek_after_space(cursor).is_some_and(|b| b.is_ascii_digit()) {
        // body-type-text's line count (tolerated on any type: some servers send it for all)
        cursor.space()?;
        lines = Some(saturate(cursor.number()?));
    }

    // body-ext-1part = body-fld-md5 [SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc ...]]]
    let mut md5 = None;
    let mut tail = ExtensionTail::default();
    if at_more(cursor)? {
        md5 = cursor.nstring()?.map(text);
        if at_more(cursor)? {
            parse_disposition_and_rest(cursor, &mut tail)?;
        }
    }
    finish(cursor)?;
    if let Some(part) = parts.get_mut(slot) {
        part.lines = lines;
        part.md5 = md5;
        tail.apply(part);
    }
    Ok(())
}

/// `body-fld-dsp [SP body-fld-lang [SP body-fld-loc *(SP body-extension)]]`; the cursor is at
/// the disposition.
fn parse_disposition_and_rest(
    cursor: &mut Cursor<'_>,
    tail: &mut ExtensionTail,
) -> ParseResult<()> {
    tail.disposition = parse_disposition(cursor)?;
    if !at_more(cursor)? {
        return Ok(());
    }
    tail.language = parse_language(cursor)?;
    if !at_more(cursor)? {
        return Ok(());
    }
    tail.location = cursor.nstring()?.map(text);
    // body-extension: future fields, skipped
    while at_more(cursor)? {
        cursor.skip_value()?;
    }
    Ok(())
}

/// `body-fld-dsp = "(" string SP body-fld-param ")" / nil`
fn parse_disposition(cursor: &mut Cursor<'_>) -> ParseResult<Option<Disposition>> {
    if cursor.eat_nil() {
        return Ok(None);
    }
    if cursor.peek() != Some(b'(') {
        // quirk: a bare string instead of the list
        return Ok(Some((lower(text(cursor.string()?)), Vec::new())));
    }
    cursor.expect(b'(', "a disposition")?;
    let disposition = lower(text(cursor.string()?));
    let mut params = Vec::new();
    if peek_after_space(cursor).is_some() && peek_after_space(cursor) != Some(b')') {
        cursor.space()?;
        params = parse_params(cursor)?;
    }
    cursor.skip_spaces();
    cursor.expect(b')', "the end of a disposition")?;
    Ok(Some((disposition, params)))
}

/// `body-fld-lang = nstring / "(" string *(SP string) ")"`
fn parse_language(cursor: &mut Cursor<'_>) -> ParseResult<Vec<String>> {
    if cursor.eat(b'(') {
        let mut languages = Vec::new();
        cursor.skip_spaces();
        while !cursor.eat(b')') {
            languages.push(text(cursor.string()?));
            cursor.skip_spaces();
        }
        Ok(languages)
    } else {
        Ok(cursor.nstring()?.map(text).into_iter().collect())
    }
}

/// `body-fld-param = "(" string SP string *(SP string SP string) ")" / nil`; `()` tolerated.
fn parse_params(cursor: &mut Cursor<'_>) -> ParseResult<Vec<(String, String)>> {
    if cursor.eat_nil() {
        return Ok(Vec::new());
    }
    cursor.expect(b'(', "body parameters")?;
    let mut params = Vec::new();
    cursor.skip_spaces();
    while !cursor.eat(b')') {
        let name = lower(text(cursor.string()?));
        cursor.space()?;
        // quirk: NIL values
        let value = cursor.nstring()?.map(text).unwrap_or_default();
        params.push((name, value));
        cursor.skip_spaces();
    }
    Ok(params)
}

/// Whether another (optional) field follows: a space not followed by the closing `)`. Consumes
/// the space.
fn at_more(cursor: &mut Cursor<'_>) -> ParseResult<bool> {
    match peek_after_space(cursor) {
        Some(b')') | None => Ok(false),
        Some(_) if cursor.peek() == Some(b' ') => {
            cursor.space()?;
            Ok(true)
        }
        // a field directly after the previous one without a space: malformed
        Some(_) => cursor.error("a space or the end of the body"),
    }
}

fn finish(cursor: &mut Cursor<'_>) -> ParseResult<()> {
    cursor.skip_spaces();
    cursor.expect(b')', "the end of a body")
}

/// The byte after any spaces, without consuming them.
fn peek_after_space(cursor: &Cursor<'_>) -> Option<u8> {
    let mut probe = cursor.clone();
    probe.skip_spaces();
    probe.peek()
}

fn lower(mut value: String) -> String {
    value.make_ascii_lowercase();
    value
}

fn saturate(value: u64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}
