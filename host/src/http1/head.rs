//! A request head (request line and header fields) parsed from the bytes read so far, with what
//! the connection needs to know about it: how the body is framed and whether to keep the
//! connection open afterwards.

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Version};

/// Header fields beyond this many get 431: phones send about fifteen.
const MAX_HEADERS: usize = 100;
/// A head longer than this gets 431 (an EAS request head is under 2 KiB).
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// The HTTP/2 connection preface (RFC 9113 §3.4): a client speaking h2c with prior knowledge.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// How a request's body is delimited on the wire (RFC 9112 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Empty,
    Length(u64),
    Chunked,
}

#[derive(Debug)]
pub struct Head {
    pub parts: http::request::Parts,
    pub framing: Framing,
    /// The client allows another request on this connection after this one.
    pub keep_alive: bool,
    /// `Expect: 100-continue`: the client waits for a 100 before it sends the body.
    pub expects_continue: bool,
}

#[derive(Debug)]
pub enum Parsed {
    /// Not a whole head yet: read more.
    Partial,
    /// The connection opens with the HTTP/2 preface.
    Http2,
    /// A head, `length` bytes long in the buffer.
    Complete { head: Box<Head>, length: usize },
}

/// Parses the head at the start of `buffer`. `first` says whether this is the connection's first
/// request, the only place an HTTP/2 preface may appear. An error is the status to answer with
/// before closing the connection.
pub fn parse(buffer: &[u8], first: bool) -> Result<Parsed, StatusCode> {
    if first {
        let common = buffer.len().min(H2_PREFACE.len());
        if buffer[..common] == H2_PREFACE[..common] {
            return Ok(if common == H2_PREFACE.len() { Parsed::Http2 } else { Parsed::Partial });
        }
    }
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut fields);
    let length = match request.parse(buffer) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) if buffer.len() > MAX_HEAD_BYTES => {
            return Err(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        }
        Ok(httparse::Status::Partial) => return Ok(Parsed::Partial),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        }
        Err(httparse::Error::Version) => return Err(StatusCode::HTTP_VERSION_NOT_SUPPORTED),
        Err(_) => return Err(StatusCode::BAD_REQUEST),
    };
    if length > MAX_HEAD_BYTES {
        return Err(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    }
    let version = match request.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let mut headers = HeaderMap::with_capacity(request.headers.len());
    for field in request.headers.iter() {
        let name = HeaderName::from_bytes(field.name.as_bytes());
        let value = HeaderValue::from_bytes(field.value);
        let (Ok(name), Ok(value)) = (name, value) else { return Err(StatusCode::BAD_REQUEST) };
        headers.append(name, value);
    }
    let (Some(method), Some(target)) = (request.method, request.path) else {
        return Err(StatusCode::BAD_REQUEST);
    };
    let (mut parts, ()) = http::Request::builder()
        .method(method.as_bytes())
        .uri(target)
        .version(version)
        .body(())
        .map_err(|_| StatusCode::BAD_REQUEST)?
        .into_parts();
    let framing = framing(&headers, version)?;
    let keep_alive = match version {
        Version::HTTP_10 => has_token(&headers, http::header::CONNECTION, "keep-alive"),
        _ => !has_token(&headers, http::header::CONNECTION, "close"),
    };
    let expects_continue = version == Version::HTTP_11
        && headers
            .get(http::header::EXPECT)
            .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    parts.headers = headers;
    let head = Head { parts, framing, keep_alive, expects_continue };
    Ok(Parsed::Complete { head: Box::new(head), length })
}

/// RFC 9112 §6.3. A request with both Transfer-Encoding and Content-Length, or with lengths
/// that disagree, is refused rather than guessed at: that ambiguity is how requests are smuggled.
fn framing(headers: &HeaderMap, version: Version) -> Result<Framing, StatusCode> {
    let lengths = headers.get_all(http::header::CONTENT_LENGTH);
    if headers.contains_key(http::header::TRANSFER_ENCODING) {
        if version == Version::HTTP_10 || lengths.iter().next().is_some() {
            return Err(StatusCode::BAD_REQUEST);
        }
        let codings: Vec<String> = tokens(headers, http::header::TRANSFER_ENCODING).collect();
        return match codings.as_slice() {
            [only] if only == "chunked" => Ok(Framing::Chunked),
            // a compressed request body: no phone sends one, and the engine could not read it
            _ => Err(StatusCode::NOT_IMPLEMENTED),
        };
    }
    let mut length = None;
    for value in lengths.iter() {
        let text = value.to_str().map_err(|_| StatusCode::BAD_REQUEST)?;
        for item in text.split(',').map(str::trim) {
            if item.is_empty() || !item.bytes().all(|byte| byte.is_ascii_digit()) {
                return Err(StatusCode::BAD_REQUEST);
            }
            let parsed: u64 = item.parse().map_err(|_| StatusCode::PAYLOAD_TOO_LARGE)?;
            if length.is_some_and(|seen| seen != parsed) {
                return Err(StatusCode::BAD_REQUEST);
            }
            length = Some(parsed);
        }
    }
    Ok(match length {
        None | Some(0) => Framing::Empty,
        Some(length) => Framing::Length(length),
    })
}

