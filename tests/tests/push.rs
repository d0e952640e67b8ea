//! Push end to end (issue #5): Pings parked in the host wake on new mail and on flag changes,
//! time out with Status 1 at the heartbeat, end when the same device pings again, report an
//! unknown folder and a hierarchy changed by another client with Status 7, and survive a
//! Dovecot restart (100 parked Pings over several accounts). A Sync with HeartbeatInterval or
//! Wait waits the same way: it answers with the new mail, or empty at the heartbeat, or empty
//! at once when the device sends another request.
//!
//! Pings block, so each runs on its own thread while the test changes the mailbox. The order
//! "ping parked, then mail arrives" is not needed for correctness: a change made before the
//! Ping parks is answered at once with the same Status 2. Nothing is timed.

use std::thread;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use eas_edge_tests::eas::{Device, SyncAnswer, SyncCollection, SyncRequest, Version};
use eas_edge_tests::front::{Front, FrontEnd};
use eas_edge_tests::gateway::{GatewayOptions, TEST_DOMAIN};
use eas_edge_tests::mailstack::MailStack;
use eas_edge_tests::smtp;
use eas_wbxml::tags::ping;
use eas_wbxml::{Document, Element, Limits};

const PASSWORD: &str = "push pw";
/// Short heartbeats for tests: the tenant allows 2–50 s.
const HEARTBEAT_SECONDS: (u32, u32) = (2, 50);

struct World {
    front: Front,
    stack: MailStack,
    user: String,
}

impl World {
    fn start(front: FrontEnd, local_part: &str) -> World {
        let stack = MailStack::start().expect("mail stack");
        let user = format!("{local_part}@{TEST_DOMAIN}");
        stack.add_user(&user, PASSWORD).expect("mail user");
        let options =
            GatewayOptions { heartbeat_seconds: Some(HEARTBEAT_SECONDS), ..Default::default() };
        let front = Front::start(front, &stack, options).expect("gateway");
        World { front, stack, user }
    }

    /// A device that has synced its inbox to the end; returns it with the inbox ServerId and
    /// the SyncKey to continue with.
    fn synced_device(&self, device_id: &str) -> Result<(Device, String, String)> {
        self.synced_device_of(&self.user, device_id)
    }

