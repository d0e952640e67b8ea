//! Runs a phone's request through its tenant's plugin and, while the plugin answers with a
//! hold (Ping or Sync with nothing to report), parks it in the [`PushHub`]: no wasm instance
//! and no IMAP connection is held while the phone waits (docs/architecture.md, "Push").

use crate::accounts::Account;
use crate::packed_headers::PackedHeaders;
use crate::push::{self, AccountKey, Connector, Hold, PushHub, WAKE_HEADER, WakeReason};
use crate::runtime::{PluginFault, PluginResponse};
use crate::tenants::TenantRuntime;
use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use http_body_util::Full;
use std::sync::Arc;
use tokio::time::Instant;
use tracing::Instrument as _;

/// What the request asked, kept to call the plugin again on a wake-up.
pub struct PluginRequest {
    pub method: http::Method,
    pub uri: http::Uri,
    pub headers: PackedHeaders,
    pub body: Bytes,
}

impl PluginRequest {
    fn build(&self, wake: bool) -> http::Request<Full<Bytes>> {
        let mut request = http::Request::new(Full::new(self.body.clone()));
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = self.headers.unpack();
        if wake {
            request.headers_mut().insert(WAKE_HEADER, HeaderValue::from_static("changed"));
        }
        request
    }
}

/// The plugin's final answer for `request`, after any number of parks and wake-ups.
pub async fn answer(
    tenant: &TenantRuntime,
    hub: &PushHub,
    request: PluginRequest,
    account: Option<Arc<Account>>,
) -> Result<PluginResponse, PluginFault> {
    let parker = account.as_ref().and_then(|account| {
        let device = device_id(&request.uri)?;
        Some((AccountKey::new(&tenant.config.name, account.login()), device, account.clone()))
    });
    // Any request of a device ends the request it has parked (Exchange does the same).
    if let Some((key, device, _)) = &parker {
        hub.supersede(key, device);
    }
    // The plugin call is boxed: an async fn's future is as large as its largest await point,
    // and this one stays alive, parked, for as long as the phone waits (a Ping: up to an
    // hour, thousands at once). Boxed, the parked future holds a pointer, not the call.
    let mut response = Box::pin(tenant.plugin.call(request.build(false), account.clone())).await?;
    let mut deadline: Option<Instant> = None;
    // Wake-ups after which the plugin still found nothing: normally rare (a change the device
    // already has); many in a row mean the two sides disagree on a token, so back off rather
    // than spin until the deadline.
    let mut fruitless_wakes: u32 = 0;
    loop {
        let hold = match push::parse_hold(response.status, &response.headers, &response.body) {
            None => return Ok(response),
            Some(Ok(hold)) => hold,
            Some(Err(error)) => {
                tracing::error!(tenant = %tenant.config.name, "plugin answered with a broken hold: {error}");
                return Ok(server_error());
            }
        };
        // the hold's own answer is not kept while parked (`hold` has what is needed of it)
        drop(response);
        let Some((key, device, account)) = &parker else {
            // a hold needs an account and a device to watch for; the plugin never holds
            // without them, but if it did the timeout answer is still correct
            return Ok(timeout_answer(hold));
        };
        let until = *deadline.get_or_insert_with(|| Instant::now() + hold.timeout);
        if fruitless_wakes >= 3 {
            let pause = std::time::Duration::from_millis(250u64 << fruitless_wakes.min(8));
            tracing::warn!(tenant = %tenant.config.name, device = %device, "parked request keeps waking without changes; backing off {pause:?}");
            // boxed: rare, and a `Sleep` inline would enlarge every parked request's future
            Box::pin(tokio::time::sleep_until(until.min(Instant::now() + pause))).await;
        }
        let connector = watcher_login(account.clone());
        // no plugin instance and no IMAP session held from here: only the parked future
        tracing::debug!(device = %device, "parked");
        let woken = hub
            .park(key.clone(), device, &hold, until, connector)
            .instrument(tracing::debug_span!("parked", device = %device))
            .await;
        tracing::debug!(reason = ?woken, "parked request woken");
        match woken {
            WakeReason::Changed => {
                fruitless_wakes += 1;
                response = Box::pin(tenant.plugin.call(request.build(true), Some(account.clone())))
                    .await?;
            }
            WakeReason::Timeout | WakeReason::Superseded => return Ok(timeout_answer(hold)),
        }
    }
}

fn timeout_answer(hold: Hold) -> PluginResponse {
    let (status, headers, body) = hold.timeout_response;
    PluginResponse { status, headers: headers.unpack(), body }
}

fn server_error() -> PluginResponse {
    PluginResponse {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        headers: http::HeaderMap::new(),
        body: Bytes::new(),
    }
}

/// How the account's watcher logs in: with the password the server last accepted.
pub(crate) fn watcher_login(account: Arc<Account>) -> Arc<dyn Connector> {
    Arc::new(move || -> push::ConnectFuture {
        let account = account.clone();
        Box::pin(async move { account.fresh_session().await })
    })
}

/// The DeviceId of an EAS request: `DeviceId=` in the plain query form, or the length-prefixed
/// field of the base64 form (MS-ASHTTP §2.2.1.1.1.1), hex-encoded there since it is binary.
pub(crate) fn device_id(uri: &http::Uri) -> Option<String> {
    let query = uri.query()?;
    if query.contains('=') && query.contains('&') || query.starts_with("Cmd=") {
        return query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(name, _)| name.eq_ignore_ascii_case("DeviceId"))
            .map(|(_, value)| value.to_owned())
            .filter(|value| !value.is_empty());
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(query.replace("%2B", "+").replace("%2F", "/").replace("%3D", "="))
        .ok()?;
    // version, command, locale (2), device id length, device id
    let length = usize::from(*decoded.get(4)?);
    let id = decoded.get(5..5 + length)?;
    (!id.is_empty()).then(|| id.iter().map(|byte| format!("{byte:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_ids_from_both_query_forms() {
        let plain: http::Uri =
            "/Microsoft-Server-ActiveSync?Cmd=Ping&User=a&DeviceId=ABC123&DeviceType=iPhone"
                .parse()
                .expect("uri");
        assert_eq!(device_id(&plain).as_deref(), Some("ABC123"));
        let bytes = [141u8, 18, 9, 4, 3, 0xAA, 0xBB, 0xCC, 4, 0, 0, 0, 0];
        let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
        let base64: http::Uri =
            format!("/Microsoft-Server-ActiveSync?{encoded}").parse().expect("uri");
        assert_eq!(device_id(&base64).as_deref(), Some("aabbcc"));
        let none: http::Uri = "/Microsoft-Server-ActiveSync".parse().expect("uri");
        assert_eq!(device_id(&none), None);
    }
}
