//! Conversions between the two body types EAS clients read (MS-ASAIRS §2.2.2.22 Type): HTML to
//! plain text when a client wants text from an HTML-only message (and for Preview), plain text
//! to HTML the other way round. Both are single linear passes over untrusted input.

/// Readable plain text from HTML: tags removed, entities decoded, line breaks kept for block
/// elements, the contents of script/style/head dropped, whitespace collapsed outside `<pre>`.
pub fn html_to_text(html: &str) -> String {
    let mut writer = TextWriter::with_capacity(html.len() / 2);
    let bytes = html.as_bytes();
    let mut position = 0;
    let mut preformatted_depth = 0usize;
    while let Some(&byte) = bytes.get(position) {
        match byte {
            b'<' => position = handle_markup(html, position, &mut writer, &mut preformatted_depth),
            b'&' => {
                let (decoded, next) = decode_entity(html, position);
                writer.push_text(&decoded, preformatted_depth > 0);
                position = next;
            }
            _ => {
                let end = bytes[position..]
                    .iter()
                    .position(|&b| b == b'<' || b == b'&')
                    .map_or(bytes.len(), |offset| position + offset);
                writer.push_text(&html[position..end], preformatted_depth > 0);
                position = end;
            }
        }
    }
    writer.finish()
}

/// An HTML fragment showing `text` as written: escaped, one `<br>` per line break.
pub fn text_to_html(text: &str) -> String {
    let mut html = String::with_capacity(text.len() + text.len() / 8 + 32);
    html.push_str("<div>");
    // Every character replaced is ASCII, so the text is scanned as bytes, one table lookup
    // each, and copied in runs between them (a run always starts and ends on a character
    // boundary): a Sync converts every plain-text message this way for a client that wants
    // HTML. A space needs escaping only after a space; testing that without a branch keeps
    // the loop's one branch rare (taken per line end), where a branch on every space was
    // mispredicted about as often as text has words.
    let bytes = text.as_bytes();
    let mut run_start = 0;
    let mut previous = 0u8;
    for (index, &byte) in bytes.iter().enumerate() {
        let space_after_space = (byte == b' ') & (previous == b' ');
        previous = byte;
        if !(MAY_NEED_ESCAPE[usize::from(byte)] | space_after_space) {
            continue;
        }
        let replacement = match byte {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\r' => "",
            b'\n' => "<br>\n",
            // Keep runs of spaces (indentation, ASCII art) visible: every space after a space.
            _ => "&nbsp;",
        };
        html.push_str(text.get(run_start..index).unwrap_or_default());
        html.push_str(replacement);
        run_start = index + 1;
    }
    html.push_str(text.get(run_start..).unwrap_or_default());
    html.push_str("</div>");
    html
}

/// The bytes `text_to_html` always replaces: `& < > "` and line ends (a space is replaced
/// only after a space).
const MAY_NEED_ESCAPE: [bool; 256] = {
    let mut table = [false; 256];
    let mut index = 0;
    let special = b"&<>\"\r\n";
    while index < special.len() {
        table[special[index] as usize] = true;
        index += 1;
    }
    table
};

/// Elements whose content is not text for a reader.
const SKIPPED_ELEMENTS: &[&str] = &["script", "style", "head", "title", "noscript", "template"];
/// Elements that start a paragraph: a blank line around them.
const PARAGRAPH_ELEMENTS: &[&str] = &[
    "p",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "blockquote",
    "ul",
    "ol",
    "dl",
    "table",
    "pre",
    "hr",
];
/// Elements that start a new line.
const LINE_ELEMENTS: &[&str] = &[
    "div", "li", "tr", "dd", "dt", "address", "section", "article", "header", "footer", "center",
    "form", "fieldset", "caption", "figure", "main", "nav", "aside", "details", "summary", "body",
];

/// Handles the markup starting at `start` (a `<`) and returns where text resumes.
fn handle_markup(
    html: &str,
    start: usize,
    writer: &mut TextWriter,
    preformatted_depth: &mut usize,
) -> usize {
    let bytes = html.as_bytes();
    let rest = &html[start..];
    if let Some(comment) = rest.strip_prefix("<!--") {
        return comment.find("-->").map_or(html.len(), |end| start + 4 + end + 3);
    }
    if rest.starts_with("<!") || rest.starts_with("<?") {
        return rest.find('>').map_or(html.len(), |end| start + end + 1);
    }
    let is_closing = bytes.get(start + 1) == Some(&b'/');
    let name_start = start + 1 + usize::from(is_closing);
    let name_length = bytes[name_start.min(bytes.len())..]
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric())
        .count();
    if name_length == 0 {
        // A lone `<` in text ("a < b").
        writer.push_text("<", *preformatted_depth > 0);
        return start + 1;
    }
    let name = html[name_start..name_start + name_length].to_ascii_lowercase();
    let tag_end = end_of_tag(bytes, name_start + name_length);
    let self_closing = tag_end >= 2 && bytes.get(tag_end - 2) == Some(&b'/');

    if !is_closing && !self_closing && SKIPPED_ELEMENTS.contains(&name.as_str()) {
        return end_of_element(html, tag_end, &name);
    }
    match name.as_str() {
        "br" => writer.line_break(),
        "li" if !is_closing => {
            writer.line_break();
            writer.push_text("- ", true);
            return tag_end;
        }
        "td" | "th" if !is_closing => writer.push_text(" ", false),
        "pre" if is_closing => *preformatted_depth = preformatted_depth.saturating_sub(1),
        "pre" => *preformatted_depth += 1,
        _ => {}
    }
    if PARAGRAPH_ELEMENTS.contains(&name.as_str()) {
        writer.paragraph_break();
    } else if LINE_ELEMENTS.contains(&name.as_str()) {
        writer.line_break();
    }
    tag_end
}

