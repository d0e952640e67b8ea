//! Which accounts the Envoy filter may act for: those whose phone passed ext_authz recently.
//!
//! A capability call names a tenant and a login, and a filter that could name any login would
//! reach any mailbox. So a login is served only while it holds a grant, made by a successful
//! ext_authz check (the phone's password checked against IMAP) and renewed by use. A grant
//! outlives the longest Ping (its wake-up calls come up to an hour after the check) and keeps
//! the account, with the password IMAP accepted, for the watcher and the pool.

use crate::accounts::Account;
use crate::tenants::TenantRuntime;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The longest heartbeat (3540 s) plus time for the calls after a wake-up.
pub const GRANT_LIFETIME: Duration = Duration::from_secs(3900);

#[derive(Default)]
pub struct Grants {
    entries: Mutex<HashMap<(Arc<str>, String), Grant>>,
}

struct Grant {
    /// The tenant as loaded when the grant was last renewed by ext_authz: after a config
    /// reload, calls move to the new one with the phone's next request.
    tenant: Arc<TenantRuntime>,
    account: Arc<Account>,
    expires: Instant,
}

impl Grants {
    /// Records (or renews) a successful ext_authz check of `account` in `tenant`.
    pub fn grant(&self, tenant: Arc<TenantRuntime>, account: Arc<Account>, now: Instant) {
        let key = (tenant.plugin.tenant.clone(), account.login().to_owned());
        self.lock().insert(key, Grant { tenant, account, expires: now + GRANT_LIFETIME });
    }

    /// The tenant and account, if the login holds a live grant; use renews it.
    pub fn account(
        &self,
        tenant: &str,
        login: &str,
        now: Instant,
    ) -> Option<(Arc<TenantRuntime>, Arc<Account>)> {
        let mut entries = self.lock();
        let key = (Arc::<str>::from(tenant), login.to_owned());
        let grant = entries.get_mut(&key)?;
        if grant.expires <= now {
            entries.remove(&key);
            return None;
        }
        grant.expires = now + GRANT_LIFETIME;
        Some((grant.tenant.clone(), grant.account.clone()))
    }

    /// Forgets expired grants (so that their accounts can leave the pool).
    pub fn prune(&self, now: Instant) {
        self.lock().retain(|_, grant| grant.expires > now);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(Arc<str>, String), Grant>> {
        // every critical section is a single map operation: a panic cannot leave it torn
        crate::unpoisoned::lock(&self.entries)
    }
}
