//! The `eas-edge` host, started for one test against a real mail stack.

use crate::artifacts;
use crate::mailstack::MailStack;
use crate::process::{ServerProcess, free_port};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;

/// The mail domain of the test tenant.
pub const TEST_DOMAIN: &str = "example.test";

/// `[capability] secret` of test gateways, shared with their Envoy.
pub const CAPABILITY_SECRET: &str = "test-capability-secret-0123456789";

pub struct Gateway {
    /// Where phones connect.
    pub address: SocketAddr,
    /// The capability endpoint (ext_authz, capabilities, watches) that Envoy uses.
    pub authz_address: SocketAddr,
    /// The tenant's heartbeat bounds (seconds), which an Envoy in front must be given too.
    pub heartbeat_seconds: (u32, u32),
    process: ServerProcess,
    config: PathBuf,
    dir: TempDir,
    log_level: Option<String>,
}

/// How to start a gateway; `Default` gives the normal plugin.
#[derive(Default)]
pub struct GatewayOptions {
    /// Plugin file instead of the normal build (e.g. the fault-injection build).
    pub plugin: Option<PathBuf>,
    /// No `plugin` in the config (and no `$EAS_EDGE_PLUGIN_DIR`): the binary's own serves.
    pub built_in_plugin: bool,
    /// Extra TOML appended to the tenant (e.g. a `[tenant.limits]` table).
    pub tenant_extra: String,
    /// Reach IMAP over implicit TLS (the stack's IMAPS port, its certificate pinned).
    pub imap_over_tls: bool,
    /// Plain IMAP address instead of the stack's (e.g. a proxy in front of it).
    pub imap_addr: Option<SocketAddr>,
    /// Submission server instead of the stack's (e.g. a closed port, to test SMTP down).
    pub smtp: Option<SocketAddr>,
    /// Extra TOML appended after the tenant: top-level tables (`[log]`), more `[[tenant]]`s.
    pub config_extra: String,
    /// `EAS_EDGE_LOG` for the gateway instead of `EAS_EDGE_TEST_LOG` (or info).
    pub log_level: Option<String>,
    /// Ping/Sync heartbeat bounds (min, max) instead of the defaults (60, 3540).
    pub heartbeat_seconds: Option<(u32, u32)>,
    /// The `[state]` section (with its sub-tables) instead of a private redb file, e.g. a
    /// PostgreSQL database that several gateways share (tests/tests/cluster.rs).
    pub state: Option<String>,
}

impl Gateway {
    pub fn start(stack: &MailStack) -> anyhow::Result<Gateway> {
        Gateway::start_with(stack, GatewayOptions::default())
    }

    pub fn start_with(stack: &MailStack, options: GatewayOptions) -> anyhow::Result<Gateway> {
        let dir = TempDir::new("gateway")?;
        let plugin_line = match (options.built_in_plugin, options.plugin) {
            (true, _) => String::new(),
            (false, Some(plugin)) => format!("plugin = \"{}\"\n", plugin.display()),
            (false, None) => format!("plugin = \"{}\"\n", artifacts::plugin()?.display()),
        };
        let address = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let authz_address = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let (imap, imap_tls) = if options.imap_over_tls {
            let cert = stack.tls_cert()?;
            (stack.imaps_addr()?, format!(", tls = \"implicit\", ca_file = \"{}\"", cert.display()))
        } else {
            (options.imap_addr.map_or_else(|| stack.imap_addr(), Ok)?, String::new())
        };
        let smtp = match options.smtp {
            Some(smtp) => smtp,
            None => stack.submission_addr()?,
        };
        let heartbeat_seconds = options.heartbeat_seconds.unwrap_or((60, 3540));
        let push = match options.heartbeat_seconds {
            Some((min, max)) => format!(
                "[tenant.push]\nheartbeat_min_seconds = {min}\nheartbeat_max_seconds = {max}\n"
            ),
            None => String::new(),
        };
        let config = dir.path.join("eas-edge.toml");
        std::fs::write(
            &config,
            format!(
                "[listen]\nhttp = \"{address}\"\n\n[capability]\nlisten = \"{authz_address}\"\n\
                 secret = \"{CAPABILITY_SECRET}\"\n\n\
                 {state}\n\n\
                 [[tenant]]\nname = \"test\"\ndomains = [\"{TEST_DOMAIN}\"]\n\
                 {plugin_line}\
                 imap = {{ host = \"{imap_host}\", port = {imap_port}{imap_tls} }}\n\
                 smtp = {{ host = \"{smtp_host}\", port = {smtp_port} }}\n{push}{extra}\n{config_extra}\n",
                imap_host = imap.ip(),
                imap_port = imap.port(),
                smtp_host = smtp.ip(),
                smtp_port = smtp.port(),
                extra = options.tenant_extra,
                config_extra = options.config_extra,
                state = options.state.as_deref().unwrap_or("[state]\npath = \"state.redb\""),
            ),
        )?;
        let log_level = options.log_level;
        let process =
            spawn(&config, &dir.path.join("eas-edge.log"), address, log_level.as_deref())?;
        Ok(Gateway { address, authz_address, heartbeat_seconds, process, config, dir, log_level })
    }

