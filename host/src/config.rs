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
    #[serde(default)]
    pub state: StateConfig,
    #[serde(rename = "tenant")]
    pub tenants: Vec<Tenant>,
}

/// Where devices' state lives: the embedded store file and its options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// The store file; relative paths are relative to the config file.
    #[serde(default = "default_state_path")]
    pub path: PathBuf,
    /// `[state.redb]`: durability, cache and limits of the embedded store.
    #[serde(default)]
    pub redb: crate::state::RedbOptions,
}

fn default_state_path() -> PathBuf {
    PathBuf::from("eas-edge-state.redb")
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig { path: default_state_path(), redb: crate::state::RedbOptions::default() }
    }
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
    /// `none` (the default: loopback or a trusted network only), `starttls` or `implicit`.
    #[serde(default)]
    pub tls: TlsMode,
    /// PEM file of a private CA, or of the server's own self-signed certificate (pinned);
    /// without it the public web roots are trusted.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    #[default]
    None,
    Starttls,
    Implicit,
}

impl Endpoint {
    /// How the IMAP client reaches this endpoint (TLS roots loaded once, here).
    pub fn imap_endpoint(&self) -> Result<crate::imap::Endpoint, crate::imap::ImapError> {
        let mode = match self.tls {
            TlsMode::None => crate::imap::TlsMode::None,
            TlsMode::Starttls => crate::imap::TlsMode::StartTls,
            TlsMode::Implicit => crate::imap::TlsMode::Implicit,
        };
        let settings =
            crate::imap::TlsSettings { mode, ca_file: self.ca_file.clone(), server_name: None };
        crate::imap::Endpoint::new(&self.host, self.port, &settings)
    }
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
        if config.state.path.is_relative() {
            config.state.path = base.join(&config.state.path);
        }
        for tenant in &mut config.tenants {
            if tenant.plugin.is_relative() {
                tenant.plugin = base.join(&tenant.plugin);
            }
            for endpoint in [&mut tenant.imap, &mut tenant.smtp] {
                if let Some(ca_file) = endpoint.ca_file.as_mut().filter(|f| f.is_relative()) {
                    *ca_file = base.join(&*ca_file);
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    const TENANT: &str = "[listen]\nhttp = \"127.0.0.1:1\"\n[[tenant]]\nname = \"t\"\n\
        domains = [\"d.test\"]\nplugin = \"p.wasm\"\nimap = { host = \"h\", port = 1 }\n\
        smtp = { host = \"h\", port = 2 }\n";

    fn parse(extra: &str) -> Result<Config, toml::de::Error> {
        toml::from_str(&format!("{extra}\n{TENANT}"))
    }

    #[test]
    fn state_section_is_optional_and_takes_store_options() {
        let config = parse("").expect("no [state]");
        assert_eq!(config.state.path, PathBuf::from("eas-edge-state.redb"));
        let config = parse("[state]\npath = \"/var/lib/eas-edge/state.redb\"\n[state.redb]\ndurability = \"eventual\"")
            .expect("[state] with options");
        assert_eq!(config.state.path, PathBuf::from("/var/lib/eas-edge/state.redb"));
        assert_eq!(config.state.redb.durability, crate::state::Durability::Eventual);
    }

    #[test]
    fn unknown_keys_are_refused_everywhere() {
        assert!(parse("[state]\ndurability = \"eventual\"").is_err());
        assert!(parse("[state.redb]\ndurabilty = \"eventual\"").is_err());
    }
}
