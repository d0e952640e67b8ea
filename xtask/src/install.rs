//! `cargo xtask install [--prefix DIR]`: builds the plugin and the host, which embeds it, and
//! installs `DIR/bin/eas-edge` (DIR defaults to /usr/local). `cargo install --path host` does
//! the same into `~/.cargo/bin` whenever a wasm toolchain is installed; this command also
//! installs that toolchain (Debian's rustc-web) when rustup has no wasm target.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};

pub fn run(root: &Path, args: &[String]) -> anyhow::Result<()> {
    let prefix = match args {
        [] => PathBuf::from("/usr/local"),
        [flag, dir] if flag == "--prefix" => PathBuf::from(dir),
        _ => bail!("usage: cargo xtask install [--prefix DIR]"),
    };
    let built = crate::build(root)?;
    let bin = prefix.join("bin");
    std::fs::create_dir_all(&bin).with_context(|| format!("creating {}", bin.display()))?;
    let (from, to) = (built.host.as_path(), bin.join("eas-edge"));
    // copy to a temporary name, then rename: a running gateway keeps its open file
    let partial = to.with_extension("partial");
    std::fs::copy(from, &partial)
        .with_context(|| format!("copying {} to {}", from.display(), partial.display()))?;
    std::fs::rename(&partial, &to).with_context(|| format!("installing {}", to.display()))?;
    eprintln!("xtask: installed {} (its plugin built in)", to.display());
    eprintln!(
        "xtask: next: a config without `plugin` (see packaging/eas-edge.toml), \
         `eas-edge check-config FILE`, and packaging/eas-edge.service for systemd"
    );
    Ok(())
}
