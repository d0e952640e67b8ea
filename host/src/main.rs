//! `eas-edge`: the Exchange ActiveSync gateway host.

use anyhow::Context;
use clap::{Parser, Subcommand};
use eas_edge::wbxml_tool::{self, ByteFormat};
use eas_edge::{config, runtime, server, tenants};
use std::path::PathBuf;
use std::sync::Arc;

/// jemalloc rather than glibc's malloc. Thousands of parked Pings are thousands of long-lived
/// connections whose buffers are mostly capacity never written; glibc (an arena per thread,
/// freed chunks reused and so already resident) made much more of that resident than jemalloc
/// does, same binary (docs/benchmarks.md, "Push", memory).
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "eas-edge",
    version,
    about = "Exchange ActiveSync gateway for IMAP + SMTP servers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve phones (and Envoy's ext_authz) as the config file says.
    Serve {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Check a config file: every mistake with its line, key and what is expected; exit
    /// status 1 if there is any. `serve` refuses a config with the same report.
    CheckConfig {
        /// The config file (TOML).
        config: PathBuf,
    },
    /// List devices, show one, wipe, block, allow or reset them (through the running server's
    /// `[admin]` listener, or on the state store when the server is stopped).
    Devices {
        #[command(subcommand)]
        action: eas_edge::admin::cli::DevicesCommand,
    },
    /// A live view of parked Pings, watchers, IMAP pools and active devices (needs `[admin]`).
    Top(eas_edge::admin::cli::TopArgs),
    /// Read and write EAS WBXML bodies, e.g. a request captured from a phone.
    Wbxml {
        #[command(subcommand)]
        action: WbxmlAction,
    },
}

