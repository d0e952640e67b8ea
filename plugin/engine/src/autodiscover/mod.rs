//! Autodiscover: how a phone that was given only an address and a password finds the
//! ActiveSync URL.
//!
//! Two surfaces, both answered from the request alone (the URL is this server's own):
//! - the POX protocol ([MS-OXDSCLI]): `POST /autodiscover/autodiscover.xml` with the address
//!   and the response schema the client accepts (`mobilesync` from phones, `outlook` from
//!   Outlook); see [`pox`];
//! - the JSON v2 endpoint Outlook mobile asks first,
//!   `GET /autodiscover/autodiscover.json/v1.0/{address}?Protocol=ActiveSync`; see [`json`].

mod json;
mod pox;

use crate::ENDPOINT;
use crate::http::{Request, Response};

/// Answers an Autodiscover request. POX needs a login, as Exchange's does (phones send the
/// credentials they were given after the 401, and a wrong password then fails here, at account
/// setup, rather than at the first Sync); the JSON endpoint is anonymous.
pub fn answer(surface: Surface, request: &Request, identity: Option<&str>) -> Response {
    match surface {
        Surface::Pox if identity.is_none() => crate::engine::unauthorized(),
        Surface::Pox => pox::answer(request, activesync_url(request).as_deref()),
        Surface::Json => json::answer(request, base_url(request).as_deref()),
    }
}

/// Path of the POX endpoint; clients vary its case (`/AutoDiscover/AutoDiscover.xml`).
const POX_PATH: &str = "/autodiscover/autodiscover.xml";
/// Prefix of the JSON v2 endpoint; the address may follow as a path segment.
const JSON_PATH: &str = "/autodiscover/autodiscover.json";

/// Which Autodiscover surface a path names, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    Pox,
    Json,
}

impl Surface {
    pub fn of(path: &str) -> Option<Surface> {
        let lower = path.to_ascii_lowercase();
        if lower == POX_PATH {
            Some(Surface::Pox)
        } else if lower == JSON_PATH || lower.starts_with("/autodiscover/autodiscover.json/") {
            Some(Surface::Json)
        } else {
            None
        }
    }
}

/// This server's ActiveSync URL as the client reached it. The scheme comes from
/// `X-Forwarded-Proto`, which the front end sets (the host for its own listeners, a trusted
/// proxy otherwise); without it, https, the only scheme phones accept for Basic credentials.
fn activesync_url(request: &Request) -> Option<String> {
    Some(format!("{}{ENDPOINT}", base_url(request)?))
}

/// `scheme://host[:port]` of this server, or None when the request names no usable host.
fn base_url(request: &Request) -> Option<String> {
    let host = request.header_str("host").filter(|host| is_plain_authority(host))?;
    let scheme = match request.header_str("x-forwarded-proto") {
        Some(proto) if proto.eq_ignore_ascii_case("http") => "http",
        _ => "https",
    };
    Some(format!("{scheme}://{host}"))
}

/// A Host header that can be put in a URL without escaping: a name or address and a port.
/// Anything else (spaces, slashes, `@`, quotes) is refused rather than echoed into XML/JSON.
fn is_plain_authority(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(host: Option<&str>, proto: Option<&str>) -> Request {
        let mut headers = Vec::new();
        if let Some(host) = host {
            headers.push(("host".to_owned(), host.as_bytes().to_vec()));
        }
        if let Some(proto) = proto {
            headers.push(("x-forwarded-proto".to_owned(), proto.as_bytes().to_vec()));
        }
        Request { headers, ..Request::default() }
    }

    #[test]
    fn paths_are_matched_in_any_case() {
        assert_eq!(Surface::of("/AutoDiscover/AutoDiscover.xml"), Some(Surface::Pox));
        assert_eq!(Surface::of("/autodiscover/autodiscover.xml"), Some(Surface::Pox));
        assert_eq!(
            Surface::of("/autodiscover/autodiscover.json/v1.0/a@example.com"),
            Some(Surface::Json)
        );
        assert_eq!(Surface::of("/Autodiscover/Autodiscover.json"), Some(Surface::Json));
        assert_eq!(Surface::of("/autodiscover/autodiscover.xmlx"), None);
        assert_eq!(Surface::of("/Microsoft-Server-ActiveSync"), None);
    }

    #[test]
    fn the_url_follows_host_and_forwarded_scheme() {
        assert_eq!(
            activesync_url(&request(Some("mail.example.com"), None)).as_deref(),
            Some("https://mail.example.com/Microsoft-Server-ActiveSync")
        );
        assert_eq!(
            activesync_url(&request(Some("127.0.0.1:8080"), Some("http"))).as_deref(),
            Some("http://127.0.0.1:8080/Microsoft-Server-ActiveSync")
        );
        assert_eq!(
            activesync_url(&request(Some("[::1]:443"), Some("HTTPS"))).as_deref(),
            Some("https://[::1]:443/Microsoft-Server-ActiveSync")
        );
    }

    #[test]
    fn hostile_host_headers_give_no_url() {
        for host in ["", "evil.com/x", "a b", "x\"><y", "user@host", &"a".repeat(300)] {
            assert_eq!(activesync_url(&request(Some(host), None)), None, "{host:?}");
        }
        assert_eq!(activesync_url(&request(None, None)), None);
    }
}
