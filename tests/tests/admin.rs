//! Operating the gateway end to end (issue #8): the `[admin]` listener's `/metrics` counts the
//! requests phones really made, and `eas-edge devices` lists, blocks, allows, resets and wipes
//! devices through the running server's admin API, and lists them from the store itself once
//! the server is stopped. Every device effect is checked from the phone's side: the blocked
//! device gets Status 129, the wiped one gets the wipe directive at its next Provision.

use anyhow::{Context, Result, bail, ensure};
use eas_edge_tests::artifacts;
use eas_edge_tests::eas::{Device, Version};
use eas_edge_tests::gateway::{Gateway, GatewayOptions, TEST_DOMAIN};
use eas_edge_tests::http::Client;
use eas_edge_tests::mailstack::MailStack;
use eas_edge_tests::process::free_port;
use eas_wbxml::tags::{folder_hierarchy as fh, ping, provision as pv};
use eas_wbxml::{Document, Element, Limits};
use serde_json::Value;
use std::net::SocketAddr;
use std::process::Command;

const PASSWORD: &str = "admin pw";
const TOKEN: &str = "admin-test-token";
/// Short heartbeats, so that a Ping ends quickly by itself.
const TENANT_EXTRA: &str = "[tenant.push]\nheartbeat_min_seconds = 2\nheartbeat_max_seconds = 50\n";
const POLICY_TYPE: &str = "MS-EAS-Provisioning-WBXML";

struct World {
    /// Dovecot and Postfix, running as long as the test.
    _stack: MailStack,
    gateway: Gateway,
    admin: SocketAddr,
    user: String,
}

impl World {
    fn start() -> World {
        let stack = MailStack::start().expect("mail stack");
        let user = format!("alice@{TEST_DOMAIN}");
        stack.add_user(&user, PASSWORD).expect("mail user");
        let admin = SocketAddr::from(([127, 0, 0, 1], free_port().expect("port")));
        let options = GatewayOptions {
            tenant_extra: TENANT_EXTRA.to_owned(),
            config_extra: format!("[admin]\nlisten = \"{admin}\"\ntoken = \"{TOKEN}\"\n"),
            ..Default::default()
        };
        let gateway = Gateway::start_with(&stack, options).expect("gateway");
        World { _stack: stack, gateway, admin, user }
    }

    fn device(&self, id: &str) -> Device {
        Device::new(&self.gateway.url(), &self.user, PASSWORD, id, Version::V16_1)
    }

    /// `eas-edge devices ARGS --config … --json`, parsed.
    fn devices(&self, args: &[&str]) -> Result<Value> {
        let output = Command::new(artifacts::host_binary()?)
            .arg("devices")
            .args(args)
            .arg("--config")
            .arg(self.gateway.config_path())
            .arg("--json")
            .output()?;
        ensure!(
            output.status.success(),
            "eas-edge devices {args:?}: {}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).with_context(|| {
            format!("output of {args:?}: {}", String::from_utf8_lossy(&output.stdout))
        })
    }

    fn act(&self, action: &str, device: &str) -> Result<Value> {
        self.devices(&[action, &self.user, device])
    }

    /// `/metrics`, with the bearer token.
    fn metrics(&self) -> Result<String> {
        let url = format!("http://{}/metrics", self.admin);
        let bearer = format!("Bearer {TOKEN}");
        let reply =
            Client::default().send("GET", &url, None, &[("Authorization", &bearer)], b"")?;
        ensure!(reply.status == 200, "/metrics answered {}", reply.status);
        Ok(String::from_utf8(reply.body)?)
    }

    fn run(self, body: impl FnOnce(&mut World) -> Result<()>) {
        let mut world = self;
        if let Err(error) = body(&mut world) {
            let log = world.gateway.log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(60)..].join("\n");
            panic!("{error:#}\n--- gateway log:\n{tail}");
        }
    }
}

/// The value of the sample `name{labels}` (labels exactly as exposed), if present.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// The device's entry in a `devices list` answer.
fn entry<'a>(list: &'a Value, device: &str) -> Result<&'a Value> {
    list.as_array()
        .context("devices list is not an array")?
        .iter()
        .find(|entry| entry["device"] == device)
        .with_context(|| format!("{device} missing from {list:#}"))
}

/// POSTs `document` as `command` with the device's key, without any automatic re-provisioning;
/// the decoded answer.
fn raw(device: &mut Device, command: &str, document: &Document) -> Result<Element> {
    let body = eas_wbxml::encode(document)?;
    let reply = device.post(command, Some("application/vnd.ms-sync.wbxml"), &body)?;
    ensure!(reply.status == 200, "{command} answered HTTP {}", reply.status);
    Ok(eas_wbxml::decode(&reply.body, &Limits::default())?.root)
}

fn status(root: &Element, tag: eas_wbxml::Tag) -> Result<String> {
    root.text_of(tag).map(str::to_owned).with_context(|| format!("no Status in {root:?}"))
}

