//! Running programs and installing Debian packages.

use anyhow::{Context, bail};
use std::path::Path;
use std::process::Command;

/// Runs a command, inheriting stdio; fails with the command line on a non-zero exit.
pub fn run(command: &mut Command) -> anyhow::Result<()> {
    let status = command.status().with_context(|| format!("starting {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed with {status}");
    }
    Ok(())
}

/// Runs a command and returns its stdout as text.
pub fn output(command: &mut Command) -> anyhow::Result<String> {
    let out = command.output().with_context(|| format!("starting {command:?}"))?;
    if !out.status.success() {
        bail!(
            "{command:?} failed with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn is_root() -> bool {
    output(Command::new("id").arg("-u")).is_ok_and(|uid| uid.trim() == "0")
}

fn is_debian() -> bool {
    Path::new("/etc/debian_version").exists() && Path::new("/usr/bin/apt-get").exists()
}

fn package_installed(package: &str) -> bool {
    output(Command::new("dpkg-query").args(["-W", "-f=${Status}", package]))
        .is_ok_and(|status| status.contains("ok installed"))
}

/// Makes sure Debian packages are installed: installs the missing ones when running as root on
/// Debian, otherwise says exactly what to install.
pub fn ensure_packages(packages: &[&str], why: &str) -> anyhow::Result<()> {
    let missing: Vec<&str> =
        packages.iter().copied().filter(|package| !package_installed(package)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !(is_root() && is_debian()) {
        bail!(
            "{why} needs these Debian packages: {0}\n  install them with: sudo apt-get install {0}",
            missing.join(" ")
        );
    }
    eprintln!("xtask: installing {} ({why})", missing.join(" "));
    let install = |packages: &[&str]| {
        run(Command::new("apt-get")
            .args(["-o", "DPkg::Lock::Timeout=600", "install", "-y", "-q"])
            .args(["--no-install-recommends", "--no-upgrade"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive"))
    };
    if install(&missing).is_err() {
        // A fresh machine has no package lists yet.
        run(Command::new("apt-get").args(["-o", "DPkg::Lock::Timeout=600", "update", "-q"]))?;
        install(&missing)?;
    }
    Ok(())
}
