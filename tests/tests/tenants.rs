//! Tenant isolation end to end (issue #8): two tenants on one gateway, one mail domain each,
//! both users on the same real Dovecot. A device of one tenant never reaches the other's mail
//! or state (the same DeviceId gets independent policy and sync state), a login is checked by
//! the tenant of its domain only, and with `[tenant_selection] by = "host"` a login of the
//! other tenant's domain is refused on this tenant's host. A faulting plugin of one tenant
//! fails only its own requests; the other tenant keeps answering.

use std::path::Path;
use std::thread;

use anyhow::{Context, Result, bail};
use eas_edge_tests::artifacts;
use eas_edge_tests::eas::{Device, SyncCollection, Version};
use eas_edge_tests::gateway::{Gateway, GatewayOptions, TEST_DOMAIN};
use eas_edge_tests::http::Client;
use eas_edge_tests::mailstack::MailStack;
use eas_edge_tests::smtp;

/// The second tenant's mail domain (the first one's is [`TEST_DOMAIN`]).
const OTHER_DOMAIN: &str = "other.test";
const PASSWORD: &str = "tenant pw";

fn alice() -> String {
    format!("alice@{TEST_DOMAIN}")
}

fn bob() -> String {
    format!("bob@{OTHER_DOMAIN}")
}

/// A `[[tenant]]` "other" for [`OTHER_DOMAIN`] on the same mail stack.
fn other_tenant(stack: &MailStack, plugin: &Path, hosts: &str) -> Result<String> {
    let imap = stack.imap_addr()?;
    let smtp = stack.submission_addr()?;
    Ok(format!(
        "[[tenant]]\nname = \"other\"\ndomains = [\"{OTHER_DOMAIN}\"]\nhosts = [{hosts}]\n\
         plugin = \"{}\"\nimap = {{ host = \"{}\", port = {} }}\n\
         smtp = {{ host = \"{}\", port = {} }}\n",
        plugin.display(),
        imap.ip(),
        imap.port(),
        smtp.ip(),
        smtp.port()
    ))
}

fn stack_with_both_users() -> MailStack {
    let stack = MailStack::start().expect("mail stack");
    stack
        .add_users(&[(alice(), PASSWORD.to_owned()), (bob(), PASSWORD.to_owned())])
        .expect("users of both domains");
    stack
}

fn deliver(stack: &MailStack, user: &str, subject: &str) -> Result<()> {
    let message = format!(
        "From: sender@{TEST_DOMAIN}\r\nTo: {user}\r\nSubject: {subject}\r\n\
         Message-ID: <{subject}@tenants.test>\r\n\r\nfor {user} only\r\n"
    );
    smtp::send(
        stack.smtp_addr()?,
        None,
        &format!("sender@{TEST_DOMAIN}"),
        &[user],
        message.as_bytes(),
    )
}

/// The inbox ServerId after FolderSync.
fn inbox_of(device: &mut Device) -> Result<String> {
    let folders = device.bootstrap()?;
    Ok(folders
        .adds
        .iter()
        .find(|folder| folder.folder_type == 2)
        .context("FolderSync lists no inbox")?
        .server_id
        .clone())
}

/// The subjects of a full sync of `inbox` from scratch, and the key to continue with.
fn subjects(device: &mut Device, inbox: &str) -> Result<(Vec<String>, String)> {
    let key = device.sync_start(inbox)?;
    let drained = device.sync_drain(inbox, &key, 100, None)?;
    let mut subjects = Vec::new();
    for add in drained.adds() {
        subjects.push(add.email()?.subject.unwrap_or_default());
    }
    Ok((subjects, drained.sync_key))
}

/// The JSON request lines of the log (`[log] format = "json"`): (user, tenant) pairs.
fn logged_tenants(log: &str) -> Vec<(String, String)> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|line| line["message"] == "request")
        .map(|line| {
            let field = |name: &str| line[name].as_str().unwrap_or_default().to_owned();
            (field("user"), field("tenant"))
        })
        .collect()
}

