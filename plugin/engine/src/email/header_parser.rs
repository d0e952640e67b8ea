//! The one mail-parser configuration stored mail is read with: mail-parser's own choice of
//! parser for every field it knows how to parse and for the few others the engine reads
//! (`headers.rs`); `Received` and every other field are skipped unparsed.
//!
//! Real mail carries a Received field per hop (often five or more), and mail-parser turns
//! each into a structure (hosts, addresses, TLS, date) that nothing here reads. That was most
//! of the header work: a 1.7 KB block with six of them parsed in 7.6 µs with the default
//! configuration and in 2.7 µs without them (natively, mail-parser 0.11.9); without any
//! Received field both take ~1.1 µs.
//!
//! The fields mail-parser has no parser for (signatures, authentication results, X- fields:
//! kilobytes in mail from large providers) it would copy as text and check as UTF-8, for
//! nothing: with four Received hops, Authentication-Results and a DKIM-Signature per message,
//! that copy and check were a third of the extra time such mail cost a Sync page
//! (docs/benchmarks.md, tenth pass). They are skipped too, except the ones read.

use mail_parser::{HeaderName, MessageParser};
use std::sync::OnceLock;

/// Fields without a parser of their own in mail-parser that the engine reads (`headers.rs`):
/// kept as raw text, as mail-parser's default keeps them.
pub const RAW_FIELDS_READ: [&str; 5] =
    ["Thread-Topic", "Importance", "X-Priority", "Priority", "X-MSMail-Priority"];

