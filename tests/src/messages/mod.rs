//! Realistic test messages, the same for the same seed: plain and multipart/alternative bodies
//! of 2-20 KB, some with attachments, in US-ASCII, UTF-8 and ISO-8859-1 with RFC 2047 headers.

mod date;
mod mime;
mod words;

use crate::imap::AppendOptions;
use crate::rng::XorShift64;

pub use date::{imap_date_time, rfc5322_date};

/// 2025-06-02 09:00:00 UTC: the default date of the newest generated message.
pub const DEFAULT_NEWEST: i64 = 1_748_854_800;

/// Time zones seen in the `Date:` headers (minutes east of UTC).
const ZONE_OFFSETS: &[i64] = &[0, 60, 120, -300, -480, 330, 600];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    Ascii,
    Utf8,
    Latin1,
}

impl Charset {
    fn mime_name(self) -> &'static str {
        match self {
            Charset::Ascii => "us-ascii",
            Charset::Utf8 => "utf-8",
            Charset::Latin1 => "iso-8859-1",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyForm {
    /// text/plain only.
    Plain,
    /// multipart/alternative: text/plain + text/html.
    Alternative,
    /// multipart/mixed: the alternative body + one or two attachments.
    WithAttachments,
}

/// A generated message: the raw bytes plus what a test wants to check them against.
#[derive(Debug, Clone)]
pub struct TestMessage {
    /// Position in the generator's sequence (0 = newest).
    pub index: u64,
    pub from: String,
    pub to: String,
    /// The subject as text (the header carries it encoded when not ASCII).
    pub subject: String,
    /// Unix seconds of the `Date:` header.
    pub date: i64,
    /// With angle brackets, as in the header.
    pub message_id: String,
    pub charset: Charset,
    pub form: BodyForm,
    /// The plain-text body as text (before transfer encoding).
    pub text_body: String,
    pub attachment_names: Vec<String>,
    /// IMAP flags a seeded copy gets (`\Seen`, `\Flagged`, `\Answered`).
    pub flags: Vec<String>,
    /// The whole message, CRLF line ends.
    pub raw: Vec<u8>,
}

impl TestMessage {
    /// APPEND options: the message's flags, and its date as INTERNALDATE (as if delivered then).
    pub fn append_options(&self) -> AppendOptions {
        AppendOptions { flags: self.flags.clone(), internal_date: Some(imap_date_time(self.date)) }
    }
}

/// An endless, deterministic sequence of messages to one recipient, newest first.
#[derive(Debug, Clone)]
pub struct MessageGenerator {
    rng: XorShift64,
    seed: u64,
    to: String,
    next_index: u64,
    next_date: i64,
    trace_headers: bool,
}

impl MessageGenerator {
    pub fn new(seed: u64, to: &str) -> Self {
        Self {
            rng: XorShift64::new(seed),
            seed,
            to: to.to_string(),
            next_index: 0,
            next_date: DEFAULT_NEWEST,
            trace_headers: false,
        }
    }

    /// Each message also carries what delivery over the Internet adds above its own fields:
    /// four `Received` hops, `Authentication-Results` and a `DKIM-Signature` (~1.7 KB).
    pub fn with_trace_headers(mut self) -> Self {
        self.trace_headers = true;
        self
    }

    /// Dates go back from `newest` (unix seconds), 1-120 minutes apart; e.g. the current time
    /// for tests of date filters.
    pub fn newest_at(mut self, newest: i64) -> Self {
        self.next_date = newest;
        self
    }

    fn generate(&mut self) -> TestMessage {
        let index = self.next_index;
        let date = self.next_date;
        self.next_index += 1;
        self.next_date -= self.rng.range(60, 7200) as i64;

        let charset = match self.rng.range(0, 9) {
            0..=3 => Charset::Ascii,
            4..=7 => Charset::Utf8,
            _ => Charset::Latin1,
        };
        let form = match self.rng.range(0, 19) {
            0..=8 => BodyForm::Plain,
            9..=15 => BodyForm::Alternative,
            _ => BodyForm::WithAttachments,
        };
        let (name, from) = self.rng.pick(words::SENDERS);
        let subject = self.subject(charset, index);
        let message_id = format!("<{index}.{:x}@generated.example.org>", self.seed);
        let total_size = self.rng.range(2_000, 20_000) as usize;
        let text_size = if form == BodyForm::Plain { total_size } else { total_size / 2 };
        let text_body = self.text_body(charset, text_size);
        let flags = self.flags();

        let mut headers = if self.trace_headers { trace_headers(index, date) } else { Vec::new() };
        headers.extend([
            format!("Date: {}", rfc5322_date(date, self.rng.pick(ZONE_OFFSETS))),
            from_header(name, from, charset),
            format!("To: <{}>", self.to),
            format!("Subject: {}", mime::header_text(&subject, charset)),
            format!("Message-ID: {message_id}"),
        ]);
        if subject.starts_with("Re: ") {
            let parent = format!("<{index}.parent.{:x}@generated.example.org>", self.seed);
            headers.push(format!("In-Reply-To: {parent}"));
            headers.push(format!("References: {parent}"));
        }
        headers.push("MIME-Version: 1.0".to_string());

        let boundary = format!("=_eas_{index}_{:08x}", self.rng.next_u64() as u32);
        let mut attachment_names = Vec::new();
        let body = match form {
            BodyForm::Plain => text_part(&text_body, charset),
            BodyForm::Alternative => alternative_part(&text_body, charset, &boundary),
            BodyForm::WithAttachments => {
                let mut parts =
                    vec![alternative_part(&text_body, charset, &format!("{boundary}_alt"))];
                for n in 0..self.rng.range(1, 2) {
                    let (attachment, name) = self.attachment(index, n, charset);
                    parts.push(attachment);
                    attachment_names.push(name);
                }
                multipart("mixed", &boundary, &parts)
            }
        };
        let mut raw = headers.join("\r\n").into_bytes();
        raw.extend_from_slice(b"\r\n");
        raw.extend_from_slice(&body);

        TestMessage {
            index,
            from: from.to_string(),
            to: self.to.clone(),
            subject,
            date,
            message_id,
            charset,
            form,
            text_body,
            attachment_names,
            flags,
            raw,
        }
    }

    fn subject(&mut self, charset: Charset, index: u64) -> String {
        let topic = match charset {
            Charset::Latin1 if self.rng.percent(70) => self.rng.pick(words::LATIN1_TOPICS),
            Charset::Utf8 if self.rng.percent(70) => self.rng.pick(words::UNICODE_TOPICS),
            _ => self.rng.pick(words::TOPICS),
        };
        match self.rng.range(0, 5) {
            0 => format!("Re: {topic}"),
            1 => format!("Fwd: {topic}"),
            2 => format!("{topic} (#{index})"),
            _ => topic.to_string(),
        }
    }

    /// Paragraphs of words until `size` bytes, lines of at most 66 bytes: with the HTML part's
    /// `<p>` and `<br>` around them they still keep RFC 5322's limit of 78.
    fn text_body(&mut self, charset: Charset, size: usize) -> String {
        let mut body = String::from("Hello,\r\n\r\n");
        while body.len() < size {
            let mut line_len = 0;
            for _ in 0..self.rng.range(20, 80) {
                let word = self.word(charset);
                if line_len + 1 + word.len() > 66 {
                    body.push_str("\r\n");
                    line_len = 0;
                } else if line_len > 0 {
                    body.push(' ');
                    line_len += 1;
                }
                body.push_str(word);
                line_len += word.len();
            }
            body.push_str(".\r\n\r\n");
        }
        body.push_str("Best regards\r\n");
        body
    }

    fn word(&mut self, charset: Charset) -> &'static str {
        match charset {
            Charset::Latin1 if self.rng.percent(15) => self.rng.pick(words::LATIN1_WORDS),
            Charset::Utf8 if self.rng.percent(10) => self.rng.pick(words::LATIN1_WORDS),
            Charset::Utf8 if self.rng.percent(8) => self.rng.pick(words::UNICODE_WORDS),
            _ => self.rng.pick(words::ASCII_WORDS),
        }
    }

    fn flags(&mut self) -> Vec<String> {
        let mut flags = Vec::new();
        if self.rng.percent(70) {
            flags.push(r"\Seen".to_string());
        }
        if self.rng.percent(8) {
            flags.push(r"\Flagged".to_string());
        }
        if self.rng.percent(5) {
            flags.push(r"\Answered".to_string());
        }
        flags
    }

    /// A base64 attachment part of 1-24 KB and its file name.
    fn attachment(&mut self, index: u64, n: u64, charset: Charset) -> (Vec<u8>, String) {
        let size = self.rng.range(1_000, 24_000) as usize;
        let mut data = vec![0u8; size];
        self.rng.fill_bytes(&mut data);
        let (name, content_type) = match self.rng.range(0, 2) {
            0 => {
                // real files start with their magic number; some clients sniff it
                data[..9].copy_from_slice(b"%PDF-1.4\n");
                let name = if charset == Charset::Utf8 {
                    format!("Übersicht {index}-{n}.pdf")
                } else {
                    format!("report-{index}-{n}.pdf")
                };
                (name, "application/pdf")
            }
            1 => {
                data[..8].copy_from_slice(b"\x89PNG\r\n\x1a\n");
                (format!("photo-{index}-{n}.png"), "image/png")
            }
            _ => {
                let rows = (0..size / 24).map(|row| format!("{row},{},{}\r\n", row * 7, row % 13));
                data = rows.collect::<String>().into_bytes();
                (format!("data-{index}-{n}.csv"), "text/csv")
            }
        };
        let filename = mime::filename_param(&name);
        let headers = format!(
            "Content-Type: {content_type}\r\nContent-Disposition: attachment; {filename}\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n"
        );
        let mut part = headers.into_bytes();
        part.extend_from_slice(mime::base64_lines(&data).as_bytes());
        (part, name)
    }
}

impl Iterator for MessageGenerator {
    type Item = TestMessage;

