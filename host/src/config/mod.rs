//! The gateway's configuration file (TOML).
//!
//! Relative paths in the file are resolved against the file's own directory, so a config
//! works from wherever `eas-edge` is started.

mod check;
pub mod plugin_path;

pub use check::ConfigError;
use plugin_path::PluginSource;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub listen: Listen,
    /// Where the Envoy filter reaches the host: ext_authz and the capabilities (envoy/README.md).
    #[serde(default)]
    pub capability: Option<CapabilityListener>,
    #[serde(default)]
    pub state: StateConfig,
    /// `[login_throttle]`: how failed logins slow down further attempts.
    #[serde(default)]
    pub login_throttle: crate::auth::ThrottleSettings,
    /// `[connections]`: how many connections one client address may hold open.
    #[serde(default)]
    pub connections: crate::connection_cap::ConnectionSettings,
    /// `[watchers]`: how parked requests' folders are watched on IMAP.
    #[serde(default)]
    pub watchers: WatcherConfig,
    /// `[plugin_memory]`: what happens to a plugin instance's memory between calls.
    #[serde(default)]
    pub plugin_memory: PluginMemory,
    /// `[admin]`: the operator's listener (`/metrics`, device commands); none without it.
    #[serde(default)]
    pub admin: Option<AdminConfig>,
    /// `[log]`: line format and level (`EAS_EDGE_LOG` overrides the level).
    #[serde(default)]
    pub log: crate::logging::LogConfig,
    /// `[tenant_selection]`: whether the login's domain or the Host header picks the tenant.
    #[serde(default)]
    pub tenant_selection: TenantSelection,
    #[serde(rename = "tenant")]
    pub tenants: Vec<Tenant>,
}

/// `[tenant_selection]`: see [`crate::tenants::SelectBy`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TenantSelection {
    pub by: crate::tenants::SelectBy,
}

/// `[admin]`: Prometheus `/metrics` and the device API that `eas-edge devices` uses while the
/// server runs (see `crate::admin`). Loopback by default; any other address needs a token.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    #[serde(default = "default_admin_listen")]
    pub listen: SocketAddr,
    /// When set, every request must carry `Authorization: Bearer <token>`.
    #[serde(default)]
    pub token: Option<String>,
}

fn default_admin_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9180))
}

/// `[plugin_memory]`: plugin instances' memory between calls (the memory pool is shared by
/// every tenant and set up at start).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginMemory {
    /// Of each instance's memory slot, how many MiB stay mapped after a call (the pages it
    /// wrote are zeroed in place) so that the next call does not fault them in again; 0 gives
    /// all of it back to the kernel.
    pub kept_resident_mib: u32,
}

impl Default for PluginMemory {
    fn default() -> Self {
        // A text Sync page's instance writes under 4 MiB, an HTML one ~10 MiB
        // (docs/benchmarks.md, "Ninth pass").
        PluginMemory { kept_resident_mib: 8 }
    }
}

impl PluginMemory {
    pub fn kept_resident_bytes(&self) -> usize {
        usize::try_from(self.kept_resident_mib).unwrap_or(usize::MAX).saturating_mul(1 << 20)
    }
}

/// `[watchers]`: one IMAP watcher per account with parked requests (NOTIFY, else IDLE on up
/// to `max_idle_connections` folders and STATUS polling for the rest).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WatcherConfig {
    /// Use NOTIFY (RFC 5465) when the server offers it.
    pub use_notify: bool,
    /// IDLE connections per account when NOTIFY is not used.
    pub max_idle_connections: usize,
    /// STATUS polling interval for folders beyond the IDLE cap.
    pub poll_seconds: u64,
    /// IDLE is re-issued this often (RFC 2177 servers may end it after 30 minutes).
    pub idle_renewal_seconds: u64,
    /// A watcher stops this long after its account's last parked request ended.
    pub linger_seconds: u64,
    /// Reconnect backoff bounds after the IMAP server went away.
    pub reconnect_min_seconds: u64,
    pub reconnect_max_seconds: u64,
}

