//! Where the plugin is when a tenant's `plugin` is left out: where an install puts it, so that
//! a packaged or `cargo xtask install`ed gateway needs no path in its config.

use std::path::{Path, PathBuf};

/// The plugin component's file name, as `cargo xtask build` names it.
pub const FILE_NAME: &str = "eas_edge_plugin.wasm";

/// Overrides the search with one directory (tests, unusual layouts).
pub const DIR_ENV: &str = "EAS_EDGE_PLUGIN_DIR";

/// The files looked at, in order: `$EAS_EDGE_PLUGIN_DIR`, then next to the binary, then the
/// binary's `../lib/eas-edge` (a `--prefix` install), then `/usr/local/lib/eas-edge` and
/// `/usr/lib/eas-edge`.
pub fn candidates() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(dir) = std::env::var_os(DIR_ENV).filter(|dir| !dir.is_empty()) {
        dirs.push(PathBuf::from(dir));
    }
    if let Some(bin_dir) = std::env::current_exe().ok().as_deref().and_then(Path::parent) {
        dirs.push(bin_dir.to_path_buf());
        if let Some(prefix) = bin_dir.parent() {
            dirs.push(prefix.join("lib/eas-edge"));
        }
    }
    dirs.push(PathBuf::from("/usr/local/lib/eas-edge"));
    dirs.push(PathBuf::from("/usr/lib/eas-edge"));
    let mut files: Vec<PathBuf> = Vec::with_capacity(dirs.len());
    for file in dirs.into_iter().map(|dir| dir.join(FILE_NAME)) {
        if !files.contains(&file) {
            files.push(file);
        }
    }
    files
}

/// The first of `candidates` that is a file.
pub fn find(candidates: &[PathBuf]) -> Option<PathBuf> {
    candidates.iter().find(|file| file.is_file()).cloned()
}
