//! The capability endpoint: how the Envoy filter reaches what the host gives the plugin in
//! process (envoy/README.md). One listener (`[capability] listen`, loopback) serves, over
//! HTTP/1.1 or h2c, every request carrying the shared secret (`x-eas-edge-secret`):
//!
//! - `/v1/authz/...`: Envoy's ext_authz check of a phone's Basic credentials against IMAP
//!   ([`crate::authz`]); success grants the login to the filter ([`grants`]);
//! - `POST /v1/call/{interface}/{function}`: one import of `wit/gateway.wit` ([`calls`]),
//!   for the tenant and login named by `x-eas-edge-tenant` and `x-eas-edge-identity`, which
//!   must hold a grant;
//! - `POST /v1/watch`: a parked Ping's long-poll ([`watch`]).
//!
//! Every answer carries 32 fresh random bytes (`x-eas-edge-entropy`, hex): Envoy gives a
//! filter no randomness, and the engine needs some for sync and policy keys.

mod calls;
mod grants;
mod watch;
#[cfg(test)]
mod wire_tests;

use crate::plugin_host::RequestState;
use crate::server::{Gateway, IDENTITY_HEADER};
use crate::tenants::TenantRuntime;
use bytes::Bytes;
use grants::Grants;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpListener;

pub const SECRET_HEADER: &str = "x-eas-edge-secret";
pub const TENANT_HEADER: &str = "x-eas-edge-tenant";
pub const DEVICE_HEADER: &str = "x-eas-edge-device";
pub const ENTROPY_HEADER: &str = "x-eas-edge-entropy";

struct Endpoint {
    gateway: Arc<Gateway>,
    secret: String,
    grants: Grants,
}

/// Serves the endpoint forever.
pub async fn serve(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    secret: String,
) -> anyhow::Result<()> {
    let endpoint = Arc::new(Endpoint { gateway, secret, grants: Grants::default() });
    let pruner = Arc::downgrade(&endpoint);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
            let Some(endpoint) = pruner.upgrade() else { break };
            endpoint.grants.prune(Instant::now());
        }
    });
    crate::server::accept_loop(listener, "capability", move |request, peer| {
        let endpoint = endpoint.clone();
        async move {
            let mut response = endpoint.handle(request, peer).await;
            response.headers_mut().insert(ENTROPY_HEADER, entropy());
            response
        }
    })
    .await
}

impl Endpoint {
    async fn handle(
        &self,
        request: http::Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<Full<Bytes>> {
        let headers = request.headers();
        if !self.secret_matches(headers.get(SECRET_HEADER)) {
            tracing::warn!(%peer, path = request.uri().path(), "capability call without the shared secret");
            return plain(StatusCode::UNAUTHORIZED);
        }
        let path = request.uri().path().to_owned();
        if path.starts_with("/v1/authz") {
            let (response, granted) =
                crate::authz::check(&self.gateway, request.uri(), headers, peer).await;
            if let Some((tenant, account)) = granted {
                self.grants.grant(tenant, account, Instant::now());
            }
            return response;
        }
        let Some((tenant, account)) = self.granted(headers) else {
            return plain(StatusCode::FORBIDDEN);
        };
        let device = header(headers, DEVICE_HEADER).map(str::to_owned);
        let key = crate::push::AccountKey::new(&tenant.plugin.tenant, account.login());
        if path == "/v1/watch" {
            let Some(device) = device else { return plain(StatusCode::BAD_REQUEST) };
            return watch::park(
                &self.gateway.push,
                &tenant.plugin.tenant,
                account,
                &device,
                headers,
            )
            .await;
        }
        let Some((interface, function)) =
            path.strip_prefix("/v1/call/").and_then(|rest| rest.split_once('/'))
        else {
            return plain(StatusCode::NOT_FOUND);
        };
        // A device's new request ends the one it has parked (the filter names the device on
        // the first call of each request), as it does for phones talking to the host.
        if let Some(device) = &device {
            self.gateway.push.supersede(&key, device);
        }
        let (interface, function) = (interface.to_owned(), function.to_owned());
        let limit = tenant.config.limits.request_mib as usize * 4 * 1024 * 1024 + 1024 * 1024;
        let body = match Limited::new(request.into_body(), limit).collect().await {
            Ok(body) => body.to_bytes(),
            Err(error) => {
                tracing::info!(%peer, "capability call body refused: {error}");
                return plain(StatusCode::PAYLOAD_TOO_LARGE);
            }
        };
        let plugin = &tenant.plugin;
        let mut state = RequestState::new(
            plugin.tenant.clone(),
            Some(account),
            plugin.store.clone(),
            plugin.memory_bytes,
            plugin.services.clone(),
            // the plugin runs in Envoy: nothing is rendered ahead here
            None,
        );
        match calls::call(&mut state, &interface, &function, &body).await {
            Ok(json) => {
                let mut response = Response::new(Full::new(Bytes::from(json)));
                response.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                response
            }
            Err(error) => {
                tracing::warn!(tenant = %plugin.tenant, "capability call refused: {error}");
                match error {
                    calls::CallError::Unknown(_) => plain(StatusCode::NOT_FOUND),
                    calls::CallError::Arguments { .. } => plain(StatusCode::BAD_REQUEST),
                }
            }
        }
    }

    /// The tenant and account a call is for, if the login holds a grant.
    fn granted(
        &self,
        headers: &http::HeaderMap,
    ) -> Option<(Arc<TenantRuntime>, Arc<crate::accounts::Account>)> {
        let tenant = header(headers, TENANT_HEADER)?;
        let login = header(headers, IDENTITY_HEADER)?;
        self.grants.account(tenant, login, Instant::now())
    }

    /// Constant-time comparison: the secret must not leak through timing.
    fn secret_matches(&self, given: Option<&HeaderValue>) -> bool {
        let Some(given) = given else { return false };
        let (given, secret) = (given.as_bytes(), self.secret.as_bytes());
        given.len() == secret.len()
            && given.iter().zip(secret).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

fn header<'h>(headers: &'h http::HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

pub(crate) fn plain(status: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

/// 32 random bytes, hex. Without an OS random source the filter gets none, and the engine
/// refuses what needs it rather than use predictable keys.
fn entropy() -> HeaderValue {
    let mut bytes = [0u8; 32];
    if getrandom::fill(&mut bytes).is_err() {
        tracing::error!("no OS randomness for the filter");
        return HeaderValue::from_static("");
    }
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    HeaderValue::from_str(&hex).unwrap_or_else(|_| HeaderValue::from_static(""))
}
