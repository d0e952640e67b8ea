//! Building the plugin for `wasm32-unknown-unknown`, shared by `cargo xtask build` and the
//! host's build script (which embeds the component, so that `cargo install --path host` alone
//! yields a gateway with its plugin).
//!
//! Two toolchains can do it: rustup's, when the `wasm32-unknown-unknown` target is installed,
//! or Debian's `rustc-web` (which ships no prebuilt wasm std, so std is rebuilt from
//! `rust-web-src` with `-Zbuild-std`). Installing either is the caller's business: xtask
//! installs the Debian packages, a build script only reports what is missing.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const TARGET: &str = "wasm32-unknown-unknown";
const DEBIAN_RUSTC: &str = "/usr/bin/rustc";
const DEBIAN_CARGO: &str = "/usr/bin/cargo";
const DEBIAN_LINKER: &str = "wasm-ld-22";
/// Compiler flags of both plugins (std included, when it is built here).
const WASM_RUSTFLAGS: &str = "-Ctarget-feature=+simd128";
/// The Debian packages of the second toolchain.
pub const DEBIAN_PACKAGES: &[&str] = &["rustc-web", "cargo-web", "rust-web-src", "lld-22"];
/// Where `rust-web-src` links the std sources that `-Zbuild-std` compiles (in the sysroot).
const DEBIAN_STD_SOURCES: &str = "/usr/lib/rustlib/src/rust/library";
/// The oldest rustc that builds the plugin (edition 2024, wit-bindgen 0.63).
const MIN_MINOR: u32 = 88;

/// A toolchain that can build for `wasm32-unknown-unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Toolchain {
    /// rustup's, with the target installed.
    Rustup,
    /// Debian's `rustc-web`, std rebuilt with `-Zbuild-std`.
    Debian,
}

/// Whether rustup (the toolchain `cargo` runs) has the wasm target installed.
pub fn rustup_has_target() -> bool {
    output(Command::new("rustup").args(["target", "list", "--installed"]))
        .is_ok_and(|targets| targets.lines().any(|line| line.trim() == TARGET))
}

/// The toolchain to build with: rustup's if it has the target, else Debian's if installed
/// and new enough; the error says what to install.
pub fn pick_toolchain() -> anyhow::Result<Toolchain> {
    if rustup_has_target() {
        return Ok(Toolchain::Rustup);
    }
    let missing: Vec<&str> = [DEBIAN_RUSTC, DEBIAN_CARGO, DEBIAN_STD_SOURCES]
        .into_iter()
        .filter(|path| !Path::new(path).exists())
        .collect();
    let has_linker = Command::new(DEBIAN_LINKER).arg("--version").output().is_ok();
    if !missing.is_empty() || !has_linker {
        bail!(
            "no toolchain for {TARGET}: run `rustup target add {TARGET}`, or install Debian's \
             {} (missing: {}{})",
            DEBIAN_PACKAGES.join(" "),
            missing.join(", "),
            if has_linker { "" } else { " and the linker wasm-ld-22" }
        );
    }
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

/// Runs `cargo build --profile plugin --target wasm32-unknown-unknown` for `packages` (and
/// `args`, e.g. features) in the workspace at `root`, into `target_dir`; returns the directory
/// holding the built `.wasm` files.
pub fn cargo_wasm(
    toolchain: Toolchain,
    root: &Path,
    target_dir: &Path,
    args: &[&str],
) -> anyhow::Result<PathBuf> {
    let mut command = Command::new(match toolchain {
        Toolchain::Rustup => std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()),
        Toolchain::Debian => DEBIAN_CARGO.into(),
    });
    clear_outer_build_env(&mut command);
    // 128-bit SIMD (wasm's `simd128`, which wasmtime and Envoy's V8 both run): memchr and
    // memmem search 16 bytes at a time, and LLVM vectorizes the byte loops of body
    // conversion; ~4 % less gateway CPU in a Sync (docs/benchmarks.md, "Ninth pass").
    command.env("CARGO_ENCODED_RUSTFLAGS", WASM_RUSTFLAGS);
    if toolchain == Toolchain::Debian {
        // Only for this child: Debian's std must be rebuilt for wasm (build-std is unstable,
        // hence RUSTC_BOOTSTRAP), and its rustc has no bundled rust-lld.
        command
            .env("RUSTC", DEBIAN_RUSTC)
            .env("RUSTC_BOOTSTRAP", "1")
            .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER", DEBIAN_LINKER)
            .env_remove("RUSTUP_TOOLCHAIN");
    }
    command
        .current_dir(root)
        .args(["build", "--profile", "plugin", "--target", TARGET, "--target-dir"])
        .arg(target_dir)
        .args(args);
    if toolchain == Toolchain::Debian {
        command.arg("-Zbuild-std=std,panic_abort");
    }
    let status = command.status().with_context(|| format!("starting {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed with {status}");
    }
    Ok(target_dir.join(TARGET).join("plugin"))
}

/// Removes what an outer cargo (running xtask or a build script) set for *its* target: the
/// host's compiler flags, wrappers and target would otherwise leak into the wasm build.
/// The jobserver (`CARGO_MAKEFLAGS`) stays, so a nested build shares the outer job limit.
fn clear_outer_build_env(command: &mut Command) {
    const EXACT: &[&str] = &[
        // a build script sees the host's compiler; each toolchain brings its own
        "RUSTC",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_LINKER",
        "RUSTDOC",
        "RUSTFLAGS",
        "RUSTDOCFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_ENCODED_RUSTDOCFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_PRIMARY_PACKAGE",
        "TARGET",
        "HOST",
        "OUT_DIR",
        "PROFILE",
        "OPT_LEVEL",
        "DEBUG",
        "NUM_JOBS",
    ];
    const PREFIXES: &[&str] =
        &["CARGO_CFG_", "CARGO_FEATURE_", "CARGO_PKG_", "CARGO_MANIFEST_", "DEP_"];
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if EXACT.contains(&name) || PREFIXES.iter().any(|prefix| name.starts_with(prefix)) {
            command.env_remove(name);
        }
    }
}

/// Wraps the core module that wit-bindgen annotated into a component.
pub fn componentize(core: &Path, component: &Path) -> anyhow::Result<()> {
    let module = std::fs::read(core).with_context(|| format!("reading {}", core.display()))?;
    let bytes = wit_component::ComponentEncoder::default()
        .module(&module)
        .context("reading the plugin's component type")?
        .validate(true)
        .encode()
        .context("encoding the plugin component")?;
    std::fs::write(component, bytes).with_context(|| format!("writing {}", component.display()))
}

fn output(command: &mut Command) -> anyhow::Result<String> {
    let out = command.output().with_context(|| format!("starting {command:?}"))?;
    if !out.status.success() {
        bail!("{command:?} failed with {}", out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