impl Default for WatcherConfig {
    fn default() -> Self {
        WatcherConfig {
            use_notify: true,
            max_idle_connections: 4,
            poll_seconds: 60,
            idle_renewal_seconds: 25 * 60,
            linger_seconds: 60,
            reconnect_min_seconds: 1,
            reconnect_max_seconds: 120,
        }
    }
}

impl WatcherConfig {
    pub fn push_settings(&self) -> crate::push::PushSettings {
        use std::time::Duration;
        crate::push::PushSettings {
            use_notify: self.use_notify,
            max_idle_connections: self.max_idle_connections,
            poll_interval: Duration::from_secs(self.poll_seconds),
            idle_renewal: Duration::from_secs(self.idle_renewal_seconds),
            linger: Duration::from_secs(self.linger_seconds),
            reconnect_min: Duration::from_secs(self.reconnect_min_seconds),
            reconnect_max: Duration::from_secs(self.reconnect_max_seconds),
        }
    }
}

/// Where devices' state lives: the embedded store file (the default), or a PostgreSQL database
/// that several gateway nodes share (docs/cluster.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// `"redb"` (one file, one node) or `"postgres"` (`[state.postgres]`, a cluster).
    #[serde(default)]
    pub backend: StateBackend,
    /// The store file of the redb backend; relative paths are relative to the config file.
    /// The send journal lives beside it (`<path>.sending`) with either backend.
    #[serde(default = "default_state_path")]
    pub path: PathBuf,
    /// `[state.redb]`: durability, cache and limits of the embedded store.
    #[serde(default)]
    pub redb: crate::state::RedbOptions,
    /// `[state.postgres]`: the shared database (`url`, `pool_size`, ...).
    #[serde(default)]
    pub postgres: Option<crate::state::PostgresOptions>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StateBackend {
    #[default]
    Redb,
    Postgres,
}

fn default_state_path() -> PathBuf {
    PathBuf::from("eas-edge-state.redb")
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            backend: StateBackend::Redb,
            path: default_state_path(),
            redb: crate::state::RedbOptions::default(),
            postgres: None,
        }
    }
}

impl StateConfig {
    /// The `[state.postgres]` settings when they are the backend in use.
    pub fn postgres(&self) -> Option<&crate::state::PostgresOptions> {
        self.postgres.as_ref().filter(|_| self.backend == StateBackend::Postgres)
    }