    /// [`synced_device`](Self::synced_device) of another user of the stack.
    fn synced_device_of(&self, user: &str, device_id: &str) -> Result<(Device, String, String)> {
        let mut device = Device::new(&self.front.url(), user, PASSWORD, device_id, Version::V16_1);
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
            &self.front.url(),
            &device.user,
            PASSWORD,
            &device.device_id,
            device.version,
        );
        twin.policy_key = device.policy_key;
        twin
    }

    fn deliver(&self, subject: &str) -> Result<()> {
        self.deliver_to(&self.user, subject)
    }

    fn deliver_to(&self, user: &str, subject: &str) -> Result<()> {
        let message = format!(
            "From: sender@{TEST_DOMAIN}\r\nTo: {user}\r\nSubject: {subject}\r\n\
             Message-ID: <{subject}@push.test>\r\n\r\nnew mail\r\n"
        );
        smtp::send(
            self.stack.smtp_addr()?,
            None,
            &format!("sender@{TEST_DOMAIN}"),
            &[user],
            message.as_bytes(),
        )
    }

    fn run(self, body: impl FnOnce(&World) -> Result<()>) {
        if let Err(error) = body(&self) {
            let log = self.front.logs();
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

fn ping_wakes_on_new_mail_and_on_flag_changes(front: FrontEnd) {
    World::start(front, "pushwake").run(|world| {
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

fn ping_times_out_with_status_1_and_a_newer_ping_ends_the_older(front: FrontEnd) {
    World::start(front, "pushidle").run(|world| {
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

fn ping_limits_and_unknown_folders(front: FrontEnd) {
    World::start(front, "pushlimits").run(|world| {
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

fn parked_pings_survive_an_imap_restart(front: FrontEnd) {
    World::start(front, "pushrestart").run(|world| {
        // 100 parked Pings over 5 accounts: one watcher (NOTIFY connection) per account, 20
        // devices each. The devices are set up first so that every Ping parks well within
        // its heartbeat.
        const ACCOUNTS: usize = 5;
        const DEVICES_PER_ACCOUNT: usize = 20;
        let mut users = vec![world.user.clone()];
        for index in 1..ACCOUNTS {
            let user = format!("pushrestart{index}@{TEST_DOMAIN}");
            world.stack.add_user(&user, PASSWORD)?;
            users.push(user);
        }
        let mut devices = Vec::new();
        for (account, user) in users.iter().enumerate() {
            for index in 0..DEVICES_PER_ACCOUNT {
                let id = format!("PUSHRESTART{account}X{index}");
                let (device, inbox, _) = world.synced_device_of(user, &id)?;
                devices.push((device, inbox));
            }
        }
        let waiting: Vec<_> = devices
            .into_iter()
            .map(|(mut device, inbox)| {
                let who = format!("{} {}", device.user, device.device_id);
                (who, thread::spawn(move || ping(&mut device, Some(50), &[&inbox])))
            })
            .collect();
        // parking 100 requests takes a moment more than one
        thread::sleep(Duration::from_secs(3));
        world.stack.imap_restart()?;
        for user in &users {
            world.deliver_to(user, &format!("after-restart-{}", user.replace('@', "-")))?;
        }
        for (who, ping) in waiting {
            let (status, _) = ping.join().expect("ping thread")?;
            if status != 2 {
                bail!("{who}: expected Status 2 after the restart, got {status}");
            }
        }
        Ok(())
    });
}

fn a_hierarchy_changed_by_another_client_ends_a_parked_ping_with_status_7(front: FrontEnd) {
    World::start(front, "pushtree").run(|world| {
        let (mut device, inbox, _) = world.synced_device("PUSHTREE1")?;
        let mut imap = world.stack.imap_login(&world.user, PASSWORD)?;
        for (what, command) in [
            ("created", "CREATE \"Fresh\""),
            ("renamed", "RENAME \"Fresh\" \"Renamed\""),
            ("deleted", "DELETE \"Renamed\""),
        ] {
            let waiting = {
                let inbox = inbox.clone();
                let mut device = world.twin(&device);
                thread::spawn(move || ping(&mut device, Some(45), &[&inbox]))
            };
            let_it_park();
            imap.run(command)?;
            let (status, _) = waiting.join().expect("ping thread")?;
            if status != 7 {
                bail!("a folder {what} by another client must end the Ping with 7, got {status}");
            }
            // the device catches up; its next Ping parks again until the heartbeat
            let folders = device.folder_sync("0")?;
            if folders.status != 1 {
                bail!("FolderSync after Status 7 answered {}", folders.status);
            }
            let (status, _) = ping(&mut device, Some(2), &[&inbox])?;
            if status != 1 {
                bail!("after FolderSync an idle Ping must end with 1, got {status}");
            }
        }
        Ok(())
    });
}

/// Sends a Sync of the inbox with HeartbeatInterval `seconds`.
fn sync_waiting(device: &mut Device, inbox: &str, key: &str, seconds: u32) -> Result<SyncAnswer> {
    device.sync(&SyncRequest {
        heartbeat_interval: Some(seconds),
        ..SyncRequest::one(SyncCollection::new(key, inbox))
    })
}

fn sync_with_a_heartbeat_waits_like_a_ping(front: FrontEnd) {
    World::start(front, "pushsync").run(|world| {
        let (mut device, inbox, key) = world.synced_device("PUSHSYNC1")?;

        // out of range: Status 14 with the nearest allowed value (tenant 2..=50 s; Wait is
        // 1..=59 minutes)
        let short = sync_waiting(&mut device, &inbox, &key, 1)?;
        if (short.status, short.limit) != (Some(14), Some(2)) {
            bail!("HeartbeatInterval 1: expected 14 with Limit 2, got {:?}", short.xml());
        }
        let long = device.sync(&SyncRequest {
            wait: Some(60),
            ..SyncRequest::one(SyncCollection::new(key.as_str(), inbox.as_str()))
        })?;
        if (long.status, long.limit) != (Some(14), Some(59)) {
            bail!("Wait 60: expected 14 with Limit 59, got {:?}", long.xml());
        }

        // nothing new: held for the heartbeat, then the empty answer
        let started = std::time::Instant::now();
        let idle = sync_waiting(&mut device, &inbox, &key, 2)?;
        if !idle.is_empty() || started.elapsed() < Duration::from_millis(1500) {
            bail!(
                "an idle Sync must wait ~2 s and answer empty, got {:?} after {:?}",
                idle.xml(),
                started.elapsed()
            );
        }

        // new mail while it waits: the answer carries it
        let waiting = {
            let (inbox, key) = (inbox.clone(), key.clone());
            let mut device = world.twin(&device);
            thread::spawn(move || sync_waiting(&mut device, &inbox, &key, 45))
        };
        let_it_park();
        world.deliver("sync-wake")?;
        let woken = waiting.join().expect("sync thread")?;
        let adds = woken.commands(&inbox).len();
        if woken.status_of(&inbox) != Some(1) || adds != 1 {
            bail!("the waiting Sync must answer the new mail, got {}", woken.xml());
        }
        let key = woken.collection(&inbox).and_then(|c| c.sync_key.clone()).context("no key")?;

        // another request of the device ends the waiting Sync at once, empty
        let waiting = {
            let (inbox, key) = (inbox.clone(), key.clone());
            let mut device = world.twin(&device);
            thread::spawn(move || sync_waiting(&mut device, &inbox, &key, 45))
        };
        let_it_park();
        let started = std::time::Instant::now();
        let newer = {
            let inbox = inbox.clone();
            let mut device = world.twin(&device);
            thread::spawn(move || ping(&mut device, Some(2), &[&inbox]))
        };
        let ended = waiting.join().expect("sync thread")?;
        // well before its 45 s heartbeat
        if !ended.is_empty() || started.elapsed() > Duration::from_secs(20) {
            bail!(
                "a superseded Sync must answer empty at once, got {} after {:?}",
                ended.xml(),
                started.elapsed()
            );
        }
        let (status, _) = newer.join().expect("ping thread")?;
        if status != 1 {
            bail!("the Ping that ended the Sync must end with 1 at its heartbeat, got {status}");
        }
        Ok(())
    });
}

eas_edge_tests::for_each_front_end!(
    ping_wakes_on_new_mail_and_on_flag_changes,
    ping_times_out_with_status_1_and_a_newer_ping_ends_the_older,
    ping_limits_and_unknown_folders,
    parked_pings_survive_an_imap_restart,
    a_hierarchy_changed_by_another_client_ends_a_parked_ping_with_status_7,
    sync_with_a_heartbeat_waits_like_a_ping,
);
