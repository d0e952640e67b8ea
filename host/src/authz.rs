//! The ext_authz service for Envoy: Envoy asks the host whether a phone's credentials are good
//! before the proxy-wasm filter runs, so the password never enters the filter's VM.
//!
//! Every answer is 200 ("let it through") so that the engine, not Envoy, answers anonymous
//! requests with its 401 challenge. A good login adds the identity header; every answer tells
//! Envoy to strip `Authorization`. Envoy removes any client-sent identity header before this
//! runs (early header mutation in `envoy/`).

use crate::accounts::Account;
use crate::auth::client_address::forwarded_client;
use crate::auth::{AuthResult, authenticate};
use crate::capability::TENANT_HEADER;
use crate::server::{Gateway, IDENTITY_HEADER};
use crate::tenants::TenantRuntime;
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;
use std::net::SocketAddr;
use std::sync::Arc;

/// The answer for Envoy, and the tenant and account when the credentials were good (the
/// capability endpoint then grants the login to the filter).
pub async fn check(
    gateway: &Gateway,
    uri: &http::Uri,
    headers: &http::HeaderMap,
    peer: SocketAddr,
) -> (Response<Full<Bytes>>, Option<(Arc<TenantRuntime>, Arc<Account>)>) {
    let mut response = Response::new(Full::new(Bytes::new()));
    response
        .headers_mut()
        .insert("x-envoy-auth-headers-to-remove", HeaderValue::from_static("authorization"));
    // the peer is Envoy: the phone's address is in the headers Envoy sets
    let client = forwarded_client(headers, peer);
    let mut granted = None;
    // Envoy appends the phone's path and query to `/v1/authz`: the DeviceId is in it
    let device = crate::parking::device_id(uri);
    match authenticate(&gateway.tenants, &gateway.throttle, headers, client, device.as_deref())
        .await
    {
        AuthResult::Authenticated { account, tenant } => {
            if let (Ok(login), Ok(tenant_value)) = (
                HeaderValue::from_str(account.login()),
                HeaderValue::from_str(&tenant.plugin.tenant),
            ) {
                response.headers_mut().insert(IDENTITY_HEADER, login);
                response.headers_mut().insert(TENANT_HEADER, tenant_value);
                granted = Some((tenant, account));
            }
        }
        // the engine answers with its 401 challenge (Envoy passes no Retry-After from here)
        AuthResult::Anonymous { .. } | AuthResult::Throttled { .. } => {}
        AuthResult::BackendUnavailable { .. } => {
            *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, HeaderValue::from_static("30"));
        }
    }
    (response, granted)
}
