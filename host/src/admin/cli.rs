//! `eas-edge devices …` and `eas-edge top`. The store's file is locked by a running server, so
//! the commands first try the server's admin listener (`[admin]` of the same config file) and
//! open the store themselves only when nothing listens there.

use super::api::{ApiError, TopView};
use super::devices::{self, Action, DeviceSummary};
use super::percent_encode;
use crate::config::{AdminConfig, Config};
use crate::state::{Namespace, StateStore};
use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct Common {
    /// The server's config file (TOML): its `[admin]` listener, else its state store.
    #[arg(long, short)]
    pub config: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct DeviceArgs {
    /// The user's login, as the phone sends it (e.g. jane@example.com).
    pub user: String,
    /// The DeviceId, as `devices list` shows it.
    pub device: String,
    /// The tenant; by default the one serving the login's domain.
    #[arg(long)]
    pub tenant: Option<String>,
}

#[derive(clap::Subcommand, Debug)]
pub enum DevicesCommand {
    /// Every device: user, id, type, model, last seen, policy, wipe and block state.
    List {
        #[command(flatten)]
        common: Common,
        /// Only this user's devices.
        #[arg(long)]
        user: Option<String>,
    },
    /// One device in detail, with the keys of its state.
    Show {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        device: DeviceArgs,
    },
    /// Wipe the whole device at its next Provision (it is refused everything else until then).
    Wipe {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        device: DeviceArgs,
    },
    /// Remove only this account from the device (EAS 16.1; older devices get a full wipe).
    AccountWipe {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        device: DeviceArgs,
    },
    /// Lift a pending wipe.
    CancelWipe {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        device: DeviceArgs,
    },
    /// Forget the device's sync state: it synchronises its folders and mail from scratch.
    Reset {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        device: DeviceArgs,
    },
    /// Refuse every command of the device (status 129, HTTP 403 for EAS 12.1).
    Block {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        device: DeviceArgs,
    },
    /// Lift a block.
    Allow {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        device: DeviceArgs,
    },
}

/// Runs a `devices` command.
pub fn devices(command: DevicesCommand) -> anyhow::Result<()> {
    let (common, target) = match command {
        DevicesCommand::List { common, user } => (common, Target::List { user }),
        DevicesCommand::Show { common, device } => (common, Target::Show(device)),
        DevicesCommand::Wipe { common, device } => (common, Target::Act(device, Action::Wipe)),
        DevicesCommand::AccountWipe { common, device } => {
            (common, Target::Act(device, Action::AccountWipe))
        }
        DevicesCommand::CancelWipe { common, device } => {
            (common, Target::Act(device, Action::CancelWipe))
        }
        DevicesCommand::Reset { common, device } => (common, Target::Act(device, Action::Reset)),
        DevicesCommand::Block { common, device } => (common, Target::Act(device, Action::Block)),
        DevicesCommand::Allow { common, device } => (common, Target::Act(device, Action::Allow)),
    };
    let config = load_config(&common.config)?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let backend = Backend::connect(&config).await?;
        match target {
            Target::List { user } => {
                let list = backend.list(&config, user.as_deref()).await?;
                if common.json {
                    println!("{}", serde_json::to_string_pretty(&list)?);
                } else {
                    print_table(&list);
                }
            }
            Target::Show(device) => {
                let ns = namespace(&config, device)?;
                print_device(&backend.show(&ns).await?, common.json)?;
            }
            Target::Act(device, action) => {
                let ns = namespace(&config, device)?;
                let summary = backend.apply(&ns, action).await?;
                if !common.json {
                    println!("{}: done", action.name());
                }
                print_device(&summary, common.json)?;
            }
        }
        Ok(())
    })
}

enum Target {
    List { user: Option<String> },
    Show(DeviceArgs),
    Act(DeviceArgs, Action),
}

fn load_config(path: &std::path::Path) -> anyhow::Result<Config> {
    Config::load(path).map_err(|report| anyhow::anyhow!("{report}"))
}

/// The device's namespace: the tenant named, or the one serving the login's domain.
fn namespace(config: &Config, device: DeviceArgs) -> anyhow::Result<Namespace> {
    let tenant = match device.tenant {
        Some(tenant) => {
            if !config.tenants.iter().any(|known| known.name == tenant) {
                bail!("the config has no tenant {tenant:?}");
            }
            tenant
        }
        None => {
            let domain = device.user.rsplit_once('@').map(|(_, domain)| domain);
            let serving = domain.and_then(|domain| {
                config.tenants.iter().find(|tenant| {
                    tenant.domains.iter().any(|known| known.eq_ignore_ascii_case(domain))
                })
            });
            match (serving, config.tenants.as_slice()) {
                (Some(tenant), _) => tenant.name.clone(),
                (None, [only]) => only.name.clone(),
                (None, _) => bail!("no tenant serves {:?}: name one with --tenant", device.user),
            }
        }
    };
    Ok(Namespace::device(tenant, device.user, device.device))
}

