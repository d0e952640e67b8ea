//! Building the two plugin artifacts for wasm32-unknown-unknown.
//!
//! Two toolchains can do it: rustup's, when the `wasm32-unknown-unknown` target is installed,
//! or Debian's `rustc-web` (which ships no prebuilt wasm std, so std is rebuilt from
//! `rust-web-src` with `-Zbuild-std`). The host build never sees either environment.

use crate::sys::{ensure_packages, output, run};
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-unknown-unknown";
const DEBIAN_RUSTC: &str = "/usr/bin/rustc";
const DEBIAN_CARGO: &str = "/usr/bin/cargo";
const DEBIAN_LINKER: &str = "wasm-ld-22";
const DEBIAN_PACKAGES: &[&str] = &["rustc-web", "cargo-web", "rust-web-src", "lld-22"];
/// The oldest rustc that builds the plugin (edition 2024, wit-bindgen 0.63).
const MIN_MINOR: u32 = 88;

/// Where the finished plugins land.
pub struct Artifacts {
    /// The WASI component served by `eas-edge`.
    pub component: PathBuf,
    /// The same component built with the `fault-injection` feature, for tests only.
    pub faulty_component: PathBuf,
    /// The proxy-wasm module for Envoy.
    pub envoy_filter: PathBuf,
}

enum Toolchain {
    Rustup,
    Debian,
}

pub fn build(root: &Path) -> anyhow::Result<Artifacts> {
    let toolchain = pick_toolchain()?;
    let target = crate::target_dir(root);
    let out = target.join("plugin");
    std::fs::create_dir_all(&out)?;
    let built = target.join("wasm").join(TARGET).join("plugin");

    cargo_wasm(&toolchain, root, &["-p", "eas-plugin-envoy", "-p", "eas-plugin-component"])?;
    let envoy_filter = out.join("eas_edge_envoy.wasm");
    std::fs::copy(built.join("eas_plugin_envoy.wasm"), &envoy_filter)?;
    let component = out.join("eas_edge_plugin.wasm");
    componentize(&built.join("eas_plugin_component.wasm"), &component)?;

    cargo_wasm(&toolchain, root, &["-p", "eas-plugin-component", "--features", "fault-injection"])?;
    let faulty_component = out.join("eas_edge_plugin_faulty.wasm");
    componentize(&built.join("eas_plugin_component.wasm"), &faulty_component)?;
    // Leave the normal build as the last one in target/wasm, so an incremental rebuild of the
    // release plugin does not pick up the faulty variant by accident.
    cargo_wasm(&toolchain, root, &["-p", "eas-plugin-component"])?;

    Ok(Artifacts { component, faulty_component, envoy_filter })
}

fn pick_toolchain() -> anyhow::Result<Toolchain> {
    let rustup_has_target = output(Command::new("rustup").args(["target", "list", "--installed"]))
        .is_ok_and(|targets| targets.lines().any(|line| line.trim() == TARGET));
    if rustup_has_target {
        return Ok(Toolchain::Rustup);
    }
    ensure_packages(DEBIAN_PACKAGES, "building the wasm plugin without rustup's wasm target")?;
    let version = output(Command::new(DEBIAN_RUSTC).arg("--version"))?;
    let minor = version
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.split('.').nth(1))
        .and_then(|minor| minor.parse::<u32>().ok())
        .with_context(|| format!("cannot read the version of {DEBIAN_RUSTC}: {version}"))?;
    if minor < MIN_MINOR {
        bail!(
            "{DEBIAN_RUSTC} is {} but the plugin needs rustc 1.{MIN_MINOR} or newer; \
             update rustc-web, or run `rustup target add {TARGET}`",
            version.trim()
        );
    }
    Ok(Toolchain::Debian)
}

fn cargo_wasm(toolchain: &Toolchain, root: &Path, packages: &[&str]) -> anyhow::Result<()> {
    let mut command = match toolchain {
        Toolchain::Rustup => {
            Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        }
        Toolchain::Debian => {
            let mut command = Command::new(DEBIAN_CARGO);
            // Only for this child: Debian's std must be rebuilt for wasm (build-std is
            // unstable, hence RUSTC_BOOTSTRAP), and its rustc has no bundled rust-lld.
            command
                .env("RUSTC", DEBIAN_RUSTC)
                .env("RUSTC_BOOTSTRAP", "1")
                .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER", DEBIAN_LINKER)
                .env_remove("RUSTUP_TOOLCHAIN")
                .env_remove("RUSTDOC");
            command
        }
    };
    command
        .current_dir(root)
        .args(["build", "--profile", "plugin", "--target", TARGET, "--target-dir"])
        .arg(crate::target_dir(root).join("wasm"))
        .args(packages);
    if matches!(toolchain, Toolchain::Debian) {
        command.arg("-Zbuild-std=std,panic_abort");
    }
    run(&mut command)
}

/// Wraps the core module that wit-bindgen annotated into a component.
fn componentize(core: &Path, component: &Path) -> anyhow::Result<()> {
    let module = std::fs::read(core).with_context(|| format!("reading {}", core.display()))?;
    let bytes = wit_component::ComponentEncoder::default()
        .module(&module)
        .context("reading the plugin's component type")?
        .validate(true)
        .encode()
        .context("encoding the plugin component")?;
    std::fs::write(component, bytes).with_context(|| format!("writing {}", component.display()))
}