/// mail-parser's defaults (its `parse_headers` match, 0.11.9) for the fields it parses and
/// [`RAW_FIELDS_READ`], with `Received` and all other fields ignored. Built once: a configured
/// parser holds a map of the fields, and its default for fields not in the map is to skip them.
pub fn header_parser() -> &'static MessageParser {
    static PARSER: OnceLock<MessageParser> = OnceLock::new();
    PARSER.get_or_init(|| {
        let list_fields = [
            HeaderName::ListArchive,
            HeaderName::ListHelp,
            HeaderName::ListId,
            HeaderName::ListOwner,
            HeaderName::ListPost,
            HeaderName::ListSubscribe,
            HeaderName::ListUnsubscribe,
        ];
        let parser = MessageParser::new()
            .with_mime_headers()
            .with_date_headers()
            .with_address_headers()
            .with_message_ids()
            .header_text(HeaderName::Subject)
            .header_text(HeaderName::Comments)
            .header_id(HeaderName::ReturnPath)
            .header_comma_separated(HeaderName::Keywords)
            .header_comma_separated(HeaderName::ContentLanguage)
            .ignore_header(HeaderName::Received)
            .default_header_ignore();
        let parser = list_fields.into_iter().fold(parser, MessageParser::header_address);
        RAW_FIELDS_READ
            .into_iter()
            .filter_map(HeaderName::parse)
            .fold(parser, MessageParser::header_raw)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::{Header, HeaderValue};

    /// One field of every kind mail-parser's default parse treats apart, each twice.
    const EVERY_KIND: &str = "Return-Path: <bounce@example.net>\r\n\
        Received: from mx.example.net (mx.example.net [192.0.2.1]) by mail.example.org\r\n\
        \twith ESMTPS id 4Xyz; Mon, 30 Nov 2026 12:00:00 +0000\r\n\
        Date: Mon, 30 Nov 2026 12:00:00 +0000\r\n\
        Resent-Date: Tue, 1 Dec 2026 08:00:00 +0100\r\n\
        From: =?UTF-8?Q?Zo=C3=AB?= <zoe@example.org>\r\n\
        Sender: s@example.org\r\nReply-To: r@example.org\r\nTo: a@example.org, \"B\" <b@x>\r\n\
        Cc: c@example.org\r\nBcc: d@example.org\r\nResent-From: e@example.org\r\n\
        Resent-Sender: f@example.org\r\nResent-To: g@example.org\r\nResent-Cc: h@example.org\r\n\
        Resent-Bcc: i@example.org\r\n\
        List-Archive: <https://lists.example.org/a>\r\nList-Help: <mailto:help@x>\r\n\
        List-ID: Example <list.example.org>\r\nList-Owner: <mailto:owner@x>\r\n\
        List-Post: <mailto:list@x>\r\nList-Subscribe: <mailto:sub@x>\r\n\
        List-Unsubscribe: <mailto:unsub@x>\r\n\
        Message-ID: <m@example.org>\r\nIn-Reply-To: <p@example.org>\r\n\
        References: <r1@example.org> <p@example.org>\r\nResent-Message-ID: <rm@example.org>\r\n\
        Subject: =?ISO-8859-1?Q?Gr=FC=DFe?= from the list\r\nComments: a =?UTF-8?B?w6k=?= note\r\n\
        Keywords: one, two\r\nContent-Language: en, de\r\nMIME-Version: 1.0\r\n\
        Content-Type: multipart/mixed; boundary=\"b\"\r\nContent-Disposition: inline\r\n\
        Content-ID: <c@example.org>\r\nContent-Description: =?UTF-8?Q?d=C3=A9?=\r\n\
        Content-Location: here\r\nContent-Transfer-Encoding: 7bit\r\n\
        Thread-Topic: trip\r\nImportance: high\r\nX-Priority: 1 (Highest)\r\n\
        Priority: urgent\r\nX-MSMail-Priority: High\r\n\
        X-Mailer: Example 1.0\r\nDKIM-Signature: v=1; a=rsa-sha256; d=example.org; b=AbC=\r\n\
        \r\n--b--\r\n";

    /// Whether mail-parser's default parse has a parser of its own for the field, other than
    /// copying it raw (its `parse_headers` match, 0.11.9).
    fn parsed_by_default(name: &HeaderName<'_>) -> bool {
        use HeaderName::*;
        matches!(
            name,
            Subject
                | Comments
                | ContentDescription
                | ContentLocation
                | ContentTransferEncoding
                | From
                | To
                | Cc
                | Bcc
                | ReplyTo
                | Sender
                | ResentTo
                | ResentFrom
                | ResentBcc
                | ResentCc
                | ResentSender
                | ListArchive
                | ListHelp
                | ListId
                | ListOwner
                | ListPost
                | ListSubscribe
                | ListUnsubscribe
                | Date
                | ResentDate
                | MessageId
                | References
                | InReplyTo
                | ReturnPath
                | ContentId
                | ResentMessageId
                | Keywords
                | ContentLanguage
                | ContentType
                | ContentDisposition
        )
    }

    fn is_read_raw(name: &HeaderName<'_>) -> bool {
        RAW_FIELDS_READ.iter().any(|read| name.as_str().eq_ignore_ascii_case(read))
    }

    /// The fields, in order, with the value of every skipped one emptied.
    fn as_kept<'x>(headers: &[Header<'x>]) -> Vec<Header<'x>> {
        let kept = |h: &Header<'_>| parsed_by_default(&h.name) || is_read_raw(&h.name);
        let skipped = |h: &Header<'x>| Header { value: HeaderValue::Empty, ..h.clone() };
        headers.iter().map(|h| if kept(h) { h.clone() } else { skipped(h) }).collect()
    }

    #[test]
    fn fields_parsed_or_read_are_read_as_mail_parsers_default_reads_them_and_others_skipped() {
        let doubled = EVERY_KIND.replacen("\r\n\r\n", &format!("\r\n{EVERY_KIND}"), 1);
        for raw in [EVERY_KIND, doubled.as_str()] {
            let ours = header_parser().parse_headers(raw.as_bytes()).expect("parses");
            let default = MessageParser::new().parse_headers(raw.as_bytes()).expect("parses");
            assert_eq!(ours.headers(), as_kept(default.headers()));
            for read in RAW_FIELDS_READ {
                let value = ours.header(read).and_then(|v| v.as_text());
                assert!(value.is_some_and(|v| !v.is_empty()), "{read}: {value:?}");
            }
            let skipped = ours.headers().iter().filter(|h| h.value.is_empty()).count();
            // Received, MIME-Version, X-Mailer, DKIM-Signature per copy
            assert_eq!(skipped, 4 * raw.matches("Return-Path").count());
        }
    }
}
