//! The `config` import, and what every request of a tenant shares: the settings from the
//! configuration file, the submission server and the ManageSieve server, built once when the
//! tenant is loaded (TLS roots included, so that a bad CA file shows at start).

use super::RequestState;
use super::eas_edge::gateway::config;
use crate::config::Tenant;
use crate::sieve::SieveEndpoint;
use crate::smtp::Submitter;
use anyhow::Context;
use std::sync::Arc;

pub struct TenantServices {
    /// What `config.current` answers.
    settings: config::Settings,
    pub submitter: Arc<Submitter>,
    /// `None`: the tenant has no ManageSieve server, out-of-office is not available.
    pub sieve: Option<Arc<SieveEndpoint>>,
    /// How long one plugin call may take (`limits.cpu_ms`, wall time): the host's own work for
    /// a call ends before it, so the plugin can still answer with an EAS status.
    pub call_budget: std::time::Duration,
}

impl TenantServices {
    pub fn new(tenant: &Tenant) -> anyhow::Result<Self> {
        let call_budget = std::time::Duration::from_millis(tenant.limits.cpu_ms);
        let submitter = Submitter::new(&tenant.smtp)
            .with_context(|| format!("tenant {:?}: SMTP settings", tenant.name))?;
        let sieve = match &tenant.sieve {
            Some(endpoint) => Some(Arc::new(
                SieveEndpoint::new(endpoint)
                    .with_context(|| format!("tenant {:?}: ManageSieve settings", tenant.name))?,
            )),
            None => None,
        };
        Ok(TenantServices {
            settings: settings(tenant),
            submitter: Arc::new(submitter),
            sieve,
            call_budget,
        })
    }

    /// The settings the plugin sees.
    pub fn settings(&self) -> &config::Settings {
        &self.settings
    }
}

fn settings(tenant: &Tenant) -> config::Settings {
    config::Settings {
        heartbeat_min_seconds: tenant.push.heartbeat_min_seconds,
        heartbeat_max_seconds: tenant.push.heartbeat_max_seconds,
        max_ping_folders: tenant.push.max_ping_folders,
        policy: tenant.policy_overrides(),
    }
}

impl config::Host for RequestState {
    fn current(&mut self) -> config::Settings {
        self.services.settings.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TENANT: &str = "[listen]\nhttp = \"127.0.0.1:1\"\n[[tenant]]\nname = \"t\"\n\
        domains = [\"d.test\"]\nplugin = \"p.wasm\"\nimap = { host = \"h\", port = 1 }\n\
        smtp = { host = \"h\", port = 2 }\n";

    fn tenant(extra: &str) -> Tenant {
        let config: crate::config::Config =
            toml::from_str(&format!("{TENANT}{extra}")).expect("config");
        config.tenants.into_iter().next().expect("tenant")
    }

    #[test]
    fn defaults_and_configured_values_reach_the_plugin() {
        let services = TenantServices::new(&tenant("")).expect("services");
        let settings = services.settings();
        assert_eq!((settings.heartbeat_min_seconds, settings.heartbeat_max_seconds), (60, 3540));
        assert_eq!(settings.max_ping_folders, 300);
        assert!(settings.policy.is_empty() && services.sieve.is_none());

        let services = TenantServices::new(&tenant(
            "[tenant.push]\nheartbeat_min_seconds = 120\nmax_ping_folders = 50\n\
             [tenant.policy]\nDevicePasswordEnabled = true\nMinDevicePasswordLength = 6\n\
             AllowCamera = false\nMaxAttachmentSize = \"\"\n\
             [tenant.sieve]\nhost = \"h\"\nport = 4190\n",
        ))
        .expect("services");
        let settings = services.settings();
        assert_eq!((settings.heartbeat_min_seconds, settings.heartbeat_max_seconds), (120, 3540));
        assert_eq!(settings.max_ping_folders, 50);
        let policy: Vec<(&str, &str)> =
            settings.policy.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            policy,
            vec![
                ("AllowCamera", "0"),
                ("DevicePasswordEnabled", "1"),
                ("MaxAttachmentSize", ""),
                ("MinDevicePasswordLength", "6"),
            ]
        );
        assert!(services.sieve.is_some());
    }
}