#[derive(Subcommand)]
enum WbxmlAction {
    /// WBXML (hex, base64 or raw bytes) to XML.
    Decode {
        /// A file, or `-` for stdin.
        input: PathBuf,
        #[arg(long, value_enum, default_value_t = ByteFormat::Auto)]
        format: ByteFormat,
    },
    /// XML to WBXML (hex unless --format says otherwise).
    Encode {
        /// A file, or `-` for stdin.
        input: PathBuf,
        #[arg(long, value_enum, default_value_t = ByteFormat::Hex)]
        format: ByteFormat,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // `serve` logs as its config's [log] says, once the config is read; the rest as by default
    if !matches!(cli.command, Command::Serve { .. }) {
        eas_edge::logging::init(&Default::default())?;
    }
    match cli.command {
        Command::Serve { config } => serve(config),
        Command::CheckConfig { config } => check_config(&config),
        Command::Devices { action } => eas_edge::admin::cli::devices(action),
        Command::Top(args) => eas_edge::admin::cli::top(args),
        Command::Wbxml { action: WbxmlAction::Decode { input, format } } => {
            let xml = wbxml_tool::decode(&input, format)?;
            wbxml_tool::write_stdout(xml.as_bytes())
        }
        Command::Wbxml { action: WbxmlAction::Encode { input, format } } => {
            wbxml_tool::write_stdout(&wbxml_tool::encode(&input, format)?)
        }
    }
}

/// Prints what `check-config` found; a bad config is exit status 1 with the report on stderr.
fn check_config(path: &std::path::Path) -> anyhow::Result<()> {
    match config::Config::load(path) {
        Ok(config) => {
            let names: Vec<&str> = config.tenants.iter().map(|t| t.name.as_str()).collect();
            let listeners: Vec<String> = config
                .listen
                .http
                .iter()
                .map(|address| format!("http://{address}"))
                .chain(config.listen.https.iter().map(|https| format!("https://{}", https.address)))
                .collect();
            println!(
                "config {}: ok ({} tenant{}: {}; phones on {})",
                path.display(),
                names.len(),
                if names.len() == 1 { "" } else { "s" },
                names.join(", "),
                listeners.join(" and ")
            );
            for tenant in &config.tenants {
                println!("tenant {}: plugin {}", tenant.name, tenant.plugin_source());
            }
            Ok(())
        }
        Err(report) => {
            eprint!("{report}");
            std::process::exit(1);
        }
    }
}

fn serve(config_path: PathBuf) -> anyhow::Result<()> {
    let config = match config::Config::load(&config_path) {
        Ok(config) => config,
        Err(report) => {
            eprint!("{report}");
            eprintln!("eas-edge: not starting until the config is fixed");
            std::process::exit(1);
        }
    };
    eas_edge::logging::init(&config.log)?;
    let runtime = Arc::new(runtime::PluginRuntime::new(
        tenants::Tenants::max_memory_bytes(&config),
        config.plugin_memory.kept_resident_bytes(),
    )?);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let store = rt.block_on(open_state_store(&config.state))?;
    let tenants = tenants::Tenants::load(&config, &runtime, &store)?;
    for tenant in &config.tenants {
        tracing::info!(
            tenant = %tenant.name,
            domains = %tenant.domains.join(","),
            imap = %format!("{}:{}", tenant.imap.host, tenant.imap.port),
            smtp = %format!("{}:{}", tenant.smtp.host, tenant.smtp.port),
            plugin = %tenant.plugin_source(),
            "tenant loaded"
        );
    }
    let throttle = eas_edge::auth::LoginThrottle::new(config.login_throttle.clone());
    let push = eas_edge::push::PushHub::new(config.watchers.push_settings());
    if let Some(postgres) = config.state.postgres() {
        // nodes sharing the database share push: one watcher per account, wake-ups everywhere
        rt.block_on(eas_edge::cluster::join(postgres, &push))
            .context("joining the cluster ([state.postgres] url)")?;
    }
    // behind a trusted proxy every connection comes from the proxy: the cap is the proxy's job
    let per_address = if config.login_throttle.trust_forwarded_for {
        0
    } else {
        config.connections.max_per_address
    };
    let connections = eas_edge::connection_cap::ConnectionCap::new(per_address);
    let gateway = Arc::new(server::Gateway { tenants, throttle, push, connections });
    let reloader = eas_edge::reload::Reloader {
        path: config_path.clone(),
        running: config.clone(),
        runtime: runtime.clone(),
        store: store.clone(),
        gateway: gateway.clone(),
    };
    rt.block_on(async move {
        gateway.tenants.spawn_pool_reapers();
        reloader.start()?;
        if let Some(capability) = &config.capability {
            let listener = tokio::net::TcpListener::bind(capability.listen)
                .await
                .with_context(|| format!("listening on {}", capability.listen))?;
            tracing::info!(
                "serving ext_authz and capabilities for Envoy on http://{}",
                listener.local_addr()?
            );
            tokio::spawn(eas_edge::capability::serve(
                listener,
                gateway.clone(),
                capability.secret.clone(),
            ));
        }
        if let Some(admin) = config.admin.clone() {
            let listener = tokio::net::TcpListener::bind(admin.listen)
                .await
                .with_context(|| format!("listening on {}", admin.listen))?;
            tracing::info!(
                "serving metrics and the admin API on http://{}",
                listener.local_addr()?
            );
            tokio::spawn(eas_edge::admin::api::serve(
                listener,
                gateway.clone(),
                store.clone(),
                admin,
            ));
        }
        let mut listeners = tokio::task::JoinSet::new();
        if let Some(address) = config.listen.http {
            let listener = tokio::net::TcpListener::bind(address)
                .await
                .with_context(|| format!("listening on {address}"))?;
            tracing::info!("serving ActiveSync on http://{}", listener.local_addr()?);
            listeners.spawn(server::serve(listener, gateway.clone()));
        }
        if let Some(https) = &config.listen.https {
            let certificates = Arc::new(eas_edge::tls_listener::CertificateFiles::load(
                &https.certificate,
                &https.private_key,
            )?);
            let listener = tokio::net::TcpListener::bind(https.address)
                .await
                .with_context(|| format!("listening on {}", https.address))?;
            tracing::info!("serving ActiveSync on https://{}", listener.local_addr()?);
            listeners.spawn(server::serve_tls(listener, gateway.clone(), certificates));
        }
        // the listeners serve for ever; the first to end (with an error) ends the server
        match listeners.join_next().await {
            Some(result) => result?,
            None => anyhow::bail!("no listener configured"),
        }
    })
}

/// The `[state]` backend: the embedded redb file, or the database a cluster shares.
async fn open_state_store(
    state: &config::StateConfig,
) -> anyhow::Result<Arc<dyn eas_edge::state::StateStore>> {
    let store: Arc<dyn eas_edge::state::StateStore> = match state.postgres() {
        Some(postgres) => {
            let store = eas_edge::state::PostgresStore::open(postgres.clone())
                .await
                .context("opening the PostgreSQL state store ([state.postgres] url)")?;
            tracing::info!(
                schema = eas_edge::state::POSTGRES_SCHEMA_VERSION,
                "state store open on PostgreSQL"
            );
            Arc::new(store)
        }
        None => {
            // a damaged file is moved aside (or refused) as `[state.redb] on_corruption` says
            let (store, _moved_aside) =
                eas_edge::state::RedbStore::open_or_recover(&state.path, state.redb.clone())
                    .await
                    .with_context(|| format!("opening the state store {}", state.path.display()))?;
            tracing::info!(path = %state.path.display(), "state store open");
            Arc::new(store)
        }
    };
    // submissions that were under way when the process stopped (with PostgreSQL, this node's)
    let journal_path = eas_edge::plugin_host::SendJournal::path_beside(&state.path);
    let (journal, recovered) =
        eas_edge::plugin_host::SendJournal::open(&journal_path, store.as_ref())
            .await
            .with_context(|| format!("opening the send journal {}", journal_path.display()))?;
    if recovered.withdrawn > 0 {
        tracing::warn!(
            withdrawn = recovered.withdrawn,
            "send claims of messages that never left withdrawn"
        );
    }
    if recovered.presumed > 0 {
        tracing::warn!(
            presumed = recovered.presumed,
            "send claims of messages that left before their outcome was recorded presumed sent"
        );
    }
    eas_edge::plugin_host::SendJournal::install(journal);
    Ok(store)
}
