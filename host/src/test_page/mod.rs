//! The browser test page: a GET on the ActiveSync endpoint from a browser answers a small
//! self-contained HTML page where a user logs in and sees whether the account works through
//! this gateway (IMAP, folders and their EAS roles, SMTP, the EAS versions, the push method).
//!
//! Two routes, both on the phone listener and nowhere else (Envoy only runs the filter):
//!
//! - `GET /Microsoft-Server-ActiveSync` (any case) with an empty query and an `Accept` that
//!   names `text/html`: the page. EAS clients never send a GET without a command, and ask for
//!   WBXML, so nothing a phone sends lands here;
//! - `POST /Microsoft-Server-ActiveSync/check` (any case) with `Authorization: Basic`: the
//!   checks, as JSON ([`checks::Report`]). Authentication is the EAS one (same throttle, same
//!   cached passwords). A refusal is a 401 *without* `WWW-Authenticate`, so that the browser
//!   shows no password dialog of its own and the page says what went wrong.
//!
//! Cross-site requests cannot use the check: it needs an `Authorization` header, which a form
//! cannot send and a cross-origin `fetch` may only send after a CORS preflight we never
//! approve.

mod checks;

use crate::auth::client_address::phone_client;
use crate::auth::{AuthResult, authenticate, basic_credentials};
use crate::server::Gateway;
use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderValue, Method, Response, StatusCode, header};
use http_body_util::Full;
use std::net::SocketAddr;
use std::sync::LazyLock;

/// The ActiveSync endpoint (MS-ASHTTP §2.2.1.1); clients vary the case.
const ENDPOINT: &str = "/Microsoft-Server-ActiveSync";
/// Where the page posts the credentials to, under the endpoint.
const CHECK: &str = "/check";

const HTML: &str = include_str!("page.html");
const STYLE: &str = include_str!("page.css");
const SCRIPT: &str = include_str!("page.js");

/// Which of the page's routes a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Page,
    Check,
}

impl Route {
    /// The route of a request, or `None` for everything the plugin answers (all EAS traffic).
    pub fn of<B>(request: &http::Request<B>) -> Option<Route> {
        let path = request.uri().path().trim_end_matches('/');
        let (prefix, rest) = path.split_at_checked(ENDPOINT.len())?;
        if !prefix.eq_ignore_ascii_case(ENDPOINT) {
            return None;
        }
        if rest.eq_ignore_ascii_case(CHECK) {
            return Some(Route::Check);
        }
        let no_query = request.uri().query().is_none_or(str::is_empty);
        (rest.is_empty() && request.method() == Method::GET && no_query && wants_html(request))
            .then_some(Route::Page)
    }

    /// Answers the request; its body is never read (neither route takes one).
    pub async fn answer(
        self,
        gateway: &Gateway,
        parts: http::request::Parts,
        peer: SocketAddr,
    ) -> Response<Full<Bytes>> {
        match self {
            Route::Page => page(),
            Route::Check => check(gateway, parts, peer).await,
        }
    }
}

/// Browsers navigating to a URL send `Accept: text/html,...`; EAS clients send WBXML or `*/*`.
fn wants_html<B>(request: &http::Request<B>) -> bool {
    request
        .headers()
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| {
            let media = item.split(';').next().unwrap_or("").trim();
            media.eq_ignore_ascii_case("text/html")
        })
}

/// The page with its style and script inline, and the CSP naming exactly those two by hash:
/// nothing else may load or run, and the script may only talk to this origin.
struct Page {
    html: String,
    policy: HeaderValue,
}

static PAGE: LazyLock<Page> = LazyLock::new(|| {
    let html = HTML.replace("/*STYLE*/", STYLE).replace("/*SCRIPT*/", SCRIPT);
    let policy = format!(
        "default-src 'none'; style-src '{}'; script-src '{}'; connect-src 'self'; \
         img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        sha256_source(STYLE),
        sha256_source(SCRIPT)
    );
    // a hash source is base64 and fixed text: always a valid header value
    let policy =
        HeaderValue::from_str(&policy).unwrap_or(HeaderValue::from_static("default-src 'none'"));
    Page { html, policy }
});

/// A CSP hash source (`sha256-<base64>`). SHA-256 from the TLS stack the host already links
/// (ring, through rustls): the TLS 1.3 suite *_SHA256 hashes with exactly that.
fn sha256_source(text: &str) -> String {
    let suite = rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256;
    let digest = match suite {
        rustls::SupportedCipherSuite::Tls13(suite) => {
            suite.common.hash_provider.hash(text.as_bytes())
        }
        // the constant is a TLS 1.3 suite; a hash that matches nothing only blocks the page
        rustls::SupportedCipherSuite::Tls12(_) => return "sha256-".to_string(),
    };
    format!("sha256-{}", base64::engine::general_purpose::STANDARD.encode(digest.as_ref()))
}

fn page() -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(PAGE.html.clone())));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CONTENT_SECURITY_POLICY, PAGE.policy.clone());
    secure(headers);
    response
}

/// Headers of both routes: not framed, not sniffed, not cached, no referrer.
fn secure(headers: &mut http::HeaderMap) {
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
}