    /// Combinations the types allow but that cannot work (see `Config::problems`).
    fn problems(&self, problem: &mut impl FnMut(String, String)) {
        match (self.backend, &self.postgres) {
            (StateBackend::Postgres, None) => problem(
                "state.backend".into(),
                "is \"postgres\": add [state.postgres] with url = \"postgresql://USER@HOST/DATABASE\"".into(),
            ),
            (StateBackend::Redb, Some(_)) => problem(
                "state.postgres".into(),
                "is only used with backend = \"postgres\" in [state]: set it, or remove [state.postgres]".into(),
            ),
            _ => {}
        }
        if let Some(postgres) = &self.postgres {
            if postgres.url.trim().is_empty() {
                problem(
                    "state.postgres.url".into(),
                    "must not be empty, e.g. \"postgresql://eas@db.internal/eas_edge\"".into(),
                );
            } else if let Err(error) = postgres.connection_config() {
                problem("state.postgres.url".into(), format!("is not a PostgreSQL URL: {error}"));
            }
            if postgres.pool_size == 0 {
                problem("state.postgres.pool_size".into(), "must be at least 1".into());
            }
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    /// Plain HTTP listener for phones: behind a TLS proxy, or on loopback.
    #[serde(default)]
    pub http: Option<SocketAddr>,
    /// `[listen.https]`: the HTTPS listener phones reach directly.
    #[serde(default)]
    pub https: Option<HttpsListen>,
}

/// `[listen.https]`: address and PEM files; the files are read again when they change.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpsListen {
    pub address: SocketAddr,
    /// The certificate chain, leaf first (e.g. certbot's `fullchain.pem`).
    pub certificate: PathBuf,
    /// Its private key (PKCS#8, PKCS#1 or SEC1 PEM).
    pub private_key: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapabilityListener {
    pub listen: SocketAddr,
    /// Shared with the Envoy filter (its plugin configuration) and ext_authz: every call must
    /// carry it. At least 16 characters.
    pub secret: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tenant {
    /// Short name used in logs.
    pub name: String,
    /// Mail domains whose logins this tenant serves, e.g. `["example.com"]`.
    pub domains: Vec<String>,
    /// Host names phones reach this tenant by (e.g. `["mail.example.com"]`): they pick the
    /// tenant of anonymous requests, and of every request with `[tenant_selection] by = "host"`.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// The plugin component (`.wasm`); when left out, `eas_edge_plugin.wasm` is looked for
    /// where an install puts it (see [`plugin_path`]).
    #[serde(default)]
    pub plugin: PathBuf,
    /// The places searched for the plugin when `plugin` was left out and none was found (for
    /// check-config's message); empty otherwise.
    #[serde(skip)]
    pub plugin_searched: Vec<PathBuf>,
    /// `plugin` was left out and the plugin built into the binary serves this tenant.
    #[serde(skip)]
    pub plugin_built_in: bool,
    pub imap: Endpoint,
    /// The submission server the users' mail goes out through.
    pub smtp: crate::smtp::SmtpConfig,
    #[serde(default)]
    pub limits: Limits,
    /// `[tenant.imap_pool]`: pooled IMAP sessions and cached password checks per account.
    #[serde(default)]
    pub imap_pool: crate::accounts::PoolSettings,
    /// `[tenant.push]`: bounds of Ping and Sync heartbeats, folders per Ping.
    #[serde(default)]
    pub push: PushSettings,
    /// `[tenant.policy]`: EASProvisionDoc settings that replace the defaults, by element name
    /// (MS-ASPROV §2.2.2), e.g. `DevicePasswordEnabled = 1`. Strings, integers and booleans
    /// (sent as 1/0); an empty string sends the element empty.
    #[serde(default)]
    pub policy: BTreeMap<String, toml::Value>,
    /// `[tenant.sieve]`: the ManageSieve server (RFC 5804) for out-of-office replies; without
    /// it, out-of-office is not available.
    #[serde(default)]
    pub sieve: Option<Endpoint>,
}

/// `[tenant.push]`: what the plugin allows devices to ask for.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PushSettings {
    /// Shortest and longest Ping/Sync HeartbeatInterval accepted (MS-ASCMD §2.2.3.88); a
    /// device asking for more or less is told the bound.
    pub heartbeat_min_seconds: u32,
    pub heartbeat_max_seconds: u32,
    /// Most folders one Ping may watch.
    pub max_ping_folders: u32,
}

impl Default for PushSettings {
    fn default() -> Self {
        PushSettings {
            heartbeat_min_seconds: 60,
            heartbeat_max_seconds: 3540,
            max_ping_folders: 300,
        }
    }
}

/// The EASProvisionDoc elements (MS-ASPROV §2.2.2.2–§2.2.2.52) the plugin sends, as
/// `[tenant.policy]` may name them (case-insensitive).
const POLICY_ELEMENTS: &[&str] = &[
    "AllowBluetooth",
    "AllowBrowser",
    "AllowCamera",
    "AllowConsumerEmail",
    "AllowDesktopSync",
    "AllowHTMLEmail",
    "AllowInternetSharing",
    "AllowIrDA",
    "AllowPOPIMAPEmail",
    "AllowRemoteDesktop",
    "AllowSimpleDevicePassword",
    "AllowSMIMEEncryptionAlgorithmNegotiation",
    "AllowSMIMESoftCerts",
    "AllowStorageCard",
    "AllowTextMessaging",
    "AllowUnsignedApplications",
    "AllowUnsignedInstallationPackages",
    "AllowWiFi",
    "AlphanumericDevicePasswordRequired",
    "AttachmentsEnabled",
    "DevicePasswordEnabled",
    "DevicePasswordExpiration",
    "DevicePasswordHistory",
    "MaxAttachmentSize",
    "MaxCalendarAgeFilter",
    "MaxDevicePasswordFailedAttempts",
    "MaxEmailAgeFilter",
    "MaxEmailBodyTruncationSize",
    "MaxEmailHTMLBodyTruncationSize",
    "MaxInactivityTimeDeviceLock",
    "MinDevicePasswordComplexCharacters",
    "MinDevicePasswordLength",
    "PasswordRecoveryEnabled",
    "RequireDeviceEncryption",
    "RequireEncryptedSMIMEMessages",
    "RequireManualSyncWhenRoaming",
    "RequireSignedSMIMEMessages",
    "RequireStorageCardEncryption",
];

impl Tenant {
    /// This tenant's plugin, once the config is loaded (paths resolved).
    pub fn plugin_source(&self) -> PluginSource {
        match plugin_path::BUILT_IN.filter(|_| self.plugin_built_in) {
            Some(bytes) => PluginSource::BuiltIn(bytes),
            None => PluginSource::File(self.plugin.clone()),
        }
    }

    /// `[tenant.policy]` as (element name, value) pairs, values as the document carries them:
    /// integers in decimal, booleans as 1/0, strings as they are.
    pub fn policy_overrides(&self) -> Vec<(String, String)> {
        self.policy
            .iter()
            .filter_map(|(name, value)| Some((name.clone(), policy_value(value)?)))
            .collect()
    }
}

fn policy_value(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(text) => Some(text.clone()),
        toml::Value::Integer(number) => Some(number.to_string()),
        toml::Value::Boolean(flag) => Some(if *flag { "1" } else { "0" }.to_string()),
        _ => None,
    }
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
    /// Plugin calls of this tenant running at once; more wait (at most `cpu_ms`, then 503).
    /// Default: two per core (`runtime::default_concurrent_calls`).
    pub concurrent_calls: u32,
    /// Whether the next page of a Sync is rendered ahead (the plugin's `render-ahead`) in an
    /// instance of its own, when one of `concurrent_calls` is free, while the phone reads the
    /// current page. Off, every page is converted in its own request.
    pub render_ahead: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_mib: 64,
            cpu_ms: 10_000,
            request_mib: 64,
            concurrent_calls: crate::runtime::default_concurrent_calls(),
            render_ahead: true,
        }
    }
}

