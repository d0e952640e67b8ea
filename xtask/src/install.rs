//! `cargo xtask install [--prefix DIR]`: builds the host and the plugin and installs both where
//! the host looks for the plugin when a tenant's config names none: `DIR/bin/eas-edge` and
//! `DIR/lib/eas-edge/eas_edge_plugin.wasm` (DIR defaults to /usr/local). `cargo install --path
//! host` alone installs only the binary; it then finds a plugin put next to it, in
//! `$EAS_EDGE_PLUGIN_DIR`, or in /usr/local/lib/eas-edge or /usr/lib/eas-edge.

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
    let lib = prefix.join("lib/eas-edge");
    for dir in [&bin, &lib] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let installed = [
        (built.host.as_path(), bin.join("eas-edge")),
        (built.plugins.component.as_path(), lib.join("eas_edge_plugin.wasm")),
    ];
    for (from, to) in &installed {
        // copy to a temporary name, then rename: a running gateway keeps its open file, and a
        // reload never sees a half-written plugin
        let partial = to.with_extension("partial");
        std::fs::copy(from, &partial)
            .with_context(|| format!("copying {} to {}", from.display(), partial.display()))?;
        std::fs::rename(&partial, to).with_context(|| format!("installing {}", to.display()))?;
        eprintln!("xtask: installed {}", to.display());
    }
    eprintln!(
        "xtask: next: a config without `plugin` (see packaging/eas-edge.toml), \
         `eas-edge check-config FILE`, and packaging/eas-edge.service for systemd"
    );
    Ok(())
}
