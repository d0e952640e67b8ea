//! The gateway's configuration file (TOML).
//!
//! Relative paths in the file are resolved against the file's own directory, so a config
//! works from wherever `eas-edge` is started.

use anyhow::{Context, bail};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub listen: Listen,
    /// Where the Envoy filter reaches the host (ext_authz and, later, the capabilities).
    #[serde(default)]
    pub capability: Option<CapabilityListener>,
    #[serde(rename = "tenant")]
    pub tenants: Vec<Tenant>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    /// Plain HTTP listener for phones (put TLS in front, or use the HTTPS listener).
    pub http: SocketAddr,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapabilityListener {
    pub listen: SocketAddr,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tenant {
    /// Short name used in logs.
    pub name: String,
    /// Mail domains whose logins this tenant serves, e.g. `["example.com"]`.
    pub domains: Vec<String>,
    /// The plugin component (`.wasm`).
    pub plugin: PathBuf,
    pub imap: Endpoint,
    pub smtp: Endpoint,
    #[serde(default)]
    pub limits: Limits,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

/// Per-tenant guest limits: one runaway request must not hurt the others.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Linear memory one plugin instance may grow to.
    pub memory_mib: u32,
    /// Wall-clock CPU budget of one plugin call, enforced with epochs.
    pub cpu_ms: u64,
    /// Largest request body accepted from a client.
    pub request_mib: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { memory_mib: 64, cpu_ms: 10_000, request_mib: 64 }
    }
}

impl Config {
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config {}", path.display()))?;
        let mut config: Config =
            toml::from_str(&text).with_context(|| format!("in config {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for tenant in &mut config.tenants {
            if tenant.plugin.is_relative() {
                tenant.plugin = base.join(&tenant.plugin);
            }
        }
        config.validate().with_context(|| format!("in config {}", path.display()))?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.tenants.is_empty() {
            bail!("at least one [[tenant]] is required");
        }
        for tenant in &self.tenants {
            if tenant.domains.is_empty() {
                bail!("tenant {:?}: `domains` must name at least one mail domain", tenant.name);
            }
            if tenant.limits.memory_mib == 0 || tenant.limits.cpu_ms == 0 {
                bail!("tenant {:?}: limits must be greater than zero", tenant.name);
            }
        }
        Ok(())
    }
}
