//! The phone-facing HTTP server: authenticate, pick the tenant, run its plugin.

use crate::auth::client_address::phone_client;
use crate::auth::{AuthResult, LoginThrottle, authenticate};
use crate::connection_cap::ConnectionCap;
use crate::runtime::PluginResponse;
use crate::tenants::Tenants;
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tracing::Instrument as _;

/// The header through which the engine learns who logged in (see `eas_engine::http`).
pub const IDENTITY_HEADER: &str = "x-eas-edge-identity";

/// How long a client should wait before retrying when a backend is down.
const RETRY_AFTER_SECONDS: &str = "30";

pub struct Gateway {
    pub tenants: Tenants,
    /// Failed logins per login and client address, for both listeners.
    pub throttle: LoginThrottle,
    /// Parked Pings and Syncs-with-Wait, and the watchers that wake them.
    pub push: crate::push::PushHub,
    /// Open phone connections per client address, capped (`[connections]`), for both phone
    /// listeners together.
    pub connections: Arc<ConnectionCap>,
}

/// Serves phones forever over plain HTTP.
pub async fn serve(listener: TcpListener, gateway: Arc<Gateway>) -> anyhow::Result<()> {
    let cap = gateway.connections.clone();
    capped_accept_loop(listener, "phone", Some(cap), move |request, peer| {
        let gateway = gateway.clone();
        async move { gateway.handle(request, peer, false).await }
    })
    .await
}

/// How long a client may take over its TLS handshake before the connection is dropped (a
/// slow handshake must not hold a task and a socket for ever).
const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// Serves phones forever over HTTPS, with the certificate files re-read when they change.
pub async fn serve_tls(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    certificates: Arc<crate::tls_listener::CertificateFiles>,
) -> anyhow::Result<()> {
    let cap = gateway.connections.clone();
    let handle = move |request, peer| {
        let gateway = gateway.clone();
        async move { gateway.handle(request, peer, true).await }
    };
    loop {
        let Some((stream, peer)) = accept(&listener, "phone (https)").await else { continue };
        // over the cap: closed before the handshake costs anything
        let Some(slot) = cap.admit(peer.ip()) else { continue };
        let acceptor = tokio_rustls::TlsAcceptor::from(certificates.config());
        let handle = handle.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => serve_connection(stream, peer, "phone (https)", handle).await,
                Ok(Err(error)) => tracing::debug!(%peer, "TLS handshake failed: {error}"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
            drop(slot);
        });
    }
}

/// Accepts connections forever, one task per connection (HTTP/1.1 and h2c), each request
/// answered by `handle`. Shared by the phone listener and Envoy's ext_authz listener.
pub async fn accept_loop<H, F>(
    listener: TcpListener,
    name: &'static str,
    handle: H,
) -> anyhow::Result<()>
where
    H: Fn(http::Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: std::future::Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    capped_accept_loop(listener, name, None, handle).await
}

/// [`accept_loop`], with the connections of each client address capped by `cap`: one over the
/// cap is closed as soon as it is accepted (dropped unread).
async fn capped_accept_loop<H, F>(
    listener: TcpListener,
    name: &'static str,
    cap: Option<Arc<ConnectionCap>>,
    handle: H,
) -> anyhow::Result<()>
where
    H: Fn(http::Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: std::future::Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    loop {
        let Some((stream, peer)) = accept(&listener, name).await else { continue };
        let slot = match &cap {
            Some(cap) => match cap.admit(peer.ip()) {
                Some(slot) => Some(slot),
                None => continue,
            },
            None => None,
        };
        let connection = serve_connection(stream, peer, name, handle.clone());
        tokio::spawn(async move {
            connection.await;
            drop(slot);
        });
    }
}

/// The next connection, or None after a failed accept (logged, briefly paused).
async fn accept(listener: &TcpListener, name: &str) -> Option<(tokio::net::TcpStream, SocketAddr)> {
    match listener.accept().await {
        Ok(accepted) => Some(accepted),
        Err(error) => {
            // Typically EMFILE under load: keep serving the connections we have.
            tracing::warn!("{name} listener: accept failed: {error}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            None
        }
    }
}

/// Serves the requests of one connection (HTTP/1.1 or HTTP/2) until it closes.
async fn serve_connection<S, H, F>(stream: S, peer: SocketAddr, name: &'static str, handle: H)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    H: Fn(http::Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: std::future::Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let service = hyper::service::service_fn(move |request| {
        // Boxed: hyper keeps a box the size of the service's future for the connection's
        // whole life, in use or not (`Server::in_flight`). Unboxed, every kept-alive phone
        // connection paid for the full request future (~23 KiB measured, docs/benchmarks.md
        // "Push"); boxed, an idle connection holds a pointer, a busy one its request's future.
        let response = Box::pin(handle(request, peer));
        async move { Ok::<_, std::convert::Infallible>(response.await) }
    });
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    // hyper's 30 s header read timeout only works with a timer: without one a client that
    // sends its headers a byte at a time (slowloris) holds the connection for ever
    builder.http1().timer(hyper_util::rt::TokioTimer::new());
    if let Err(error) = builder.serve_connection(TokioIo::new(stream), service).await {
        tracing::debug!(%peer, "{name} connection ended: {error}");
    }
}

