//! The gateway's log: one line per event on stderr, as text, JSON or logfmt (`[log]`), and the
//! per-request facts (request id, command, device) that every phone request's final line carries.
//!
//! Passwords never reach a log line: the host drops `Authorization` after authenticating, and
//! no event records headers or request bodies.

mod logfmt;
pub mod request;

use anyhow::Context;
use serde::Deserialize;
use tracing_subscriber::EnvFilter;

/// The environment variable that overrides `[log] level` (e.g. `EAS_EDGE_LOG=debug`).
pub const LEVEL_ENV: &str = "EAS_EDGE_LOG";

/// `[log]`: how lines look and which are written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A level (`info`) or tracing-subscriber filter directives (`info,eas_edge::push=debug`).
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { format: LogFormat::Text, level: "info".into() }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable, colored on a terminal.
    #[default]
    Text,
    /// One JSON object per line, the event's fields at the top level.
    Json,
    /// `key=value` pairs (quoted when needed), for Loki, Splunk and friends.
    Logfmt,
}

/// Why `level` is not a usable filter, for check-config.
pub fn level_problem(level: &str) -> Option<String> {
    EnvFilter::try_new(level).err().map(|error| {
        format!(
            "{level:?} is not a log level or filter ({error}); expected e.g. \"info\", \"debug\" or \"info,eas_edge::push=debug\""
        )
    })
}

/// Installs the process-wide logger. `EAS_EDGE_LOG`, when set, wins over `config.level`.
pub fn init(config: &LogConfig) -> anyhow::Result<()> {
    let level = std::env::var(LEVEL_ENV)
        .ok()
        .filter(|level| !level.trim().is_empty())
        .unwrap_or_else(|| config.level.clone());
    let filter =
        EnvFilter::try_new(&level).with_context(|| format!("log level {level:?} ({LEVEL_ENV})"))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let installed = match config.format {
        LogFormat::Text => {
            builder.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).try_init()
        }
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Logfmt => {
            builder.event_format(logfmt::Logfmt).fmt_fields(logfmt::LogfmtFields).try_init()
        }
    };
    installed.map_err(|error| anyhow::anyhow!("installing the logger: {error}"))
}
