//! `Authorization: Basic` (RFC 7617), the only scheme EAS clients use.

use base64::Engine as _;
use http::HeaderMap;

/// Basic credentials from an `Authorization` header.
pub struct Credentials {
    pub login: String,
    pub password: Vec<u8>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("login", &self.login).finish_non_exhaustive()
    }
}

/// Parses `Authorization: Basic base64(login:password)`. Anything else counts as absent.
pub fn basic_credentials(headers: &HeaderMap) -> Option<Credentials> {
    let value = headers.get(http::header::AUTHORIZATION)?.as_bytes();
    let (scheme, encoded) = value.split_at(value.iter().position(|&b| b == b' ')?);
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim_ascii()).ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    let login = std::str::from_utf8(&decoded[..colon]).ok()?.trim().to_owned();
    if login.is_empty() {
        return None;
    }
    Some(Credentials { login, password: decoded[colon + 1..].to_vec() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::AUTHORIZATION, value.parse().expect("header value"));
        headers
    }

    #[test]
    fn basic_credentials_are_decoded() {
        // "alice@example.test:s3cr:et"
        let credentials = basic_credentials(&headers("Basic YWxpY2VAZXhhbXBsZS50ZXN0OnMzY3I6ZXQ="))
            .expect("credentials");
        assert_eq!(credentials.login, "alice@example.test");
        assert_eq!(credentials.password, b"s3cr:et");
    }

    #[test]
    fn other_schemes_and_garbage_are_ignored() {
        assert!(basic_credentials(&headers("Bearer abc")).is_none());
        assert!(basic_credentials(&headers("Basic !!!")).is_none());
        assert!(basic_credentials(&headers("Basic bm9jb2xvbg==")).is_none()); // "nocolon"
        assert!(basic_credentials(&headers("Basic OnB3")).is_none()); // ":pw", empty login
        assert!(basic_credentials(&HeaderMap::new()).is_none());
    }

    #[test]
    fn debug_output_never_shows_the_password() {
        let credentials = Credentials { login: "a@b".into(), password: b"hunter2".to_vec() };
        assert!(!format!("{credentials:?}").contains("hunter2"));
    }
}
