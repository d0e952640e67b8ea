//! The first vertical slice, end to end: OPTIONS and the 401 challenge through the host and
//! through real Envoy, against a real Dovecot; guest faults contained by the host.

use eas_edge_tests::artifacts;
use eas_edge_tests::envoy::Envoy;
use eas_edge_tests::gateway::{Gateway, GatewayOptions, TEST_DOMAIN};
use eas_edge_tests::http::{Client, Reply};
use eas_edge_tests::mailstack::MailStack;

const PASSWORD: &str = "correct horse";

fn user() -> String {
    format!("alice@{TEST_DOMAIN}")
}

fn assert_options_contract(reply: &Reply, context: &str) {
    assert_eq!(reply.status, 200, "{context}: {reply:?}");
    assert_eq!(
        reply.header("MS-ASProtocolVersions"),
        Some("12.1,14.0,14.1,16.0,16.1"),
        "{context}"
    );
    assert!(reply.header("MS-ASProtocolCommands").is_some(), "{context}: {reply:?}");
    assert!(reply.header("MS-Server-ActiveSync").is_some(), "{context}: {reply:?}");
    assert_eq!(reply.header("Allow"), Some("OPTIONS,POST"), "{context}");
}

fn assert_challenge(reply: &Reply, context: &str) {
    assert_eq!(reply.status, 401, "{context}: {reply:?}");
    let challenge = reply.header("WWW-Authenticate").unwrap_or_default();
    assert!(challenge.starts_with("Basic"), "{context}: challenge {challenge:?}");
}

/// The same assertions for any front end.
fn check_front_end(url: &str, name: &str, unprovisioned: &Unprovisioned) {
    let client = Client::default();
    let user = user();
    let good = client.options(url, Some((&user, PASSWORD))).expect("OPTIONS");
    assert_options_contract(&good, &format!("{name}: good credentials"));
    assert_challenge(&client.options(url, None).expect("OPTIONS"), &format!("{name}: none"));
    assert_challenge(
        &client.options(url, Some((&user, "wrong"))).expect("OPTIONS"),
        &format!("{name}: wrong password"),
    );
    // A client cannot claim an identity itself: only the front end sets it.
    let forged =
        client.send("OPTIONS", url, None, &[("x-eas-edge-identity", &user)], &[]).expect("OPTIONS");
    assert_challenge(&forged, &format!("{name}: forged identity header"));
    check_commands(&client, url, name, unprovisioned);
    let unknown_domain =
        client.options(url, Some(("bob@elsewhere.test", PASSWORD))).expect("OPTIONS");
    assert_challenge(&unknown_domain, &format!("{name}: domain of no tenant"));
}

/// What a front end answers an unprovisioned FolderSync: both send the device to Provision
/// (Status 142 for 14.0+, HTTP 449 for 12.1), the filter through the capability endpoint.
struct Unprovisioned {
    status_16_1: &'static str,
    http_12_1: u16,
}

const UNPROVISIONED: Unprovisioned = Unprovisioned { status_16_1: "142", http_12_1: 449 };

/// POSTs reach the engine's request layer and its policy gate.
fn check_commands(client: &Client, url: &str, name: &str, expected: &Unprovisioned) {
    let user = user();
    let query = format!("{url}?Cmd=FolderSync&User=alice&DeviceId=FOUNDATION1&DeviceType=iPhone");
    // FolderSync > SyncKey "0" (EAS-NOTES §2.5)
    let body = [0x03, 0x01, 0x6A, 0x00, 0x00, 0x07, 0x56, 0x52, 0x03, b'0', 0x00, 0x01, 0x01];
    let wbxml = ("Content-Type", "application/vnd.ms-sync.wbxml");
    let reply = client
        .send(
            "POST",
            &query,
            Some((&user, PASSWORD)),
            &[wbxml, ("MS-ASProtocolVersion", "16.1")],
            &body,
        )
        .expect("POST 16.1");
    assert_eq!(reply.status, 200, "{name}: {reply:?}");
    let document = eas_wbxml::decode(&reply.body, &eas_wbxml::Limits::default())
        .unwrap_or_else(|error| panic!("{name}: not WBXML ({error}): {reply:?}"));
    assert_eq!(
        document.root.text_of(eas_wbxml::tags::folder_hierarchy::STATUS),
        Some(expected.status_16_1),
        "{name}"
    );

    let reply = client
        .send(
            "POST",
            &query,
            Some((&user, PASSWORD)),
            &[wbxml, ("MS-ASProtocolVersion", "12.1")],
            &body,
        )
        .expect("POST 12.1");
    assert_eq!(reply.status, expected.http_12_1, "{name}: {reply:?}");

    let reply = client
        .send(
            "POST",
            &query,
            Some((&user, PASSWORD)),
            &[wbxml, ("MS-ASProtocolVersion", "2.5")],
            &body,
        )
        .expect("POST 2.5");
    assert_eq!(reply.status, 400, "{name}: {reply:?}");
    assert_eq!(reply.header("MS-ASProtocolVersions"), Some("12.1,14.0,14.1,16.0,16.1"), "{name}");

    let reply = client
        .send(
            "POST",
            &format!("{url}?Cmd=FolderSync"),
            Some((&user, PASSWORD)),
            &[wbxml, ("MS-ASProtocolVersion", "16.1")],
            &body,
        )
        .expect("POST malformed");
    assert_eq!(reply.status, 400, "{name}: {reply:?}");
}

