//! Project tasks: `cargo xtask build | demo | test`.
//!
//! - `build`: the wasm plugins (component + Envoy filter) and the `eas-edge` host.
//! - `demo [--detach | --stop]`: a local mail stack with a demo account and the gateway on it.
//! - `test`: every test, against a real Dovecot/Postfix and a real Envoy.
//! - `reliability [--runs N]`: the fault and abuse suite in full, with its figures.
//! - `install [--prefix DIR]`: the host and its plugin into DIR/bin and DIR/lib/eas-edge.

mod demo;
mod envoy;
mod install;
mod reliability;
mod sys;
mod test;
mod wasm;

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};

/// The profile of every host build, for tests and the demo alike, so they share one build.
pub const HOST_PROFILE: &str = "release";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root()?;
    match args.first().map(String::as_str) {
        Some("build") => build(&root).map(|_| ()),
        Some("demo") => demo::run(&root, &args[1..]),
        Some("test") => test::run(&root, &args[1..]),
        Some("install") => install::run(&root, &args[1..]),
        Some("reliability") => reliability::run(&root, &args[1..]),
        _ => bail!(
            "usage: cargo xtask build\n       cargo xtask demo [--detach | --stop]\n       \
             cargo xtask test [--quick]\n       cargo xtask install [--prefix DIR]\n       \
             cargo xtask reliability [--runs N]"
        ),
    }
}

/// What `build` produced.
pub struct Built {
    pub plugins: wasm::Artifacts,
    pub host: PathBuf,
}

pub fn build(root: &Path) -> anyhow::Result<Built> {
    let plugins = wasm::build(root)?;
    // The host is built exactly as `cargo test` builds it (with the test targets, so with the
    // dev-dependencies' features unified in): a plain `cargo build -p eas-edge` resolves other
    // features for shared crates (rustix, ring, ...) and would compile wasmtime a second time,
    // ~10 minutes on 2 cores, for every switch between the demo and the tests.
    sys::run(
        std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(root)
            .args(["test", "--profile", HOST_PROFILE, "--no-run"]),
    )?;
    let host = target_dir(root).join(HOST_PROFILE).join("eas-edge");
    eprintln!(
        "xtask: built {}, {}, {}",
        plugins.component.display(),
        plugins.envoy_filter.display(),
        host.display()
    );
    Ok(Built { plugins, host })
}

/// Cargo's target directory: `CARGO_TARGET_DIR` when set (CI keeps one outside the clone so
/// that repeated runs on one machine reuse the wasmtime build), else `target/` in the root.
pub fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root.join(dir),
        _ => root.join("target"),
    }
}

fn workspace_root() -> anyhow::Result<PathBuf> {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR")
        .context("run this through `cargo xtask`, which sets CARGO_MANIFEST_DIR")?;
    Path::new(&manifest_dir)
        .parent()
        .map(Path::to_path_buf)
        .context("xtask lives one level below the workspace root")
}
