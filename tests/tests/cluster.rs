//! A cluster end to end (issue #9): one PostgreSQL, one mail stack, two gateway processes that
//! share the PostgreSQL state store, no sticky sessions.
//!
//! - A device alternates between the nodes request by request (each Sync page on the other
//!   node) and sees one consistent mailbox: every message once, deletions and new mail in the
//!   next page, whichever node answers.
//! - Push across nodes: a Ping parked on one node wakes on new mail whichever node watches the
//!   account; a newer Ping of the device on the other node ends the older one.
//! - `kill -9` of the node holding the account's watcher lease: a Ping parked on the other node
//!   still wakes on new mail (the survivor takes the lease over).
//!
//! Pings block, so each runs on its own thread; as in tests/push.rs, the order "parked, then
//! mail arrives" only selects the path exercised, not the outcome. Nothing is timed: a missing
//! wake-up shows as Status 1 at the heartbeat instead of Status 2.

use std::collections::BTreeSet;
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use eas_edge_tests::eas::{CommandKind, Device, SyncCollection, Version};
use eas_edge_tests::gateway::{Gateway, GatewayOptions, TEST_DOMAIN};
use eas_edge_tests::mailstack::MailStack;
use eas_edge_tests::postgres::Postgres;
use eas_edge_tests::smtp;
use eas_wbxml::tags::ping;
use eas_wbxml::{Document, Element, Limits};

const PASSWORD: &str = "cluster pw";
/// The tenant allows Pings of 2–50 s.
const HEARTBEAT_SECONDS: (u32, u32) = (2, 50);
/// Longer than any wake-up path takes, shorter than the test's patience.
const PING_SECONDS: u32 = 50;
/// How long Postfix may take to deliver a test message (a failure, not a measurement).
const DELIVERY_PATIENCE: Duration = Duration::from_secs(60);

struct Cluster {
    // field order is drop order: gateways before the database they use
    nodes: Vec<Gateway>,
    stack: MailStack,
    postgres: Postgres,
    user: String,
}

impl Cluster {
    fn start(local_part: &str) -> Cluster {
        let postgres = Postgres::start().expect("PostgreSQL");
        let stack = MailStack::start().expect("mail stack");
        let user = format!("{local_part}@{TEST_DOMAIN}");
        stack.add_user(&user, PASSWORD).expect("mail user");
        let state = format!(
            "[state]\nbackend = \"postgres\"\n\n[state.postgres]\nurl = \"{}\"\n\
             pool_size = 8\nwatcher_takeover_seconds = 1",
            postgres.url()
        );
        let nodes = (0..2)
            .map(|_| {
                let options = GatewayOptions {
                    heartbeat_seconds: Some(HEARTBEAT_SECONDS),
                    state: Some(state.clone()),
                    log_level: Some("info,eas_edge::cluster=debug,eas_edge::push=debug".into()),
                    ..Default::default()
                };
                Gateway::start_with(&stack, options).expect("gateway node")
            })
            .collect();
        Cluster { nodes, stack, postgres, user }
    }

    /// The phone `device_id` talking to node `node` (same credentials and policy key: the
    /// phone itself does not know which node answers).
    fn device(&self, node: usize, device_id: &str, policy_key: Option<u32>) -> Device {
        let mut device =
            Device::new(&self.nodes[node].url(), &self.user, PASSWORD, device_id, Version::V16_1);
        device.policy_key = policy_key;
        device
    }

    fn deliver(&self, subject: &str) -> Result<()> {
        let message = format!(
            "From: sender@{TEST_DOMAIN}\r\nTo: {user}\r\nSubject: {subject}\r\n\
             Message-ID: <{subject}@cluster.test>\r\n\r\nnew mail\r\n",
            user = self.user
        );
        smtp::send(
            self.stack.smtp_addr()?,
            None,
            &format!("sender@{TEST_DOMAIN}"),
            &[self.user.as_str()],
            message.as_bytes(),
        )
    }

    /// A device provisioned and folder-synced on node 0, its inbox synced to the end on node
    /// 1: (policy key, inbox ServerId, SyncKey).
    fn synced_device(&self, device_id: &str) -> Result<(Option<u32>, String, String)> {
        let mut first = self.device(0, device_id, None);
        let folders = first.bootstrap()?;
        let inbox = folders
            .adds
            .iter()
            .find(|folder| folder.folder_type == 2)
            .context("FolderSync lists no inbox")?
            .server_id
            .clone();
        let mut second = self.device(1, device_id, first.policy_key);
        let key = second.sync_start(&inbox)?;
        let key = second.sync_drain(&inbox, &key, 100, None)?.sync_key;
        Ok((first.policy_key, inbox, key))
    }