fn tokens(headers: &HeaderMap, name: HeaderName) -> impl Iterator<Item = String> + '_ {
    headers
        .get_all(name)
        .into_iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|token| token.trim().to_ascii_lowercase())
        .filter(|token| !token.is_empty())
}

fn has_token(headers: &HeaderMap, name: HeaderName, wanted: &str) -> bool {
    tokens(headers, name).any(|token| token == wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(bytes: &[u8]) -> (Head, usize) {
        match parse(bytes, true) {
            Ok(Parsed::Complete { head, length }) => (*head, length),
            other => panic!("expected a complete head, got {other:?}"),
        }
    }

    #[test]
    fn an_eas_post_with_a_length() {
        let bytes = b"POST /Microsoft-Server-ActiveSync?Cmd=Ping&User=a&DeviceId=D HTTP/1.1\r\n\
                      Host: mail.example.test\r\nContent-Type: application/vnd.ms-sync.wbxml\r\n\
                      Content-Length: 13\r\n\r\nbody follows.";
        let (head, length) = complete(bytes);
        assert_eq!(length, bytes.len() - 13);
        assert_eq!(head.parts.method, http::Method::POST);
        assert_eq!(head.parts.uri.path(), "/Microsoft-Server-ActiveSync");
        assert_eq!(head.parts.uri.query(), Some("Cmd=Ping&User=a&DeviceId=D"));
        assert_eq!(head.parts.version, Version::HTTP_11);
        assert_eq!(head.parts.headers["host"], "mail.example.test");
        assert_eq!(head.framing, Framing::Length(13));
        assert!(head.keep_alive);
        assert!(!head.expects_continue);
    }

    #[test]
    fn a_head_arrives_in_pieces() {
        let bytes = b"OPTIONS /Microsoft-Server-ActiveSync HTTP/1.1\r\nHost: x\r\n\r\n";
        for cut in 0..bytes.len() {
            assert!(matches!(parse(&bytes[..cut], true), Ok(Parsed::Partial)), "cut at {cut}");
        }
        assert_eq!(complete(bytes).0.framing, Framing::Empty);
    }

    #[test]
    fn the_http2_preface_is_recognised_only_first() {
        assert!(matches!(parse(H2_PREFACE, true), Ok(Parsed::Http2)));
        assert!(matches!(parse(&H2_PREFACE[..10], true), Ok(Parsed::Partial)));
        assert_eq!(parse(H2_PREFACE, false).err(), Some(StatusCode::HTTP_VERSION_NOT_SUPPORTED));
    }

    #[test]
    fn connection_reuse_follows_the_version_and_the_connection_header() {
        let close = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Close\r\n\r\n";
        assert!(!complete(close).0.keep_alive);
        assert!(!complete(b"GET / HTTP/1.0\r\n\r\n").0.keep_alive);
        let kept = b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n";
        assert!(complete(kept).0.keep_alive);
    }

    #[test]
    fn chunked_and_continue_are_understood() {
        let bytes = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\
                      Expect: 100-continue\r\n\r\n";
        let (head, _) = complete(bytes);
        assert_eq!(head.framing, Framing::Chunked);
        assert!(head.expects_continue);
    }

    #[test]
    fn ambiguous_or_unsupported_framing_is_refused() {
        let refused = |bytes: &[u8]| parse(bytes, true).err();
        let both = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n";
        assert_eq!(refused(both), Some(StatusCode::BAD_REQUEST));
        let differ = b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n";
        assert_eq!(refused(differ), Some(StatusCode::BAD_REQUEST));
        let signed = b"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n";
        assert_eq!(refused(signed), Some(StatusCode::BAD_REQUEST));
        let gzip = b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
        assert_eq!(refused(gzip), Some(StatusCode::NOT_IMPLEMENTED));
        let huge = b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n";
        assert_eq!(refused(huge), Some(StatusCode::PAYLOAD_TOO_LARGE));
        let same = b"POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n";
        assert_eq!(complete(same).0.framing, Framing::Length(5));
    }

    #[test]
    fn garbage_and_oversized_heads_get_a_status() {
        assert_eq!(
            parse(b"\x00\x01\x02 / HTTP/1.1\r\n\r\n", true).err(),
            Some(StatusCode::BAD_REQUEST)
        );
        let mut long = b"GET / HTTP/1.1\r\nX: ".to_vec();
        long.resize(MAX_HEAD_BYTES + 10, b'a');
        assert_eq!(parse(&long, true).err(), Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE));
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for n in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("X-{n}: y\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(parse(&many, true).err(), Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE));
        let bad_value = b"GET / HTTP/1.1\r\nX: a\x7fb\r\n\r\n";
        assert!(parse(bad_value, true).is_err());
    }
}
