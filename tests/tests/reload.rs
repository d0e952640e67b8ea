//! SIGHUP end to end (issue #8): a Ping parked before the reload still answers on new mail,
//! requests after it see the new config (tighter heartbeat bounds, a second tenant), and a
//! broken config on SIGHUP is refused with check-config's report in the log while the
//! gateway keeps serving on the config it had.

use std::thread;

use anyhow::{Context, Result, bail};
use eas_edge_tests::artifacts;
use eas_edge_tests::eas::{Device, Version};
use eas_edge_tests::gateway::{Gateway, GatewayOptions, TEST_DOMAIN};
use eas_edge_tests::http::Client;
use eas_edge_tests::mailstack::MailStack;
use eas_edge_tests::smtp;
use eas_wbxml::tags::ping;
use eas_wbxml::{Document, Element, Limits};

const PASSWORD: &str = "reload pw";
const OTHER_DOMAIN: &str = "reloaded.test";
/// Heartbeats of 2–50 s before the reload; the new config raises the minimum to 20 s.
const PUSH_BEFORE: &str = "[tenant.push]\nheartbeat_min_seconds = 2\nheartbeat_max_seconds = 50\n";
const PUSH_AFTER: &str = "[tenant.push]\nheartbeat_min_seconds = 20\nheartbeat_max_seconds = 50\n";

fn alice() -> String {
    format!("alice@{TEST_DOMAIN}")
}

fn bob() -> String {
    format!("bob@{OTHER_DOMAIN}")
}

/// Sends a Ping on `folders` and returns its Status and the folders it lists.
fn ping(device: &mut Device, heartbeat: u32, folders: &[&str]) -> Result<(u32, Vec<String>)> {
    let mut list = Element::new(ping::FOLDERS);
    for id in folders {
        list.push(
            Element::new(ping::FOLDER).text_child(ping::ID, *id).text_child(ping::CLASS, "Email"),
        );
    }
    let mut root =
        Element::new(ping::PING).text_child(ping::HEARTBEAT_INTERVAL, heartbeat.to_string());
    root.push(list);
    let body = eas_wbxml::encode(&Document::new(root))?;
    let reply = device.post("Ping", Some("application/vnd.ms-sync.wbxml"), &body)?;
    if reply.status != 200 {
        bail!("Ping answered HTTP {}", reply.status);
    }
    let answer = eas_wbxml::decode(&reply.body, &Limits::default())?.root;
    let status = answer.text_of(ping::STATUS).context("Ping without Status")?.parse()?;
    let listed = answer
        .child(ping::FOLDERS)
        .into_iter()
        .flat_map(|folders| folders.children(ping::FOLDER))
        .filter_map(|folder| folder.text().map(str::to_owned))
        .collect();
    Ok((status, listed))
}

/// The second tenant the reload adds.
fn second_tenant(stack: &MailStack) -> Result<String> {
    let imap = stack.imap_addr()?;
    let smtp = stack.submission_addr()?;
    Ok(format!(
        "\n[[tenant]]\nname = \"reloaded\"\ndomains = [\"{OTHER_DOMAIN}\"]\nplugin = \"{}\"\n\
         imap = {{ host = \"{}\", port = {} }}\nsmtp = {{ host = \"{}\", port = {} }}\n",
        artifacts::plugin()?.display(),
        imap.ip(),
        imap.port(),
        smtp.ip(),
        smtp.port()
    ))
}

#[test]
fn sighup_reloads_without_dropping_a_parked_ping_and_keeps_serving_on_a_broken_config() {
    let stack = MailStack::start().expect("mail stack");
    stack
        .add_users(&[(alice(), PASSWORD.to_owned()), (bob(), PASSWORD.to_owned())])
        .expect("users");
    let options = GatewayOptions {
        tenant_extra: PUSH_BEFORE.to_owned(),
        // the "parked" debug line tells the test the Ping is waiting before it reloads
        log_level: Some("info,eas_edge::parking=debug".into()),
        ..GatewayOptions::default()
    };
    let gateway = Gateway::start_with(&stack, options).expect("gateway");
    if let Err(error) = scenario(&stack, &gateway) {
        panic!("{error:#}\n--- gateway log:\n{}", gateway.log());
    }
}