/// Where the device records are: the running server's admin API, or the store itself.
enum Backend {
    Api { address: SocketAddr, token: Option<String> },
    Store(Arc<dyn StateStore>),
}

impl Backend {
    async fn connect(config: &Config) -> anyhow::Result<Backend> {
        if let Some(admin) = &config.admin {
            let address = client_address(admin);
            match tokio::time::timeout(
                Duration::from_secs(5),
                tokio::net::TcpStream::connect(address),
            )
            .await
            {
                Ok(Ok(_)) => return Ok(Backend::Api { address, token: admin.token.clone() }),
                Ok(Err(error)) if error.kind() == std::io::ErrorKind::ConnectionRefused => {}
                Ok(Err(error)) => bail!("reaching the admin listener on {address}: {error}"),
                Err(_) => bail!("the admin listener on {address} does not answer"),
            }
        }
        let store = open_store(config).await.with_context(|| {
            let hint = if config.admin.is_some() {
                "is another process using it?"
            } else {
                "if the server is running, it holds the store: add [admin] to the config so that these commands reach it"
            };
            format!("opening the state store {} ({hint})", config.state.path.display())
        })?;
        Ok(Backend::Store(store))
    }

    async fn list(
        &self,
        config: &Config,
        user: Option<&str>,
    ) -> anyhow::Result<Vec<DeviceSummary>> {
        match self {
            Backend::Api { .. } => {
                let query = user.map(|user| format!("?user={}", percent_encode(user)));
                self.call("GET", &format!("/api/devices{}", query.unwrap_or_default())).await
            }
            Backend::Store(store) => {
                let tenants: Vec<String> = config.tenants.iter().map(|t| t.name.clone()).collect();
                Ok(devices::list(&**store, &tenants, user).await?)
            }
        }
    }

    async fn show(&self, ns: &Namespace) -> anyhow::Result<DeviceSummary> {
        match self {
            Backend::Api { .. } => self.call("GET", &format!("/api/device?{}", query(ns))).await,
            Backend::Store(store) => Ok(devices::show(&**store, ns).await?),
        }
    }

    async fn apply(&self, ns: &Namespace, action: Action) -> anyhow::Result<DeviceSummary> {
        match self {
            Backend::Api { .. } => {
                self.call("POST", &format!("/api/device/{}?{}", action.name(), query(ns))).await
            }
            Backend::Store(store) => Ok(devices::apply(&**store, ns, action).await?),
        }
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
    ) -> anyhow::Result<T> {
        let Backend::Api { address, token } = self else {
            bail!("not connected to a server");
        };
        let (status, body) = request(*address, token.as_deref(), method, path).await?;
        if status.is_success() {
            return serde_json::from_slice(&body)
                .with_context(|| format!("the server's answer to {path}"));
        }
        match serde_json::from_slice::<ApiError>(&body) {
            Ok(error) => bail!("{}", error.error),
            Err(_) => bail!("the admin listener answered {status}"),
        }
    }
}

fn query(ns: &Namespace) -> String {
    format!(
        "tenant={}&user={}&device={}",
        percent_encode(&ns.tenant),
        percent_encode(&ns.user),
        percent_encode(ns.device.as_deref().unwrap_or_default())
    )
}

