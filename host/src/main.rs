//! `eas-edge`: the Exchange ActiveSync gateway host.

use anyhow::Context;
use clap::{Parser, Subcommand};
use eas_edge::wbxml_tool::{self, ByteFormat};
use eas_edge::{authz, config, runtime, server, tenants};
use std::path::PathBuf;
use std::sync::Arc;

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
    init_logging();
    match cli.command {
        Command::Serve { config } => serve(config),
        Command::CheckConfig { config } => check_config(&config),
        Command::Wbxml { action: WbxmlAction::Decode { input, format } } => {
            let xml = wbxml_tool::decode(&input, format)?;
            wbxml_tool::write_stdout(xml.as_bytes())
        }
        Command::Wbxml { action: WbxmlAction::Encode { input, format } } => {
            wbxml_tool::write_stdout(&wbxml_tool::encode(&input, format)?)
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("EAS_EDGE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
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
    let runtime = runtime::PluginRuntime::new(tenants::Tenants::max_memory_bytes(&config))?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let store: Arc<dyn eas_edge::state::StateStore> = Arc::new(
        rt.block_on(eas_edge::state::RedbStore::open(
            &config.state.path,
            config.state.redb.clone(),
        ))
        .with_context(|| format!("opening the state store {}", config.state.path.display()))?,
    );
    tracing::info!(path = %config.state.path.display(), "state store open");
    let tenants = tenants::Tenants::load(&config, &runtime, &store)?;
    for tenant in &config.tenants {
        tracing::info!(
            tenant = %tenant.name,
            domains = %tenant.domains.join(","),
            imap = %format!("{}:{}", tenant.imap.host, tenant.imap.port),
            smtp = %format!("{}:{}", tenant.smtp.host, tenant.smtp.port),
            plugin = %tenant.plugin.display(),
            "tenant loaded"
        );
    }
    let throttle = eas_edge::auth::LoginThrottle::new(config.login_throttle.clone());
    let push = eas_edge::push::PushHub::new(config.watchers.push_settings());
    let gateway = Arc::new(server::Gateway { tenants, throttle, push });
    rt.block_on(async move {
        gateway.tenants.spawn_pool_reapers();
        if let Some(capability) = &config.capability {
            let authz = tokio::net::TcpListener::bind(capability.listen)
                .await
                .with_context(|| format!("listening on {}", capability.listen))?;
            tracing::info!("serving ext_authz for Envoy on http://{}", authz.local_addr()?);
            tokio::spawn(authz::serve(authz, gateway.clone()));
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