fn scenario(stack: &MailStack, gateway: &Gateway) -> Result<()> {
    let client = Client::default();
    if client.options(&gateway.url(), Some((&bob(), PASSWORD)))?.status != 401 {
        bail!("bob's domain is served before the reload adds its tenant");
    }
    let mut device = Device::new(&gateway.url(), &alice(), PASSWORD, "RELOAD1", Version::V16_1);
    let folders = device.bootstrap()?;
    let inbox = folders
        .adds
        .iter()
        .find(|folder| folder.folder_type == 2)
        .context("no inbox")?
        .server_id
        .clone();
    let key = device.sync_start(&inbox)?;
    device.sync_drain(&inbox, &key, 100, None)?;

    // a Ping parks (5 s is allowed now, and the reload keeps its tenant as it was)
    let parked = {
        let mut twin = Device::new(&gateway.url(), &alice(), PASSWORD, "RELOAD1", Version::V16_1);
        twin.policy_key = device.policy_key;
        let inbox = inbox.clone();
        thread::spawn(move || ping(&mut twin, 45, &[&inbox]))
    };
    gateway.wait_for_log("parked", 1)?;

    // the new config: tighter heartbeats, a second tenant; then SIGHUP
    let config = std::fs::read_to_string(gateway.config_path())?;
    anyhow::ensure!(config.contains(PUSH_BEFORE), "the test config changed shape:\n{config}");
    let reloaded = config.replace(PUSH_BEFORE, PUSH_AFTER) + &second_tenant(stack)?;
    std::fs::write(gateway.config_path(), &reloaded)?;
    gateway.reload()?;
    gateway.wait_for_log("config reloaded", 1)?;

    // the parked Ping answers on new mail
    let message = format!(
        "From: sender@{TEST_DOMAIN}\r\nTo: {}\r\nSubject: after reload\r\n\
         Message-ID: <after-reload@reload.test>\r\n\r\nnew mail\r\n",
        alice()
    );
    smtp::send(
        stack.smtp_addr()?,
        None,
        &format!("sender@{TEST_DOMAIN}"),
        &[&alice()],
        message.as_bytes(),
    )?;
    let (status, listed) = parked.join().expect("ping thread")?;
    if (status, listed.as_slice()) != (2, std::slice::from_ref(&inbox)) {
        bail!("the Ping parked across the reload: Status {status} {listed:?}, want 2 [{inbox}]");
    }

    // new requests see the new config: the new tenant, the new heartbeat minimum
    if client.options(&gateway.url(), Some((&bob(), PASSWORD)))?.status != 200 {
        bail!("the reloaded tenant does not serve bob");
    }
    let (status, _) = ping(&mut device, 5, &[&inbox])?;
    if status != 5 {
        bail!("a 5 s heartbeat under the new 20 s minimum: Status {status}, want 5");
    }

    // a broken config is refused, with the report, and the running one keeps serving
    std::fs::write(
        gateway.config_path(),
        reloaded.replace(PUSH_AFTER, "[tenant.push]\nheartbeat_min_seconds = \"soon\"\n"),
    )?;
    gateway.reload()?;
    let log = gateway.wait_for_log("config not reloaded", 1)?;
    if !log.contains("1 mistake") || !log.contains("push.heartbeat_min_seconds") {
        bail!("the refusal does not carry check-config's report");
    }
    for user in [alice(), bob()] {
        let status = client.options(&gateway.url(), Some((&user, PASSWORD)))?.status;
        if status != 200 {
            bail!("after the refused reload, {user}: HTTP {status}");
        }
    }
    let (status, _) = ping(&mut device, 5, &[&inbox])?;
    if status != 5 {
        bail!("after the refused reload the previous config's bounds must stay: Status {status}");
    }
    Ok(())
}