    fn run(self, body: impl FnOnce(&mut Cluster) -> Result<()>) {
        let mut cluster = self;
        if let Err(error) = body(&mut cluster) {
            let mut logs = String::new();
            for (index, node) in cluster.nodes.iter().enumerate() {
                let log = node.log();
                let lines: Vec<&str> = log.lines().collect();
                let tail = lines[lines.len().saturating_sub(40)..].join("\n");
                logs.push_str(&format!("--- node {index} log:\n{tail}\n"));
            }
            let pg = cluster.postgres.log_text();
            panic!("{error:#}\n{logs}--- postgres log:\n{pg}");
        }
    }
}

/// Sends a Ping for `folders` and returns its Status.
fn ping(device: &mut Device, heartbeat: u32, folders: &[&str]) -> Result<u32> {
    let mut list = Element::new(ping::FOLDERS);
    for id in folders {
        list.push(
            Element::new(ping::FOLDER).text_child(ping::ID, *id).text_child(ping::CLASS, "Email"),
        );
    }
    let root = Element::new(ping::PING)
        .text_child(ping::HEARTBEAT_INTERVAL, heartbeat.to_string())
        .with_child(list);
    let body = eas_wbxml::encode(&Document::new(root))?;
    let reply = device.post("Ping", Some("application/vnd.ms-sync.wbxml"), &body)?;
    if reply.status != 200 {
        bail!("Ping answered HTTP {}", reply.status);
    }
    let answer = eas_wbxml::decode(&reply.body, &Limits::default())?.root;
    answer.text_of(ping::STATUS).context("Ping answer without Status")?.parse().context("Status")
}

fn ping_in_thread(
    cluster: &Cluster,
    node: usize,
    device_id: &str,
    policy_key: Option<u32>,
    inbox: &str,
) -> thread::JoinHandle<Result<u32>> {
    let mut device = cluster.device(node, device_id, policy_key);
    let inbox = inbox.to_string();
    thread::spawn(move || ping(&mut device, PING_SECONDS, &[&inbox]))
}

/// Lets a Ping sent from another thread reach its node and park (see the module docs).
fn let_it_park() {
    thread::sleep(Duration::from_millis(700));
}

#[test]
fn a_device_alternating_between_nodes_sees_one_mailbox() {
    Cluster::start("alternate").run(|cluster| {
        for i in 0..7 {
            cluster.deliver(&format!("first-{i}"))?;
        }
        // delivery through Postfix is asynchronous: sync once all of it is in the mailbox
        let mut imap = cluster.stack.imap_login(&cluster.user, PASSWORD)?;
        imap.wait_for_messages("INBOX", 7, DELIVERY_PATIENCE)?;
        let device_id = "ALTERNATE1";
        let mut first = cluster.device(0, device_id, None);
        let folders = first.bootstrap()?;
        let inbox = folders
            .adds
            .iter()
            .find(|folder| folder.folder_type == 2)
            .context("FolderSync lists no inbox")?
            .server_id
            .clone();
        let policy_key = first.policy_key;
        let mut devices = [first, cluster.device(1, device_id, policy_key)];
        let mut key = devices[1].sync_start(&inbox)?;

        // Window 2: four pages, each answered by the other node than the one before.
        let mut held = BTreeSet::new();
        let mut request = 0usize;
        let mut sync_page = |key: &mut String, held: &mut BTreeSet<String>| -> Result<bool> {
            let device = &mut devices[request % 2];
            request += 1;
            let answer = device.sync_one(SyncCollection::new(key.clone(), &inbox).window(2))?;
            let Some(collection) = answer.collection(&inbox) else {
                return Ok(false); // the empty answer: nothing changed
            };
            if collection.status != Some(1) {
                bail!(
                    "Sync on node {}: Status {:?}:\n{}",
                    (request - 1) % 2,
                    collection.status,
                    answer.xml()
                );
            }
            for command in &collection.commands {
                let fresh = match command.kind {
                    CommandKind::Add => held.insert(command.server_id.clone()),
                    CommandKind::Delete | CommandKind::SoftDelete => {
                        held.remove(&command.server_id)
                    }
                    _ => true,
                };
                if !fresh {
                    bail!(
                        "{:?} of {} does not fit what the device holds",
                        command.kind,
                        command.server_id
                    );
                }
            }
            *key = collection.sync_key.clone().context("Sync answer without SyncKey")?;
            Ok(collection.more_available)
        };
        while sync_page(&mut key, &mut held)? {}
        if held.len() != 7 {
            bail!(
                "after the initial sync the device holds {} messages, the mailbox has 7",
                held.len()
            );
        }

        // Another client deletes one message, two new ones arrive: the next pages (again on
        // alternating nodes) report exactly that.
        imap.select("INBOX")?;
        imap.run("STORE 1 +FLAGS.SILENT (\\Deleted)")?;
        imap.run("EXPUNGE")?;
        cluster.deliver("second-0")?;
        cluster.deliver("second-1")?;
        imap.wait_for_messages("INBOX", 8, DELIVERY_PATIENCE)?;
        while sync_page(&mut key, &mut held)? {}
        if held.len() != 8 {
            bail!(
                "after a deletion and two new messages the device holds {}, expected 8",
                held.len()
            );
        }
        // Nothing changed since: both nodes agree there is nothing to send.
        for _ in 0..2 {
            if sync_page(&mut key, &mut held)? {
                bail!("MoreAvailable with nothing new");
            }
        }
        if held.len() != 8 {
            bail!("an unchanged mailbox changed what the device holds: {}", held.len());
        }
        Ok(())
    });
}

