//! Push end to end (issue #5): Pings parked in the host wake on new mail and on flag changes,
//! time out with Status 1 at the heartbeat, end when the same device pings again, report an
//! unknown folder with Status 7, and survive a Dovecot restart.
//!
//! Pings block, so each runs on its own thread while the test changes the mailbox. The order
//! "ping parked, then mail arrives" is not needed for correctness: a change made before the
//! Ping parks is answered at once with the same Status 2. Nothing is timed.

use std::thread;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use eas_edge_tests::eas::{Device, Version};
use eas_edge_tests::gateway::{Gateway, GatewayOptions, TEST_DOMAIN};
use eas_edge_tests::mailstack::MailStack;
use eas_edge_tests::smtp;
use eas_wbxml::tags::ping;
use eas_wbxml::{Document, Element, Limits};

const PASSWORD: &str = "push pw";
/// Short heartbeats for tests: the tenant allows 2–50 s.
const TENANT_EXTRA: &str = "[tenant.push]\nheartbeat_min_seconds = 2\nheartbeat_max_seconds = 50\n";

struct World {
    gateway: Gateway,
    stack: MailStack,
    user: String,
}

impl World {
    fn start(local_part: &str) -> World {
        let stack = MailStack::start().expect("mail stack");
        let user = format!("{local_part}@{TEST_DOMAIN}");
        stack.add_user(&user, PASSWORD).expect("mail user");
        let options =
            GatewayOptions { tenant_extra: TENANT_EXTRA.to_owned(), ..Default::default() };
        let gateway = Gateway::start_with(&stack, options).expect("gateway");
        World { gateway, stack, user }
    }

    /// A device that has synced its inbox to the end; returns it with the inbox ServerId and
    /// the SyncKey to continue with.
    fn synced_device(&self, device_id: &str) -> Result<(Device, String, String)> {
        let mut device =
            Device::new(&self.gateway.url(), &self.user, PASSWORD, device_id, Version::V16_1);
        let folders = device.bootstrap()?;
        let inbox = folders
            .adds
            .iter()
            .find(|folder| folder.folder_type == 2)
            .context("FolderSync lists no inbox")?
            .server_id
            .clone();
        let key = device.sync_start(&inbox)?;
        let key = device.sync_drain(&inbox, &key, 100, None)?.sync_key;
        Ok((device, inbox, key))
    }

    /// The same phone on a second connection (a Ping blocks its caller).
    fn twin(&self, device: &Device) -> Device {
        let mut twin = Device::new(
            &self.gateway.url(),
            &self.user,
            PASSWORD,
            &device.device_id,
            device.version,
        );
        twin.policy_key = device.policy_key;
        twin
    }

    fn deliver(&self, subject: &str) -> Result<()> {
        let message = format!(
            "From: sender@{TEST_DOMAIN}\r\nTo: {}\r\nSubject: {subject}\r\n\
             Message-ID: <{subject}@push.test>\r\n\r\nnew mail\r\n",
            self.user
        );
        smtp::send(
            self.stack.smtp_addr()?,
            None,
            &format!("sender@{TEST_DOMAIN}"),
            &[self.user.as_str()],
            message.as_bytes(),
        )
    }

    fn run(self, body: impl FnOnce(&World) -> Result<()>) {
        if let Err(error) = body(&self) {
            let log = self.gateway.log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(60)..].join("\n");
            panic!("{error:#}\n--- gateway log:\n{tail}");
        }
    }
}

/// Sends a Ping and returns its Status and the folders it lists.
fn ping(
    device: &mut Device,
    heartbeat: Option<u32>,
    folders: &[&str],
) -> Result<(u32, Vec<String>)> {
    let mut root = Element::new(ping::PING);
    if let Some(seconds) = heartbeat {
        root.push(Element::with_text(ping::HEARTBEAT_INTERVAL, seconds.to_string()));
    }
    if !folders.is_empty() {
        let mut list = Element::new(ping::FOLDERS);
        for id in folders {
            list.push(
                Element::new(ping::FOLDER)
                    .text_child(ping::ID, *id)
                    .text_child(ping::CLASS, "Email"),
            );
        }
        root.push(list);
    }
    let body = eas_wbxml::encode(&Document::new(root))?;
    let reply = device.post("Ping", Some("application/vnd.ms-sync.wbxml"), &body)?;
    if reply.status != 200 {
        bail!("Ping answered HTTP {}", reply.status);
    }
    if reply.headers.iter().any(|(name, _)| name.to_ascii_lowercase().starts_with("grip-")) {
        bail!("the host forwarded a Grip header to the phone: {:?}", reply.headers);
    }
    let answer = eas_wbxml::decode(&reply.body, &Limits::default())?.root;
    let status = answer
        .text_of(ping::STATUS)
        .context("Ping answer without Status")?
        .parse()
        .context("Ping Status is not a number")?;
    let listed = answer
        .child(ping::FOLDERS)
        .into_iter()
        .flat_map(|folders| folders.children(ping::FOLDER))
        .filter_map(|folder| folder.text().map(str::to_owned))
        .collect();
    Ok((status, listed))
}