fn folder_sync(key: &str) -> Document {
    Document::new(Element::new(fh::FOLDER_SYNC).text_child(fh::SYNC_KEY, key))
}

fn ping_inbox(inbox: &str) -> Document {
    Document::new(Element::new(ping::PING).text_child(ping::HEARTBEAT_INTERVAL, "2").with_child(
        Element::new(ping::FOLDERS).with_child(
            Element::new(ping::FOLDER).text_child(ping::ID, inbox).text_child(ping::CLASS, "Email"),
        ),
    ))
}

fn provision_request() -> Document {
    Document::new(
        Element::new(pv::PROVISION).with_child(
            Element::new(pv::POLICIES)
                .with_child(Element::new(pv::POLICY).text_child(pv::POLICY_TYPE, POLICY_TYPE)),
        ),
    )
}

/// Provision as a device with a pending wipe does: it must get `directive`, acknowledge it
/// with Status 1 and get Status 1 back.
fn receive_wipe(device: &mut Device, directive: eas_wbxml::Tag) -> Result<()> {
    let answer = raw(device, "Provision", &provision_request())?;
    ensure!(answer.child(directive).is_some(), "no {directive:?} in {answer:?}");
    let ack = Document::new(
        Element::new(pv::PROVISION).with_child(Element::new(directive).text_child(pv::STATUS, "1")),
    );
    let done = raw(device, "Provision", &ack)?;
    ensure!(status(&done, pv::STATUS)? == "1", "acknowledgement answered {done:?}");
    Ok(())
}

