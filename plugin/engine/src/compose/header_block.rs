//! Byte-level editing of a message's top-level header block: fields are removed, replaced or
//! added without touching the others (their folding, encoded words and 8-bit bytes stay exactly
//! as the client wrote them) and without touching the body.

use std::borrow::Cow;

/// Every bare LF made CRLF, as SMTP DATA and IMAP APPEND want. Phones mostly send CRLF
/// already; the bytes are then borrowed, not copied (messages can be tens of megabytes in a
/// 64 MiB instance).
pub fn normalize_line_endings(message: &[u8]) -> Cow<'_, [u8]> {
    let bare_lf = message
        .iter()
        .enumerate()
        .any(|(index, &byte)| byte == b'\n' && (index == 0 || message[index - 1] != b'\r'));
    if !bare_lf {
        return Cow::Borrowed(message);
    }
    let mut normalized = Vec::with_capacity(message.len() + message.len() / 32);
    let mut previous = 0u8;
    for &byte in message {
        if byte == b'\n' && previous != b'\r' {
            normalized.push(b'\r');
        }
        normalized.push(byte);
        previous = byte;
    }
    Cow::Owned(normalized)
}

/// The header fields of a message, each with its continuation lines and its CRLF.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderBlock {
    fields: Vec<Vec<u8>>,
}

impl HeaderBlock {
    /// Splits a message (CRLF line endings) into its header block and its body (what follows
    /// the empty line). A message without an empty line is all header; one that starts with an
    /// empty line has no header fields.
    pub fn split(message: &[u8]) -> (HeaderBlock, &[u8]) {
        let mut fields: Vec<Vec<u8>> = Vec::new();
        let mut offset = 0;
        for line in message.split_inclusive(|&b| b == b'\n') {
            offset += line.len();
            if line == b"\r\n" || line == b"\n" {
                return (HeaderBlock { fields }, &message[offset..]);
            }
            let continues = matches!(line.first(), Some(b' ' | b'\t'));
            match fields.last_mut() {
                Some(field) if continues => field.extend_from_slice(line),
                _ => fields.push(line.to_vec()),
            }
        }
        // No empty line: every line was a header; make sure the last one is terminated.
        if let Some(last) = fields.last_mut()
            && !last.ends_with(b"\n")
        {
            last.extend_from_slice(b"\r\n");
        }
        (HeaderBlock { fields }, &[])
    }

    /// The fields' bytes, in order, followed by the empty line that ends the block.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.fields.iter().map(Vec::len).sum::<usize>() + 2);
        for field in &self.fields {
            bytes.extend_from_slice(field);
        }
        bytes.extend_from_slice(b"\r\n");
        bytes
    }

    pub fn has(&self, name: &str) -> bool {
        self.fields.iter().any(|field| is_named(field, name))
    }

    /// The raw value of the first field `name`, unfolded and trimmed (lossy UTF-8).
    pub fn value(&self, name: &str) -> Option<String> {
        let field = self.fields.iter().find(|field| is_named(field, name))?;
        let colon = field.iter().position(|&b| b == b':')?;
        let value = String::from_utf8_lossy(&field[colon + 1..]);
        Some(value.split(['\r', '\n']).collect::<String>().trim().to_owned())
    }

    /// Removes every field `name`; true if there was one.
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.fields.len();
        self.fields.retain(|field| !is_named(field, name));
        self.fields.len() != before
    }

    /// Appends a field (`value` already encoded, folded if needed, without the final CRLF).
    pub fn push(&mut self, name: &str, value: &[u8]) {
        self.fields.push(field_bytes(name, value));
    }

    /// Replaces the first field `name` in place (removing any others), or appends one.
    pub fn set(&mut self, name: &str, value: &[u8]) {
        let new = field_bytes(name, value);
        match self.fields.iter().position(|field| is_named(field, name)) {
            Some(index) => {
                self.fields[index] = new;
                let mut seen = 0;
                self.fields.retain(|field| {
                    if is_named(field, name) {
                        seen += 1;
                        seen == 1
                    } else {
                        true
                    }
                });
            }
            None => self.fields.push(new),
        }
    }

    /// The fields whose names are not `names` (e.g. a client message's headers without its
    /// MIME framing), as a new block.
    pub fn without(&self, names: &[&str]) -> HeaderBlock {
        HeaderBlock {
            fields: self
                .fields
                .iter()
                .filter(|field| !names.iter().any(|name| is_named(field, name)))
                .cloned()
                .collect(),
        }
    }

    /// The names of the fields, in order (for tests and logs).
    #[cfg(test)]
    pub fn names(&self) -> Vec<String> {
        self.fields
            .iter()
            .map(|field| String::from_utf8_lossy(field_name(field)).into_owned())
            .collect()
    }
}

fn field_bytes(name: &str, value: &[u8]) -> Vec<u8> {
    let mut field = Vec::with_capacity(name.len() + value.len() + 4);
    field.extend_from_slice(name.as_bytes());
    field.extend_from_slice(b": ");
    field.extend_from_slice(value);
    field.extend_from_slice(b"\r\n");
    field
}

fn field_name(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == b':').unwrap_or(0);
    field[..end].trim_ascii()
}

fn is_named(field: &[u8], name: &str) -> bool {
    field.contains(&b':') && field_name(field).eq_ignore_ascii_case(name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_endings_become_crlf() {
        assert_eq!(&normalize_line_endings(b"a\nb\r\nc\n")[..], b"a\r\nb\r\nc\r\n");
        assert_eq!(&normalize_line_endings(b"\nx")[..], b"\r\nx");
        assert!(matches!(normalize_line_endings(b"a\r\n"), Cow::Borrowed(b"a\r\n")));
    }

    #[test]
    fn fields_keep_their_folding_and_the_body_is_untouched() {
        let message = b"To: a@x,\r\n b@x\r\nBcc: c@x\r\nSubject: hi\r\n\r\nbody\r\n\r\nmore";
        let (mut block, body) = HeaderBlock::split(message);
        assert_eq!(body, b"body\r\n\r\nmore");
        assert_eq!(block.names(), ["To", "Bcc", "Subject"]);
        assert_eq!(block.value("to").as_deref(), Some("a@x, b@x"));
        assert!(block.remove("BCC"));
        block.set("Subject", b"new");
        block.push("Message-ID", b"<1@x>");
        assert_eq!(
            block.to_bytes(),
            b"To: a@x,\r\n b@x\r\nSubject: new\r\nMessage-ID: <1@x>\r\n\r\n"
        );
    }

    #[test]
    fn messages_without_a_body_or_without_headers() {
        let (block, body) = HeaderBlock::split(b"Subject: x");
        assert_eq!((block.to_bytes(), body), (b"Subject: x\r\n\r\n".to_vec(), &b""[..]));
        let (block, body) = HeaderBlock::split(b"\r\nonly body");
        assert_eq!((block.names().len(), body), (0, &b"only body"[..]));
    }
}