fn run(gateway: &Gateway, body: impl FnOnce() -> Result<()>) {
    if let Err(error) = body() {
        let log = gateway.log();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(60)..].join("\n");
        panic!("{error:#}\n--- gateway log:\n{tail}");
    }
}

#[test]
fn a_device_of_one_tenant_cannot_reach_the_other_tenants_mail_or_state() {
    let stack = stack_with_both_users();
    let plugin = artifacts::plugin().expect("plugin");
    let options = GatewayOptions {
        config_extra: format!(
            "{}\n[log]\nformat = \"json\"\n",
            other_tenant(&stack, &plugin, "").expect("tenant")
        ),
        ..GatewayOptions::default()
    };
    let gateway = Gateway::start_with(&stack, options).expect("gateway");
    run(&gateway, || {
        deliver(&stack, &alice(), "for-alice")?;
        deliver(&stack, &bob(), "for-bob")?;
        // one phone id, one user in each tenant
        let mut alice_device =
            Device::new(&gateway.url(), &alice(), PASSWORD, "SHARED1", Version::V16_1);
        let alice_inbox = inbox_of(&mut alice_device)?;
        let (seen, alice_key) = subjects(&mut alice_device, &alice_inbox)?;
        if seen != ["for-alice"] {
            bail!("alice's inbox through tenant test: {seen:?}");
        }

        // the other tenant does not know the policy key the same DeviceId got from the first
        let mut bob_device =
            Device::new(&gateway.url(), &bob(), PASSWORD, "SHARED1", Version::V16_1);
        bob_device.policy_key = alice_device.policy_key;
        bob_device.auto_provision = false;
        match bob_device.folder_sync("0") {
            Ok(folders) if (142..=144).contains(&folders.status) => {}
            Err(error) if format!("{error:#}").contains("HTTP 449") => {}
            Ok(folders) => {
                bail!("tenant other took tenant test's policy key: FolderSync {}", folders.xml())
            }
            Err(error) => return Err(error.context("FolderSync with the other tenant's key")),
        }
        bob_device.auto_provision = true;
        let bob_inbox = inbox_of(&mut bob_device)?;
        // nor the sync state: alice's key means nothing for bob's inbox
        let answer = bob_device.sync_one(SyncCollection::new(alice_key.clone(), &bob_inbox))?;
        if answer.status_of(&bob_inbox) != Some(3) {
            bail!("tenant other accepted tenant test's SyncKey (want Status 3):\n{}", answer.xml());
        }
        let (seen, _) = subjects(&mut bob_device, &bob_inbox)?;
        if seen != ["for-bob"] {
            bail!("bob's inbox through tenant other: {seen:?}");
        }
        // and alice's state was not touched by bob's device: her key still works
        let drained = alice_device.sync_drain(&alice_inbox, &alice_key, 100, None)?;
        if drained.adds().count() != 0 {
            bail!("alice's sync state changed: {:?}", drained.commands);
        }

        // each login was served by the tenant of its domain, and only by it
        let logged = logged_tenants(&gateway.log());
        let alice_tenants: Vec<&str> =
            logged.iter().filter(|(user, _)| *user == alice()).map(|(_, t)| t.as_str()).collect();
        let bob_tenants: Vec<&str> =
            logged.iter().filter(|(user, _)| *user == bob()).map(|(_, t)| t.as_str()).collect();
        if alice_tenants.is_empty() || alice_tenants.iter().any(|tenant| *tenant != "test") {
            bail!("alice's requests logged under tenants {alice_tenants:?}");
        }
        if bob_tenants.is_empty() || bob_tenants.iter().any(|tenant| *tenant != "other") {
            bail!("bob's requests logged under tenants {bob_tenants:?}");
        }
        Ok(())
    });
}

