//! Client authentication: Basic credentials checked against the tenant's IMAP server.
//!
//! The password is used here and nowhere else; the plugin only ever sees the identity.

use crate::imap::{ImapError, Session};
use crate::tenants::{TenantRuntime, Tenants};
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

pub enum AuthResult<'t> {
    Authenticated {
        identity: String,
        tenant: &'t TenantRuntime,
    },
    /// No credentials, wrong ones, or a login for a domain we do not serve.
    Anonymous {
        tenant: &'t TenantRuntime,
    },
    /// The IMAP server could not be asked: the client should retry later.
    BackendUnavailable {
        tenant: &'t TenantRuntime,
    },
}

pub async fn authenticate<'t>(tenants: &'t Tenants, headers: &HeaderMap) -> AuthResult<'t> {
    let host = headers.get(http::header::HOST).and_then(|h| h.to_str().ok());
    let Some(credentials) = basic_credentials(headers) else {
        return AuthResult::Anonymous { tenant: tenants.for_host(host) };
    };
    let Some(tenant) = tenants.for_login(&credentials.login) else {
        tracing::info!(login = %credentials.login, "login for a domain no tenant serves");
        return AuthResult::Anonymous { tenant: tenants.for_host(host) };
    };
    match Session::connect(&tenant.imap, &credentials.login, &credentials.password).await {
        Ok(session) => {
            // Only the check was needed; pooled sessions come with the mailbox capability.
            session.logout().await;
            AuthResult::Authenticated { identity: credentials.login, tenant }
        }
        Err(ImapError::AuthFailed(reason)) => {
            tracing::info!(login = %credentials.login, tenant = %tenant.config.name, "IMAP rejected the credentials: {reason}");
            AuthResult::Anonymous { tenant }
        }
        Err(error) => {
            tracing::warn!(login = %credentials.login, tenant = %tenant.config.name, "cannot check credentials: {error}");
            AuthResult::BackendUnavailable { tenant }
        }
    }
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
