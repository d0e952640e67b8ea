//! Packaging (issue #8): the sample config in packaging/ passes `eas-edge check-config`, an
//! installed binary finds its plugin when the config names none (next to the binary, or in
//! `$EAS_EDGE_PLUGIN_DIR`), a missing one is reported with the places searched, and the
//! systemd unit is valid and sandboxed (systemd-analyze).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use eas_edge_tests::artifacts;

fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// A fresh directory under the system temp dir, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("eas-edge-packaging-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn check_config(binary: &Path, config: &Path, plugin_dir: Option<&Path>) -> Output {
    let mut command = Command::new(binary);
    command.arg("check-config").arg(config).env_remove("EAS_EDGE_PLUGIN_DIR");
    if let Some(dir) = plugin_dir {
        command.env("EAS_EDGE_PLUGIN_DIR", dir);
    }
    command.output().expect("running eas-edge check-config")
}

fn describe(output: &Output) -> String {
    format!(
        "{}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The sample config with its state directory moved into `dir` (the rest as shipped).
fn sample_config_in(dir: &Path) -> PathBuf {
    let text =
        std::fs::read_to_string(repo_file("packaging/eas-edge.toml")).expect("sample config");
    assert!(text.contains("/var/lib/eas-edge/"), "the sample's state path moved");
    let config = dir.join("eas-edge.toml");
    std::fs::write(&config, text.replace("/var/lib/eas-edge/", &format!("{}/", dir.display())))
        .expect("writing the config");
    config
}

#[test]
fn the_sample_config_passes_check_config() {
    let scratch = Scratch::new("sample");
    let config = sample_config_in(&scratch.0);
    let plugin = artifacts::plugin().expect("plugin");
    let output =
        check_config(&artifacts::host_binary().expect("host binary"), &config, plugin.parent());
    assert!(output.status.success(), "{}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains(": ok (1 tenant: example;"), "{}", describe(&output));
}

#[test]
fn an_installed_binary_finds_the_plugin_next_to_it_or_names_where_it_looked() {
    let scratch = Scratch::new("install");
    let config = sample_config_in(&scratch.0);
    // an install: the binary and the plugin side by side, as `cargo xtask install --prefix`
    // puts them in bin/ and lib/eas-edge/ or an admin copies them
    let bin = scratch.0.join("bin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    let binary = bin.join("eas-edge");
    std::fs::copy(artifacts::host_binary().expect("host binary"), &binary).expect("copy binary");
    let lib = scratch.0.join("lib/eas-edge");

    // nothing installed yet: every place searched is named
    let output = check_config(&binary, &config, None);
    assert!(!output.status.success(), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for place in [
        bin.join("eas_edge_plugin.wasm"),
        lib.join("eas_edge_plugin.wasm"),
        PathBuf::from("/usr/lib/eas-edge/eas_edge_plugin.wasm"),
    ] {
        assert!(stderr.contains(&place.display().to_string()), "{place:?}: {}", describe(&output));
    }
    assert!(stderr.contains("no `plugin` given"), "{}", describe(&output));

    // the --prefix layout: PREFIX/lib/eas-edge next to PREFIX/bin
    std::fs::create_dir_all(&lib).expect("lib dir");
    let plugin = artifacts::plugin().expect("plugin");
    std::fs::copy(&plugin, lib.join("eas_edge_plugin.wasm")).expect("copy plugin");
    let output = check_config(&binary, &config, None);
    assert!(output.status.success(), "{}", describe(&output));
}

#[test]
fn the_systemd_unit_is_valid_and_sandboxed() {
    let scratch = Scratch::new("unit");
    let unit = std::fs::read_to_string(repo_file("packaging/eas-edge.service")).expect("unit");
    for setting in [
        "DynamicUser=yes",
        "StateDirectory=eas-edge",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ] {
        assert!(unit.lines().any(|line| line == setting), "the unit lacks {setting}");
    }
    // verify checks the binaries exist: point it at the built one
    let binary = artifacts::host_binary().expect("host binary");
    let file = scratch.0.join("eas-edge.service");
    std::fs::write(&file, unit.replace("/usr/local/bin/eas-edge", &binary.display().to_string()))
        .expect("unit copy");
    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&file)
        .output()
        .expect("systemd-analyze (Debian package systemd)");
    assert!(
        verify.status.success() && verify.stderr.is_empty() && verify.stdout.is_empty(),
        "systemd-analyze verify: {}",
        describe(&verify)
    );
    // "OK" exposure (at most 2.0 of 10) by systemd's own sandboxing checklist
    let security = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--threshold=20"])
        .arg(&file)
        .output()
        .expect("systemd-analyze security");
    assert!(security.status.success(), "systemd-analyze security: {}", describe(&security));
}