#[test]
fn options_and_challenge_through_the_host() {
    let stack = MailStack::start().expect("mail stack");
    stack.add_user(&user(), PASSWORD).expect("user");
    let gateway = Gateway::start(&stack).expect("gateway");
    check_front_end(&gateway.url(), "host", &UNPROVISIONED);
}

#[test]
fn options_and_challenge_through_envoy() {
    let stack = MailStack::start().expect("mail stack");
    stack.add_user(&user(), PASSWORD).expect("user");
    let gateway = Gateway::start(&stack).expect("gateway");
    let envoy = Envoy::start(&gateway).expect("envoy");
    check_front_end(&envoy.url(), "envoy", &UNPROVISIONED);
    // Envoy never let the password reach the filter, and the host saw the checks.
    assert!(gateway.log().contains("IMAP rejected the credentials"), "{}", gateway.log());
}

#[test]
fn imap_down_is_a_503_with_retry_after_not_a_hang() {
    let mut stack = MailStack::start().expect("mail stack");
    stack.add_user(&user(), PASSWORD).expect("user");
    let gateway = Gateway::start(&stack).expect("gateway");
    stack.stop().expect("stop the mail stack");
    let reply =
        Client::default().options(&gateway.url(), Some((&user(), PASSWORD))).expect("OPTIONS");
    assert_eq!(reply.status, 503, "{reply:?}");
    assert!(reply.header("Retry-After").is_some(), "{reply:?}");
}

#[test]
fn guest_faults_fail_only_their_own_request() {
    let stack = MailStack::start().expect("mail stack");
    stack.add_user(&user(), PASSWORD).expect("user");
    let mut gateway = Gateway::start_with(
        &stack,
        GatewayOptions {
            plugin: Some(artifacts::faulty_plugin().expect("faulty plugin")),
            tenant_extra: "[tenant.limits]\nmemory_mib = 16\ncpu_ms = 300\n".into(),
            ..GatewayOptions::default()
        },
    )
    .expect("gateway");
    let client = Client::default();
    let user = user();
    for (fault, expected) in [("trap", 500), ("spin", 503), ("grow", 500)] {
        let reply = client
            .send(
                "OPTIONS",
                &gateway.url(),
                Some((&user, PASSWORD)),
                &[("x-eas-edge-fault", fault)],
                &[],
            )
            .expect("faulty request");
        assert_eq!(reply.status, expected, "fault {fault}: {reply:?}\n{}", gateway.log());
        let next = client.options(&gateway.url(), Some((&user, PASSWORD))).expect("next request");
        assert_options_contract(&next, &format!("request after the {fault} fault"));
    }
    assert!(gateway.is_running(), "the host died: {}", gateway.log());
}

#[test]
fn credentials_are_checked_over_imap_tls() {
    let stack = MailStack::start().expect("mail stack");
    stack.add_user(&user(), PASSWORD).expect("user");
    let gateway = Gateway::start_with(
        &stack,
        GatewayOptions { imap_over_tls: true, ..GatewayOptions::default() },
    )
    .expect("gateway");
    let client = Client::default();
    let good = client.options(&gateway.url(), Some((&user(), PASSWORD))).expect("OPTIONS");
    assert_options_contract(&good, "IMAPS: good credentials");
    let bad = client.options(&gateway.url(), Some((&user(), "wrong"))).expect("OPTIONS");
    assert_challenge(&bad, "IMAPS: wrong password");
}
