//! The one mail-parser configuration stored mail is read with: mail-parser's own choice of
//! parser for every field, except `Received`, which is skipped unparsed.
//!
//! Real mail carries a Received field per hop (often five or more), and mail-parser turns
//! each into a structure (hosts, addresses, TLS, date) that nothing here reads. That was most
//! of the header work: a 1.7 KB block with six of them parsed in 7.6 µs with the default
//! configuration and in 2.7 µs without them (natively, mail-parser 0.11.9); without any
//! Received field both take ~1.1 µs.
//!
//! Skipping the other fields nothing reads as well (signatures, authentication results, X-
//! fields, kept as raw text) was tried: it made no difference that the read-path benchmark
//! could see, so they are parsed as mail-parser parses them.

use mail_parser::{HeaderName, MessageParser};
use std::sync::OnceLock;

/// mail-parser's defaults (its `parse_headers` match, 0.11.9) with `Received` ignored. Built
/// once: a configured parser holds a map of the fields, and `MessageParser::new()`'s default
/// for fields not in the map is raw text, as mail-parser's own match has it.
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
            .ignore_header(HeaderName::Received);
        list_fields.into_iter().fold(parser, MessageParser::header_address)
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

    fn without_received<'x>(headers: &[Header<'x>]) -> Vec<Header<'x>> {
        headers.iter().filter(|h| h.name != HeaderName::Received).cloned().collect()
    }

    #[test]
    fn every_field_but_received_is_read_as_mail_parsers_default_reads_it() {
        let doubled = EVERY_KIND.replacen("\r\n\r\n", &format!("\r\n{EVERY_KIND}"), 1);
        for raw in [EVERY_KIND, doubled.as_str()] {
            let ours = header_parser().parse_headers(raw.as_bytes()).expect("parses");
            let default = MessageParser::new().parse_headers(raw.as_bytes()).expect("parses");
            assert_eq!(without_received(ours.headers()), without_received(default.headers()));
            let received: Vec<&HeaderValue> = ours
                .headers()
                .iter()
                .filter(|h| h.name == HeaderName::Received)
                .map(|h| &h.value)
                .collect();
            assert_eq!(received.len(), raw.matches("Return-Path").count());
            assert!(received.iter().all(|v| v.is_empty()), "{received:?}");
        }
    }
}