/// Who a request turned out to be, for its final log line and the metrics.
#[derive(Default)]
struct Outcome {
    tenant: Option<Arc<str>>,
    user: Option<String>,
    /// The plugin answered, and `admin::observe` counted it; else the host answered itself.
    counted: bool,
}

impl Gateway {
    /// Answers one phone request, in a span carrying its id (so every line logged on its way
    /// names it), and logs it once when answered: id, tenant, user, device, command, status,
    /// duration. The id is also answered in `x-request-id`.
    async fn handle(
        &self,
        request: http::Request<Incoming>,
        peer: SocketAddr,
        secure: bool,
    ) -> Response<Full<Bytes>> {
        use crate::logging::request::{REQUEST_ID_HEADER, RequestFacts, request_id};
        let started = std::time::Instant::now();
        let trust_proxy = self.throttle.settings().trust_forwarded_for;
        let id = request_id(request.headers(), trust_proxy);
        let facts = RequestFacts::of(request.uri());
        let (method, uri) = (request.method().clone(), request.uri().clone());
        let span = tracing::info_span!("request", request_id = %id);
        let mut outcome = Outcome::default();
        let mut response =
            self.answer(request, peer, secure, &mut outcome).instrument(span.clone()).await;
        span.in_scope(|| {
            tracing::info!(
                tenant = outcome.tenant.as_deref().unwrap_or("-"),
                user = outcome.user.as_deref().unwrap_or("-"),
                device = %facts.device,
                command = %facts.command,
                %method,
                path = uri.path(),
                status = response.status().as_u16(),
                ms = started.elapsed().as_millis() as u64,
                "request"
            )
        });
        if !outcome.counted {
            // refused logins, 503s for a dead IMAP server, oversized bodies, the test page
            crate::admin::record_host_answer(
                outcome.tenant.as_deref().unwrap_or("-"),
                &method,
                &uri,
                response.status().as_u16(),
                started.elapsed(),
            );
        }
        if let Ok(value) = HeaderValue::from_str(&id) {
            response.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
        response
    }

    async fn answer(
        &self,
        request: http::Request<Incoming>,
        peer: SocketAddr,
        secure: bool,
        outcome: &mut Outcome,
    ) -> Response<Full<Bytes>> {
        // a browser's GET of the endpoint: the test page (see `test_page`), not the plugin
        if let Some(route) = crate::test_page::Route::of(&request) {
            // boxed: the checks' futures are large, and only this rare request should pay
            return Box::pin(route.answer(self, request.into_parts().0, peer)).await;
        }
        let (mut parts, body) = request.into_parts();
        // Only the host may say who the client is.
        parts.headers.remove(IDENTITY_HEADER);
        let trust_proxy = self.throttle.settings().trust_forwarded_for;
        let client = phone_client(&parts.headers, peer, trust_proxy);
        describe_origin(&mut parts, secure, trust_proxy);
        // boxed like the plugin call in `parking`: the future of a parked request must stay small
        let device = crate::parking::device_id(&parts.uri);
        let auth = Box::pin(authenticate(
            &self.tenants,
            &self.throttle,
            &parts.headers,
            client,
            device.as_deref(),
        ))
        .await;
        parts.headers.remove(http::header::AUTHORIZATION);
        let mut retry_after = None;
        let (tenant, account) = match auth {
            AuthResult::Authenticated { account, tenant } => (tenant, Some(account)),
            AuthResult::Anonymous { tenant } => (tenant, None),
            // answered like wrong credentials: phones show the password prompt for a 401,
            // where many treat a 429 as a server fault and retry at once
            AuthResult::Throttled { tenant, retry_after: after } => {
                retry_after = Some(after);
                (tenant, None)
            }
            AuthResult::BackendUnavailable { tenant } => {
                tracing::warn!(tenant = %tenant.config.name, %peer, "answering 503: IMAP unreachable");
                outcome.tenant = Some(tenant.config.name.as_str().into());
                return unavailable();
            }
        };
        outcome.tenant = Some(tenant.config.name.as_str().into());
        let identity = account.as_ref().map(|account| account.login().to_string());
        outcome.user = identity.clone();
        if let Some(identity) = &identity {
            match HeaderValue::from_str(identity) {
                Ok(value) => {
                    parts.headers.insert(IDENTITY_HEADER, value);
                }
                Err(_) => return plain_status(StatusCode::BAD_REQUEST),
            }
        }

        let limit = tenant.config.limits.request_mib as usize * 1024 * 1024;
        let mut body = match crate::request_body::read(body, limit).await {
            Ok(body) => body,
            Err(error) => {
                tracing::info!(%peer, "request body refused: {error:?}");
                return plain_status(error.status());
            }
        };
        detach_from_read_buffer(&mut parts, &mut body);
        let method = parts.method.clone();
        let uri = parts.uri.clone();
        let request = crate::parking::PluginRequest {
            method: parts.method,
            uri: parts.uri,
            headers: parts.headers,
            body,
        };
        let identity = identity.as_deref();
        let answer = crate::parking::answer(&tenant, &self.push, request, account);
        outcome.counted = true;
        let response = match crate::admin::observe(&tenant, identity, &method, &uri, answer).await {
            Ok(response) => into_http(response),
            Err(fault) => {
                tracing::error!(tenant = %tenant.config.name, %method, %uri, "{fault}");
                plain_status(
                    StatusCode::from_u16(fault.http_status())
                        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                )
            }
        };
        let mut response = response;
        if let Some(after) = retry_after
            && response.status() == StatusCode::UNAUTHORIZED
        {
            let seconds = after.as_secs().max(1).to_string();
            if let Ok(value) = HeaderValue::from_str(&seconds) {
                response.headers_mut().insert(http::header::RETRY_AFTER, value);
            }
        }
        response
    }
}

/// The engine builds absolute URLs (Autodiscover) from `Host` and `X-Forwarded-Proto`. On the
/// HTTPS listener the scheme is https; on the plain one only a trusted proxy in front of it may
/// say the phone used https. HTTP/2 carries the host in the URI instead of a header.
fn describe_origin(parts: &mut http::request::Parts, secure: bool, trust_proxy: bool) {
    const FORWARDED_PROTO: &str = "x-forwarded-proto";
    if secure {
        parts.headers.insert(FORWARDED_PROTO, HeaderValue::from_static("https"));
    } else if !trust_proxy || !parts.headers.contains_key(FORWARDED_PROTO) {
        parts.headers.insert(FORWARDED_PROTO, HeaderValue::from_static("http"));
    }
    if !parts.headers.contains_key(http::header::HOST)
        && let Some(authority) = parts.uri.authority()
        && let Ok(value) = HeaderValue::from_str(authority.as_str())
    {
        parts.headers.insert(http::header::HOST, value);
    }
}

/// Bodies up to this size are copied by [`detach_from_read_buffer`]: a parkable request
/// (Ping, Sync) is far smaller, and a copy of a large one (SendMail) would only cost time.
const DETACH_BODY_MAX: usize = 64 * 1024;

/// Gives the request's URI, header values and (small) body allocations of their own (~1 KiB
/// for a Ping), in a header map without the spare room of the one hyper grew. hyper hands them
/// out as slices of the connection's read buffer (16 KiB). On a connection that already
/// carried requests, hyper starts a new buffer once less than 8 KiB is left; a parked request
/// still holding slices of the old one would keep both alive for up to an hour. (A Ping on a
/// fresh connection, as in the benchmark, fits the first buffer: there this saves nothing.)
fn detach_from_read_buffer(parts: &mut http::request::Parts, body: &mut Bytes) {
    if let Ok(uri) = http::Uri::try_from(parts.uri.to_string()) {
        parts.uri = uri;
    }
    let mut headers = http::HeaderMap::with_capacity(parts.headers.len());
    for (name, value) in &parts.headers {
        let copy = match HeaderValue::from_bytes(value.as_bytes()) {
            Ok(mut copy) => {
                copy.set_sensitive(value.is_sensitive());
                copy
            }
            Err(_) => value.clone(),
        };
        headers.append(name.clone(), copy);
    }
    parts.headers = headers;
    if body.len() <= DETACH_BODY_MAX {
        *body = Bytes::copy_from_slice(body);
    }
}

fn into_http(plugin: PluginResponse) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(plugin.body));
    *response.status_mut() = plugin.status;
    *response.headers_mut() = plugin.headers;
    response
}

fn plain_status(status: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

fn unavailable() -> Response<Full<Bytes>> {
    let mut response = plain_status(StatusCode::SERVICE_UNAVAILABLE);
    response
        .headers_mut()
        .insert(http::header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
    response
}
