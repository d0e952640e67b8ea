//! `cargo xtask test`: every test, with everything it needs installed and built first.

use crate::sys::{self, ensure_packages};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// Seconds each fuzz target runs in a full test run (CI); `--quick` skips fuzzing.
const FUZZ_SECONDS_PER_TARGET: &str = "30";

pub fn run(root: &Path, args: &[String]) -> anyhow::Result<()> {
    let started = Instant::now();
    let quick = args.iter().any(|arg| arg == "--quick");

    // libwbxml: the independent codec our WBXML is cross-checked against.
    ensure_packages(&["libwbxml2-utils", "libwbxml2-dev", "pkg-config"], "the WBXML cross-check")?;
    ensure_packages(&["curl", "openssl"], "the HTTPS listener test")?;
    // headless Chromium and its WebDriver: the browser test page test (tests/test_page.rs)
    ensure_packages(&["chromium", "chromium-driver"], "the browser test page test")?;
    // systemd-analyze: the unit file check (tests/packaging.rs)
    ensure_packages(&["systemd"], "the systemd unit test")?;
    // a throwaway PostgreSQL per test: the cluster state store and wake-ups (tests/src/postgres.rs)
    ensure_packages(&["postgresql"], "the PostgreSQL state store and cluster tests")?;
    sys::run(Command::new(root.join("tests/mailstack.sh")).arg("install"))?;
    let envoy = crate::envoy::ensure()?;
    let built = crate::build(root)?;

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    sys::run(Command::new(&cargo).current_dir(root).args(["fmt", "--all", "--check"]))?;
    sys::run(
        Command::new(&cargo)
            .current_dir(root)
            .args(["test", "--profile", crate::HOST_PROFILE])
            .env("EAS_EDGE_BIN", &built.host)
            .env("EAS_EDGE_PLUGIN", &built.plugins.component)
            .env("EAS_EDGE_FAULTY_PLUGIN", &built.plugins.faulty_component)
            .env("EAS_EDGE_ENVOY_FILTER", &built.plugins.envoy_filter)
            .env("ENVOY_BIN", &envoy)
            // the reliability tests (tests/reliability_*.rs) in their short form: 3 runs per
            // kill scenario; `cargo xtask reliability` is the full form
            .env_remove("EAS_EDGE_RELIABILITY_RUNS"),
    )?;
    if !quick {
        sys::run(Command::new("bash").arg(root.join("fuzz/run.sh")).arg(FUZZ_SECONDS_PER_TARGET))?;
    }
    eprintln!("xtask: all tests passed in {:.0?}", started.elapsed());
    Ok(())
}
