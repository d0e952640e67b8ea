//! Which tenant serves a request: by the login's mail domain, or by the Host header when
//! `[tenant_selection] by = "host"`. The loaded tenants are one [`TenantSet`], replaced as a
//! whole when SIGHUP reloads the config; a request holds its tenant (an `Arc`) until it is
//! answered, so a Ping parked before a reload finishes on the plugin and servers it began with.

use crate::accounts::Accounts;
use crate::config::plugin_path::PluginSource;
use crate::config::{Config, Tenant};
use crate::plugin_host::{PluginPre, RequestState, TenantServices};
use crate::runtime::{Plugin, PluginRuntime};
use crate::state::StateStore;
use anyhow::Context;
use serde::Deserialize;
use std::sync::{Arc, PoisonError, RwLock};

pub struct TenantRuntime {
    pub config: Tenant,
    pub plugin: Plugin,
    /// The tenant's IMAP server, ready to connect (TLS roots loaded).
    pub imap: crate::imap::Endpoint,
    /// The users' verified passwords and pooled IMAP sessions.
    pub accounts: Arc<Accounts>,
}

/// `[tenant_selection] by`: what decides the tenant of a request with a login.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SelectBy {
    /// The login's domain (`user@example.com` → the tenant listing `example.com`).
    #[default]
    Login,
    /// The Host header, when it names one of a tenant's `hosts`: a login of another tenant's
    /// domain is refused there. A Host naming no tenant falls back to the login's domain.
    Host,
}

/// The tenants of the running config.
pub struct Tenants {
    current: RwLock<Arc<TenantSet>>,
}

/// The tenants of one loaded config.
pub struct TenantSet {
    /// In config order; the first one also serves requests that name no known domain, so that
    /// an anonymous OPTIONS still gets the engine's 401 challenge.
    list: Vec<Arc<TenantRuntime>>,
    by: SelectBy,
}

/// Where a login goes.
pub enum Selection<'s> {
    Serve(&'s Arc<TenantRuntime>),
    /// No tenant serves the login's domain.
    UnknownDomain,
    /// Host selection is on and the Host names `host_tenant`, which does not serve the
    /// login's domain: refused, whoever serves that domain.
    WrongHost {
        host_tenant: &'s Arc<TenantRuntime>,
    },
}

impl Tenants {
    pub fn load(
        config: &Config,
        runtime: &PluginRuntime,
        store: &Arc<dyn StateStore>,
    ) -> anyhow::Result<Tenants> {
        Ok(Tenants::new(TenantSet::load(config, runtime, store)?))
    }

    pub fn new(set: TenantSet) -> Tenants {
        Tenants { current: RwLock::new(Arc::new(set)) }
    }

