//! SIGHUP: read the config file again and serve new requests from freshly loaded tenants
//! (plugins recompiled, servers and limits as the file now says). Requests under way, parked
//! Pings included, keep the tenants they began with until they are answered. A config with
//! mistakes is refused with check-config's report in the log, and the running one stays.
//!
//! What the running process cannot change in place (listeners, the state store, watchers,
//! the login throttle, logging, the admin and capability listeners, a memory cap above the
//! plugin pool's) is logged as needing a restart.

use crate::config::Config;
use crate::runtime::PluginRuntime;
use crate::server::Gateway;
use crate::state::StateStore;
use crate::tenants::{TenantSet, Tenants};
use std::path::PathBuf;
use std::sync::Arc;

pub struct Reloader {
    pub path: PathBuf,
    pub running: Config,
    pub runtime: Arc<PluginRuntime>,
    pub store: Arc<dyn StateStore>,
    pub gateway: Arc<Gateway>,
}

impl Reloader {
    /// Reloads at every SIGHUP from now on. Call it inside the runtime before the listeners
    /// open: until the handler is installed, a SIGHUP would end the process.
    pub fn start(mut self) -> anyhow::Result<()> {
        let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                self.reload().await;
            }
        });
        Ok(())
    }

    async fn reload(&mut self) {
        tracing::info!(path = %self.path.display(), "SIGHUP: reloading the config");
        let config = match Config::load(&self.path) {
            Ok(config) => config,
            Err(report) => {
                tracing::error!("config not reloaded, still serving the previous one: {report}");
                return;
            }
        };
        let (running_cap, wanted_cap) =
            (Tenants::max_memory_bytes(&self.running), Tenants::max_memory_bytes(&config));
        if wanted_cap > running_cap {
            tracing::error!(
                "config not reloaded, still serving the previous one: a tenant's limits.memory_mib \
                 ({} MiB) is above what the running plugin pool was sized for ({} MiB); restart to apply it",
                wanted_cap >> 20,
                running_cap >> 20
            );
            return;
        }
        for section in restart_only_changes(&self.running, &config) {
            tracing::warn!("[{section}] changed: applies at the next restart, not on reload");
        }
        let (runtime, store) = (self.runtime.clone(), self.store.clone());
        let loaded = {
            let config = config.clone();
            // compiling plugins takes seconds of CPU: not on the threads serving requests
            tokio::task::spawn_blocking(move || TenantSet::load(&config, &runtime, &store)).await
        };
        let set = match loaded {
            Ok(Ok(set)) => set,
            Ok(Err(error)) => {
                tracing::error!("config not reloaded, still serving the previous one: {error:#}");
                return;
            }
            Err(error) => {
                tracing::error!("config not reloaded, still serving the previous one: {error}");
                return;
            }
        };
        set.spawn_pool_reapers();
        let names: Vec<&str> = config.tenants.iter().map(|t| t.name.as_str()).collect();
        // the previous set lives on in the requests still holding its tenants
        drop(self.gateway.tenants.replace(set));
        tracing::info!(tenants = %names.join(","), "config reloaded");
        self.running = config;
    }
}

/// The sections whose change the running process does not apply (compared as printed: the
/// config types are plain data).
fn restart_only_changes(running: &Config, new: &Config) -> Vec<&'static str> {
    let sections: [(&str, String, String); 9] = [
        ("listen", format!("{:?}", running.listen), format!("{:?}", new.listen)),
        ("capability", format!("{:?}", running.capability), format!("{:?}", new.capability)),
        ("state", format!("{:?}", running.state), format!("{:?}", new.state)),
        ("watchers", format!("{:?}", running.watchers), format!("{:?}", new.watchers)),
        (
            "plugin_memory",
            format!("{:?}", running.plugin_memory),
            format!("{:?}", new.plugin_memory),
        ),
        (
            "login_throttle",
            format!("{:?}", running.login_throttle),
            format!("{:?}", new.login_throttle),
        ),
        ("connections", format!("{:?}", running.connections), format!("{:?}", new.connections)),
        ("log", format!("{:?}", running.log), format!("{:?}", new.log)),
        ("admin", format!("{:?}", running.admin), format!("{:?}", new.admin)),
    ];
    sections.into_iter().filter(|(_, old, new)| old != new).map(|(name, _, _)| name).collect()
}
