//! Capability calls as HTTP callouts to the host's capability endpoint, awaited by the engine.
//!
//! The engine is sans-IO `async` code: a capability call dispatches a callout and returns a
//! future that stays pending until Envoy delivers the answer to the stream's
//! `on_http_call_response`, which files it under the callout's token and polls the engine
//! again. No executor, no waker: the stream knows when to poll.

use crate::config::FilterConfig;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

pub const SECRET_HEADER: &str = "x-eas-edge-secret";
pub const TENANT_HEADER: &str = "x-eas-edge-tenant";
pub const IDENTITY_HEADER: &str = "x-eas-edge-identity";
pub const DEVICE_HEADER: &str = "x-eas-edge-device";
pub const ENTROPY_HEADER: &str = "x-eas-edge-entropy";
/// The `:authority` of callouts (Envoy requires one; the cluster decides where they go).
const AUTHORITY: &str = "eas-edge-capability";

/// A callout's answer: HTTP status and body; `None` when Envoy got no answer (the host is
/// down, reset the stream, or the call timed out).
pub type Reply = Option<(u16, Vec<u8>)>;

/// Why a capability call has no answer from the capability itself.
#[derive(Debug)]
pub enum CallFailure {
    /// The login holds no grant on the host (403): its phone did not pass ext_authz.
    NotGranted,
    /// Anything else; the text is for the log and the engine's error.
    Transport(String),
}

impl std::fmt::Display for CallFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallFailure::NotGranted => f.write_str("the login holds no grant on the host"),
            CallFailure::Transport(why) => write!(f, "capability endpoint: {why}"),
        }
    }
}

/// What one phone request's capability calls share with its stream.
pub struct Calls {
    config: Rc<FilterConfig>,
    /// From ext_authz; both absent for anonymous requests.
    pub tenant: Option<String>,
    pub identity: Option<String>,
    /// Named on the first call only: that call ends the device's older parked request.
    device: RefCell<Option<String>>,
    replies: RefCell<HashMap<u32, Reply>>,
    /// Random numbers from the host's answers (Envoy gives a filter no randomness).
    entropy: RefCell<Vec<u64>>,
}

impl Calls {
    pub fn new(
        config: Rc<FilterConfig>,
        tenant: Option<String>,
        identity: Option<String>,
        device: Option<String>,
    ) -> Self {
        Calls {
            config,
            tenant,
            identity,
            device: RefCell::new(device),
            replies: RefCell::new(HashMap::new()),
            entropy: RefCell::new(Vec::new()),
        }
    }

    /// Files the answer to callout `token`.
    pub fn deliver(&self, token: u32, reply: Reply) {
        self.replies.borrow_mut().insert(token, reply);
    }

    /// Adds the hex random bytes of an `x-eas-edge-entropy` header to the pool.
    pub fn add_entropy(&self, hex: &[u8]) {
        let mut pool = self.entropy.borrow_mut();
        for chunk in hex.chunks_exact(16) {
            if let Some(value) =
                std::str::from_utf8(chunk).ok().and_then(|text| u64::from_str_radix(text, 16).ok())
            {
                pool.push(value);
            }
        }
    }

    pub fn random_u64(&self) -> Option<u64> {
        self.entropy.borrow_mut().pop()
    }

    /// Dispatches a callout to `path` with these extra headers and body; its token.
    pub fn dispatch(
        &self,
        path: &str,
        extra: &[(&str, &str)],
        body: &[u8],
        timeout: Duration,
    ) -> Result<u32, CallFailure> {
        let mut headers = vec![
            (":method", "POST"),
            (":path", path),
            (":authority", AUTHORITY),
            ("content-type", "application/json"),
            (SECRET_HEADER, self.config.secret.as_str()),
        ];
        if let Some(tenant) = &self.tenant {
            headers.push((TENANT_HEADER, tenant));
        }
        if let Some(identity) = &self.identity {
            headers.push((IDENTITY_HEADER, identity));
        }
        headers.extend_from_slice(extra);
        let token = proxy_wasm::hostcalls::dispatch_http_call(
            &self.config.capability_cluster,
            headers,
            Some(body),
            vec![],
            timeout,
        )
        .map_err(|status| CallFailure::Transport(format!("dispatch failed: {status:?}")))?;
        Ok(token)
    }

    /// Calls `interface/function` with `arguments` (a tuple) and decodes the JSON answer.
    pub async fn call<T: DeserializeOwned>(
        &self,
        function: &str,
        arguments: impl Serialize,
    ) -> Result<T, CallFailure> {
        let body = serde_json::to_vec(&arguments)
            .map_err(|error| CallFailure::Transport(format!("encoding {function}: {error}")))?;
        let device = self.device.borrow_mut().take();
        let extra: Vec<(&str, &str)> =
            device.as_deref().map(|device| (DEVICE_HEADER, device)).into_iter().collect();
        let path = format!("/v1/call/{function}");
        let timeout = Duration::from_millis(self.config.call_timeout_ms);
        let token = self.dispatch(&path, &extra, &body, timeout)?;
        match (Answer { calls: self, token }).await {
            Some((200, body)) => serde_json::from_slice(&body).map_err(|error| {
                CallFailure::Transport(format!("answer of {function} not understood: {error}"))
            }),
            Some((403, _)) => Err(CallFailure::NotGranted),
            Some((status, _)) => Err(CallFailure::Transport(format!("{function}: HTTP {status}"))),
            None => Err(CallFailure::Transport(format!("{function}: no answer"))),
        }
    }
}

/// The answer to one callout, once delivered.
struct Answer<'c> {
    calls: &'c Calls,
    token: u32,
}

impl Future for Answer<'_> {
    type Output = Reply;

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Reply> {
        match self.calls.replies.borrow_mut().remove(&self.token) {
            Some(reply) => Poll::Ready(reply),
            None => Poll::Pending,
        }
    }
}
