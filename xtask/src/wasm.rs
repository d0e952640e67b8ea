//! Building the two plugin artifacts for wasm32-unknown-unknown (the recipe is in
//! `eas-plugin-build`, shared with the host's build script; xtask adds installing Debian's
//! toolchain when rustup has no wasm target).

use crate::sys::ensure_packages;
use eas_plugin_build::{
    DEBIAN_PACKAGES, Toolchain, cargo_wasm, componentize, pick_toolchain, rustup_has_target,
};
use std::path::{Path, PathBuf};

/// Where the finished plugins land.
pub struct Artifacts {
    /// The WASI component served by `eas-edge`.
    pub component: PathBuf,
    /// The same component built with the `fault-injection` feature, for tests only.
    pub faulty_component: PathBuf,
    /// The proxy-wasm module for Envoy.
    pub envoy_filter: PathBuf,
}

pub fn build(root: &Path) -> anyhow::Result<Artifacts> {
    let toolchain = toolchain()?;
    let target = crate::target_dir(root);
    let out = target.join("plugin");
    std::fs::create_dir_all(&out)?;
    // The host's build script builds the component into this same directory (see
    // host/build.rs), so after this build its own is a no-op.
    let wasm_target = target.join("wasm");

    let built = cargo_wasm(
        toolchain,
        root,
        &wasm_target,
        &["-p", "eas-plugin-envoy", "-p", "eas-plugin-component"],
    )?;
    let envoy_filter = out.join("eas_edge_envoy.wasm");
    std::fs::copy(built.join("eas_plugin_envoy.wasm"), &envoy_filter)?;
    let component = out.join("eas_edge_plugin.wasm");
    componentize(&built.join("eas_plugin_component.wasm"), &component)?;

    cargo_wasm(
        toolchain,
        root,
        &wasm_target,
        &["-p", "eas-plugin-component", "--features", "fault-injection"],
    )?;
    let faulty_component = out.join("eas_edge_plugin_faulty.wasm");
    componentize(&built.join("eas_plugin_component.wasm"), &faulty_component)?;
    // Leave the normal build as the last one in target/wasm, so an incremental rebuild of the
    // release plugin (here or in the host's build script) does not pick up the faulty variant.
    cargo_wasm(toolchain, root, &wasm_target, &["-p", "eas-plugin-component"])?;

    Ok(Artifacts { component, faulty_component, envoy_filter })
}

/// rustup's toolchain when it has the wasm target, else Debian's, installed when missing.
fn toolchain() -> anyhow::Result<Toolchain> {
    if !rustup_has_target() {
        ensure_packages(DEBIAN_PACKAGES, "building the wasm plugin without rustup's wasm target")?;
    }
    pick_toolchain()
}