/// Index just past the `>` closing the tag whose attributes start at `from`; quoted attribute
/// values may contain `>`.
fn end_of_tag(bytes: &[u8], from: usize) -> usize {
    let mut quote: Option<u8> = None;
    for (offset, &byte) in bytes.iter().enumerate().skip(from) {
        match (quote, byte) {
            (Some(q), b) if b == q => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') => quote = Some(byte),
            (None, b'>') => return offset + 1,
            (None, _) => {}
        }
    }
    bytes.len()
}

/// Index just past `</name ...>` searched from `from`, ignoring case; the end when missing.
fn end_of_element(html: &str, from: usize, name: &str) -> usize {
    let bytes = html.as_bytes();
    let mut search = from;
    while let Some(offset) = bytes.get(search..).and_then(|rest| find_bytes(rest, b"</")) {
        let name_start = search + offset + 2;
        let candidate = bytes.get(name_start..name_start + name.len());
        if candidate.is_some_and(|c| c.eq_ignore_ascii_case(name.as_bytes())) {
            return end_of_tag(bytes, name_start + name.len());
        }
        search = name_start;
    }
    html.len()
}

fn find_bytes(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

/// Decodes the entity at `start` (an `&`); an unknown or unterminated one stays literal.
fn decode_entity(html: &str, start: usize) -> (String, usize) {
    const MAX_ENTITY_LENGTH: usize = 32;
    let literal = ("&".to_owned(), start + 1);
    let rest = &html.as_bytes()[start + 1..];
    let Some(length) = rest.iter().take(MAX_ENTITY_LENGTH).position(|&b| b == b';') else {
        return literal;
    };
    let name = &html[start + 1..start + 1 + length];
    let next = start + 1 + length + 1;
    let decoded = if let Some(number) = name.strip_prefix('#') {
        let code = match number.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok(),
            None => number.parse::<u32>().ok(),
        };
        match code {
            Some(0) => Some(String::new()),
            Some(code) => Some(char::from_u32(code).unwrap_or('\u{fffd}').to_string()),
            None => None,
        }
    } else {
        named_entity(name).map(|ch| ch.to_string())
    };
    decoded.map_or(literal, |text| (text, next))
}

/// ISO-8859-1 entities in code point order from U+00A0 (HTML 4 §24.2).
const LATIN1_ENTITIES: [&str; 96] = [
    "nbsp", "iexcl", "cent", "pound", "curren", "yen", "brvbar", "sect", "uml", "copy", "ordf",
    "laquo", "not", "shy", "reg", "macr", "deg", "plusmn", "sup2", "sup3", "acute", "micro",
    "para", "middot", "cedil", "sup1", "ordm", "raquo", "frac14", "frac12", "frac34", "iquest",
    "Agrave", "Aacute", "Acirc", "Atilde", "Auml", "Aring", "AElig", "Ccedil", "Egrave", "Eacute",
    "Ecirc", "Euml", "Igrave", "Iacute", "Icirc", "Iuml", "ETH", "Ntilde", "Ograve", "Oacute",
    "Ocirc", "Otilde", "Ouml", "times", "Oslash", "Ugrave", "Uacute", "Ucirc", "Uuml", "Yacute",
    "THORN", "szlig", "agrave", "aacute", "acirc", "atilde", "auml", "aring", "aelig", "ccedil",
    "egrave", "eacute", "ecirc", "euml", "igrave", "iacute", "icirc", "iuml", "eth", "ntilde",
    "ograve", "oacute", "ocirc", "otilde", "ouml", "divide", "oslash", "ugrave", "uacute", "ucirc",
    "uuml", "yacute", "thorn", "yuml",
];

fn named_entity(name: &str) -> Option<char> {
    if let Some(index) = LATIN1_ENTITIES.iter().position(|&entity| entity == name) {
        return char::from_u32(0xA0 + index as u32);
    }
    let ch = match name {
        "amp" | "AMP" => '&',
        "lt" | "LT" => '<',
        "gt" | "GT" => '>',
        "quot" | "QUOT" => '"',
        "apos" => '\'',
        "euro" => '€',
        "trade" => '™',
        "hellip" => '…',
        "mdash" => '—',
        "ndash" => '–',
        "lsquo" => '‘',
        "rsquo" => '’',
        "sbquo" => '‚',
        "ldquo" => '“',
        "rdquo" => '”',
        "bdquo" => '„',
        "lsaquo" => '‹',
        "rsaquo" => '›',
        "bull" => '•',
        "dagger" => '†',
        "Dagger" => '‡',
        "permil" => '‰',
        "OElig" => 'Œ',
        "oelig" => 'œ',
        "Scaron" => 'Š',
        "scaron" => 'š',
        "Yuml" => 'Ÿ',
        "fnof" => 'ƒ',
        "circ" => 'ˆ',
        "tilde" => '˜',
        "ensp" | "emsp" | "thinsp" => ' ',
        "zwnj" | "zwj" | "lrm" | "rlm" => '\u{200b}',
        _ => return None,
    };
    Some(ch)
}

