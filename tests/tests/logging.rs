//! Structured logs end to end (issue #8): every phone request is logged once when answered,
//! with its id (also answered in `x-request-id`, or taken from a trusted proxy), tenant, user,
//! device, command, status and duration; JSON and logfmt lines parse; and neither a password
//! nor an Authorization header ever reaches the log, at debug level, for good and bad logins.

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use eas_edge_tests::eas::{Device, Version};
use eas_edge_tests::gateway::{Gateway, GatewayOptions, TEST_DOMAIN};
use eas_edge_tests::http::Client;
use eas_edge_tests::mailstack::MailStack;

const PASSWORD: &str = "Corr3ct-h0rse-b4ttery";
const WRONG_PASSWORD: &str = "Wr0ng-tr0ub4dor-and-3";

fn user() -> String {
    format!("logger@{TEST_DOMAIN}")
}

/// A gateway at debug level (the most the log ever says) with `log_section` as `[log]`.
fn start(stack: &MailStack, config_extra: &str) -> Gateway {
    let options = GatewayOptions {
        config_extra: config_extra.to_owned(),
        log_level: Some("debug".into()),
        ..GatewayOptions::default()
    };
    Gateway::start_with(stack, options).expect("gateway")
}

/// A failed and a good login, then a device's first requests (Provision, FolderSync, which
/// log in to IMAP and open pooled sessions): everything that handles the password.
fn log_in_badly_and_well(gateway: &Gateway) -> Result<()> {
    let client = Client::default();
    let bad = client.options(&gateway.url(), Some((&user(), WRONG_PASSWORD)))?;
    if bad.status != 401 {
        bail!("wrong password: HTTP {}", bad.status);
    }
    let good = client.options(&gateway.url(), Some((&user(), PASSWORD)))?;
    if good.status != 200 {
        bail!("good password: HTTP {}", good.status);
    }
    let mut device = Device::new(&gateway.url(), &user(), PASSWORD, "LOGDEV1", Version::V16_1);
    device.bootstrap()?;
    Ok(())
}

/// No password, in any encoding phones send it, and no Authorization header in the log.
fn assert_no_secrets(log: &str) {
    for password in [PASSWORD, WRONG_PASSWORD] {
        assert!(!log.contains(password), "a password is in the log:\n{log}");
        let basic =
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{password}", user()));
        assert!(!log.contains(&basic), "an Authorization header is in the log:\n{log}");
    }
}

fn run(gateway: &Gateway, body: impl FnOnce() -> Result<()>) {
    if let Err(error) = body() {
        panic!("{error:#}\n--- gateway log:\n{}", gateway.log());
    }
}

#[test]
fn json_lines_carry_the_request_facts_and_never_a_password() {
    let stack = MailStack::start().expect("mail stack");
    stack.add_user(&user(), PASSWORD).expect("user");
    let gateway = start(&stack, "[log]\nformat = \"json\"\n");
    run(&gateway, || {
        log_in_badly_and_well(&gateway)?;
        // an id of our own is ignored without a trusted proxy: the gateway answers its own
        let mut device = Device::new(&gateway.url(), &user(), PASSWORD, "LOGDEV2", Version::V16_1);
        device.provision()?;
        let reply = Client::default().send(
            "POST",
            &device.command_url("FolderSync"),
            Some((&user(), PASSWORD)),
            &[
                ("MS-ASProtocolVersion", "16.1"),
                ("X-MS-PolicyKey", &device.policy_key.context("policy key")?.to_string()),
                ("Content-Type", "application/vnd.ms-sync.wbxml"),
                ("x-request-id", "client-chosen-id"),
            ],
            &folder_sync_zero()?,
        )?;
        let id = reply.header("x-request-id").context("no x-request-id answered")?.to_owned();
        if id == "client-chosen-id" || id.len() != 16 {
            bail!("answered request id {id:?}");
        }

        let log = gateway.log();
        let lines: Vec<serde_json::Value> = log
            .lines()
            .map(|line| serde_json::from_str(line).with_context(|| format!("not JSON: {line}")))
            .collect::<Result<_>>()?;
        let requests: Vec<&serde_json::Value> =
            lines.iter().filter(|line| line["message"] == "request").collect();
        let line = requests
            .iter()
            .find(|line| line["span"]["request_id"] == id.as_str())
            .with_context(|| format!("no request line with id {id}"))?;
        let user = user();
        let expected = [
            ("tenant", "test"),
            ("user", user.as_str()),
            ("device", "LOGDEV2"),
            ("command", "FolderSync"),
            ("method", "POST"),
        ];
        for (field, value) in expected {
            if line[field] != value {
                bail!("request line {field}: {} (want {value}): {line}", line[field]);
            }
        }
        if line["status"] != 200 || !line["ms"].is_u64() {
            bail!("request line status/ms: {line}");
        }
        // logged once: one line per id
        let same_id = requests.iter().filter(|l| l["span"]["request_id"] == id.as_str()).count();
        if same_id != 1 {
            bail!("{same_id} request lines for {id}");
        }
        // the failed login is a 401 line without a user
        if !requests.iter().any(|l| l["status"] == 401 && l["user"] == "-" && l["tenant"] == "test")
        {
            bail!("no 401 request line for the wrong password");
        }
        assert_no_secrets(&log);
        Ok(())
    });
}

#[test]
fn logfmt_lines_take_a_trusted_proxys_request_id_and_never_a_password() {
    let stack = MailStack::start().expect("mail stack");
    stack.add_user(&user(), PASSWORD).expect("user");
    let gateway =
        start(&stack, "[log]\nformat = \"logfmt\"\n[login_throttle]\ntrust_forwarded_for = true\n");
    run(&gateway, || {
        log_in_badly_and_well(&gateway)?;
        let reply = Client::default().send(
            "OPTIONS",
            &gateway.url(),
            Some((&user(), PASSWORD)),
            &[("x-request-id", "edge-proxy.42")],
            &[],
        )?;
        if reply.header("x-request-id") != Some("edge-proxy.42") {
            bail!("the proxy's request id was not kept: {reply:?}");
        }
        let log = gateway.log();
        for line in log.lines() {
            if !line.starts_with("ts=") || !line.contains(" level=") {
                bail!("not a logfmt line: {line}");
            }
        }
        let request = log
            .lines()
            .find(|line| line.contains(" request_id=edge-proxy.42 msg=request "))
            .context("no request line with the proxy's id")?;
        let user_field = format!(" user={} ", user());
        for expected in [" tenant=test ", user_field.as_str(), " method=OPTIONS ", " status=200 "] {
            if !request.contains(expected) {
                bail!("request line without {expected:?}: {request}");
            }
        }
        // a device's requests: command and device from the query
        if !log
            .lines()
            .any(|line| line.contains(" device=LOGDEV1 ") && line.contains(" command=FolderSync "))
        {
            bail!("no FolderSync line of LOGDEV1");
        }
        assert_no_secrets(&log);
        Ok(())
    });
}

/// FolderSync with SyncKey 0, as WBXML.
fn folder_sync_zero() -> Result<Vec<u8>> {
    use eas_wbxml::tags::folder_hierarchy;
    use eas_wbxml::{Document, Element};
    let root =
        Element::new(folder_hierarchy::FOLDER_SYNC).text_child(folder_hierarchy::SYNC_KEY, "0");
    Ok(eas_wbxml::encode(&Document::new(root))?)
}
