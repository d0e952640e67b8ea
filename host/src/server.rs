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
    loop {
        let Some((stream, peer)) = accept(&listener, "phone").await else { continue };
        // over the cap: closed as soon as it is accepted, unread
        let Some(slot) = gateway.connections.admit(peer.ip()) else { continue };
        let gateway = gateway.clone();
        tokio::spawn(async move {
            serve_phone(stream, peer, gateway, false).await;
            drop(slot);
        });
    }
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
    loop {
        let Some((stream, peer)) = accept(&listener, "phone (https)").await else { continue };
        // over the cap: closed before the handshake costs anything
        let Some(slot) = gateway.connections.admit(peer.ip()) else { continue };
        let acceptor = tokio_rustls::TlsAcceptor::from(certificates.config());
        let gateway = gateway.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(stream)) if stream.get_ref().1.alpn_protocol() == Some(b"h2") => {
                    Box::pin(serve_http2(stream, peer, gateway, true)).await;
                }
                Ok(Ok(stream)) => serve_phone(stream, peer, gateway, true).await,
                Ok(Err(error)) => tracing::debug!(%peer, "TLS handshake failed: {error}"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
            drop(slot);
        });
    }
}

/// One phone connection: HTTP/1.1 on the host's own lean server (`http1`, which keeps a parked
/// request's connection small), or HTTP/2 with prior knowledge on hyper's.
async fn serve_phone<S>(stream: S, peer: SocketAddr, gateway: Arc<Gateway>, secure: bool)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let handler = gateway.clone();
    let ended =
        crate::http1::serve(stream, move |request| handler.handle(request, peer, secure)).await;
    if let crate::http1::Ended::Http2(stream) = ended {
        // boxed: the rare HTTP/2 connection should not make every connection's task larger
        Box::pin(serve_http2(stream, peer, gateway, secure)).await;
    }
}