#[test]
fn push_crosses_nodes_and_survives_the_watcher_node_dying() {
    Cluster::start("clusterpush").run(|cluster| {
        let (phone_key, inbox, mut phone_sync) = cluster.synced_device("PHONE1")?;
        let (tablet_key, _, mut tablet_sync) = cluster.synced_device("TABLET1")?;
        // A Ping answers at once while the device has not synced a change: each device syncs
        // what woke it (on the other node than before) before it pings again.
        let catch_up = |node: usize, device_id: &str, policy: Option<u32>, key: &mut String| {
            let mut device = cluster.device(node, device_id, policy);
            *key = device.sync_drain(&inbox, key, 100, None)?.sync_key;
            anyhow::Ok(())
        };

        // The phone parks on node 0 first: node 0 takes the account's watcher lease.
        let phone = ping_in_thread(cluster, 0, "PHONE1", phone_key, &inbox);
        cluster.nodes[0].wait_for_log("cluster: watching", 1)?;
        // The tablet parks on node 1, which asks node 0 to watch for it.
        let tablet = ping_in_thread(cluster, 1, "TABLET1", tablet_key, &inbox);
        let_it_park();
        cluster.deliver("both-wake")?;
        let (phone_status, tablet_status) = (
            phone.join().expect("phone ping thread")?,
            tablet.join().expect("tablet ping thread")?,
        );
        if (phone_status, tablet_status) != (2, 2) {
            bail!("new mail: expected Status 2 on both nodes, got phone {phone_status}, tablet {tablet_status}");
        }
        catch_up(1, "PHONE1", phone_key, &mut phone_sync)?;
        catch_up(0, "TABLET1", tablet_key, &mut tablet_sync)?;

        // A newer Ping of the tablet on node 0 ends its older one on node 1.
        let older = ping_in_thread(cluster, 1, "TABLET1", tablet_key, &inbox);
        let_it_park();
        let newer = ping_in_thread(cluster, 0, "TABLET1", tablet_key, &inbox);
        let status = older.join().expect("older ping thread")?;
        if status != 1 {
            bail!("the Ping superseded from the other node must end with Status 1, got {status}");
        }
        cluster.deliver("after-supersede")?;
        let status = newer.join().expect("newer ping thread")?;
        if status != 2 {
            bail!("the newer Ping must wake on mail, got {status}");
        }
        catch_up(1, "PHONE1", phone_key, &mut phone_sync)?;
        catch_up(1, "TABLET1", tablet_key, &mut tablet_sync)?;

        // Node 0 holds the lease again (its Ping above parked first): kill -9 it while the
        // phone's Ping is parked there and the tablet's on node 1.
        let phone = ping_in_thread(cluster, 0, "PHONE1", phone_key, &inbox);
        let_it_park();
        let tablet = ping_in_thread(cluster, 1, "TABLET1", tablet_key, &inbox);
        let_it_park();
        let watched_before = cluster.nodes[1].log().matches("cluster: watching").count();
        cluster.nodes[0].stop();
        let _ = phone.join(); // its connection died with the node
        // Node 1 takes the lease over within the takeover time (1 s here)...
        cluster.nodes[1].wait_for_log("cluster: watching", watched_before + 1)?;
        // ...and its parked Ping wakes on new mail.
        cluster.deliver("after-kill")?;
        let status = tablet.join().expect("tablet ping thread")?;
        if status != 2 {
            bail!("after the watcher node died, the Ping on the other node got Status {status}");
        }
        Ok(())
    });
}
