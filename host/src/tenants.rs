//! Which tenant serves a request: by the login's mail domain, else by the Host header.

use crate::accounts::Accounts;
use crate::config::{Config, Tenant};
use crate::plugin_host::TenantServices;
use crate::runtime::{Plugin, PluginRuntime};
use crate::state::StateStore;
use anyhow::Context;
use std::sync::Arc;

pub struct TenantRuntime {
    pub config: Tenant,
    pub plugin: Plugin,
    /// The tenant's IMAP server, ready to connect (TLS roots loaded).
    pub imap: crate::imap::Endpoint,
    /// The users' verified passwords and pooled IMAP sessions.
    pub accounts: Arc<Accounts>,
}

pub struct Tenants {
    /// In config order; the first one also serves requests that name no known domain, so that
    /// an anonymous OPTIONS still gets the engine's 401 challenge.
    list: Vec<TenantRuntime>,
}

impl Tenants {
    pub fn load(
        config: &Config,
        runtime: &PluginRuntime,
        store: &Arc<dyn StateStore>,
    ) -> anyhow::Result<Tenants> {
        let mut list = Vec::with_capacity(config.tenants.len());
        for tenant in &config.tenants {
            let pre = runtime
                .load(&tenant.plugin)
                .with_context(|| format!("tenant {:?}", tenant.name))?;
            let services = Arc::new(TenantServices::new(tenant)?);
            let plugin = Plugin::new(&tenant.name, pre, &tenant.limits, store.clone(), services);
            let imap = tenant
                .imap
                .imap_endpoint()
                .with_context(|| format!("tenant {:?}: IMAP TLS settings", tenant.name))?;
            let accounts = Arc::new(Accounts::new(imap.clone(), &tenant.imap_pool));
            list.push(TenantRuntime { config: tenant.clone(), plugin, imap, accounts });
        }
        Ok(Tenants { list })
    }

    /// Starts each tenant's background closing of idle IMAP sessions (inside a runtime).
    pub fn spawn_pool_reapers(&self) {
        for tenant in &self.list {
            tenant.accounts.spawn_reaper();
        }
    }

    /// The tenant owning the domain of `login` (`user@domain`), if any.
    pub fn for_login(&self, login: &str) -> Option<&TenantRuntime> {
        let (_, domain) = login.rsplit_once('@')?;
        self.for_domain(domain)
    }

    /// The tenant for a request without a usable login: by Host header, else the default.
    pub fn for_host(&self, host: Option<&str>) -> &TenantRuntime {
        host.map(|host| host.rsplit_once(':').map_or(host, |(name, _)| name))
            .and_then(|name| {
                self.list.iter().find(|tenant| {
                    tenant.config.domains.iter().any(|domain| {
                        name.eq_ignore_ascii_case(domain)
                            || name
                                .to_ascii_lowercase()
                                .ends_with(&format!(".{}", domain.to_ascii_lowercase()))
                    })
                })
            })
            .unwrap_or(&self.list[0])
    }

    fn for_domain(&self, domain: &str) -> Option<&TenantRuntime> {
        self.list.iter().find(|tenant| {
            tenant.config.domains.iter().any(|known| known.eq_ignore_ascii_case(domain))
        })
    }

    pub fn max_memory_bytes(config: &Config) -> usize {
        config.tenants.iter().map(|t| t.limits.memory_mib as usize * 1024 * 1024).max().unwrap_or(0)
    }
}
