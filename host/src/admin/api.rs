//! The admin listener: Prometheus `/metrics` and the JSON device API that `eas-edge devices`
//! and `eas-edge top` use while the server runs (the server holds the store's file lock, so
//! the commands cannot open it themselves then).
//!
//! | route | answer |
//! |---|---|
//! | `GET /metrics` | the metrics, Prometheus text format |
//! | `GET /api/devices[?user=U]` | every device (of `U`) |
//! | `GET /api/device?tenant=T&user=U&device=D` | one device, with its keys |
//! | `POST /api/device/ACTION?tenant=T&user=U&device=D` | wipe, account-wipe, cancel-wipe, reset, block, allow |
//! | `GET /api/top` | parked requests, watchers, pools and recently seen devices |
//!
//! With `[admin] token` set, every request needs `Authorization: Bearer TOKEN`.

use super::activity;
use super::devices::{self, Action, DeviceError, DeviceSummary};
use super::metrics;
use crate::accounts::{PoolStats, PrefetchCounts};
use crate::config::AdminConfig;
use crate::push::AccountKey;
use crate::server::Gateway;
use crate::state::{Namespace, StateStore};
use crate::tenants::TenantRuntime;
use bytes::Bytes;
use http::{Method, Response, StatusCode, header};
use http_body_util::Full;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;

/// What `eas-edge top` shows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TopView {
    pub parked: usize,
    pub watchers: usize,
    pub watcher_imap_connections: usize,
    pub pools: Vec<TenantPool>,
    /// Devices seen in the last hour, most recent first.
    pub devices: Vec<TopDevice>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TenantPool {
    pub tenant: String,
    pub accounts: usize,
    pub idle_sessions: usize,
    pub busy_sessions: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TopDevice {
    pub tenant: String,
    pub user: String,
    pub device: String,
    pub device_type: String,
    pub command: String,
    pub status: u16,
    pub last_seen: u64,
}

/// An API error's body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiError {
    pub error: String,
}

struct Admin {
    gateway: Arc<Gateway>,
    store: Arc<dyn StateStore>,
    token: Option<String>,
}

/// Serves the admin listener forever.
pub async fn serve(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    store: Arc<dyn StateStore>,
    config: AdminConfig,
) -> anyhow::Result<()> {
    let admin = Arc::new(Admin { gateway, store, token: config.token });
    crate::server::accept_loop(listener, "admin", move |request, _peer| {
        let admin = admin.clone();
        async move { admin.handle(request).await }
    })
    .await
}

