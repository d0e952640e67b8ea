//! Packaging (issue #8): the sample config in packaging/ passes `eas-edge check-config`, the
//! binary alone (as `cargo install --path host` leaves it) carries its plugin and serves mail
//! with it, `$EAS_EDGE_PLUGIN_DIR` overrides it, and the systemd unit is valid and sandboxed
//! (systemd-analyze).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use eas_edge_tests::artifacts;
use eas_edge_tests::eas::{Device, Version};
use eas_edge_tests::gateway::{Gateway, GatewayOptions, TEST_DOMAIN};
use eas_edge_tests::imap::AppendOptions;
use eas_edge_tests::mailstack::MailStack;

const PASSWORD: &str = "packaging pw";

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
fn the_binary_alone_carries_its_plugin_and_plugin_dir_overrides_it() {
    let scratch = Scratch::new("install");
    let config = sample_config_in(&scratch.0);
    // what `cargo install --path host` leaves: the binary alone in a bin/ directory
    let bin = scratch.0.join("bin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    let binary = bin.join("eas-edge");
    std::fs::copy(artifacts::host_binary().expect("host binary"), &binary).expect("copy binary");

    let output = check_config(&binary, &config, None);
    assert!(output.status.success(), "{}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("tenant example: plugin built into eas-edge"), "{}", describe(&output));

    // an operator's plugin directory wins over the built-in plugin
    let plugins = scratch.0.join("plugins");
    std::fs::create_dir_all(&plugins).expect("plugin dir");
    let chosen = plugins.join("eas_edge_plugin.wasm");
    std::fs::copy(artifacts::plugin().expect("plugin"), &chosen).expect("copy plugin");
    let output = check_config(&binary, &config, Some(&plugins));
    assert!(output.status.success(), "{}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!("tenant example: plugin {}", chosen.display())),
        "{}",
        describe(&output)
    );
}

#[test]
fn the_built_in_plugin_serves_mail() {
    let stack = MailStack::start().expect("mail stack");
    let user = format!("builtin@{TEST_DOMAIN}");
    stack.add_users(&[(user.clone(), PASSWORD.to_owned())]).expect("user");
    let message = format!(
        "From: someone@{TEST_DOMAIN}\r\nTo: {user}\r\nSubject: served by the built-in plugin\r\n\
         Message-ID: <built-in@packaging.test>\r\n\r\nhello\r\n"
    );
    let mut imap = stack.imap_login(&user, PASSWORD).expect("IMAP login");
    imap.append("INBOX", message.as_bytes(), &AppendOptions::default()).expect("APPEND");
    let options = GatewayOptions { built_in_plugin: true, ..GatewayOptions::default() };
    let gateway = Gateway::start_with(&stack, options).expect("gateway");
    assert!(
        gateway.log().contains("plugin=built into eas-edge"),
        "the gateway did not use its built-in plugin:\n{}",
        gateway.log()
    );
    let mut device = Device::new(&gateway.url(), &user, PASSWORD, "BUILTIN1", Version::V16_1);
    let folders = device.bootstrap().expect("Provision and FolderSync");
    let inbox = folders.adds.iter().find(|folder| folder.folder_type == 2).expect("an Inbox");
    let key = device.sync_start(&inbox.server_id).expect("Sync 0");
    let drained = device.sync_drain(&inbox.server_id, &key, 100, None).expect("Sync");
    let subjects: Vec<String> = drained
        .adds()
        .map(|add| add.email().expect("an email").subject.unwrap_or_default())
        .collect();
    assert_eq!(subjects, ["served by the built-in plugin"]);
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