/// Lets a Ping sent from another thread reach the host and park; the outcome does not depend
/// on it (see the module docs), it only makes the wake-up path the one exercised.
fn let_it_park() {
    thread::sleep(Duration::from_millis(700));
}

#[test]
fn ping_wakes_on_new_mail_and_on_flag_changes() {
    World::start("pushwake").run(|world| {
        let (mut device, inbox, key) = world.synced_device("PUSHWAKE1")?;
        let waiting = {
            let inbox = inbox.clone();
            let mut device = world.twin(&device);
            thread::spawn(move || ping(&mut device, Some(45), &[&inbox]))
        };
        let_it_park();
        world.deliver("wake1")?;
        let (status, listed) = waiting.join().expect("ping thread")?;
        if (status, listed.as_slice()) != (2, std::slice::from_ref(&inbox)) {
            bail!("new mail: expected Status 2 with the inbox, got {status} {listed:?}");
        }

        // sync the new mail, then a flag change made by another IMAP client wakes it too
        let drained = device.sync_drain(&inbox, &key, 100, None)?;
        let uid_server_id =
            drained.commands.first().context("the new mail was not synced")?.server_id.clone();
        let uid: u32 = uid_server_id.rsplit(':').next().unwrap_or_default().parse()?;
        let waiting = {
            let inbox = inbox.clone();
            let mut device = world.twin(&device);
            thread::spawn(move || ping(&mut device, None, &[&inbox]))
        };
        let_it_park();
        let mut imap = world.stack.imap_login(&world.user, PASSWORD)?;
        imap.select("INBOX")?;
        imap.run(&format!("UID STORE {uid} +FLAGS (\\Flagged)"))?;
        let (status, listed) = waiting.join().expect("ping thread")?;
        if (status, listed.as_slice()) != (2, std::slice::from_ref(&inbox)) {
            bail!("flag change: expected Status 2 with the inbox, got {status} {listed:?}");
        }
        Ok(())
    });
}

#[test]
fn ping_times_out_with_status_1_and_a_newer_ping_ends_the_older() {
    World::start("pushidle").run(|world| {
        let (mut device, inbox, _) = world.synced_device("PUSHIDLE1")?;
        let (status, _) = ping(&mut device, Some(2), &[&inbox])?;
        if status != 1 {
            bail!("an idle heartbeat must end with Status 1, got {status}");
        }
        let first = {
            let inbox = inbox.clone();
            let mut device = world.twin(&device);
            thread::spawn(move || ping(&mut device, Some(45), &[&inbox]))
        };
        let_it_park();
        let second = {
            let inbox = inbox.clone();
            let mut device = world.twin(&device);
            thread::spawn(move || ping(&mut device, Some(45), &[&inbox]))
        };
        let (status, _) = first.join().expect("first ping")?;
        if status != 1 {
            bail!("the superseded Ping must end with Status 1, got {status}");
        }
        world.deliver("after-supersede")?;
        let (status, _) = second.join().expect("second ping")?;
        if status != 2 {
            bail!("the newer Ping must wake on mail, got {status}");
        }
        Ok(())
    });
}

#[test]
fn ping_limits_and_unknown_folders() {
    World::start("pushlimits").run(|world| {
        let (mut device, inbox, _) = world.synced_device("PUSHLIMITS1")?;
        let (status, _) = ping(&mut device, Some(1), &[&inbox])?;
        if status != 5 {
            bail!("a heartbeat below the tenant's minimum must give Status 5, got {status}");
        }
        let (status, _) = ping(&mut device, Some(10), &["999999"])?;
        if status != 7 {
            bail!("an unknown folder must give Status 7, got {status}");
        }
        Ok(())
    });
}

#[test]
fn parked_pings_survive_an_imap_restart() {
    World::start("pushrestart").run(|world| {
        const DEVICES: usize = 20;
        let mut waiting = Vec::new();
        for index in 0..DEVICES {
            let (mut device, inbox, _) = world.synced_device(&format!("PUSHRESTART{index}"))?;
            waiting.push(thread::spawn(move || ping(&mut device, Some(45), &[&inbox])));
        }
        let_it_park();
        world.stack.imap_restart()?;
        world.deliver("after-restart")?;
        for (index, ping) in waiting.into_iter().enumerate() {
            let (status, _) = ping.join().expect("ping thread")?;
            if status != 2 {
                bail!("device {index}: expected Status 2 after the restart, got {status}");
            }
        }
        Ok(())
    });
}