/// Where a client reaches the listener: a wildcard address means this host's loopback.
fn client_address(admin: &AdminConfig) -> SocketAddr {
    let mut address = admin.listen;
    if address.ip().is_unspecified() {
        address.set_ip(match address {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    address
}

/// Opens the store the way `serve` does.
async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn StateStore>> {
    let store =
        crate::state::RedbStore::open(&config.state.path, config.state.redb.clone()).await?;
    Ok(Arc::new(store))
}

/// One HTTP/1.1 request to the admin listener.
async fn request(
    address: SocketAddr,
    token: Option<&str>,
    method: &str,
    path: &str,
) -> anyhow::Result<(http::StatusCode, Bytes)> {
    let stream = tokio::net::TcpStream::connect(address)
        .await
        .with_context(|| format!("connecting to the admin listener {address}"))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let mut builder = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, address.to_string());
    if let Some(token) = token {
        builder = builder.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let response = sender.send_request(builder.body(Full::new(Bytes::new()))?).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

fn print_device(device: &DeviceSummary, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(device)?);
        return Ok(());
    }
    let or_dash = |value: &Option<String>| value.clone().unwrap_or_else(|| "-".to_owned());
    let rows = [
        ("tenant", device.tenant.clone()),
        ("user", device.user.clone()),
        ("device", device.device.clone()),
        ("type", or_dash(&device.device_type)),
        ("model", or_dash(&device.model)),
        ("name", or_dash(&device.friendly_name)),
        ("os", or_dash(&device.os)),
        ("user agent", or_dash(&device.user_agent)),
        ("last seen", last_seen(device)),
        ("policy", device.policy.clone()),
        ("wipe", device.wipe.clone()),
        ("access", access(device).to_owned()),
        ("state keys", device.keys.join(" ")),
    ];
    for (name, value) in rows {
        println!("{name:>11}: {value}");
    }
    Ok(())
}

fn access(device: &DeviceSummary) -> &'static str {
    if device.blocked { "blocked" } else { "allowed" }
}

fn last_seen(device: &DeviceSummary) -> String {
    match (device.last_seen, &device.last_command) {
        (Some(at), Some(command)) => format!("{} ({command})", utc(at)),
        (Some(at), None) => utc(at),
        _ => "-".to_owned(),
    }
}

fn print_table(devices: &[DeviceSummary]) {
    let header =
        ["TENANT", "USER", "DEVICE", "TYPE", "MODEL", "LAST SEEN", "POLICY", "WIPE", "ACCESS"]
            .map(str::to_owned);
    let rows: Vec<[String; 9]> = devices
        .iter()
        .map(|d| {
            [
                d.tenant.clone(),
                d.user.clone(),
                d.device.clone(),
                d.device_type.clone().unwrap_or_else(|| "-".into()),
                d.model.clone().unwrap_or_else(|| "-".into()),
                last_seen(d),
                d.policy.clone(),
                d.wipe.clone(),
                access(d).to_owned(),
            ]
        })
        .collect();
    print_rows(&header, &rows);
    if devices.is_empty() {
        println!("(no devices)");
    }
}

/// Left-aligned columns as wide as their widest cell.
fn print_rows<const N: usize>(header: &[String; N], rows: &[[String; N]]) {
    let mut widths = header.clone().map(|cell| cell.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in std::iter::once(header).chain(rows) {
        let line: Vec<String> =
            row.iter().zip(widths).map(|(cell, width)| format!("{cell:width$}")).collect();
        println!("{}", line.join("  ").trim_end());
    }
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) of Unix seconds (the civil-from-days algorithm of H. Hinnant).
pub fn utc(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let seconds = unix % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

#[derive(clap::Args, Debug)]
pub struct TopArgs {
    /// The server's config file: `top` reads its `[admin]` listener.
    #[arg(long, short)]
    pub config: PathBuf,
    /// Seconds between refreshes.
    #[arg(long, default_value_t = 2)]
    pub interval: u64,
    /// Print one view and exit (no screen clearing).
    #[arg(long)]
    pub once: bool,
}

/// `eas-edge top`: a refreshing view of parked requests, watchers, pools and active devices.
pub fn top(args: TopArgs) -> anyhow::Result<()> {
    let config = load_config(&args.config)?;
    let Some(admin) = &config.admin else {
        bail!("`top` needs the server's admin listener: add [admin] to {}", args.config.display());
    };
    let backend = Backend::Api { address: client_address(admin), token: admin.token.clone() };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        loop {
            let view: TopView = backend.call("GET", "/api/top").await?;
            if !args.once {
                // clear the screen, cursor home
                print!("\x1b[2J\x1b[H");
            }
            print_top(&view, super::activity::now_unix());
            if args.once {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_secs(args.interval.max(1))).await;
        }
    })
}

fn print_top(view: &TopView, now: u64) {
    println!(
        "eas-edge  {} UTC  parked: {}  watchers: {} ({} IMAP connections)",
        utc(now),
        view.parked,
        view.watchers,
        view.watcher_imap_connections
    );
    for pool in &view.pools {
        println!(
            "tenant {}: {} accounts, IMAP sessions {} busy / {} idle",
            pool.tenant, pool.accounts, pool.busy_sessions, pool.idle_sessions
        );
    }
    println!();
    let header = ["TENANT", "USER", "DEVICE", "TYPE", "LAST", "STATUS", "AGO"].map(str::to_owned);
    let rows: Vec<[String; 7]> = view
        .devices
        .iter()
        .map(|d| {
            [
                d.tenant.clone(),
                d.user.clone(),
                d.device.clone(),
                d.device_type.clone(),
                d.command.clone(),
                d.status.to_string(),
                format!("{}s", now.saturating_sub(d.last_seen)),
            ]
        })
        .collect();
    print_rows(&header, &rows);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(utc(1_798_761_599), "2026-12-31 23:59:59");
    }
}
