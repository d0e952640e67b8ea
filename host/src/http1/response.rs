//! A response's status line and header section, as bytes for the wire (RFC 9112 §4, §6.3).

use http::{StatusCode, header};

/// What the connection decided about a response before writing it.
#[derive(Debug, Clone, Copy)]
pub struct Framed {
    /// For a HEAD request: the length a GET would have had.
    pub body_length: usize,
    /// The connection stays open for another request.
    pub keep_alive: bool,
}

/// Whether a response with this status carries a body at all (RFC 9110 §6.4.1).
pub fn allows_body(status: StatusCode) -> bool {
    !(status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED)
}

/// Writes the head of `response` to `out`. The framing headers are the connection's to set:
/// any the handler set are left out, and `Date` is added (RFC 9110 §6.6.1).
pub fn write_head(response: &http::response::Parts, framed: Framed, date: &str, out: &mut Vec<u8>) {
    let status = response.status;
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("Unknown").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in &response.headers {
        if [header::CONTENT_LENGTH, header::TRANSFER_ENCODING, header::CONNECTION, header::DATE]
            .contains(name)
        {
            continue;
        }
        field(out, name.as_str(), value.as_bytes());
    }
    field(out, "date", date.as_bytes());
    if allows_body(status) {
        field(out, "content-length", framed.body_length.to_string().as_bytes());
    }
    if !framed.keep_alive {
        field(out, "connection", b"close");
    }
    out.extend_from_slice(b"\r\n");
}

fn field(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head_of(response: http::Response<()>, framed: Framed) -> String {
        let mut out = Vec::new();
        write_head(&response.into_parts().0, framed, "Sun, 29 Nov 2026 12:00:00 GMT", &mut out);
        String::from_utf8(out).expect("ascii")
    }

    #[test]
    fn the_connection_sets_length_date_and_close() {
        let response = http::Response::builder()
            .status(200)
            .header("content-type", "application/vnd.ms-sync.wbxml")
            .header("content-length", "999")
            .header("connection", "keep-alive")
            .body(())
            .expect("response");
        let framed = Framed { body_length: 42, keep_alive: false };
        assert_eq!(
            head_of(response, framed),
            "HTTP/1.1 200 OK\r\ncontent-type: application/vnd.ms-sync.wbxml\r\n\
             date: Sun, 29 Nov 2026 12:00:00 GMT\r\ncontent-length: 42\r\nconnection: close\r\n\r\n"
        );
    }

    #[test]
    fn statuses_without_a_body_announce_no_length() {
        let response = http::Response::builder().status(204).body(()).expect("response");
        let framed = Framed { body_length: 0, keep_alive: true };
        assert_eq!(
            head_of(response, framed),
            "HTTP/1.1 204 No Content\r\ndate: Sun, 29 Nov 2026 12:00:00 GMT\r\n\r\n"
        );
        assert!(!allows_body(StatusCode::CONTINUE));
        assert!(allows_body(StatusCode::UNAUTHORIZED));
    }
}
