//! The engine's view of HTTP: plain owned values, no I/O.
//!
//! Adapters (the WASI component, the proxy-wasm filter, tests) translate their transport's
//! request into [`Request`] and carry the returned [`Response`] back unchanged.

/// Name of the header through which a front end tells the engine who authenticated.
///
/// The host (or Envoy's ext_authz) checks the client's `Authorization` header against the
/// tenant's IMAP server, removes that header so the password never enters the sandbox, and sets
/// this one to the authenticated login. It always strips a client-supplied copy first.
pub const IDENTITY_HEADER: &str = "x-eas-edge-identity";

/// An HTTP request as the engine sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// Upper-case method, e.g. `OPTIONS`.
    pub method: String,
    /// Path without the query, e.g. `/Microsoft-Server-ActiveSync`.
    pub path: String,
    /// Raw query string without the leading `?` (may be empty).
    pub query: String,
    /// Header names are lower-case; values are raw bytes because clients send non-UTF-8.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The first value of a header, looked up case-insensitively.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice())
    }

    /// A header value as text, if present and valid UTF-8 (surrounding spaces trimmed).
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(|v| std::str::from_utf8(v).ok()).map(str::trim)
    }
}

/// An HTTP response produced by the engine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16) -> Self {
        Response { status, headers: Vec::new(), body: Vec::new() }
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    pub fn with_body(mut self, content_type: &str, body: Vec<u8>) -> Self {
        self.headers.push(("Content-Type".to_owned(), content_type.to_owned()));
        self.body = body;
        self
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}
