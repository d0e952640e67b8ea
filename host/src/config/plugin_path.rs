//! Where a tenant's plugin comes from when its `plugin` is left out: `$EAS_EDGE_PLUGIN_DIR`,
//! else the plugin built into this binary (host/build.rs embeds it whenever the build machine
//! has a wasm toolchain, so `cargo install --path host` yields a complete gateway), else where
//! an install puts it.

use std::fmt;
use std::path::{Path, PathBuf};

/// The plugin component's file name, as `cargo xtask build` names it.
pub const FILE_NAME: &str = "eas_edge_plugin.wasm";

/// Overrides the search with one directory (tests, unusual layouts).
pub const DIR_ENV: &str = "EAS_EDGE_PLUGIN_DIR";

/// The plugin component built into this binary by host/build.rs, if the build had a wasm
/// toolchain (else the build printed a warning saying so).
#[cfg(eas_edge_built_in_plugin)]
pub const BUILT_IN: Option<&[u8]> =
    Some(include_bytes!(concat!(env!("OUT_DIR"), "/eas_edge_plugin.wasm")));
#[cfg(not(eas_edge_built_in_plugin))]
pub const BUILT_IN: Option<&[u8]> = None;

/// A tenant's plugin: a file, or the one built into the binary.
#[derive(Clone, PartialEq, Eq)]
pub enum PluginSource {
    File(PathBuf),
    BuiltIn(&'static [u8]),
}

impl fmt::Debug for PluginSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PluginSource::File(path) => f.debug_tuple("File").field(path).finish(),
            PluginSource::BuiltIn(bytes) => write!(f, "BuiltIn({} bytes)", bytes.len()),
        }
    }
}

impl fmt::Display for PluginSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PluginSource::File(path) => write!(f, "{}", path.display()),
            PluginSource::BuiltIn(_) => {
                write!(f, "built into eas-edge {}", env!("CARGO_PKG_VERSION"))
            }
        }
    }
}

/// The plugin of a tenant that names none; the error lists every place looked at.
///
/// The built-in plugin comes before installed files: it is the one this host was built and
/// tested with, while a file in /usr/lib/eas-edge may be left over from an older install. A
/// config's `plugin = "PATH"` or `$EAS_EDGE_PLUGIN_DIR` still picks another one.
pub fn locate(built_in: Option<&'static [u8]>) -> Result<PluginSource, Vec<PathBuf>> {
    let override_dir = std::env::var_os(DIR_ENV).filter(|dir| !dir.is_empty()).map(PathBuf::from);
    let overridden = override_dir.as_deref().map(|dir| dir.join(FILE_NAME));
    if let Some(file) = overridden.as_ref().filter(|file| file.is_file()) {
        return Ok(PluginSource::File(file.clone()));
    }
    if let Some(bytes) = built_in {
        return Ok(PluginSource::BuiltIn(bytes));
    }
    let searched = candidates(override_dir.as_deref());
    match searched.iter().find(|file| file.is_file()) {
        Some(file) => Ok(PluginSource::File(file.clone())),
        None => Err(searched),
    }
}

/// The files looked at, in order: in `override_dir`, then next to the binary, then the
/// binary's `../lib/eas-edge` (a `--prefix` install), then `/usr/local/lib/eas-edge` and
/// `/usr/lib/eas-edge`.
fn candidates(override_dir: Option<&Path>) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = override_dir.map(Path::to_path_buf).into_iter().collect();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_plugin_comes_before_installed_files() {
        static BYTES: &[u8] = b"\0asm";
        assert_eq!(locate(Some(BYTES)), Ok(PluginSource::BuiltIn(BYTES)));
    }

    #[test]
    fn the_override_directory_is_searched_first_and_the_system_directories_last() {
        let searched = candidates(Some(Path::new("/opt/plugins")));
        assert_eq!(searched.first(), Some(&PathBuf::from("/opt/plugins/eas_edge_plugin.wasm")));
        assert_eq!(searched.last(), Some(&PathBuf::from("/usr/lib/eas-edge/eas_edge_plugin.wasm")));
        assert!(searched.contains(&PathBuf::from("/usr/local/lib/eas-edge/eas_edge_plugin.wasm")));
    }
}
