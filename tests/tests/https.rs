//! The HTTPS listener: phones reach the gateway over TLS without a proxy, Autodiscover then
//! names the https URL, and a renewed certificate is served without a restart (a broken
//! renewal keeps the previous one serving). The same through Envoy's shipped TLS listener.
//! The client is curl, trusting only the test's CA.

use eas_edge_tests::envoy::Envoy;
use eas_edge_tests::gateway::{Gateway, GatewayOptions, TEST_DOMAIN};
use eas_edge_tests::mailstack::MailStack;
use eas_edge_tests::process::free_port;
use std::path::Path;
use std::process::Command;

const PASSWORD: &str = "https pw";

/// A self-signed certificate for 127.0.0.1, written as cert.pem/key.pem under `dir`.
fn make_certificate(dir: &Path, name: &str) {
    let status = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"])
        .args(["-nodes", "-days", "2", "-subj", &format!("/CN={name}")])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .output()
        .expect("openssl runs");
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
}

/// curl's exit code and output for `args`, trusting only `ca`.
fn curl(ca: &Path, args: &[&str]) -> (i32, String) {
    let output = Command::new("curl")
        .args(["-sS", "--max-time", "20", "--cacert"])
        .arg(ca)
        .args(args)
        .output()
        .expect("curl runs (Debian package curl)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), text)
}

#[test]
fn phones_reach_the_gateway_over_tls_and_renewed_certificates_are_served() {
    let stack = MailStack::start().expect("mail stack");
    let user = format!("tls@{TEST_DOMAIN}");
    stack.add_user(&user, PASSWORD).expect("user");
    let dir = std::env::temp_dir().join(format!("eas-edge-https-{}", std::process::id()));
    let (first, second) = (dir.join("first"), dir.join("second"));
    for step in [&first, &second] {
        std::fs::create_dir_all(step).expect("dir");
    }
    make_certificate(&first, "first");
    make_certificate(&second, "second");
    let live = dir.join("live");
    std::fs::create_dir_all(&live).expect("dir");
    for file in ["cert.pem", "key.pem"] {
        std::fs::copy(first.join(file), live.join(file)).expect("copy");
    }
    let port = free_port().expect("port");
    // a [listen.https] table may follow [[tenant]]: TOML table headers are absolute
    let gateway = Gateway::start_with(
        &stack,
        GatewayOptions {
            tenant_extra: format!(
                "[listen.https]\naddress = \"127.0.0.1:{port}\"\ncertificate = {:?}\nprivate_key = {:?}\n",
                live.join("cert.pem"),
                live.join("key.pem")
            ),
            ..GatewayOptions::default()
        },
    )
    .expect("gateway");
    let base = format!("https://127.0.0.1:{port}");
    let endpoint = format!("{base}/Microsoft-Server-ActiveSync");
    let credentials = format!("{user}:{PASSWORD}");

    // the gateway logs its listeners once it is up; wait for the https one
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !gateway.log().contains("serving ActiveSync on https://") {
        assert!(std::time::Instant::now() < deadline, "no https listener:\n{}", gateway.log());
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    let (code, out) =
        curl(&first.join("cert.pem"), &["-i", "-X", "OPTIONS", "-u", &credentials, &endpoint]);
    assert_eq!(code, 0, "{out}\n{}", gateway.log());
    assert!(
        out.contains("200") && out.to_ascii_lowercase().contains("ms-asprotocolversions"),
        "{out}"
    );

    // both protocols a phone may pick in ALPN, and h2c with prior knowledge on the plain
    // listener: HTTP/1.1 is the host's own server, HTTP/2 hyper's
    for (version, flag, url) in [
        ("HTTP/2 200", "--http2", endpoint.clone()),
        ("HTTP/1.1 200", "--http1.1", endpoint.clone()),
        ("HTTP/2 200", "--http2-prior-knowledge", gateway.url()),
    ] {
        let (code, out) =
            curl(&first.join("cert.pem"), &["-i", flag, "-X", "OPTIONS", "-u", &credentials, &url]);
        assert_eq!(code, 0, "{flag}: {out}\n{}", gateway.log());
        assert!(out.starts_with(version), "{flag}: {out}");
        assert!(out.to_ascii_lowercase().contains("ms-asprotocolversions"), "{flag}: {out}");
    }

    // Autodiscover names the https URL: the scheme comes from the listener, not the client
    let (code, out) = curl(
        &first.join("cert.pem"),
        &[&format!("{base}/autodiscover/autodiscover.json/v1.0/{user}?Protocol=ActiveSync")],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("\"Url\":\"{endpoint}\"")), "{out}");

    // renewal: the new files are served to the next connection, no restart
    std::thread::sleep(std::time::Duration::from_millis(1100)); // a later mtime
    for file in ["key.pem", "cert.pem"] {
        std::fs::copy(second.join(file), live.join(file)).expect("copy");
    }
    let (code, out) =
        curl(&second.join("cert.pem"), &["-X", "OPTIONS", "-u", &credentials, &endpoint]);
    assert_eq!(code, 0, "the renewed certificate is served: {out}\n{}", gateway.log());
    let (code, _) =
        curl(&first.join("cert.pem"), &["-X", "OPTIONS", "-u", &credentials, &endpoint]);
    assert_ne!(code, 0, "the old certificate is no longer served");
    assert!(gateway.log().contains("TLS certificate reloaded"), "{}", gateway.log());

    // a broken renewal keeps the last good certificate
    std::thread::sleep(std::time::Duration::from_millis(1100));
    std::fs::write(live.join("cert.pem"), b"-----BEGIN CERTIFICATE-----\nbroken\n").expect("write");
    let (code, out) =
        curl(&second.join("cert.pem"), &["-X", "OPTIONS", "-u", &credentials, &endpoint]);
    assert_eq!(code, 0, "still serving the last good certificate: {out}\n{}", gateway.log());
    assert!(
        gateway.log().contains("cannot be used, keeping the previous one"),
        "{}",
        gateway.log()
    );

    // the plain listener still works beside it
    let (code, out) = curl(
        &first.join("cert.pem"),
        &[
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "OPTIONS",
            "-u",
            &credentials,
            &gateway.url(),
        ],
    );
    assert_eq!((code, out.as_str()), (0, "200"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The Envoy configuration as shipped, TLS listener included: a phone reaches the engine in
/// Envoy over HTTPS, and Autodiscover names the https URL (Envoy's X-Forwarded-Proto).
#[test]
fn phones_reach_envoy_over_tls_with_the_shipped_configuration() {
    let stack = MailStack::start().expect("mail stack");
    let user = format!("envoytls@{TEST_DOMAIN}");
    stack.add_user(&user, PASSWORD).expect("user");
    let dir = std::env::temp_dir().join(format!("eas-edge-envoy-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    make_certificate(&dir, "envoy");
    let gateway = Gateway::start(&stack).expect("gateway");
    let envoy =
        Envoy::start_tls(&gateway, &dir.join("cert.pem"), &dir.join("key.pem")).expect("envoy");
    let base = format!("https://{}", envoy.address);
    let endpoint = format!("{base}/Microsoft-Server-ActiveSync");
    let credentials = format!("{user}:{PASSWORD}");
    let ca = dir.join("cert.pem");

    let (code, out) = curl(&ca, &["-i", "-X", "OPTIONS", "-u", &credentials, &endpoint]);
    assert_eq!(code, 0, "{out}\n{}", envoy.log());
    assert!(
        out.starts_with("HTTP/") && out.contains(" 200") && out.contains("16.1"),
        "{out}\n{}",
        envoy.log()
    );
    let (code, out) =
        curl(&ca, &["-i", "-X", "OPTIONS", "-u", &format!("{user}:wrong"), &endpoint]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(" 401"), "a wrong password gets the challenge: {out}");

    let (code, out) = curl(
        &ca,
        &[&format!("{base}/autodiscover/autodiscover.json/v1.0/{user}?Protocol=ActiveSync")],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("\"Url\":\"{endpoint}\"")), "{out}\n{}", envoy.log());

    // plain HTTP on the TLS port is refused
    let (code, _) =
        curl(&ca, &["-X", "OPTIONS", "-u", &credentials, &endpoint.replace("https", "http")]);
    assert_ne!(code, 0, "plain HTTP must not be served on the TLS listener");
    let _ = std::fs::remove_dir_all(&dir);
}