impl Config {
    /// Reads and checks a config file; the error names every mistake with its line and key.
    pub fn load(path: &Path) -> Result<Config, check::ConfigError> {
        check::read(path)
    }

    /// Makes relative paths relative to the config file's directory.
    fn resolve_paths(&mut self, base: &Path) {
        if self.state.path.is_relative() {
            self.state.path = base.join(&self.state.path);
        }
        if let Some(https) = &mut self.listen.https {
            for file in [&mut https.certificate, &mut https.private_key] {
                if file.is_relative() {
                    *file = base.join(&*file);
                }
            }
        }
        for tenant in &mut self.tenants {
            if tenant.plugin.as_os_str().is_empty() {
                match plugin_path::locate(plugin_path::BUILT_IN) {
                    Ok(PluginSource::File(file)) => tenant.plugin = file,
                    Ok(PluginSource::BuiltIn(_)) => tenant.plugin_built_in = true,
                    Err(searched) => tenant.plugin_searched = searched,
                }
            } else if tenant.plugin.is_relative() {
                tenant.plugin = base.join(&tenant.plugin);
            }
            for ca_file in tenant.ca_files_mut() {
                if ca_file.is_relative() {
                    *ca_file = base.join(&*ca_file);
                }
            }
        }
    }

    /// Mistakes that the types alone cannot rule out, as (key path, what is expected). Paths
    /// are dotted, array items by index (`tenant.0.push.heartbeat_min_seconds`).
    fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let mut problem = |path: String, message: String| problems.push((path, message));
        if self.listen.http.is_none() && self.listen.https.is_none() {
            problem(
                "listen".into(),
                "names no listener: set http = \"ADDRESS:PORT\", or [listen.https] with address, certificate and private_key".into(),
            );
        }
        if let Some(admin) = &self.admin {
            // the device API can wipe phones: never reachable from elsewhere without a token
            if !admin.listen.ip().is_loopback() && admin.token.as_deref().is_none_or(str::is_empty)
            {
                problem(
                    "admin.listen".into(),
                    format!(
                        "{} is not a loopback address: set `token` too (requests then need Authorization: Bearer TOKEN)",
                        admin.listen
                    ),
                );
            }
            if admin.token.as_deref().is_some_and(|token| token.trim().is_empty()) {
                problem("admin.token".into(), "must not be empty (or leave it out)".into());
            }
        }
        if let Some(capability) = &self.capability
            && capability.secret.chars().count() < 16
        {
            problem(
                "capability.secret".into(),
                "must be at least 16 characters: it is all that stands between the endpoint and every mailbox (e.g. the output of `openssl rand -hex 24`)".into(),
            );
        }
        if let Some(message) = crate::logging::level_problem(&self.log.level) {
            problem("log.level".into(), message);
        }
        self.host_problems(&mut problem);
        self.state.problems(&mut problem);
        let mut domains: BTreeMap<String, &str> = BTreeMap::new();
        let mut names: BTreeMap<&str, usize> = BTreeMap::new();
        for (index, tenant) in self.tenants.iter().enumerate() {
            let at = |key: &str| format!("tenant.{index}.{key}");
            if let Some(first) = names.insert(&tenant.name, index) {
                problem(
                    at("name"),
                    format!(
                        "tenant.{first} already has the name {:?}; names must be unique (they label logs and metrics)",
                        tenant.name
                    ),
                );
            }
            if tenant.domains.is_empty() {
                problem(
                    at("domains"),
                    "must name at least one mail domain, e.g. [\"example.com\"]".into(),
                );
            }
            for domain in &tenant.domains {
                let domain = domain.to_ascii_lowercase();
                if let Some(other) = domains.insert(domain.clone(), &tenant.name) {
                    problem(
                        at("domains"),
                        format!(
                            "{domain} is already served by tenant {other:?}; a domain belongs to one tenant"
                        ),
                    );
                }
            }
            let limits = &tenant.limits;
            for (key, value) in [
                ("memory_mib", u64::from(limits.memory_mib)),
                ("cpu_ms", limits.cpu_ms),
                ("request_mib", u64::from(limits.request_mib)),
                ("concurrent_calls", u64::from(limits.concurrent_calls)),
            ] {
                if value == 0 {
                    problem(at(&format!("limits.{key}")), "must be greater than zero".into());
                }
            }
            if tenant.imap_pool.max_sessions_per_account == 0 {
                problem(at("imap_pool.max_sessions_per_account"), "must be at least 1".into());
            }
            let push = &tenant.push;
            if push.heartbeat_min_seconds > push.heartbeat_max_seconds {
                problem(
                    at("push.heartbeat_min_seconds"),
                    format!(
                        "heartbeat_min_seconds ({}) must not exceed heartbeat_max_seconds ({})",
                        push.heartbeat_min_seconds, push.heartbeat_max_seconds
                    ),
                );
            }
            if push.max_ping_folders == 0 {
                problem(at("push.max_ping_folders"), "must be at least 1".into());
            }
            for (name, value) in &tenant.policy {
                if !POLICY_ELEMENTS.iter().any(|known| known.eq_ignore_ascii_case(name)) {
                    problem(
                        at(&format!("policy.{name}")),
                        format!(
                            "{name} is not an EASProvisionDoc setting (known: {})",
                            POLICY_ELEMENTS.join(", ")
                        ),
                    );
                } else if policy_value(value).is_none() {
                    problem(
                        at(&format!("policy.{name}")),
                        "must be a string, an integer or a boolean".into(),
                    );
                }
            }
        }
        let throttle = &self.login_throttle;
        if throttle.window_seconds == 0 {
            problem("login_throttle.window_seconds".into(), "must be greater than zero".into());
        }
        if throttle.block_after == 0 {
            problem("login_throttle.block_after".into(), "must be greater than zero".into());
        }
        problems
    }
}

