//! `POST /v1/watch`: a Ping or Sync-with-Wait parked in Envoy waits here, as a long-poll.
//!
//! The filter sends the engine's hold as it got it (`Grip-Hold`, `Grip-Channel`,
//! `Grip-Timeout`, with the time still left in the heartbeat) and keeps the timeout response
//! itself. The request is parked in the same [`PushHub`] as a phone's request to the host, so
//! it costs a registry record and an HTTP/2 stream, and is woken by the account's one watcher.
//! The answer is `x-eas-edge-wake: changed | timeout | superseded`; on `changed` the filter runs
//! the engine again with that header. A cancelled callout (the phone went away) drops the
//! park, which removes the record.

use crate::accounts::Account;
use crate::push::{self, AccountKey, PushHub, WAKE_HEADER, WakeReason};
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;
use std::sync::Arc;
use tokio::time::Instant;

pub async fn park(
    hub: &PushHub,
    tenant: &Arc<str>,
    account: Arc<Account>,
    device: &str,
    headers: &http::HeaderMap,
) -> Response<Full<Bytes>> {
    let hold = match push::parse_hold(StatusCode::OK, headers, &Bytes::new()) {
        Some(Ok(hold)) => hold,
        Some(Err(error)) => {
            tracing::error!(%tenant, login = account.login(), "the filter sent a broken hold: {error}");
            return super::plain(StatusCode::BAD_REQUEST);
        }
        None => return super::plain(StatusCode::BAD_REQUEST),
    };
    let key = AccountKey::new(tenant, account.login());
    let deadline = Instant::now() + hold.timeout;
    let connector = crate::parking::watcher_login(account);
    let reason = hub.park(key, device, &hold, deadline, connector).await;
    let mut response = super::plain(StatusCode::OK);
    let reason = match reason {
        WakeReason::Changed => "changed",
        WakeReason::Timeout => "timeout",
        WakeReason::Superseded => "superseded",
    };
    response.headers_mut().insert(WAKE_HEADER, HeaderValue::from_static(reason));
    response
}
