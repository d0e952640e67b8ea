//! Client authentication: Basic credentials checked against the tenant's IMAP server, with
//! recently verified passwords served from memory and failed logins throttled.
//!
//! The password is used here and in the account pool and nowhere else; the plugin only ever
//! sees the identity.

mod basic;
pub mod client_address;
pub mod throttle;

pub use basic::{Credentials, basic_credentials};
pub use throttle::{LoginThrottle, ThrottleSettings, Verdict};

use crate::accounts::Account;
use crate::imap::ImapError;
use crate::tenants::{Selection, TenantRuntime, Tenants};
use http::HeaderMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The outcome, with the tenant that answers the request: held (an `Arc`) until the request
/// is answered, so a config reload meanwhile does not change it.
pub enum AuthResult {
    Authenticated {
        /// The account the login belongs to; its login is the identity.
        account: Arc<Account>,
        tenant: Arc<TenantRuntime>,
    },
    /// No credentials, wrong ones, a login for a domain we do not serve, or (with host
    /// selection) a login of another tenant's domain.
    Anonymous { tenant: Arc<TenantRuntime> },
    /// Too many failed logins for this login or from this address: the credentials were not
    /// checked. Answered like wrong credentials (401), with `Retry-After`.
    Throttled { tenant: Arc<TenantRuntime>, retry_after: Duration },
    /// The IMAP server could not be asked: the client should retry later.
    BackendUnavailable { tenant: Arc<TenantRuntime> },
}

/// Authenticates a request from `client` by its Basic credentials; `device` is the request's
/// DeviceId, if it names one (a device that logged in before is not locked out by others'
/// failures on the login, see [`throttle`]).
pub async fn authenticate(
    tenants: &Tenants,
    throttle: &LoginThrottle,
    headers: &HeaderMap,
    client: IpAddr,
    device: Option<&str>,
) -> AuthResult {
    let tenants = tenants.current();
    let host = headers.get(http::header::HOST).and_then(|h| h.to_str().ok());
    let Some(credentials) = basic_credentials(headers) else {
        return AuthResult::Anonymous { tenant: tenants.for_host(host).clone() };
    };
    let login = credentials.login.as_str();
    let tenant = match tenants.select(host, login) {
        Selection::Serve(tenant) => tenant.clone(),
        Selection::UnknownDomain => {
            tracing::info!(%login, "login for a domain no tenant serves");
            return AuthResult::Anonymous { tenant: tenants.for_host(host).clone() };
        }
        // never checked against the other tenant's server: this tenant answers 401
        Selection::WrongHost { host_tenant } => {
            tracing::info!(%login, tenant = %host_tenant.config.name, "login of a domain this tenant's host does not serve: refused");
            return AuthResult::Anonymous { tenant: host_tenant.clone() };
        }
    };
    match throttle.check(login, device, client, Instant::now()) {
        Verdict::Proceed => {}
        Verdict::Delay(delay) => {
            tracing::info!(%login, %client, "recent failed logins: checking after {delay:?}");
            tokio::time::sleep(delay).await;
        }
        Verdict::Refuse { retry_after } => {
            tracing::warn!(%login, %client, device = device.unwrap_or("-"), tenant = %tenant.config.name, "too many failed logins: refused without asking IMAP");
            return AuthResult::Throttled { tenant, retry_after };
        }
    }
    match tenant.accounts.authenticate(login, &credentials.password).await {
        Ok(account) => {
            throttle.succeeded(login, device);
            AuthResult::Authenticated { account, tenant }
        }
        Err(ImapError::AuthFailed(reason)) => {
            throttle.failed(login, device, client, Instant::now());
            tracing::info!(%login, %client, tenant = %tenant.config.name, "IMAP rejected the credentials: {reason}");
            AuthResult::Anonymous { tenant }
        }
        Err(error) => {
            tracing::warn!(%login, tenant = %tenant.config.name, "cannot check credentials: {error}");
            AuthResult::BackendUnavailable { tenant }
        }
    }
}
