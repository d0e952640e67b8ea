//! The JSON Autodiscover v2 endpoint that Outlook mobile (and Outlook on Windows and Mac)
//! asks before falling back to POX: `GET /autodiscover/autodiscover.json/v1.0/{address}
//! ?Protocol=ActiveSync` (or `/autodiscover/autodiscover.json?Email=…&Protocol=…`). It is
//! anonymous: the answer is this server's URL for the protocol, whoever asks.

use crate::ashttp::percent::{Plus, decode};
use crate::http::{Request, Response};

/// Protocols we have a URL for, as named in the `Protocol` parameter (any case).
const ACTIVESYNC: &str = "ActiveSync";
const AUTODISCOVER_V1: &str = "AutodiscoverV1";

/// Answers a v2 request. `base_url` is `scheme://host[:port]` of this server, None when the
/// request named no usable Host.
pub fn answer(request: &Request, base_url: Option<&str>) -> Response {
    if request.method != "GET" {
        return Response::new(405).with_header("Allow", "GET");
    }
    let Some(base_url) = base_url else {
        return error(400, "InvalidRequest", "The request names no host.");
    };
    let protocol = query_value(&request.query, "protocol").unwrap_or_default();
    let (name, path) = if protocol.eq_ignore_ascii_case(ACTIVESYNC) {
        (ACTIVESYNC, crate::ENDPOINT)
    } else if protocol.eq_ignore_ascii_case(AUTODISCOVER_V1) {
        (AUTODISCOVER_V1, "/autodiscover/autodiscover.xml")
    } else {
        // the protocol is not echoed: it is client input and this is not an escaping context
        // worth having
        return error(
            400,
            "InvalidProtocol",
            "The given protocol value is invalid. Supported values are 'ActiveSync,AutodiscoverV1'.",
        );
    };
    let body = format!(r#"{{"Protocol":"{name}","Url":"{base_url}{path}"}}"#);
    Response::new(200).with_body("application/json; charset=utf-8", body.into_bytes())
}

/// The first value of a query parameter (name compared in any case), percent-decoded.
fn query_value(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = String::from_utf8(decode(key, Plus::Space)).ok()?;
        key.eq_ignore_ascii_case(name)
            .then(|| String::from_utf8(decode(value, Plus::Space)).ok())
            .flatten()
    })
}

/// An error in the shape Exchange Online gives (`ErrorCode`, `ErrorMessage`); both strings are
/// ours, so they need no JSON escaping.
fn error(status: u16, code: &str, message: &str) -> Response {
    let body = format!(r#"{{"ErrorCode":"{code}","ErrorMessage":"{message}"}}"#);
    Response::new(status).with_body("application/json; charset=utf-8", body.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "https://mail.example.com";

    fn get(query: &str) -> Response {
        let request = Request { method: "GET".into(), query: query.into(), ..Request::default() };
        answer(&request, Some(BASE))
    }

    fn body(response: &Response) -> &str {
        std::str::from_utf8(&response.body).expect("test data")
    }

    #[test]
    fn activesync_gets_the_endpoint_url() {
        let response = get("Protocol=ActiveSync&RedirectCount=1");
        assert_eq!(response.status, 200);
        assert_eq!(response.header("content-type"), Some("application/json; charset=utf-8"));
        assert_eq!(
            body(&response),
            r#"{"Protocol":"ActiveSync","Url":"https://mail.example.com/Microsoft-Server-ActiveSync"}"#
        );
        assert_eq!(get("protocol=activesync").status, 200);
    }

    #[test]
    fn autodiscover_v1_points_at_the_pox_endpoint() {
        let response = get("Email=a%40example.com&Protocol=AutodiscoverV1");
        assert_eq!(
            body(&response),
            r#"{"Protocol":"AutodiscoverV1","Url":"https://mail.example.com/autodiscover/autodiscover.xml"}"#
        );
    }

    #[test]
    fn other_or_missing_protocols_are_400() {
        for query in ["Protocol=Ews", "", "Protocol=%22%7D", "Protocol"] {
            let response = get(query);
            assert_eq!(response.status, 400, "{query}");
            assert!(body(&response).contains(r#""ErrorCode":"InvalidProtocol""#));
        }
    }

    #[test]
    fn only_get_is_answered_and_a_host_is_needed() {
        let post = Request { method: "POST".into(), ..Request::default() };
        assert_eq!(answer(&post, Some(BASE)).status, 405);
        let get = Request {
            method: "GET".into(),
            query: "Protocol=ActiveSync".into(),
            ..Request::default()
        };
        assert_eq!(answer(&get, None).status, 400);
    }
}