#[test]
fn with_host_selection_a_login_of_the_other_tenant_is_refused_on_this_tenants_host() {
    let stack = stack_with_both_users();
    let plugin = artifacts::plugin().expect("plugin");
    let options = GatewayOptions {
        tenant_extra: "hosts = [\"mail.example.test\"]\n".into(),
        config_extra: format!(
            "{}\n[tenant_selection]\nby = \"host\"\n",
            other_tenant(&stack, &plugin, "\"Mail.Other.Test\"").expect("tenant")
        ),
        ..GatewayOptions::default()
    };
    let gateway = Gateway::start_with(&stack, options).expect("gateway");
    run(&gateway, || {
        let client = Client::default();
        let url = gateway.url();
        let options_via = |host: Option<&str>, user: &str| -> Result<u16> {
            let headers: Vec<(&str, &str)> = host.map(|host| ("Host", host)).into_iter().collect();
            Ok(client.send("OPTIONS", &url, Some((user, PASSWORD)), &headers, &[])?.status)
        };
        let cases = [
            (Some("mail.example.test"), alice(), 200),
            (Some("mail.other.test:443"), bob(), 200),
            // the right password, the wrong tenant's host
            (Some("mail.other.test"), alice(), 401),
            (Some("MAIL.EXAMPLE.TEST"), bob(), 401),
            // a Host no tenant lists (the gateway's address): the login's domain decides
            (None, bob(), 200),
            (None, alice(), 200),
        ];
        for (host, user, expected) in cases {
            let status = options_via(host, &user)?;
            if status != expected {
                bail!("OPTIONS as {user} via Host {host:?}: HTTP {status}, expected {expected}");
            }
        }
        let log = gateway.log();
        if !log.contains("login of a domain this tenant's host does not serve: refused") {
            bail!("the refusals are not logged");
        }
        Ok(())
    });
}

#[test]
fn a_faulting_plugin_of_one_tenant_leaves_the_other_tenant_unaffected() {
    let stack = stack_with_both_users();
    let plugin = artifacts::plugin().expect("plugin");
    let options = GatewayOptions {
        plugin: Some(artifacts::faulty_plugin().expect("faulty plugin")),
        tenant_extra: "[tenant.limits]\nmemory_mib = 16\ncpu_ms = 300\n".into(),
        config_extra: other_tenant(&stack, &plugin, "").expect("tenant"),
        ..GatewayOptions::default()
    };
    let mut gateway = Gateway::start_with(&stack, options).expect("gateway");
    let url = gateway.url();
    for (fault, expected) in [("spin", 503), ("trap", 500), ("grow", 500)] {
        // the fault runs while the other tenant's phone works
        let faulty = {
            let url = url.clone();
            thread::spawn(move || {
                Client::default()
                    .send(
                        "OPTIONS",
                        &url,
                        Some((&alice(), PASSWORD)),
                        &[("x-eas-edge-fault", fault)],
                        &[],
                    )
                    .map(|reply| reply.status)
            })
        };
        let mut device =
            Device::new(&url, &bob(), PASSWORD, &format!("BOB{fault}"), Version::V16_1);
        let folders = device.bootstrap();
        let status = faulty.join().expect("faulty request thread").expect("faulty request");
        assert_eq!(status, expected, "fault {fault} in tenant test:\n{}", gateway.log());
        let folders = folders.unwrap_or_else(|error| {
            panic!("tenant other during tenant test's {fault}: {error:#}\n{}", gateway.log())
        });
        assert_eq!(folders.status, 1, "tenant other during tenant test's {fault}");
        // the fault header means nothing to the other tenant's (sound) plugin
        let reply = Client::default()
            .send("OPTIONS", &url, Some((&bob(), PASSWORD)), &[("x-eas-edge-fault", fault)], &[])
            .expect("OPTIONS");
        assert_eq!(reply.status, 200, "tenant other with the fault header: {reply:?}");
    }
    assert!(gateway.is_running(), "the host died: {}", gateway.log());
}