#[test]
fn metrics_and_device_commands_with_the_server_running_and_stopped() {
    World::start().run(|world| {
        let mut phone = world.device("ADMINDEV1");
        let folders = phone.bootstrap()?;
        let folder_key = folders.sync_key.clone().context("FolderSync without SyncKey")?;
        let inbox = folders
            .adds
            .iter()
            .find(|folder| folder.folder_type == 2)
            .context("no inbox")?
            .server_id
            .clone();
        let key = phone.sync_start(&inbox)?;
        // synced to the end, so that the Ping below finds nothing new and parks
        phone.sync_drain(&inbox, &key, 100, None)?;
        // a Ping that nothing wakes: parked, then answered at its 2 s heartbeat with Status 1
        let pinged = raw(&mut phone, "Ping", &ping_inbox(&inbox))?;
        ensure!(status(&pinged, ping::STATUS)? == "1", "Ping: {pinged:?}");
        // a wrong password: a login event for the throttle counters
        let mut stranger = Device::new(&world.gateway.url(), &world.user, "wrong", "X", Version::V16_1);
        let refused = stranger.post("FolderSync", None, b"")?;
        ensure!(refused.status == 401, "wrong password answered {}", refused.status);

        // a browser's GET of the endpoint: the test page, answered by the host itself
        let page = Client::default().send("GET", &world.gateway.url(), None, &[("Accept", "text/html")], b"")?;
        ensure!(page.status == 200, "test page answered {}", page.status);

        // /metrics: a token is required, and the requests above are counted
        let url = format!("http://{}/metrics", world.admin);
        let anonymous = Client::default().send("GET", &url, None, &[], b"")?;
        ensure!(anonymous.status == 401, "/metrics without a token answered {}", anonymous.status);
        let metrics = world.metrics()?;
        let count = |series: &str| sample(&metrics, series).unwrap_or(0.0);
        let ping_ok = "eas_edge_requests_total{tenant=\"test\",command=\"Ping\",status=\"200\"}";
        let sync_ok = "eas_edge_requests_total{tenant=\"test\",command=\"Sync\",status=\"200\"}";
        ensure!(count(ping_ok) == 1.0, "Ping not counted once:\n{metrics}");
        ensure!(count(sync_ok) >= 1.0, "Sync not counted:\n{metrics}");
        let ping_timed = "eas_edge_request_duration_seconds_count{tenant=\"test\",command=\"Ping\"}";
        ensure!(count(ping_timed) == 1.0, "Ping latency not observed:\n{metrics}");
        let page_ok = "eas_edge_requests_total{tenant=\"-\",command=\"other\",status=\"200\"}";
        ensure!(count(page_ok) >= 1.0, "the host's own answers are not counted:\n{metrics}");
        let ping_inf = "eas_edge_request_duration_seconds_bucket{tenant=\"test\",command=\"Ping\",le=\"+Inf\"}";
        ensure!(count(ping_inf) == 1.0, "Ping histogram:\n{metrics}");
        ensure!(count("eas_edge_login_events_total{event=\"failed\"}") >= 1.0, "{metrics}");
        ensure!(sample(&metrics, "eas_edge_parked_requests").is_some(), "{metrics}");
        ensure!(count("eas_edge_imap_pool_accounts{tenant=\"test\"}") >= 1.0, "{metrics}");
        ensure!(count("eas_edge_imap_logins_total{tenant=\"test\"}") >= 1.0, "{metrics}");

        // top: one view of the running server, with the device and its last command
        let top = Command::new(artifacts::host_binary()?)
            .args(["top", "--once", "--config"])
            .arg(world.gateway.config_path())
            .output()?;
        let view = String::from_utf8(top.stdout)?;
        ensure!(top.status.success(), "top: {}", String::from_utf8_lossy(&top.stderr));
        ensure!(view.contains("parked: ") && view.contains("ADMINDEV1"), "top shows:\n{view}");

        // list through the running server: who, what, and its policy state
        let list = world.devices(&["list"])?;
        let listed = entry(&list, "ADMINDEV1")?;
        ensure!(listed["user"] == world.user.as_str(), "{listed:#}");
        ensure!(listed["device_type"] == "iPhone", "{listed:#}");
        ensure!(listed["model"] == phone.information.model.as_str(), "{listed:#}");
        ensure!(listed["policy"] == "provisioned" && listed["wipe"] == "none", "{listed:#}");
        ensure!(listed["last_seen"].is_u64() && listed["blocked"] == false, "{listed:#}");

        // block: every command is refused with 129; allow: it works again
        ensure!(world.act("block", "ADMINDEV1")?["blocked"] == true);
        let blocked = raw(&mut phone, "FolderSync", &folder_sync(&folder_key))?;
        ensure!(status(&blocked, fh::STATUS)? == "129", "blocked FolderSync: {blocked:?}");
        let blocked = raw(&mut phone, "Ping", &ping_inbox(&inbox))?;
        ensure!(status(&blocked, ping::STATUS)? == "129", "blocked Ping: {blocked:?}");
        ensure!(world.act("allow", "ADMINDEV1")?["blocked"] == false);
        let allowed = phone.folder_sync(&folder_key)?;
        ensure!(allowed.status == 1, "FolderSync after allow: {}", allowed.xml());

        // reset: the device's sync state is gone, its old FolderSync key is refused (Status 9)
        let reset = world.act("reset", "ADMINDEV1")?;
        let keys = reset["keys"].as_array().context("keys")?;
        ensure!(!keys.iter().any(|key| key == "hierarchy"), "reset kept the hierarchy: {reset:#}");
        let stale = raw(&mut phone, "FolderSync", &folder_sync(&folder_key))?;
        ensure!(status(&stale, fh::STATUS)? == "9", "FolderSync after reset: {stale:?}");
        ensure!(phone.folder_sync("0")?.status == 1, "FolderSync 0 after reset");

        // wipe: commands answer 140, the next Provision carries RemoteWipe, the ack is kept
        ensure!(world.act("wipe", "ADMINDEV1")?["wipe"] == "full");
        let refused = raw(&mut phone, "FolderSync", &folder_sync("0"))?;
        ensure!(status(&refused, fh::STATUS)? == "140", "FolderSync with a wipe pending: {refused:?}");
        receive_wipe(&mut phone, pv::REMOTE_WIPE)?;
        let shown = world.devices(&["show", &world.user, "ADMINDEV1"])?;
        ensure!(shown["wipe"] == "full, acknowledged (1)", "{shown:#}");

        // account-only wipe of a second phone (16.1)
        let mut second = world.device("ADMINDEV2");
        second.bootstrap()?;
        ensure!(world.act("account-wipe", "ADMINDEV2")?["wipe"] == "account");
        receive_wipe(&mut second, pv::ACCOUNT_ONLY_REMOTE_WIPE)?;

        // unknown devices are an error, not a silent no-op
        let missing = Command::new(artifacts::host_binary()?)
            .args(["devices", "wipe", &world.user, "NOSUCHDEVICE", "--config"])
            .arg(world.gateway.config_path())
            .output()?;
        ensure!(!missing.status.success(), "wiping an unknown device succeeded");

        // with the server stopped the commands open the store themselves
        world.gateway.stop();
        let list = world.devices(&["list"])?;
        let first = entry(&list, "ADMINDEV1")?;
        ensure!(first["wipe"] == "full, acknowledged (1)", "{first:#}");
        ensure!(first["last_seen"].is_u64(), "last seen not kept in the store: {first:#}");
        ensure!(entry(&list, "ADMINDEV2")?["wipe"] == "account, acknowledged (1)", "{list:#}");
        ensure!(world.act("block", "ADMINDEV2")?["blocked"] == true, "offline block");
        let table = Command::new(artifacts::host_binary()?)
            .args(["devices", "list", "--config"])
            .arg(world.gateway.config_path())
            .output()?;
        let table = String::from_utf8(table.stdout)?;
        if !(table.contains("ADMINDEV2") && table.contains("blocked") && table.contains("iPhone16,2")) {
            bail!("the table misses what the JSON says:\n{table}");
        }
        Ok(())
    });
}