    fn next(&mut self) -> Option<TestMessage> {
        Some(self.generate())
    }
}

/// `From: "Name" <address>`, the name RFC 2047 encoded when not ASCII, folded before the
/// address when the line would pass 78 characters.
fn from_header(name: &str, address: &str, charset: Charset) -> String {
    let name = if name.is_ascii() {
        format!("\"{name}\"")
    } else {
        mime::single_encoded_word(name, charset)
    };
    let line = format!("From: {name} <{address}>");
    if line.len() <= 78 { line } else { format!("From: {name}\r\n <{address}>") }
}

/// A text/plain part (headers + body): 7bit when ASCII, else quoted-printable.
fn text_part(text: &str, charset: Charset) -> Vec<u8> {
    leaf_part("text/plain", text, charset)
}

fn html_part(text: &str, charset: Charset) -> Vec<u8> {
    let mut html = String::from("<html><head><meta charset=\"");
    html.push_str(charset.mime_name());
    html.push_str("\"></head><body>\r\n");
    for paragraph in text.split("\r\n\r\n").filter(|p| !p.is_empty()) {
        html.push_str("<p>");
        html.push_str(&escape_html(paragraph).replace("\r\n", "<br>\r\n"));
        html.push_str("</p>\r\n");
    }
    html.push_str("</body></html>\r\n");
    leaf_part("text/html", &html, charset)
}

fn leaf_part(content_type: &str, text: &str, charset: Charset) -> Vec<u8> {
    // a charset the text does not need would still be legal, but real mailers label ASCII as such
    let charset = if text.is_ascii() { Charset::Ascii } else { charset };
    let encoded = mime::encode_text(text, charset);
    let (encoding, body) = if charset == Charset::Ascii {
        ("7bit", encoded)
    } else {
        ("quoted-printable", mime::quoted_printable(&encoded).into_bytes())
    };
    let mut part = format!(
        "Content-Type: {content_type}; charset={}\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n",
        charset.mime_name()
    )
    .into_bytes();
    part.extend_from_slice(&body);
    part
}

fn alternative_part(text: &str, charset: Charset, boundary: &str) -> Vec<u8> {
    let parts = [text_part(text, charset), html_part(text, charset)];
    multipart("alternative", boundary, &parts)
}

fn multipart(subtype: &str, boundary: &str, parts: &[Vec<u8>]) -> Vec<u8> {
    let mut out =
        format!("Content-Type: multipart/{subtype}; boundary=\"{boundary}\"\r\n\r\n").into_bytes();
    out.extend_from_slice(b"This is a multi-part message in MIME format.\r\n");
    for part in parts {
        out.extend_from_slice(format!("\r\n--{boundary}\r\n").as_bytes());
        out.extend_from_slice(part);
    }
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    out
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The delivery trace of message `index` delivered at `date`: the hops newest first, as MTAs
/// prepend them, then the receiving server's verdict and the sender's signature.
fn trace_headers(index: u64, date: i64) -> Vec<String> {
    let hops = [
        ("mail.example.org", "mx1.example.org", "192.0.2.25", "Postfix"),
        ("mx1.example.org", "out.example.net", "198.51.100.7", "Postfix"),
        ("out.example.net", "relay.example.net", "198.51.100.12", "Exim 4.98"),
        ("relay.example.net", "submit.example.net", "203.0.113.40", "Exim 4.98"),
    ];
    let mut fields: Vec<String> = hops
        .iter()
        .enumerate()
        .map(|(hop, (by, from, address, software))| {
            format!(
                "Received: from {from} ({from} [{address}])\r\n\tby {by} ({software}) with ESMTPS id \
                 {index:08X}{hop}\r\n\t(version=TLS1_3 cipher=TLS_AES_256_GCM_SHA384 bits=256)\r\n\t\
                 for <bench@example.test>; {}",
                rfc5322_date(date - hop as i64, 0)
            )
        })
        .collect();
    fields.push(
        "Authentication-Results: mail.example.org; dkim=pass (2048-bit key)\r\n\t\
         header.d=example.net header.i=@example.net header.b=\"AbCdEfGh\";\r\n\t\
         spf=pass (mail.example.org: domain of sender@example.net designates 198.51.100.7\r\n\t\
         as permitted sender) smtp.mailfrom=sender@example.net; dmarc=pass header.from=example.net"
            .to_string(),
    );
    fields.push(format!(
        "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.net; s=s2026;\r\n\t\
         t={date}; h=from:to:subject:date:message-id:mime-version:content-type;\r\n\t\
         bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\r\n\t\
         b={}",
        "QmVuY2htYXJrIHNpZ25hdHVyZSBieXRlcywgbm90IGEgcmVhbCBzaWduYXR1cmUu".repeat(5)
    ));
    fields
}

/// The value of the first header `name` in a raw message, unfolded (still RFC 2047 encoded).
pub fn header_value(raw: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    let head = text.split("\r\n\r\n").next()?;
    let mut value: Option<String> = None;
    for line in head.split("\r\n") {
        match value.as_mut() {
            Some(found) if line.starts_with([' ', '\t']) => found.push_str(line),
            Some(_) => break,
            None => {
                if let Some((field, rest)) = line.split_once(':')
                    && field.eq_ignore_ascii_case(name)
                {
                    value = Some(rest.trim_start().to_string());
                }
            }
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first(seed: u64, count: usize) -> Vec<TestMessage> {
        MessageGenerator::new(seed, "user@example.test").take(count).collect()
    }

    #[test]
    fn same_seed_same_messages() {
        let a = first(42, 20);
        let b = first(42, 20);
        let c = first(43, 20);
        assert!(a.iter().zip(&b).all(|(x, y)| x.raw == y.raw));
        assert!(a.iter().zip(&c).any(|(x, y)| x.raw != y.raw));
    }

    #[test]
    fn messages_are_well_formed_and_varied() {
        let messages = first(1, 200);
        for m in &messages {
            assert!(m.raw.is_ascii(), "message {} has raw 8-bit bytes", m.index);
            assert!(!m.raw.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r'), "bare LF");
            let longest = m.raw.split(|&b| b == b'\n').map(<[u8]>::len).max().unwrap_or(0);
            assert!(longest <= 78, "message {} has a {longest}-byte line", m.index);
            assert_eq!(header_value(&m.raw, "message-id").as_deref(), Some(m.message_id.as_str()));
            assert!(m.text_body.len() >= 1_000);
        }
        let count = |f: &dyn Fn(&TestMessage) -> bool| messages.iter().filter(|m| f(m)).count();
        assert!(count(&|m| m.charset == Charset::Latin1) > 5);
        assert!(count(&|m| m.charset == Charset::Utf8) > 5);
        assert!(count(&|m| m.form == BodyForm::Alternative) > 5);
        assert!(count(&|m| !m.attachment_names.is_empty()) > 5);
        assert!(count(&|m| m.attachment_names.iter().any(|n| !n.is_ascii())) > 0);
        assert!(count(&|m| header_value(&m.raw, "subject").is_some_and(|s| s.contains("=?"))) > 5);
    }

    #[test]
    fn dates_go_back_from_the_newest() {
        let messages: Vec<_> =
            MessageGenerator::new(3, "u@example.test").newest_at(2_000_000_000).take(10).collect();
        assert_eq!(messages[0].date, 2_000_000_000);
        assert!(messages.windows(2).all(|w| w[1].date < w[0].date));
    }

    #[test]
    fn header_values_are_unfolded() {
        let raw =
            b"Subject: =?UTF-8?B?YQ==?=\r\n =?UTF-8?B?Yg==?=\r\nTo: x\r\n\r\nSubject: body\r\n";
        assert_eq!(
            header_value(raw, "SUBJECT").as_deref(),
            Some("=?UTF-8?B?YQ==?= =?UTF-8?B?Yg==?=")
        );
        assert_eq!(header_value(raw, "From"), None);
    }

    #[test]
    fn trace_headers_come_first_and_change_nothing_else() {
        let plain: Vec<TestMessage> = MessageGenerator::new(7, "u@example.test").take(20).collect();
        let traced: Vec<TestMessage> =
            MessageGenerator::new(7, "u@example.test").with_trace_headers().take(20).collect();
        for (plain, traced) in plain.iter().zip(&traced) {
            let text = String::from_utf8_lossy(&traced.raw);
            let header_block = &text[..text.find("\r\n\r\n").expect("a header block")];
            assert!(text.starts_with("Received: from "), "{header_block}");
            assert_eq!(header_block.matches("\r\nReceived: ").count(), 3, "{header_block}");
            assert!(header_block.contains("\r\nDKIM-Signature: v=1;"), "{header_block}");
            assert!(header_block.len() > 1_500, "{} bytes", header_block.len());
            assert!(traced.raw.ends_with(&plain.raw), "the message's own fields and body follow");
            assert_eq!(header_value(&traced.raw, "Subject"), header_value(&plain.raw, "Subject"));
        }
    }
}