impl Config {
    /// `hosts`: plain names, each served by one tenant; host selection needs some.
    fn host_problems(&self, problem: &mut impl FnMut(String, String)) {
        let mut hosts: BTreeMap<String, &str> = BTreeMap::new();
        for (index, tenant) in self.tenants.iter().enumerate() {
            for host in &tenant.hosts {
                let name = host.to_ascii_lowercase();
                let plain = !name.is_empty()
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
                if !plain {
                    problem(
                        format!("tenant.{index}.hosts"),
                        format!(
                            "{host:?} is not a host name: write it as phones send it in Host, without scheme, port or path (e.g. \"mail.example.com\")"
                        ),
                    );
                } else if let Some(other) = hosts.insert(name, &tenant.name) {
                    problem(
                        format!("tenant.{index}.hosts"),
                        format!(
                            "{host} is already a host of tenant {other:?}; a host name belongs to one tenant"
                        ),
                    );
                }
            }
        }
        if self.tenant_selection.by == crate::tenants::SelectBy::Host && hosts.is_empty() {
            problem(
                "tenant_selection.by".into(),
                "is \"host\" but no tenant lists `hosts`: add hosts = [\"mail.example.com\"] to the tenants, or select by \"login\"".into(),
            );
        }
    }
}

impl Tenant {
    /// The CA files this tenant names (IMAP, SMTP, ManageSieve).
    fn ca_files_mut(&mut self) -> impl Iterator<Item = &mut PathBuf> {
        [&mut self.imap.ca_file, &mut self.smtp.ca_file]
            .into_iter()
            .chain(self.sieve.as_mut().map(|sieve| &mut sieve.ca_file))
            .flatten()
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
    fn the_postgres_backend_is_chosen_in_state() {
        let text = "[state]\nbackend = \"postgres\"\n[state.postgres]\nurl = \"postgresql://eas@db/eas\"\npool_size = 4";
        let config = parse(text).expect("postgres backend");
        let postgres = config.state.postgres().expect("postgres options in use");
        assert_eq!((postgres.url.as_str(), postgres.pool_size), ("postgresql://eas@db/eas", 4));
        assert!(!format!("{config:?}").contains("eas@db"), "the URL may hold a password");
        assert!(parse("[state.postgres]\nurl = \"x\"").expect("parses").state.postgres().is_none());
        assert!(parse("[state]\nbackend = \"mysql\"").is_err());
        assert!(parse("[state.postgres]\nurl = \"x\"\npoolsize = 3").is_err());
    }

    #[test]
    fn state_backend_mistakes_are_named() {
        let named = |extra: &str| {
            let mut problems = Vec::new();
            parse(extra).expect("parses").state.problems(&mut |key, _| problems.push(key));
            problems
        };
        assert_eq!(named("[state]\nbackend = \"postgres\""), ["state.backend"]);
        assert_eq!(named("[state.postgres]\nurl = \"postgresql://db/eas\""), ["state.postgres"]);
        let bad = "[state]\nbackend = \"postgres\"\n[state.postgres]\nurl = \"\"\npool_size = 0";
        assert_eq!(named(bad), ["state.postgres.url", "state.postgres.pool_size"]);
        let good =
            "[state]\nbackend = \"postgres\"\n[state.postgres]\nurl = \"postgresql://db/eas\"";
        assert!(named(good).is_empty());
    }

    #[test]
    fn the_admin_listener_is_loopback_unless_a_token_guards_it() {
        let admin_problems = |extra: &str| {
            let config = parse(extra).expect("parses");
            let problems: Vec<String> = config
                .problems()
                .into_iter()
                .map(|(key, _)| key)
                .filter(|key| key.starts_with("admin"))
                .collect();
            (config, problems)
        };
        let (config, problems) = admin_problems("[admin]");
        assert_eq!(config.admin.expect("[admin]").listen, default_admin_listen());
        assert!(problems.is_empty());
        assert!(parse("").expect("parses").admin.is_none(), "no listener without [admin]");
        assert_eq!(admin_problems("[admin]\nlisten = \"0.0.0.0:9180\"").1, ["admin.listen"]);
        assert!(admin_problems("[admin]\nlisten = \"0.0.0.0:9180\"\ntoken = \"t\"").1.is_empty());
        assert_eq!(admin_problems("[admin]\ntoken = \" \"").1, ["admin.token"]);
        assert!(parse("[admin]\nport = 1").is_err());
    }

    #[test]
    fn plugin_memory_kept_resident_defaults_to_8_mib_and_may_be_turned_off() {
        let default = parse("").expect("no [plugin_memory]");
        assert_eq!(default.plugin_memory.kept_resident_bytes(), 8 << 20);
        let off = parse("[plugin_memory]\nkept_resident_mib = 0").expect("turned off");
        assert_eq!(off.plugin_memory.kept_resident_bytes(), 0);
        assert!(parse("[plugin_memory]\nkept_resident = 4").is_err());
    }

    #[test]
    fn unknown_keys_are_refused_everywhere() {
        assert!(parse("[state]\ndurability = \"eventual\"").is_err());
        assert!(parse("[state.redb]\ndurabilty = \"eventual\"").is_err());
        assert!(parse("[login_throttle]\nfree_failure = 3").is_err());
        assert!(
            toml::from_str::<Config>(&format!("{TENANT}[tenant.imap_pool]\nidle = 3\n")).is_err()
        );
    }

    #[test]
    fn the_example_config_is_valid() {
        let config = check::parse(include_str!("../../eas-edge.example.toml"))
            .expect("example config is valid");
        assert_eq!(config.tenants[0].imap_pool, crate::accounts::PoolSettings::default());
    }

    #[test]
    fn push_policy_sieve_and_smtp_auth_are_checked() {
        let with = |extra: &str| -> Result<Config, String> {
            check::parse(&format!("{TENANT}{extra}")).map_err(|problems| {
                problems.iter().map(|p| format!("{}: {}", p.key(), p.message())).collect()
            })
        };
        let config = with("").expect("defaults");
        let tenant = &config.tenants[0];
        assert_eq!(tenant.push, PushSettings::default());
        assert!(tenant.policy.is_empty() && tenant.sieve.is_none());
        assert_eq!(tenant.smtp.auth, crate::smtp::SmtpAuth::User);

        let error =
            with("[tenant.push]\nheartbeat_min_seconds = 600\nheartbeat_max_seconds = 300\n")
                .expect_err("min above max");
        assert!(error.contains("heartbeat_min_seconds (600) must not exceed"), "{error}");
        assert!(with("[tenant.push]\nheartbeat_seconds = 1\n").is_err());
        let error = with("[tenant.policy]\nDevicePassword = 1\n").expect_err("unknown element");
        assert!(error.contains("policy.DevicePassword: DevicePassword is not"), "{error}");
        let error = with("[tenant.policy]\nAllowCamera = [1]\n").expect_err("a list");
        assert!(error.contains("must be a string, an integer or a boolean"), "{error}");

        let config = with(
            "[tenant.policy]\ndevicepasswordenabled = true\nMaxAttachmentSize = \"\"\n\
             [tenant.sieve]\nhost = \"h\"\nport = 4190\ntls = \"starttls\"\n",
        )
        .expect("policy and sieve");
        let tenant = &config.tenants[0];
        assert_eq!(
            tenant.policy_overrides(),
            vec![
                ("MaxAttachmentSize".to_string(), String::new()),
                ("devicepasswordenabled".to_string(), "1".to_string()),
            ]
        );
        assert_eq!(tenant.sieve.as_ref().map(|s| s.port), Some(4190));
        let relay = TENANT.replace("port = 2 }", "port = 2, auth = \"none\" }");
        let config: Config = toml::from_str(&relay).expect("auth = none");
        assert_eq!(config.tenants[0].smtp.auth, crate::smtp::SmtpAuth::None);
        assert!(
            toml::from_str::<Config>(&TENANT.replace("port = 2 }", "port = 2, auth = \"x\" }"))
                .is_err()
        );
    }

    #[test]
    fn log_hosts_and_tenant_selection_are_checked() {
        let problems = |text: &str| -> String {
            check::parse(text).map_or_else(
                |found| found.iter().map(|p| format!("{}: {}\n", p.key(), p.message())).collect(),
                |_| String::new(),
            )
        };
        let config = check::parse(&format!(
            "[log]\nformat = \"logfmt\"\nlevel = \"info,eas_edge::push=debug\"\n{TENANT}hosts = [\"Mail.D.Test\"]\n"
        ))
        .expect("valid");
        assert_eq!(config.log.format, crate::logging::LogFormat::Logfmt);
        assert_eq!(config.tenants[0].hosts, ["Mail.D.Test"]);
        assert_eq!(config.tenant_selection.by, crate::tenants::SelectBy::Login);

        let found = problems(&format!(
            "[log]\nlevel = \"info=verbose\"\n[tenant_selection]\nby = \"host\"\n{TENANT}"
        ));
        assert!(found.contains("log.level: \"info=verbose\" is not a log level"), "{found}");
        assert!(found.contains("tenant_selection.by: is \"host\" but no tenant lists"), "{found}");

        let second = TENANT[TENANT.find("[[tenant]]").expect("test data")..]
            .replace("name = \"t\"", "name = \"u\"")
            .replace("d.test", "e.test");
        let found = problems(&format!(
            "{TENANT}hosts = [\"mail.d.test\", \"https://x\"]\n{second}hosts = [\"MAIL.D.TEST\"]\n"
        ));
        assert!(found.contains("tenant[0].hosts: \"https://x\" is not a host name"), "{found}");
        assert!(
            found.contains("tenant[1].hosts: MAIL.D.TEST is already a host of tenant \"t\""),
            "{found}"
        );
        assert!(problems("[log]\nformat = \"xml\"\n").contains("log.format"));
    }

    #[test]
    fn pool_and_throttle_have_defaults_and_take_settings() {
        let config = parse("").expect("defaults");
        assert_eq!(config.tenants[0].imap_pool, crate::accounts::PoolSettings::default());
        assert_eq!(config.tenants[0].imap_pool.max_sessions_per_account, 4);
        assert_eq!(config.login_throttle.block_after, 20);
        let config = toml::from_str::<Config>(&format!(
            "[login_throttle]\nfree_failures = 3\ntrust_forwarded_for = true\n{TENANT}\
             [tenant.imap_pool]\nidle_seconds = 10\nauth_cache_seconds = 0\n"
        ))
        .expect("settings");
        assert_eq!(config.login_throttle.free_failures, 3);
        assert!(config.login_throttle.trust_forwarded_for);
        assert_eq!(config.tenants[0].imap_pool.idle_seconds, 10);
        assert_eq!(config.tenants[0].imap_pool.auth_cache_seconds, 0);
        assert_eq!(config.tenants[0].imap_pool.max_sessions_per_account, 4);
    }

    #[test]
    fn rendering_ahead_is_on_unless_turned_off() {
        assert!(parse("").expect("defaults").tenants[0].limits.render_ahead);
        let off = toml::from_str::<Config>(&format!(
            "{TENANT}[tenant.limits]
render_ahead = false
"
        ))
        .expect("turned off");
        assert!(!off.tenants[0].limits.render_ahead);
    }
}
