//! The filter's plugin configuration (`config.configuration` in Envoy's wasm filter), JSON:
//!
//! ```json
//! { "capability_cluster": "eas_edge_capability", "secret": "…",
//!   "call_timeout_ms": 60000,
//!   "default": { "heartbeat_max_seconds": 3540 },
//!   "domains": { "example.com": { "heartbeat_min_seconds": 120, "policy": [["MaxInactivityTimeDeviceLock", "900"]] } } }
//! ```
//!
//! One VM per worker serves every tenant: a login's mail domain picks its settings from
//! `domains`, else `default`; unset fields take the engine's defaults.

use eas_engine::settings::TenantSettings;
use serde::Deserialize;
use std::collections::HashMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterConfig {
    /// The Envoy cluster of the eas-edge host's capability endpoint.
    pub capability_cluster: String,
    /// `[capability] secret` of the host's config.
    pub secret: String,
    /// How long one capability call may take (a big SendMail or attachment fetch).
    #[serde(default = "default_call_timeout_ms")]
    pub call_timeout_ms: u64,
    #[serde(default)]
    pub default: DomainSettings,
    /// Settings by mail domain (lower case).
    #[serde(default)]
    pub domains: HashMap<String, DomainSettings>,
}

fn default_call_timeout_ms() -> u64 {
    60_000
}

/// The `config` import's settings for one domain; what is left out keeps the default.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainSettings {
    pub heartbeat_min_seconds: Option<u32>,
    pub heartbeat_max_seconds: Option<u32>,
    pub max_ping_folders: Option<u32>,
    /// EASProvisionDoc overrides, (element name, value).
    pub policy: Option<Vec<(String, String)>>,
}

impl FilterConfig {
    pub fn parse(json: &[u8]) -> Result<FilterConfig, String> {
        let config: FilterConfig = serde_json::from_slice(json).map_err(|e| e.to_string())?;
        if config.secret.is_empty() || config.capability_cluster.is_empty() {
            return Err("capability_cluster and secret must be set".to_owned());
        }
        Ok(config)
    }

    /// The settings for a login (`user@domain`); anonymous requests get the default's.
    pub fn settings_for(&self, login: Option<&str>) -> TenantSettings {
        let domain = login.and_then(|login| login.rsplit_once('@')).map(|(_, domain)| domain);
        let chosen = domain
            .and_then(|domain| {
                self.domains
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case(domain))
                    .map(|(_, settings)| settings)
            })
            .unwrap_or(&self.default);
        let base = TenantSettings::default();
        TenantSettings {
            heartbeat_min_seconds: chosen
                .heartbeat_min_seconds
                .unwrap_or(base.heartbeat_min_seconds),
            heartbeat_max_seconds: chosen
                .heartbeat_max_seconds
                .unwrap_or(base.heartbeat_max_seconds),
            max_ping_folders: chosen.max_ping_folders.unwrap_or(base.max_ping_folders),
            policy: chosen.policy.clone().unwrap_or(base.policy),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_domain_overrides_the_default_field_by_field() {
        let config = FilterConfig::parse(
            br#"{"capability_cluster":"c","secret":"s","default":{"heartbeat_max_seconds":900},
                 "domains":{"Example.com":{"heartbeat_min_seconds":120}}}"#,
        )
        .expect("valid config");
        let example = config.settings_for(Some("ann@example.COM"));
        assert_eq!((example.heartbeat_min_seconds, example.heartbeat_max_seconds), (120, 3540));
        let other = config.settings_for(Some("bob@other.test"));
        assert_eq!((other.heartbeat_min_seconds, other.heartbeat_max_seconds), (60, 900));
        assert_eq!(config.settings_for(None).heartbeat_max_seconds, 900);
    }

    #[test]
    fn unknown_keys_and_missing_secret_are_refused() {
        assert!(FilterConfig::parse(br#"{"capability_cluster":"c","secret":"s","x":1}"#).is_err());
        assert!(FilterConfig::parse(br#"{"capability_cluster":"c","secret":""}"#).is_err());
    }
}