impl Admin {
    async fn handle(&self, request: http::Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
        if !self.authorized(request.headers()) {
            let mut response =
                json(StatusCode::UNAUTHORIZED, &error("missing or wrong bearer token"));
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, http::HeaderValue::from_static("Bearer"));
            return response;
        }
        let path = request.uri().path().to_owned();
        let query = request.uri().query().unwrap_or_default().to_owned();
        let method = request.method().clone();
        match (&method, path.as_str()) {
            (&Method::GET, "/metrics") => self.metrics(),
            (&Method::GET, "/api/devices") => {
                let user = param(&query, "user");
                match devices::list(&*self.store, &self.tenant_names(), user.as_deref()).await {
                    Ok(list) => json(StatusCode::OK, &list),
                    Err(error) => device_error(&error),
                }
            }
            (&Method::GET, "/api/device") => match self.namespace(&query) {
                Ok(ns) => answer(devices::show(&*self.store, &ns).await),
                Err((status, error)) => json(status, &error),
            },
            (&Method::GET, "/api/top") => json(StatusCode::OK, &self.top()),
            (&Method::POST, action) if action.starts_with("/api/device/") => {
                let Some(action) = Action::from_name(&action["/api/device/".len()..]) else {
                    return json(StatusCode::NOT_FOUND, &error("unknown device action"));
                };
                let ns = match self.namespace(&query) {
                    Ok(ns) => ns,
                    Err((status, error)) => return json(status, &error),
                };
                let result = devices::apply(&*self.store, &ns, action).await;
                if result.is_ok() {
                    metrics::global().admin_action();
                    tracing::warn!(tenant = %ns.tenant, user = %ns.user, device = ?ns.device, "admin: device {}", action.name());
                    // a parked Ping or Sync ends now, so the device's next request meets the change
                    if let Some(device) = &ns.device {
                        self.gateway.push.supersede(&AccountKey::new(&ns.tenant, &ns.user), device);
                    }
                }
                answer(result)
            }
            _ => json(StatusCode::NOT_FOUND, &error("no such route (see docs/operations.md)")),
        }
    }

    fn authorized(&self, headers: &http::HeaderMap) -> bool {
        let Some(token) = &self.token else { return true };
        let sent = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .unwrap_or_default();
        // the same time whatever prefix matches
        sent.len() == token.len()
            && sent.bytes().zip(token.bytes()).fold(0u8, |diff, (a, b)| diff | (a ^ b)) == 0
    }

    /// The device a request names, or the status and error to answer.
    fn namespace(&self, query: &str) -> Result<Namespace, (StatusCode, ApiError)> {
        let (Some(tenant), Some(user), Some(device)) =
            (param(query, "tenant"), param(query, "user"), param(query, "device"))
        else {
            return Err((StatusCode::BAD_REQUEST, error("tenant, user and device are required")));
        };
        if !self.tenant_names().contains(&tenant) {
            return Err((StatusCode::NOT_FOUND, error(&format!("no tenant {tenant:?}"))));
        }
        Ok(Namespace::device(tenant, user, device))
    }

    /// The tenants of the running config (a SIGHUP reload may change them).
    fn tenant_names(&self) -> Vec<String> {
        self.gateway.tenants.current().iter().map(|tenant| tenant.config.name.clone()).collect()
    }

    fn metrics(&self) -> Response<Full<Bytes>> {
        let mut out = String::new();
        metrics::global().render(&mut out);
        let push = self.gateway.push.stats();
        for (name, help, value) in [
            (
                "eas_edge_parked_requests",
                "Pings and Syncs with Wait parked right now.",
                push.parked,
            ),
            (
                "eas_edge_watchers",
                "Accounts with an IMAP watcher for parked requests.",
                push.watchers,
            ),
            (
                "eas_edge_watcher_imap_connections",
                "IMAP connections the watchers hold.",
                push.imap_connections,
            ),
        ] {
            metrics::family(&mut out, name, "gauge", help);
            let _ = writeln!(out, "{name} {value}");
        }
        let pools = self.pools();
        type Field = fn(&TenantPool) -> usize;
        let families: [(&str, &str, Field); 3] = [
            (
                "eas_edge_imap_pool_accounts",
                "Accounts with a verified password or pooled sessions.",
                |p| p.accounts,
            ),
            (
                "eas_edge_imap_pool_idle_sessions",
                "Pooled IMAP sessions waiting for a request.",
                |p| p.idle_sessions,
            ),
            ("eas_edge_imap_pool_busy_sessions", "IMAP sessions a request is using.", |p| {
                p.busy_sessions
            }),
        ];
        for (name, help, field) in families {
            metrics::family(&mut out, name, "gauge", help);
            for pool in &pools {
                let labels = metrics::labels(&[("tenant", &pool.tenant)]);
                let _ = writeln!(out, "{name}{labels} {}", field(pool));
            }
        }
        type PerTenant = fn(&TenantRuntime) -> u64;
        let per_tenant: [(&str, &str, &str, PerTenant); 7] = [
            (
                "eas_edge_imap_logins_total",
                "counter",
                "IMAP LOGINs made for phones' requests (password checks and pooled sessions).",
                |tenant| tenant.accounts.logins(),
            ),
            (
                "eas_edge_tenant_on_probation",
                "gauge",
                "1 while the tenant's plugin is on probation for failing (its calls slowed).",
                |tenant| u64::from(tenant.plugin.on_probation()),
            ),
            (
                "eas_edge_imap_prefetched_summaries_total",
                "counter",
                "Message summaries fetched ahead for the next page of a Sync.",
                |tenant| prefetched(tenant, |counts| &counts.stored),
            ),
            (
                "eas_edge_imap_prefetched_summaries_taken_total",
                "counter",
                "Summaries fetched ahead that a request then took (at most their flags were fetched).",
                |tenant| prefetched(tenant, |counts| &counts.taken),
            ),
            (
                "eas_edge_imap_prefetched_flags_vouched_total",
                "counter",
                "Summaries taken whose flags the request's own change check vouched for (no round trip).",
                |tenant| prefetched(tenant, |counts| &counts.flags_vouched),
            ),
            (
                "eas_edge_sync_rendered_ahead_total",
                "counter",
                "Messages of a Sync's next page that the plugin rendered ahead, on another core.",
                |tenant| prefetched(tenant, |counts| &counts.rendered),
            ),
            (
                "eas_edge_sync_rendered_ahead_used_total",
                "counter",
                "Messages rendered ahead that the next page then sent as they were.",
                |tenant| prefetched(tenant, |counts| &counts.rendered_used),
            ),
        ];
        for (name, kind, help, value) in per_tenant {
            metrics::family(&mut out, name, kind, help);
            for tenant in self.gateway.tenants.current().iter() {
                let labels = metrics::labels(&[("tenant", &tenant.config.name)]);
                let _ = writeln!(out, "{name}{labels} {}", value(tenant));
            }
        }
        let mut response = Response::new(Full::new(Bytes::from(out)));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        response
    }

    fn pools(&self) -> Vec<TenantPool> {
        self.gateway
            .tenants
            .current()
            .iter()
            .map(|tenant| {
                let PoolStats { accounts, idle_sessions, busy_sessions } =
                    tenant.accounts.pool_stats();
                TenantPool {
                    tenant: tenant.config.name.clone(),
                    accounts,
                    idle_sessions,
                    busy_sessions,
                }
            })
            .collect()
    }

    fn top(&self) -> TopView {
        let push = self.gateway.push.stats();
        let devices = activity::recent(Duration::from_secs(3600))
            .into_iter()
            .map(|(key, seen)| TopDevice {
                tenant: key.tenant,
                user: key.user,
                device: key.device,
                device_type: seen.device_type,
                command: seen.command,
                status: seen.status,
                last_seen: seen.at,
            })
            .collect();
        TopView {
            parked: push.parked,
            watchers: push.watchers,
            watcher_imap_connections: push.imap_connections,
            pools: self.pools(),
            devices,
        }
    }
}

/// One of a tenant's prefetch counters.
fn prefetched(tenant: &TenantRuntime, counter: fn(&PrefetchCounts) -> &AtomicU64) -> u64 {
    counter(tenant.accounts.prefetch_counts()).load(Ordering::Relaxed)
}

/// The value of `name` in a query, decoded.
fn param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .and_then(|(_, value)| super::percent_decode(value))
        .filter(|value| !value.is_empty())
}

fn answer(result: Result<DeviceSummary, DeviceError>) -> Response<Full<Bytes>> {
    match result {
        Ok(summary) => json(StatusCode::OK, &summary),
        Err(error) => device_error(&error),
    }
}

fn device_error(error: &DeviceError) -> Response<Full<Bytes>> {
    let status = match error {
        DeviceError::NotFound { .. } => StatusCode::NOT_FOUND,
        DeviceError::Contended => StatusCode::CONFLICT,
        DeviceError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    json(status, &ApiError { error: error.to_string() })
}

fn error(message: &str) -> ApiError {
    ApiError { error: message.to_owned() }
}

fn json(status: StatusCode, value: &impl Serialize) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    response
}