/// Accumulates text with HTML whitespace rules and bounded blank lines.
struct TextWriter {
    text: String,
    pending_space: bool,
    trailing_newlines: usize,
}

impl TextWriter {
    fn with_capacity(capacity: usize) -> Self {
        Self { text: String::with_capacity(capacity), pending_space: false, trailing_newlines: 0 }
    }

    fn push_text(&mut self, text: &str, preformatted: bool) {
        for ch in text.chars() {
            if ch == '\u{200b}' || ch == '\u{ad}' {
                continue;
            }
            if preformatted {
                self.push_char(if ch == '\u{a0}' { ' ' } else { ch });
            } else if ch.is_whitespace() {
                self.pending_space = true;
            } else {
                if self.pending_space && !self.text.is_empty() && self.trailing_newlines == 0 {
                    self.text.push(' ');
                }
                self.pending_space = false;
                self.push_char(ch);
            }
        }
    }

    fn push_char(&mut self, ch: char) {
        if ch == '\r' {
            return;
        }
        self.text.push(ch);
        self.trailing_newlines = if ch == '\n' { self.trailing_newlines + 1 } else { 0 };
    }

    fn line_break(&mut self) {
        self.break_lines(1);
    }

    fn paragraph_break(&mut self) {
        self.break_lines(2);
    }

    fn break_lines(&mut self, wanted: usize) {
        self.pending_space = false;
        if self.text.is_empty() {
            return;
        }
        while self.trailing_newlines < wanted {
            self.push_char('\n');
        }
    }

    fn finish(mut self) -> String {
        let kept = self.text.trim_end().len();
        self.text.truncate(kept);
        self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_tags_and_keeps_block_breaks() {
        let html = "<html><head><title>T</title><style>p{color:red}</style></head>\
                    <body><p>Hello <b>world</b>!</p><div>line&nbsp;two</div>a<br>b\
                    <script>alert('<p>x</p>')</script><ul><li>one</li><li>two</li></ul></body></html>";
        assert_eq!(html_to_text(html), "Hello world!\n\nline two\na\nb\n\n- one\n- two");
    }

    #[test]
    fn decodes_entities() {
        assert_eq!(
            html_to_text("&lt;tag&gt; &amp; &eacute;&#233;&#xE9; &euro; &bogus; & alone"),
            "<tag> & ééé € &bogus; & alone"
        );
        assert_eq!(html_to_text("&#0;&#xD800;x"), "\u{fffd}x");
    }

    #[test]
    fn collapses_whitespace_except_in_pre() {
        assert_eq!(html_to_text("a \n\t b<pre>x  y\n z</pre>c"), "a b\n\nx  y\n z\n\nc");
    }

    #[test]
    fn survives_broken_markup() {
        assert_eq!(html_to_text("a < b <!-- never closed"), "a < b");
        assert_eq!(html_to_text("<p title=\"a>b\">x</p><script>no end"), "x");
        assert_eq!(html_to_text("<"), "<");
        assert_eq!(html_to_text("&"), "&");
        assert_eq!(html_to_text("<a href='x'"), "");
    }

    /// `text_to_html` one character at a time, the rules as stated: the oracle for the table-driven
    /// version.
    fn text_to_html_oracle(text: &str) -> String {
        let mut html = String::from("<div>");
        let mut previous = None;
        for ch in text.chars() {
            match ch {
                '&' => html.push_str("&amp;"),
                '<' => html.push_str("&lt;"),
                '>' => html.push_str("&gt;"),
                '"' => html.push_str("&quot;"),
                '\r' => {}
                '\n' => html.push_str("<br>\n"),
                ' ' if previous == Some(' ') => html.push_str("&nbsp;"),
                other => html.push(other),
            }
            previous = Some(ch);
        }
        html.push_str("</div>");
        html
    }

    proptest::proptest! {
        #[test]
        fn text_to_html_matches_the_oracle(text in "[ a&<>\"\r\néü€🙂]{0,40}") {
            proptest::prop_assert_eq!(text_to_html(&text), text_to_html_oracle(&text));
        }
    }

    #[test]
    fn text_to_html_escapes_and_breaks_lines() {
        assert_eq!(
            text_to_html("a<b> & \"c\"\r\n  d"),
            "<div>a&lt;b&gt; &amp; &quot;c&quot;<br>\n &nbsp;d</div>"
        );
        assert_eq!(text_to_html("Grüße   €\n🙂"), "<div>Grüße &nbsp;&nbsp;€<br>\n🙂</div>");
        assert_eq!(text_to_html(""), "<div></div>");
    }
}
