//! `eas-edge wbxml decode|encode`, as an admin uses it on a captured request.

use eas_edge_tests::artifacts;
use std::io::Write;
use std::process::{Command, Stdio};

/// The Ping request of EAS-NOTES §2.5 (heartbeat 480, folder 5 of class Email).
const PING_HEX: &str = "03016a00000d4548033438300001494a4b033500014c03456d61696c0001010101";

fn run(args: &[&str], stdin: &[u8]) -> (bool, String, String) {
    let mut child = Command::new(artifacts::host_binary().expect("eas-edge"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start eas-edge");
    child.stdin.take().expect("stdin").write_all(stdin).expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn decode_then_encode_gives_the_same_bytes() {
    let (ok, xml, err) = run(&["wbxml", "decode", "-"], PING_HEX.as_bytes());
    assert!(ok, "{err}");
    assert!(xml.contains("<Ping xmlns=\"Ping\">"), "{xml}");
    assert!(xml.contains("<HeartbeatInterval>480</HeartbeatInterval>"), "{xml}");
    let (ok, hex, err) = run(&["wbxml", "encode", "-"], xml.as_bytes());
    assert!(ok, "{err}");
    assert_eq!(hex.trim(), PING_HEX);
}

#[test]
fn garbage_gets_a_clear_message_and_a_failure_code() {
    let (ok, _, err) = run(&["wbxml", "decode", "--format", "hex", "-"], b"03016a00ff");
    assert!(!ok);
    assert!(err.contains("not valid EAS WBXML"), "{err}");
}