    /// The tenants new requests are served by.
    pub fn current(&self) -> Arc<TenantSet> {
        self.current.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Serves new requests from `set`; requests under way keep the tenants they began with.
    pub fn replace(&self, set: TenantSet) -> Arc<TenantSet> {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        std::mem::replace(&mut *current, Arc::new(set))
    }

    /// Starts each tenant's background closing of idle IMAP sessions (inside a runtime).
    pub fn spawn_pool_reapers(&self) {
        self.current().spawn_pool_reapers();
    }

    /// The tenant owning the domain of `login` (`user@domain`), if any.
    pub fn for_login(&self, login: &str) -> Option<Arc<TenantRuntime>> {
        self.current().for_login(login).cloned()
    }

    /// The tenant for a request without a usable login: by Host header, else the default.
    pub fn for_host(&self, host: Option<&str>) -> Arc<TenantRuntime> {
        self.current().for_host(host).clone()
    }

    pub fn max_memory_bytes(config: &Config) -> usize {
        config.tenants.iter().map(|t| t.limits.memory_mib as usize * 1024 * 1024).max().unwrap_or(0)
    }
}

impl TenantSet {
    /// Compiles each tenant's plugin and prepares its servers (slow: run it off the reactor).
    pub fn load(
        config: &Config,
        runtime: &PluginRuntime,
        store: &Arc<dyn StateStore>,
    ) -> anyhow::Result<TenantSet> {
        let mut list = Vec::with_capacity(config.tenants.len());
        // tenants usually share one plugin file: compile it once (seconds of CPU each)
        let mut compiled: Vec<(PluginSource, PluginPre<RequestState>)> = Vec::new();
        for tenant in &config.tenants {
            let source = tenant.plugin_source();
            let pre = match compiled.iter().find(|(loaded, _)| *loaded == source) {
                Some((_, pre)) => pre.clone(),
                None => {
                    let pre = runtime
                        .load(&source)
                        .with_context(|| format!("tenant {:?}", tenant.name))?;
                    compiled.push((source, pre.clone()));
                    pre
                }
            };
            let services = Arc::new(TenantServices::new(tenant)?);
            let plugin = Plugin::new(&tenant.name, pre, &tenant.limits, store.clone(), services);
            let imap = tenant
                .imap
                .imap_endpoint()
                .with_context(|| format!("tenant {:?}: IMAP TLS settings", tenant.name))?;
            let accounts = Arc::new(Accounts::new(imap.clone(), &tenant.imap_pool));
            list.push(Arc::new(TenantRuntime { config: tenant.clone(), plugin, imap, accounts }));
        }
        anyhow::ensure!(!list.is_empty(), "no tenant configured");
        Ok(TenantSet { list, by: config.tenant_selection.by })
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<TenantRuntime>> {
        self.list.iter()
    }

    pub fn spawn_pool_reapers(&self) {
        for tenant in &self.list {
            tenant.accounts.spawn_reaper();
        }
    }

    /// Which tenant checks `login`'s password, given the request's Host header.
    pub fn select(&self, host: Option<&str>, login: &str) -> Selection<'_> {
        let by_login = self.for_login(login);
        if self.by == SelectBy::Host
            && let Some(host_tenant) = self.for_listed_host(host)
            && !by_login.is_some_and(|tenant| Arc::ptr_eq(tenant, host_tenant))
        {
            return Selection::WrongHost { host_tenant };
        }
        by_login.map_or(Selection::UnknownDomain, Selection::Serve)
    }

    /// The tenant owning the domain of `login` (`user@domain`), if any.
    pub fn for_login(&self, login: &str) -> Option<&Arc<TenantRuntime>> {
        let (_, domain) = login.rsplit_once('@')?;
        self.list.iter().find(|tenant| {
            tenant.config.domains.iter().any(|known| known.eq_ignore_ascii_case(domain))
        })
    }

    /// The tenant for a request without a usable login: the one listing the Host in `hosts`,
    /// else the one whose domain the Host is or ends in, else the first.
    pub fn for_host(&self, host: Option<&str>) -> &Arc<TenantRuntime> {
        self.for_listed_host(host)
            .or_else(|| {
                let name = host_name(host?).to_ascii_lowercase();
                self.list.iter().find(|tenant| {
                    tenant.config.domains.iter().any(|domain| {
                        let domain = domain.to_ascii_lowercase();
                        name == domain || name.ends_with(&format!(".{domain}"))
                    })
                })
            })
            .unwrap_or(&self.list[0])
    }

    /// The tenant whose `hosts` list the Host header's name (any case, port ignored).
    fn for_listed_host(&self, host: Option<&str>) -> Option<&Arc<TenantRuntime>> {
        let name = host_name(host?);
        self.list
            .iter()
            .find(|tenant| tenant.config.hosts.iter().any(|known| known.eq_ignore_ascii_case(name)))
    }
}

/// The name part of a Host header: without the port, IPv6 literals with their brackets.
fn host_name(host: &str) -> &str {
    let host = host.trim();
    if host.starts_with('[') {
        return host.split_inclusive(']').next().unwrap_or(host);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::host_name;

    #[test]
    fn host_names_lose_their_port() {
        assert_eq!(host_name("mail.a.example:8443"), "mail.a.example");
        assert_eq!(host_name("Mail.A.Example"), "Mail.A.Example");
        assert_eq!(host_name("[::1]:80"), "[::1]");
        assert_eq!(host_name("[::1]"), "[::1]");
    }
}
