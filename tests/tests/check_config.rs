//! `eas-edge check-config` and `serve` on a bad config: every mistake named with its line and
//! key, exit status 1, and `serve` refuses to start with the same report.

use eas_edge_tests::artifacts;
use std::process::Command;

fn run(args: &[&str]) -> (i32, String, String) {
    let binary = artifacts::host_binary().expect("host binary");
    let output = Command::new(binary).args(args).output().expect("runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn mistakes_are_named_by_line_and_key_and_serve_refuses_them() {
    let dir = tempfile_dir();
    let plugin = artifacts::plugin().expect("plugin");
    let good = dir.join("good.toml");
    std::fs::write(
        &good,
        format!(
            "[listen]\nhttp = \"127.0.0.1:0\"\n[[tenant]]\nname = \"example\"\n\
             domains = [\"example.test\"]\nplugin = {plugin:?}\n\
             imap = {{ host = \"127.0.0.1\", port = 143 }}\nsmtp = {{ host = \"127.0.0.1\", port = 587 }}\n"
        ),
    )
    .expect("write");
    let (status, stdout, stderr) = run(&["check-config", good.to_str().expect("test data")]);
    assert_eq!(status, 0, "{stdout}{stderr}");
    assert!(stdout.contains("ok (1 tenant: example"), "{stdout}");

    let bad = dir.join("bad.toml");
    let text = std::fs::read_to_string(&good)
        .expect("test data")
        .replace("port = 587", "port = 70000")
        .replace("name = \"example\"", "name = \"example\"\nheartbeat = 60");
    std::fs::write(&bad, format!("{text}[tenant.push]\nheartbeat_min_seconds = 4000\n"))
        .expect("write");
    let (status, stdout, stderr) = run(&["check-config", bad.to_str().expect("test data")]);
    assert_eq!(status, 1, "{stdout}{stderr}");
    assert!(stderr.contains("bad.toml"), "{stderr}");
    // both mistakes of the tenant table are reported... at least the first per section, with
    // its line; the rule check runs once the types are right
    assert!(stderr.contains("line 5") && stderr.contains("heartbeat"), "{stderr}");

    let (status, _, serve_stderr) = run(&["serve", "--config", bad.to_str().expect("test data")]);
    assert_eq!(status, 1);
    assert!(serve_stderr.contains(stderr.trim_end()), "serve: {serve_stderr}\ncheck: {stderr}");
    assert!(serve_stderr.contains("not starting"), "{serve_stderr}");

    let rules = dir.join("rules.toml");
    std::fs::write(
        &rules,
        format!(
            "{}[tenant.push]\nheartbeat_min_seconds = 4000\n",
            std::fs::read_to_string(&good).expect("test data")
        ),
    )
    .expect("write");
    let (status, _, stderr) = run(&["check-config", rules.to_str().expect("test data")]);
    assert_eq!(status, 1);
    assert!(
        stderr.contains("line 10, column 1, `tenant[0].push.heartbeat_min_seconds`"),
        "{stderr}"
    );
    assert!(stderr.contains("must not exceed heartbeat_max_seconds (3540)"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("eas-edge-check-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