async fn check(
    gateway: &Gateway,
    parts: http::request::Parts,
    peer: SocketAddr,
) -> Response<Full<Bytes>> {
    if parts.method != Method::POST {
        let mut response =
            json(StatusCode::METHOD_NOT_ALLOWED, &checks::refusal("Use POST.", None));
        response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    // the password stays in the headers for `authenticate`; only the login is kept here
    let Some(login) = basic_credentials(&parts.headers).map(|credentials| credentials.login) else {
        let body = checks::refusal("Enter your mail address and password.", None);
        return json(StatusCode::UNAUTHORIZED, &body);
    };
    if gateway.tenants.for_login(&login).is_none() {
        let domain = login.rsplit_once('@').map_or("", |(_, domain)| domain);
        let sentence = if domain.is_empty() {
            "Log in with your full mail address (name@domain).".to_string()
        } else {
            format!("This gateway does not serve mail addresses at {domain}.")
        };
        return json(StatusCode::UNAUTHORIZED, &checks::refusal(&sentence, None));
    }
    let trust_proxy = gateway.throttle.settings().trust_forwarded_for;
    let client = phone_client(&parts.headers, peer, trust_proxy);
    let outcome =
        authenticate(&gateway.tenants, &gateway.throttle, &parts.headers, client, None).await;
    let response = match outcome {
        AuthResult::Authenticated { account, tenant } => {
            let report = checks::run(gateway, &tenant, account, &parts.headers).await;
            json(StatusCode::OK, &report)
        }
        AuthResult::Anonymous { .. } => {
            json(StatusCode::UNAUTHORIZED, &checks::refusal("Wrong address or password.", None))
        }
        AuthResult::Throttled { retry_after, .. } => {
            let seconds = retry_after.as_secs().max(1);
            let sentence = format!("Too many failed logins: try again in {seconds} seconds.");
            let mut response = json(StatusCode::UNAUTHORIZED, &checks::refusal(&sentence, None));
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            response
        }
        AuthResult::BackendUnavailable { tenant } => {
            let imap = &tenant.config.imap;
            let sentence = format!(
                "The gateway cannot reach your mail server (IMAP at {}:{}). Try again later; \
                 if it persists, the administrator should check that the server runs and \
                 that the tenant's imap settings (host, port, tls) are right.",
                imap.host, imap.port
            );
            let mut response = json(
                StatusCode::SERVICE_UNAVAILABLE,
                &checks::refusal(&sentence, Some("see the gateway log for the connection error")),
            );
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
            response
        }
    };
    tracing::info!(user = %login, %peer, status = response.status().as_u16(), "test page check");
    response
}

fn json(status: StatusCode, body: &impl serde::Serialize) -> Response<Full<Bytes>> {
    // our own plain structs: serialising them cannot fail
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(Full::new(Bytes::from(bytes)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    secure(headers);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, uri: &str, accept: Option<&str>) -> http::Request<()> {
        let mut builder = http::Request::builder().method(method).uri(uri);
        if let Some(accept) = accept {
            builder = builder.header(header::ACCEPT, accept);
        }
        builder.body(()).expect("request")
    }

    const BROWSER: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

    #[test]
    fn browsers_get_the_page_and_eas_clients_never_do() {
        let page = Some(Route::Page);
        assert_eq!(Route::of(&request("GET", "/Microsoft-Server-ActiveSync", Some(BROWSER))), page);
        assert_eq!(
            Route::of(&request("GET", "/microsoft-server-activesync/", Some(BROWSER))),
            page
        );
        assert_eq!(
            Route::of(&request("GET", "/Microsoft-Server-ActiveSync?", Some(BROWSER))),
            page
        );
        // EAS: commands in the query (plain or base64), WBXML or no Accept, other methods
        let eas = [
            request("GET", "/Microsoft-Server-ActiveSync?Cmd=GetAttachment", Some(BROWSER)),
            request("GET", "/Microsoft-Server-ActiveSync?jAAJBAp2MTQwRGV2aWNl", Some(BROWSER)),
            request("GET", "/Microsoft-Server-ActiveSync", Some("*/*")),
            request("GET", "/Microsoft-Server-ActiveSync", None),
            request("OPTIONS", "/Microsoft-Server-ActiveSync", Some(BROWSER)),
            request("POST", "/Microsoft-Server-ActiveSync", Some(BROWSER)),
            request("GET", "/Autodiscover/Autodiscover.xml", Some(BROWSER)),
            request("GET", "/Microsoft-Server-ActiveSyncX", Some(BROWSER)),
        ];
        for request in &eas {
            assert_eq!(Route::of(request), None, "{} {}", request.method(), request.uri());
        }
    }

    #[test]
    fn the_check_has_its_own_path() {
        let check = Some(Route::Check);
        assert_eq!(Route::of(&request("POST", "/Microsoft-Server-ActiveSync/check", None)), check);
        assert_eq!(Route::of(&request("GET", "/microsoft-server-activesync/CHECK", None)), check);
        assert_eq!(Route::of(&request("POST", "/Microsoft-Server-ActiveSync/checks", None)), None);
    }

    #[test]
    fn the_policy_allows_exactly_the_inline_style_and_script() {
        let page = &*PAGE;
        let policy = page.policy.to_str().expect("ascii");
        assert!(policy.starts_with("default-src 'none'; style-src 'sha256-"), "{policy}");
        // SHA-256 of the empty string, a known answer
        assert_eq!(sha256_source(""), "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
        assert!(policy.contains(&sha256_source(SCRIPT)) && policy.contains(&sha256_source(STYLE)));
        assert!(page.html.contains(&format!("<script>{SCRIPT}</script>")));
        assert!(page.html.contains(&format!("<style>{STYLE}</style>")));
        // self-contained: no URL of another origin anywhere
        assert!(!page.html.contains("http://") && !page.html.contains("https://"));
    }
}