/// A phone connection speaking HTTP/2 (ALPN h2, or h2c with prior knowledge).
async fn serve_http2<S>(stream: S, peer: SocketAddr, gateway: Arc<Gateway>, secure: bool)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let activity = crate::http2_limits::Activity::new();
    let requests = Arc::clone(&activity);
    let service = hyper::service::service_fn(move |request: http::Request<Incoming>| {
        let in_flight = requests.begin();
        // boxed: a parked request's future must not sit inside hyper's stream state
        let response = Box::pin(gateway.handle(request, peer, secure));
        async move {
            let response = response.await;
            drop(in_flight);
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder.timer(hyper_util::rt::TokioTimer::new());
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let ended = tokio::select! {
        ended = connection.as_mut() => ended,
        () = activity.expired() => {
            tracing::debug!(%peer, "phone HTTP/2 connection without a request in time: closing");
            // GOAWAY; no stream is open, so only a peer that does not read can delay the end
            connection.as_mut().graceful_shutdown();
            match tokio::time::timeout(HTTP2_SHUTDOWN_GRACE, connection.as_mut()).await {
                Ok(ended) => ended,
                Err(_) => return,
            }
        }
    };
    if let Err(error) = ended {
        tracing::debug!(%peer, "phone HTTP/2 connection ended: {error}");
    }
}

/// How long an HTTP/2 connection closed for idleness may take to say goodbye.
const HTTP2_SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Accepts connections forever, one task per connection (HTTP/1.1 and h2c on hyper), each
/// request answered by `handle`: Envoy's capability listener and the admin listener.
pub async fn accept_loop<H, F>(
    listener: TcpListener,
    name: &'static str,
    handle: H,
) -> anyhow::Result<()>
where
    H: Fn(http::Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: std::future::Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    loop {
        let Some((stream, peer)) = accept(&listener, name).await else { continue };
        tokio::spawn(serve_connection(stream, peer, name, handle.clone()));
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
async fn serve_connection<H, F>(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    name: &'static str,
    handle: H,
) where
    H: Fn(http::Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: std::future::Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let service = hyper::service::service_fn(move |request| {
        // boxed: hyper keeps a box the size of the service's future for the connection's life
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

/// A phone request's body: hyper's (HTTP/2) or the host's own server's (HTTP/1.1).
trait RequestBody:
    hyper::body::Body<Data = Bytes, Error: Into<crate::request_body::BoxError>> + Send
{
}

impl<B> RequestBody for B where
    B: hyper::body::Body<Data = Bytes, Error: Into<crate::request_body::BoxError>> + Send
{
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
    ///
    /// A plain function returning its future, with the host's part of the request (the test
    /// page, the login, the body: [`admit`](Self::admit)) boxed apart: the future a parked
    /// request keeps alive then holds only the request's facts and the plugin's part (2.8 KiB
    /// when all of it was inline in one `async fn`, 6.5 KiB before that: docs/benchmarks.md,
    /// "Push"). An `async fn` would also keep its `request` parameter for its whole life.
    fn handle<B>(
        self: &Arc<Self>,
        request: http::Request<B>,
        peer: SocketAddr,
        secure: bool,
    ) -> impl Future<Output = Response<Full<Bytes>>> + Send + use<B>
    where
        B: RequestBody + 'static,
    {
        use crate::logging::request::{REQUEST_ID_HEADER, RequestFacts, request_id};
        let started = std::time::Instant::now();
        let trust_proxy = self.throttle.settings().trust_forwarded_for;
        let id = request_id(request.headers(), trust_proxy);
        let facts = RequestFacts::of(request.uri());
        let (method, uri) = (request.method().clone(), request.uri().clone());
        let span = tracing::info_span!("request", request_id = %id);
        let admission =
            Box::pin(Arc::clone(self).admit(request, peer, secure).instrument(span.clone()));
        let gateway = Arc::clone(self);
        async move {
            let (mut outcome, admitted) = admission.await;
            let mut response = match admitted {
                Ok(admitted) => {
                    outcome.counted = true;
                    let run =
                        gateway.run(Box::new(admitted), &method, &uri, outcome.user.as_deref());
                    run.instrument(span.clone()).await
                }
                Err(refusal) => refusal,
            };
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
    }

    /// The plugin's part of an admitted request, parked as long as the plugin holds it.
    /// (`admitted` comes boxed: an async fn keeps its parameters for its whole life.)
    async fn run(
        &self,
        admitted: Box<Admitted>,
        method: &http::Method,
        uri: &http::Uri,
        user: Option<&str>,
    ) -> Response<Full<Bytes>> {
        let Admitted { tenant, account, request, retry_after } = *admitted;
        let started = std::time::Instant::now();
        let answer = crate::parking::answer(&tenant, &self.push, request, account).await;
        crate::admin::observe(&tenant, user, method, uri, &answer, started.elapsed());
        let mut response = match answer {
            Ok(response) => into_http(response),
            Err(fault) => {
                tracing::error!(tenant = %tenant.config.name, %method, %uri, "{fault}");
                plain_status(
                    StatusCode::from_u16(fault.http_status())
                        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                )
            }
        };
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

    /// The host's part of a request: the test page, the login, the body. Returns who the
    /// request turned out to be, and the request for the plugin or the host's own answer.
    async fn admit<B>(
        self: Arc<Self>,
        request: http::Request<B>,
        peer: SocketAddr,
        secure: bool,
    ) -> (Outcome, Result<Admitted, Response<Full<Bytes>>>)
    where
        B: RequestBody,
    {
        let mut outcome = Outcome::default();
        let admitted = self.admit_as(request, peer, secure, &mut outcome).await;
        (outcome, admitted)
    }

    async fn admit_as<B>(
        &self,
        request: http::Request<B>,
        peer: SocketAddr,
        secure: bool,
        outcome: &mut Outcome,
    ) -> Result<Admitted, Response<Full<Bytes>>>
    where
        B: RequestBody,
    {
        // a browser's GET of the endpoint: the test page (see `test_page`), not the plugin
        if let Some(route) = crate::test_page::Route::of(&request) {
            // boxed: the checks' futures are large, and only this rare request should pay
            return Err(Box::pin(route.answer(self, request.into_parts().0, peer)).await);
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
                return Err(unavailable());
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
                Err(_) => return Err(plain_status(StatusCode::BAD_REQUEST)),
            }
        }

        let limit = tenant.config.limits.request_mib as usize * 1024 * 1024;
        let mut body = match crate::request_body::read(body, limit).await {
            Ok(body) => body,
            Err(error) => {
                tracing::info!(%peer, "request body refused: {error:?}");
                return Err(plain_status(error.status()));
            }
        };
        detach_from_read_buffer(&mut parts, &mut body);
        let request = crate::parking::PluginRequest {
            method: parts.method,
            uri: parts.uri,
            headers: crate::packed_headers::PackedHeaders::pack(&parts.headers),
            body,
        };
        Ok(Admitted { tenant, account, request, retry_after })
    }
}

/// A request the host let through to the plugin, with what its answer needs.
struct Admitted {
    tenant: Arc<crate::tenants::TenantRuntime>,
    account: Option<Arc<crate::accounts::Account>>,
    request: crate::parking::PluginRequest,
    retry_after: Option<std::time::Duration>,
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

/// Bodies up to this size are copied by [`detach_from_read_buffer`]: a parkable request (Ping,
/// Sync) is far smaller, and a copy of a large one (SendMail) would only cost time.
const DETACH_BODY_MAX: usize = 64 * 1024;

/// Gives the request's URI and (small) body allocations of their own (~1 KiB for a Ping):
/// received, they are slices of larger buffers (the connection's read buffer, hyper's HTTP/2
/// frames), which a parked request would otherwise keep alive for up to an hour. The headers
/// are packed (`PackedHeaders`) for the same reason.
fn detach_from_read_buffer(parts: &mut http::request::Parts, body: &mut Bytes) {
    if let Ok(uri) = http::Uri::try_from(parts.uri.to_string()) {
        parts.uri = uri;
    }
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