    /// The config file the gateway runs with (a test may rewrite it and [`reload`](Self::reload)).
    pub fn config_path(&self) -> &std::path::Path {
        &self.config
    }

    /// Sends SIGHUP: the gateway reloads its config file.
    pub fn reload(&self) -> anyhow::Result<()> {
        let status = Command::new("kill").arg("-HUP").arg(self.pid().to_string()).status()?;
        anyhow::ensure!(status.success(), "kill -HUP {}: {status}", self.pid());
        Ok(())
    }

    /// Waits until the log contains `needle` `count` times (e.g. a reload's outcome), at most two
    /// minutes; the log on failure.
    pub fn wait_for_log(&self, needle: &str, count: usize) -> anyhow::Result<String> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            let log = self.log();
            if log.matches(needle).count() >= count {
                return Ok(log);
            }
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "no {needle:?} (×{count}) in the gateway log within 120 s:\n{log}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Stops the gateway; its config and state file stay (tools may open them directly).
    pub fn stop(&mut self) {
        self.process.kill();
    }

    /// Kills the gateway and starts it again on the same config, ports and state file.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.process.kill();
        self.process = spawn(
            &self.config,
            &self.dir.path.join("eas-edge-restarted.log"),
            self.address,
            self.log_level.as_deref(),
        )?;
        Ok(())
    }

    /// The ActiveSync endpoint URL.
    pub fn url(&self) -> String {
        format!("http://{}/Microsoft-Server-ActiveSync", self.address)
    }

    /// The gateway's process id (benchmarks read its memory from `/proc`).
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    pub fn log(&self) -> String {
        self.process.log_text()
    }

    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }
}

fn spawn(
    config: &std::path::Path,
    log: &std::path::Path,
    address: SocketAddr,
    log_level: Option<&str>,
) -> anyhow::Result<ServerProcess> {
    let level = log_level.map(str::to_owned).unwrap_or_else(|| {
        std::env::var("EAS_EDGE_TEST_LOG").unwrap_or_else(|_| "info".to_owned())
    });
    ServerProcess::start(
        "eas-edge",
        Command::new(artifacts::host_binary()?)
            .arg("serve")
            .arg("--config")
            .arg(config)
            .env("EAS_EDGE_LOG", level)
            // the plugin is the config's (or the built-in one), never one found elsewhere
            .env_remove("EAS_EDGE_PLUGIN_DIR"),
        log,
        address,
    )
}

/// A temporary directory removed on drop.
pub(crate) struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new(prefix: &str) -> anyhow::Result<TempDir> {
        let unique = format!(
            "eas-edge-{prefix}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(unique);
        std::fs::create_dir_all(&path)?;
        Ok(TempDir { path })
    }
}

static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
