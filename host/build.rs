//! Builds the plugin component and embeds it in the binary, so that `cargo install --path host`
//! alone yields a gateway that needs no plugin file (config/plugin_path.rs says when the
//! built-in plugin is used).
//!
//! The wasm build goes into the same `wasm/` directory of the target dir as `cargo xtask
//! build`'s, so after xtask built the plugin this is a no-op check. Without a wasm toolchain
//! (no rustup target, no Debian rustc-web) the host is built without a plugin and says so in
//! a warning; it then looks for an installed `eas_edge_plugin.wasm` at run time.

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo::rustc-check-cfg=cfg(eas_edge_built_in_plugin)");
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir.parent().expect("host/ is one level below the workspace root");
    // what the plugin component is built from
    for input in
        ["plugin/engine", "plugin/wbxml", "plugin/component", "wit", "Cargo.toml", "Cargo.lock"]
    {
        println!("cargo::rerun-if-changed={}", root.join(input).display());
    }
    println!("cargo::rerun-if-env-changed=CARGO_TARGET_DIR");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    match build_plugin(root, &out.join("eas_edge_plugin.wasm")) {
        Ok(()) => println!("cargo::rustc-cfg=eas_edge_built_in_plugin"),
        Err(error) => println!(
            "cargo::warning=eas-edge is built without its plugin ({error:#}); it will look for an \
             installed eas_edge_plugin.wasm (`cargo xtask install` puts one in /usr/local/lib/eas-edge)"
        ),
    }
}

fn build_plugin(root: &Path, component: &Path) -> anyhow::Result<()> {
    let toolchain = eas_plugin_build::pick_toolchain()?;
    let built = eas_plugin_build::cargo_wasm(
        toolchain,
        root,
        &wasm_target_dir(root),
        &["-p", "eas-plugin-component"],
    )?;
    eas_plugin_build::componentize(&built.join("eas_plugin_component.wasm"), component)
}

/// `CARGO_TARGET_DIR/wasm` (relative to the workspace root, as xtask reads it), else
/// `target/wasm` in the workspace.
fn wasm_target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root.join(dir).join("wasm"),
        _ => root.join("target").join("wasm"),
    }
}
