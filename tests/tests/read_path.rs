//! The read path end to end (issue #4): a phone — the spec-written client in
//! `eas_edge_tests::eas` — provisions, syncs the folder hierarchy, pages through a mailbox, sees
//! new mail, flag changes and expunges, fetches bodies and attachments, through the real host
//! (`eas-edge` + the plugin) against a real Dovecot/Postfix.
//!
//! Every test starts its own mail stack and gateway. Expectations come from the protocol
//! documents (section numbers of MS-ASCMD / MS-ASAIRS / MS-ASEMAIL as cited in
//! /work/shared/spec/EAS-NOTES.md), not from the engine. Where a test fails, the message says
//! what was sent, what the spec expects and what came back, followed by the gateway's log.
//! Nothing is timed.

use std::collections::{HashMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use eas_edge_tests::eas::write::MailboxQuery;
use eas_edge_tests::eas::{
    BodyPreference, CommandKind, Device, Email, EstimateCollection, FetchRequest, Folder,
    FolderSyncAnswer, ServerCommand, SyncCollection, SyncOptions, SyncRequest, Version, libwbxml,
};
use eas_edge_tests::faults::AdminMetrics;
use eas_edge_tests::front::{Front, FrontEnd};
use eas_edge_tests::gateway::{GatewayOptions, TEST_DOMAIN};
use eas_edge_tests::imap::{AppendOptions, ImapClient};
use eas_edge_tests::mailstack::MailStack;
use eas_edge_tests::messages::{MessageGenerator, TestMessage, rfc5322_date};
use eas_edge_tests::seed::seed_mailbox;
use eas_edge_tests::smtp;

const PASSWORD: &str = "read path pw";
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);
/// The spec's largest window: bigger requests are treated as 512 (MS-ASCMD §2.2.3.199).
const MAX_WINDOW: usize = 512;

// ---------------------------------------------------------------------------------------------
// Harness

/// A mail stack with one user and a gateway in front of it.
struct World {
    // dropped first: the gateway goes before the stack it talks to
    front: Front,
    stack: MailStack,
    user: String,
}

impl World {
    fn start(front: FrontEnd, local_part: &str) -> World {
        World::start_with(front, local_part, GatewayOptions::default())
    }

    fn start_with(front: FrontEnd, local_part: &str, options: GatewayOptions) -> World {
        let stack = MailStack::start().expect("mail stack");
        let user = format!("{local_part}@{TEST_DOMAIN}");
        stack.add_user(&user, PASSWORD).expect("mail user");
        let front = Front::start(front, &stack, options).expect("gateway");
        World { front, stack, user }
    }

    fn device(&self, device_id: &str, version: Version) -> Device {
        Device::new(&self.front.url(), &self.user, PASSWORD, device_id, version)
    }

    fn imap(&self) -> Result<ImapClient> {
        self.stack.imap_login(&self.user, PASSWORD)
    }

    /// Runs the test body; an error or a panic fails the test with the gateway's log attached.
    fn run(mut self, body: impl FnOnce(&mut World) -> Result<()>) {
        let outcome = catch_unwind(AssertUnwindSafe(|| body(&mut self)));
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(error)) => panic!("{error:#}\n{}", self.log_tail()),
            Err(panic) => {
                eprintln!("{}", self.log_tail());
                resume_unwind(panic)
            }
        }
    }

    fn log_tail(&self) -> String {
        let log = self.front.logs();
        let lines: Vec<&str> = log.lines().collect();
        let tail = &lines[lines.len().saturating_sub(60)..];
        format!("--- gateway log (last {} lines):\n{}", tail.len(), tail.join("\n"))
    }
}

/// A device id per test and version: 1-32 alphanumerics (MS-ASHTTP §2.2.1.1.1.2.3).
fn device_id(prefix: &str, version: Version) -> String {
    format!("{prefix}{}", version.as_str().replace('.', ""))
}

/// The one folder of `folder_type` (2 Inbox, 3 Drafts, 4 Deleted Items, 5 Sent Items).
fn folder_of_type(folders: &FolderSyncAnswer, folder_type: u32) -> Result<&Folder> {
    let found: Vec<&Folder> =
        folders.adds.iter().filter(|f| f.folder_type == folder_type).collect();
    match found.as_slice() {
        [folder] => Ok(folder),
        _ => bail!(
            "FolderSync 0: expected exactly one folder of Type {folder_type} (MS-ASCMD \
             §2.2.3.186.3), found {}:\n{}",
            found.len(),
            folders.xml()
        ),
    }
}

fn folder_named<'a>(folders: &'a FolderSyncAnswer, name: &str) -> Result<&'a Folder> {
    folders
        .adds
        .iter()
        .find(|f| f.display_name == name)
        .with_context(|| format!("FolderSync 0 has no folder {name:?}:\n{}", folders.xml()))
}

/// Provision, FolderSync 0, Sync 0 of the Inbox: the device, the Inbox id, the first Sync key.
fn bootstrap_inbox(
    world: &World,
    device_id: &str,
    version: Version,
) -> Result<(Device, String, String)> {
    let mut device = world.device(device_id, version);
    let folders = device.bootstrap().with_context(|| format!("bootstrap of EAS {version}"))?;
    let inbox = folder_of_type(&folders, 2)?.server_id.clone();
    let key = device.sync_start(&inbox).with_context(|| format!("Sync 0 (EAS {version})"))?;
    Ok((device, inbox, key))
}

/// ApplicationData of each Add, by Subject.
fn adds_by_subject(commands: &[ServerCommand]) -> Result<HashMap<String, (String, Email)>> {
    let mut map = HashMap::new();
    for command in commands.iter().filter(|c| c.kind == CommandKind::Add) {
        let email = command.email()?;
        let subject = email.subject.clone().unwrap_or_default();
        if map.insert(subject.clone(), (command.server_id.clone(), email)).is_some() {
            bail!("two Adds with Subject {subject:?}");
        }
    }
    Ok(map)
}

/// One Sync with the current key; returns the commands and moves the key on. Checks Status 1
/// and that the server had nothing more (no MoreAvailable).
fn sync_changes(device: &mut Device, inbox: &str, key: &mut String) -> Result<Vec<ServerCommand>> {
    let answer = device.sync_one(SyncCollection::new(key.clone(), inbox).window(100))?;
    ensure!(answer.status.is_none(), "Sync: global Status {:?}:\n{}", answer.status, answer.xml());
    // nothing to report: the empty response, or the collection left out (§2.2.1.21.2)
    let Some(collection) = answer.collection(inbox) else {
        ensure!(answer.collections.is_empty(), "Sync answer without the Inbox:\n{}", answer.xml());
        return Ok(Vec::new());
    };
    ensure!(collection.status == Some(1), "Sync status {:?}:\n{}", collection.status, answer.xml());
    ensure!(!collection.more_available, "unexpected MoreAvailable:\n{}", answer.xml());
    if let Some(new_key) = &collection.sync_key {
        *key = new_key.clone();
    }
    Ok(collection.commands.clone())
}

/// Builds small RFC 5322 messages whose every byte the test knows.
struct Mail {
    headers: Vec<String>,
}

impl Mail {
    fn new(subject: &str, to: &str, n: i64) -> Mail {
        Mail {
            headers: vec![
                format!("Date: {}", rfc5322_date(1_748_000_000 + n * 60, 120)),
                "From: \"Read Path Tester\" <tester@example.org>".to_string(),
                format!("To: <{to}>"),
                format!("Subject: {subject}"),
                format!("Message-ID: <read-path-{n}@example.org>"),
                "MIME-Version: 1.0".to_string(),
            ],
        }
    }

    fn head(&self) -> String {
        let mut head = self.headers.join("\r\n");
        head.push_str("\r\n");
        head
    }

    fn plain(&self, text: &str) -> Vec<u8> {
        format!(
            "{}Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\n{text}",
            self.head()
        )
        .into_bytes()
    }

    fn alternative(&self, text: &str, html: &str) -> Vec<u8> {
        let b = "=_alt_boundary_7";
        format!(
            "{}Content-Type: multipart/alternative; boundary=\"{b}\"\r\n\r\n--{b}\r\n\
             Content-Type: text/plain; charset=us-ascii\r\n\r\n{text}\r\n--{b}\r\n\
             Content-Type: text/html; charset=us-ascii\r\n\r\n{html}\r\n--{b}--\r\n",
            self.head()
        )
        .into_bytes()
    }

    /// multipart/mixed: the text, then each attachment base64-encoded.
    fn with_attachments(&self, text: &str, attachments: &[(&str, &str, &[u8])]) -> Vec<u8> {
        let b = "=_mixed_boundary_9";
        let mut out = format!(
            "{}Content-Type: multipart/mixed; boundary=\"{b}\"\r\n\r\n--{b}\r\n\
             Content-Type: text/plain; charset=us-ascii\r\n\r\n{text}\r\n",
            self.head()
        );
        for (name, content_type, bytes) in attachments {
            out.push_str(&format!(
                "--{b}\r\nContent-Type: {content_type}; name=\"{name}\"\r\n\
                 Content-Disposition: attachment; filename=\"{name}\"\r\n\
                 Content-Transfer-Encoding: base64\r\n\r\n{}",
                base64_lines(bytes)
            ));
        }
        out.push_str(&format!("--{b}--\r\n"));
        out.into_bytes()
    }
}

fn base64_lines(bytes: &[u8]) -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut out = String::with_capacity(encoded.len() + encoded.len() / 38);
    for line in encoded.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push_str("\r\n");
    }
    out
}

/// Deterministic bytes (all 256 values occur).
fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// A text body of about `size` bytes in lines of at most 70, starting with `first`.
fn long_text(first: &str, size: usize) -> String {
    let mut text = format!("{first}\r\n\r\n");
    let mut n = 0;
    while text.len() < size {
        text.push_str(&format!("Line {n:04}: the quick brown fox jumps over the lazy dog.\r\n"));
        n += 1;
    }
    text
}

/// Text compared across encodings: line ends normalised, trailing white space dropped.
fn normalised(text: &str) -> String {
    text.replace("\r\n", "\n").trim_end().to_string()
}

fn append(imap: &mut ImapClient, raw: &[u8]) -> Result<u32> {
    imap.append("INBOX", raw, &AppendOptions::default())?.context("APPEND without APPENDUID")
}

fn first_difference(a: &[u8], b: &[u8]) -> String {
    let at = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let show = |bytes: &[u8]| {
        String::from_utf8_lossy(&bytes[at.saturating_sub(40)..(at + 40).min(bytes.len())])
            .into_owned()
    };
    format!(
        "lengths {} vs {}, first difference at byte {at}: {:?} vs {:?}",
        a.len(),
        b.len(),
        show(a),
        show(b)
    )
}

// ---------------------------------------------------------------------------------------------
// Bootstrap and the folder hierarchy

fn bootstrap_and_folder_hierarchy_changes(front: FrontEnd) {
    World::start(front, "hierarchy").run(|world| {
        let mut imap = world.imap()?;
        imap.run("CREATE Projects")?;
        imap.run("CREATE Projects/Alpha")?;

        let mut devices = Vec::new();
        for version in Version::TESTED {
            let mut device = world.device(&device_id("BOOT", version), version);
            let folders = device.bootstrap()?;
            let context = || format!("EAS {version}, FolderSync 0:\n{}", folders.xml());
            let key = folders.sync_key.clone().with_context(context)?;
            ensure!(!key.is_empty() && key != "0", "new folder key {key:?}: {}", context());
            if let Some(count) = folders.count {
                ensure!(count as usize == folders.adds.len(), "Count {count} ≠ adds: {}", context());
            }
            for (folder_type, name) in [(2, None), (3, Some("Drafts")), (4, Some("Trash")), (5, Some("Sent"))] {
                let folder = folder_of_type(&folders, folder_type)?;
                ensure!(folder.parent_id == "0", "{folder:?} is not at the root: {}", context());
                if let Some(name) = name {
                    ensure!(folder.display_name == name, "Type {folder_type} is {folder:?}: {}", context());
                }
            }
            let projects = folder_named(&folders, "Projects")?;
            let alpha = folder_named(&folders, "Alpha")?;
            ensure!(projects.folder_type == 12 && projects.parent_id == "0", "{projects:?}: {}", context());
            ensure!(
                alpha.folder_type == 12 && alpha.parent_id == projects.server_id,
                "Alpha must be a user mail folder (12) under Projects ({}): {alpha:?}\n{}",
                projects.server_id,
                context()
            );
            let ids: HashSet<&str> = folders.adds.iter().map(|f| f.server_id.as_str()).collect();
            ensure!(ids.len() == folders.adds.len(), "duplicate folder ServerIds: {}", context());
            for folder in &folders.adds {
                ensure!(
                    folder.parent_id == "0" || ids.contains(folder.parent_id.as_str()),
                    "{folder:?} has an unknown parent: {}",
                    context()
                );
            }

            // MS-ASCMD §3.1.5.3: a re-sync from 0 keeps every folder's ServerId.
            let again = device.folder_sync("0")?;
            let ids_of = |answer: &FolderSyncAnswer| -> HashMap<String, String> {
                answer.adds.iter().map(|f| (f.display_name.clone(), f.server_id.clone())).collect()
            };
            ensure!(ids_of(&again) == ids_of(&folders), "FolderSync 0 again changed ServerIds:\n{}", again.xml());
            let key = again.sync_key.clone().context("FolderSync 0 again: no SyncKey")?;

            // nothing changed: Status 1, no changes
            let unchanged = device.folder_sync(&key)?;
            ensure!(
                unchanged.status == 1 && unchanged.change_count() == 0,
                "EAS {version}: FolderSync with the current key and no change:\n{}",
                unchanged.xml()
            );
            let key = unchanged.sync_key.clone().unwrap_or(key);

            // Sync 0 creates the relationship and returns no data (MS-ASCMD §2.2.3.181.4)
            let inbox = folder_of_type(&folders, 2)?.server_id.clone();
            device.sync_start(&inbox).with_context(|| format!("EAS {version}"))?;
            devices.push((device, key));
        }

        imap.run("CREATE Receipts")?;
        let mut receipts_ids = Vec::new();
        for (device, key) in &mut devices {
            let answer = device.folder_sync(key)?;
            let version = device.version;
            ensure!(
                answer.status == 1 && answer.adds.len() == 1 && answer.change_count() == 1,
                "EAS {version}: after IMAP CREATE Receipts, expected one Add:\n{}",
                answer.xml()
            );
            let added = &answer.adds[0];
            ensure!(
                added.display_name == "Receipts" && added.parent_id == "0" && added.folder_type == 12,
                "EAS {version}: {added:?}"
            );
            let new_key = answer.sync_key.clone().context("FolderSync with changes but no new SyncKey")?;
            ensure!(new_key != *key, "EAS {version}: changes returned under the old key {key}");
            *key = new_key;
            receipts_ids.push(added.server_id.clone());
        }

        // RENAME: with RFC 8474 OBJECTID the folder keeps its identity (one Update, same
        // ServerId); without it (Dovecot 2.3) a rename is indistinguishable from DELETE + CREATE,
        // so the phone gets a Delete of the old id and an Add under a new one (ServerIds are
        // never reused, EAS-NOTES §8)
        let object_ids = imap.has_capability("OBJECTID")?;
        imap.run("RENAME Receipts Invoices")?;
        let mut invoices_ids = Vec::new();
        for ((device, key), receipts) in devices.iter_mut().zip(&receipts_ids) {
            let answer = device.folder_sync(key)?;
            let version = device.version;
            ensure!(answer.status == 1, "EAS {version}: FolderSync after RENAME:\n{}", answer.xml());
            let renamed = if object_ids {
                ensure!(
                    answer.updates.len() == 1 && answer.change_count() == 1,
                    "EAS {version}: after IMAP RENAME (the server has OBJECTID) expected one Update \
                     keeping ServerId {receipts}:\n{}",
                    answer.xml()
                );
                let updated = &answer.updates[0];
                ensure!(
                    updated.server_id == *receipts,
                    "EAS {version}: {updated:?}, expected ServerId {receipts} renamed to Invoices"
                );
                updated.clone()
            } else {
                ensure!(
                    answer.deletes == [receipts.clone()]
                        && answer.adds.len() == 1
                        && answer.change_count() == 2,
                    "EAS {version}: after IMAP RENAME (no OBJECTID) expected a Delete of {receipts} \
                     and one Add:\n{}",
                    answer.xml()
                );
                let added = answer.adds[0].clone();
                ensure!(added.server_id != *receipts, "EAS {version}: ServerId {receipts} reused");
                added
            };
            ensure!(
                renamed.display_name == "Invoices"
                    && renamed.parent_id == "0"
                    && renamed.folder_type == 12,
                "EAS {version}: renamed folder is {renamed:?}"
            );
            invoices_ids.push(renamed.server_id);
            *key = answer.sync_key.clone().context("FolderSync with changes but no new SyncKey")?;
        }

        imap.run("DELETE Invoices")?;
        for ((device, key), invoices) in devices.iter_mut().zip(&invoices_ids) {
            let answer = device.folder_sync(key)?;
            let version = device.version;
            ensure!(
                answer.status == 1 && answer.deletes == [invoices.clone()] && answer.change_count() == 1,
                "EAS {version}: after IMAP DELETE Invoices expected one Delete of {invoices}:\n{}",
                answer.xml()
            );
            *key = answer.sync_key.clone().context("FolderSync with changes but no new SyncKey")?;
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// Initial sync of a big mailbox

/// Versions that page through all 2,000 messages (each costs a full initial sync).
const PAGING_VERSIONS: [Version; 2] = [Version::V16_1, Version::V12_1];

fn initial_sync_pages_2000_messages_each_exactly_once(front: FrontEnd) {
    World::start(front, "paging").run(|world| {
        let messages: Vec<TestMessage> =
            MessageGenerator::new(4, &world.user).take(2_000).collect();
        let mut imap = world.imap()?;
        seed_mailbox(&mut imap, "INBOX", &messages)?;
        let in_imap = imap.examine("INBOX")?.exists as usize;
        ensure!(in_imap == messages.len(), "IMAP has {in_imap} messages");
        // generated dates are strictly decreasing: DateReceived identifies the message
        let by_date: HashMap<i64, &TestMessage> = messages.iter().map(|m| (m.date, m)).collect();

        for version in PAGING_VERSIONS {
            let (mut device, inbox, key) =
                bootstrap_inbox(world, &device_id("PAGE", version), version)?;
            let options = SyncOptions::bodies([BodyPreference::truncated(1, 500)]);
            let drained = device.sync_drain(&inbox, &key, 100, Some(options))?;
            let context = format!(
                "EAS {version}: {} pages of sizes {:?}, {} with MoreAvailable",
                drained.pages, drained.page_sizes, drained.more_available_pages
            );
            ensure!(
                drained.commands.iter().all(|c| c.kind == CommandKind::Add),
                "{context}: not only Adds"
            );
            ensure!(
                drained.commands.len() == in_imap,
                "{context}: {} Adds for {in_imap} messages in IMAP",
                drained.commands.len()
            );
            // every page but the last says MoreAvailable (§2.2.3.116: only while changes remain),
            // every page has items, none more than the window (checked while draining)
            ensure!(
                !drained.ended_empty && drained.more_available_pages + 1 == drained.pages,
                "{context}: MoreAvailable on the last page, then an empty answer"
            );
            ensure!(drained.page_sizes.iter().all(|&n| n > 0), "{context}: an empty page");

            let mut seen = HashSet::new();
            for add in &drained.commands {
                let email = add.email()?;
                let date = email.date_received_unix()?;
                let message = by_date.get(&date).with_context(|| {
                    format!(
                        "{context}: Add {} has DateReceived {:?}, no such message",
                        add.server_id, email.date_received
                    )
                })?;
                ensure!(seen.insert(date), "{context}: message {} sent twice", message.index);
                ensure!(
                    email.subject.as_deref() == Some(message.subject.as_str()),
                    "{context}: message {}: Subject {:?}, expected the decoded {:?}",
                    message.index,
                    email.subject,
                    message.subject
                );
                ensure!(
                    email.from.as_deref().is_some_and(|from| from.contains(&message.from)),
                    "{context}: message {}: From {:?} lacks {}",
                    message.index,
                    email.from,
                    message.from
                );
                let seen_flag = message.flags.iter().any(|f| f == r"\Seen");
                ensure!(
                    email.read == Some(seen_flag),
                    "{context}: message {}: Read {:?} but \\Seen is {seen_flag}",
                    message.index,
                    email.read
                );
                let flagged = message.flags.iter().any(|f| f == r"\Flagged");
                let active = email.flag.as_ref().is_some_and(|f| f.is_active());
                ensure!(
                    active == flagged,
                    "{context}: message {}: Flag {:?}, \\Flagged {flagged}",
                    message.index,
                    email.flag
                );
                let body = email.body.as_ref().with_context(|| {
                    format!("{context}: message {} without Body", message.index)
                })?;
                ensure!(
                    body.body_type == 1,
                    "{context}: Body Type {} for a Type 1 preference",
                    body.body_type
                );
                ensure!(
                    body.data.as_ref().is_some_and(|d| d.len() <= 500),
                    "{context}: message {}: Data longer than TruncationSize 500",
                    message.index
                );
                check_email_shape(&email, version)
                    .with_context(|| format!("{context}: message {}", message.index))?;
            }
            ensure!(seen.len() == messages.len(), "{context}: {} distinct messages", seen.len());

            // the end: the next Sync has nothing
            let mut key = drained.sync_key.clone();
            let rest = sync_changes(&mut device, &inbox, &mut key)?;
            ensure!(
                rest.is_empty(),
                "EAS {version}: after the last page the server sent {} more",
                rest.len()
            );
        }
        Ok(())
    });
}

/// The gateway fetches the next page of an initial sync ahead (`mailbox.prefetch-summaries`)
/// while the phone reads the current one. Another client's changes between the two pages must
/// still reach the phone exactly as without that: a message flagged or read meanwhile arrives
/// with its new flags, an expunged one not at all, and nothing twice. The admin metrics show
/// that the page really came from the prefetch, and that the gateway took its flags from the
/// page's own change check (QRESYNC since the first page) instead of fetching them again.
fn changes_while_the_next_page_is_fetched_ahead_reach_the_phone(front: FrontEnd) {
    let metrics = AdminMetrics::new().expect("admin port");
    let options = GatewayOptions { config_extra: metrics.config(), ..GatewayOptions::default() };
    World::start_with(front, "ahead", options).run(|world| {
        let mut imap = world.imap()?;
        for n in 1..=30 {
            let mail = Mail::new(&format!("Ahead {n}"), &world.user, n);
            let uid = append(&mut imap, &mail.plain("Hello.\r\n"))?;
            ensure!(uid == n as u32, "appended Ahead {n} as UID {uid}");
        }
        let (mut device, inbox, key) =
            bootstrap_inbox(world, &device_id("AHEAD", Version::V16_1), Version::V16_1)?;
        let page = |device: &mut Device, key: &str, options: Option<SyncOptions>| {
            let mut collection = SyncCollection::new(key, inbox.as_str()).window(10);
            if let Some(options) = options {
                collection = collection.options(options);
            }
            let answer = device.sync_one(collection)?;
            let collection = answer.collection(&inbox).context("no collection")?.clone();
            ensure!(collection.status == Some(1), "Sync status {:?}", collection.status);
            Ok::<_, anyhow::Error>(collection)
        };
        let options = SyncOptions::bodies([BodyPreference::truncated(1, 500)]);
        let first = page(&mut device, &key, Some(options))?;
        let first_adds = adds_by_subject(&first.commands)?;
        let expected: HashSet<String> = (21..=30).map(|n| format!("Ahead {n}")).collect();
        ensure!(
            first_adds.keys().cloned().collect::<HashSet<_>>() == expected,
            "page 1 (window 10, newest first): {:?}",
            first_adds.keys()
        );
        ensure!(first.more_available, "page 1 without MoreAvailable");

        // the next page (UIDs 20 down to 11) is fetched ahead in the background
        let mut waited = 0;
        while metrics.value("eas_edge_imap_prefetched_summaries_total")? < 10.0 {
            ensure!(waited < 300, "the next page was not fetched ahead within 30 s");
            std::thread::sleep(Duration::from_millis(100));
            waited += 1;
        }
        let mut other = world.imap()?;
        other.select("INBOX")?;
        other.uid_store("20", "+FLAGS", &[r"\Flagged"])?;
        other.uid_store("18", "+FLAGS", &[r"\Seen"])?;
        other.uid_store("19", "+FLAGS", &[r"\Deleted"])?;
        other.uid_expunge("19")?;

        let second = page(&mut device, first.sync_key.as_deref().context("no SyncKey")?, None)?;
        let second_adds = adds_by_subject(&second.commands)?;
        let expected: HashSet<String> =
            [10, 11, 12, 13, 14, 15, 16, 17, 18, 20].iter().map(|n| format!("Ahead {n}")).collect();
        ensure!(
            second_adds.keys().cloned().collect::<HashSet<_>>() == expected,
            "page 2 after UID 19 was expunged: {:?}",
            second_adds.keys()
        );
        let flagged = &second_adds["Ahead 20"].1;
        ensure!(
            flagged.flag.as_ref().is_some_and(|flag| flag.is_active()),
            "Ahead 20 was flagged after it was fetched ahead, but its Add has Flag {:?}",
            flagged.flag
        );
        let read = &second_adds["Ahead 18"].1;
        ensure!(read.read == Some(true), "Ahead 18 was read meanwhile: Read {:?}", read.read);
        ensure!(
            second_adds["Ahead 17"].1.read == Some(false),
            "Ahead 17 is unread: Read {:?}",
            second_adds["Ahead 17"].1.read
        );
        let taken = metrics.value("eas_edge_imap_prefetched_summaries_taken_total")?;
        ensure!(taken >= 9.0, "page 2 took {taken} summaries fetched ahead, expected 9");
        // behind Envoy each capability call is a request of its own, which keeps nothing from
        // the change check for the fetch
        if front == FrontEnd::Host {
            let vouched = metrics.value("eas_edge_imap_prefetched_flags_vouched_total")?;
            ensure!(vouched >= 9.0, "page 2 took {vouched} flags from its change check, not 9");
            // rendered ahead with the flags fetched ahead: of no use for the two changed since
            // (UIDs 17 to 10 were, 10 as part of the second page hinted)
            let used = metrics.value("eas_edge_sync_rendered_ahead_used_total")?;
            ensure!(used == 8.0, "page 2 sent {used} Adds rendered ahead, expected 8");
        }

        let rest =
            device.sync_drain(&inbox, second.sync_key.as_deref().context("key")?, 10, None)?;
        let mut subjects: Vec<String> =
            first_adds.into_keys().chain(second_adds.into_keys()).collect();
        subjects.extend(adds_by_subject(&rest.commands)?.into_keys());
        let distinct: HashSet<&String> = subjects.iter().collect();
        ensure!(
            subjects.len() == 29
                && distinct.len() == 29
                && !distinct.contains(&"Ahead 19".to_string()),
            "the phone got {} Adds ({} distinct) for 29 messages: {subjects:?}",
            subjects.len(),
            distinct.len()
        );
        Ok(())
    });
}

/// The gateway renders the next pages of a Sync ahead, on another core (`render-ahead`), when
/// the phone asks for small bodies: a phone paging in small windows gets Adds byte for byte
/// like those of a phone that takes the whole folder in one page (nothing of which was
/// rendered ahead), for each kind of small body; on the host the renderings made ahead are
/// what the pages carried. With whole HTML bodies nothing is rendered ahead.
fn pages_rendered_ahead_are_the_pages_rendered_in_the_request(front: FrontEnd) {
    let metrics = AdminMetrics::new().expect("admin port");
    let options = GatewayOptions { config_extra: metrics.config(), ..GatewayOptions::default() };
    World::start_with(front, "rendered", options).run(|world| {
        // plain, alternative and with attachments, in three charsets
        let messages: Vec<TestMessage> = MessageGenerator::new(8, &world.user).take(60).collect();
        seed_mailbox(&mut world.imap()?, "INBOX", &messages)?;
        let kinds = [
            (Version::V16_1, SyncOptions::bodies([BodyPreference::truncated(2, 4_096)]), true),
            (Version::V14_1, SyncOptions::bodies([BodyPreference::truncated(1, 255)]), true),
            (Version::V12_1, SyncOptions::bodies([BodyPreference::truncated(1, 1_024)]), true),
            (Version::V16_1, SyncOptions::bodies([BodyPreference::truncated(2, 200_000)]), false),
        ];
        for (index, (version, options, small)) in kinds.into_iter().enumerate() {
            let used_before = metrics.value("eas_edge_sync_rendered_ahead_used_total")?;
            let adds = |label: &str, window: u32| -> Result<HashMap<String, ServerCommand>> {
                let id = device_id(&format!("R{index}{label}"), version);
                let (mut device, inbox, key) = bootstrap_inbox(world, &id, version)?;
                let drained = device.sync_drain(&inbox, &key, window, Some(options.clone()))?;
                let adds: HashMap<String, ServerCommand> = drained
                    .commands
                    .into_iter()
                    .filter(|command| command.kind == CommandKind::Add)
                    .map(|command| (command.server_id.clone(), command))
                    .collect();
                ensure!(adds.len() == messages.len(), "{label}: {} Adds", adds.len());
                Ok(adds)
            };
            let whole = adds("W", MAX_WINDOW as u32)?;
            let paged = adds("P", 7)?;
            for (server_id, add) in &whole {
                ensure!(
                    paged.get(server_id) == Some(add),
                    "EAS {version}: {server_id} in pages of 7 differs from the one page:
{:?}
{:?}",
                    paged.get(server_id),
                    add
                );
            }
            let used = metrics.value("eas_edge_sync_rendered_ahead_used_total")? - used_before;
            if front == FrontEnd::Host && small {
                // 53 messages on the eight pages after the first were fetched ahead; those
                // whose body part lies beyond the prefix fetched are left to the request
                ensure!(used >= 30.0, "EAS {version}: {used} Adds rendered ahead were sent");
            } else {
                ensure!(used == 0.0, "EAS {version} {options:?}: {used} Adds rendered ahead");
            }
        }
        Ok(())
    });
}

/// What every mail Add carries in `version` (MS-ASEMAIL §2.2.2, EAS-NOTES §6.1): the required
/// InternetCPID, a MessageClass, the Flag container; the 14.0+ Email2 ConversationId (required
/// in responses) and Categories (empty on Add when none); nothing a version does not know.
fn check_email_shape(email: &Email, version: Version) -> Result<()> {
    ensure!(email.internet_cpid.is_some(), "no InternetCPID (required): {email:?}");
    ensure!(email.message_class.is_some(), "no MessageClass: {email:?}");
    ensure!(email.date_received.is_some() && email.read.is_some(), "no DateReceived/Read");
    ensure!(email.flag.is_some(), "no Flag (empty when not flagged, 12.0+)");
    if version >= Version::V14_0 {
        ensure!(email.conversation_id.is_some(), "EAS {version}: no ConversationId");
        ensure!(email.categories.is_some(), "EAS {version}: no Categories on Add");
    } else {
        ensure!(
            email.conversation_id.is_none()
                && email.conversation_index.is_none()
                && email.categories.is_none(),
            "EAS {version}: 14.0+ elements in {:?}",
            email.element_names
        );
    }
    if version < Version::V16_0 {
        ensure!(email.is_draft.is_none(), "EAS {version}: IsDraft is 16.0+");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// GetItemEstimate

fn get_item_estimate_counts_what_is_not_synced_yet(front: FrontEnd) {
    World::start(front, "estimate").run(|world| {
        let messages: Vec<TestMessage> = MessageGenerator::new(5, &world.user).take(250).collect();
        seed_mailbox(&mut world.imap()?, "INBOX", &messages)?;
        for version in Version::TESTED {
            let mut device = world.device(&device_id("EST", version), version);
            let folders = device.bootstrap()?;
            let inbox = folder_of_type(&folders, 2)?.server_id.clone();

            // MS-ASCMD §2.2.3.177.7 Status 3: no Sync 0 for this collection yet
            let unprimed = device.get_item_estimate(&[EstimateCollection::new("0", inbox.as_str())])?;
            ensure!(
                unprimed.responses.first().map(|r| r.status) == Some(3),
                "EAS {version}: GetItemEstimate before any Sync: expected Status 3 (not primed):\n{}",
                unprimed.xml()
            );

            let key = device.sync_start(&inbox)?;
            // a collection that does not exist: Status 2
            let unknown =
                device.get_item_estimate(&[EstimateCollection::new(key.as_str(), "no-such-folder")])?;
            ensure!(
                unknown.responses.first().map(|r| r.status) == Some(2),
                "EAS {version}: GetItemEstimate of an unknown CollectionId: expected Status 2:\n{}",
                unknown.xml()
            );
            let estimate = |device: &mut Device, key: &str, expected: u64| -> Result<()> {
                let answer = device.get_item_estimate(&[EstimateCollection::new(key, inbox.as_str())])?;
                let response = answer.responses.first();
                ensure!(
                    answer.responses.len() == 1
                        && response.map(|r| r.status) == Some(1)
                        && response.and_then(|r| r.collection_id.as_deref()) == Some(inbox.as_str())
                        && response.and_then(|r| r.estimate) == Some(expected),
                    "EAS {version}: GetItemEstimate with key {key}: expected Status 1, Estimate {expected}:\n{}",
                    answer.xml()
                );
                Ok(())
            };
            estimate(&mut device, &key, 250)?;
            let page = device.sync_one(SyncCollection::new(key.clone(), inbox.as_str()).window(100))?;
            let collection = page.collection(&inbox).context("no Inbox in the Sync answer")?;
            // at most WindowSize: a server may send fewer (§2.2.3.199)
            let sent = collection.commands.len();
            ensure!(
                (1..=100).contains(&sent) && collection.more_available,
                "EAS {version}: first page of 250 with WindowSize 100: {sent} commands, MoreAvailable {}",
                collection.more_available
            );
            let key = collection.sync_key.clone().context("no SyncKey")?;
            let left = 250 - sent as u64;
            estimate(&mut device, &key, left)?;
            // the estimate does not advance the key: asking again gives the same
            estimate(&mut device, &key, left)?;
            let drained = device.sync_drain(&inbox, &key, 100, None)?;
            ensure!(
                drained.commands.len() as u64 == left,
                "EAS {version}: {} after the first page, {left} were left",
                drained.commands.len()
            );
            estimate(&mut device, &drained.sync_key, 0)?;
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// Changes made elsewhere: new mail, flags, expunge

fn new_mail_flag_changes_and_expunges_reach_the_phone(front: FrontEnd) {
    World::start(front, "live").run(|world| {
        let mut imap = world.imap()?;
        let mut uids = Vec::new();
        for n in 1..=3 {
            let mail = Mail::new(&format!("Live {n}"), &world.user, n);
            uids.push(append(&mut imap, &mail.plain("Hello.\r\n"))?);
        }
        struct Phone {
            device: Device,
            inbox: String,
            key: String,
            ids: HashMap<String, String>,
        }
        let mut phones = Vec::new();
        for version in Version::TESTED {
            let (mut device, inbox, key) = bootstrap_inbox(world, &device_id("LIVE", version), version)?;
            let drained = device.sync_drain(&inbox, &key, 100, None)?;
            let adds = adds_by_subject(&drained.commands)?;
            ensure!(adds.len() == 3, "EAS {version}: initial sync gave {} messages", adds.len());
            for (subject, (_, email)) in &adds {
                ensure!(email.read == Some(false), "EAS {version}: {subject} arrived unread but Read is {:?}", email.read);
            }
            let ids = adds.into_iter().map(|(subject, (id, _))| (subject, id)).collect();
            phones.push(Phone { device, inbox, key: drained.sync_key, ids });
        }

        // new mail over SMTP
        let fresh = Mail::new("Live new", &world.user, 10).plain("Just arrived.\r\n");
        smtp::send(world.stack.smtp_addr()?, None, "tester@example.org", &[&world.user], &fresh)?;
        imap.wait_for_messages("INBOX", 4, DELIVERY_TIMEOUT)?;
        for phone in &mut phones {
            let version = phone.device.version;
            let commands = sync_changes(&mut phone.device, &phone.inbox, &mut phone.key)?;
            ensure!(
                commands.len() == 1 && commands[0].kind == CommandKind::Add,
                "EAS {version}: after delivery expected one Add, got {commands:?}"
            );
            let email = commands[0].email()?;
            ensure!(email.subject.as_deref() == Some("Live new"), "EAS {version}: {email:?}");
        }

        // another client reads "Live 1" and flags "Live 2"
        let mut other = world.imap()?;
        other.select("INBOX")?;
        other.uid_store(&uids[0].to_string(), "+FLAGS", &[r"\Seen"])?;
        for phone in &mut phones {
            let version = phone.device.version;
            let commands = sync_changes(&mut phone.device, &phone.inbox, &mut phone.key)?;
            let id = &phone.ids["Live 1"];
            ensure!(
                commands.len() == 1 && commands[0].kind == CommandKind::Change && commands[0].server_id == *id,
                "EAS {version}: after \\Seen on Live 1 expected one Change of {id}, got {commands:?}"
            );
            let email = commands[0].email()?;
            ensure!(email.read == Some(true), "EAS {version}: Change without Read 1: {email:?}");
            check_flag_only_change(&email, version, "\\Seen")?;
        }
        other.uid_store(&uids[1].to_string(), "+FLAGS", &[r"\Flagged"])?;
        for phone in &mut phones {
            let version = phone.device.version;
            let commands = sync_changes(&mut phone.device, &phone.inbox, &mut phone.key)?;
            let id = &phone.ids["Live 2"];
            ensure!(
                commands.len() == 1 && commands[0].kind == CommandKind::Change && commands[0].server_id == *id,
                "EAS {version}: after \\Flagged on Live 2 expected one Change of {id}, got {commands:?}"
            );
            let email = commands[0].email()?;
            ensure!(
                email.flag.as_ref().is_some_and(|f| f.is_active()),
                "EAS {version}: Flag should have Status 2 (active): {email:?}"
            );
            check_flag_only_change(&email, version, "\\Flagged")?;
        }

        // and expunges "Live 3"
        let expunged = uids[2].to_string();
        other.uid_store(&expunged, "+FLAGS", &[r"\Deleted"])?;
        other.uid_expunge(&expunged)?;
        for phone in &mut phones {
            let version = phone.device.version;
            let commands = sync_changes(&mut phone.device, &phone.inbox, &mut phone.key)?;
            let id = &phone.ids["Live 3"];
            ensure!(
                commands.len() == 1 && commands[0].kind == CommandKind::Delete && commands[0].server_id == *id,
                "EAS {version}: after EXPUNGE of Live 3 expected one Delete of {id}, got {commands:?}"
            );
            let rest = sync_changes(&mut phone.device, &phone.inbox, &mut phone.key)?;
            ensure!(rest.is_empty(), "EAS {version}: nothing changed but the server sent {rest:?}");
        }
        Ok(())
    });
}

/// A change of flags made elsewhere comes as a Change of the flag state only, not the whole
/// item again: Read, Flag and (14.0+) Categories at most (MS-ASEMAIL §3.2.5.4; EAS-NOTES §4.4
/// reads §3.2.5.4.1 as "only the element that changed", which the spec text we could check does
/// not say in so many words, so the stricter reading is not asserted).
fn check_flag_only_change(email: &Email, version: Version, what: &str) -> Result<()> {
    let allowed: &[&str] =
        if version >= Version::V14_0 { &["Read", "Flag", "Categories"] } else { &["Read", "Flag"] };
    ensure!(
        email.element_names.iter().all(|name| allowed.contains(name)),
        "EAS {version}: {what} set elsewhere: the Change carries {:?}, expected only {allowed:?}",
        email.element_names
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Retry and restart

fn a_retried_sync_key_replays_the_same_bytes(front: FrontEnd) {
    World::start(front, "retry").run(|world| {
        let messages: Vec<TestMessage> = MessageGenerator::new(6, &world.user).take(150).collect();
        let mut imap = world.imap()?;
        seed_mailbox(&mut imap, "INBOX", &messages)?;
        for version in [Version::V16_1, Version::V12_1] {
            let (mut device, inbox, key1) =
                bootstrap_inbox(world, &device_id("RETRY", version), version)?;
            let options = SyncOptions::bodies([BodyPreference::truncated(2, 2_000)]);
            let request = |key: &str, with_options: bool| {
                let mut collection = SyncCollection::new(key, inbox.as_str()).window(100);
                if with_options {
                    collection = collection.options(options.clone());
                }
                SyncRequest::one(collection)
            };
            let first = device.sync(&request(&key1, true))?;
            let collection = first.collection(&inbox).context("no Inbox")?;
            ensure!(
                (1..=100).contains(&collection.commands.len()) && collection.more_available,
                "EAS {version}: first page of 150 with WindowSize 100: {} commands, MoreAvailable {}",
                collection.commands.len(),
                collection.more_available
            );
            let key2 = collection.sync_key.clone().context("no SyncKey")?;

            // a message arrives before the phone retries: the replay must still be the old answer
            let late =
                Mail::new(&format!("Late for {version}"), &world.user, 50).plain("Late.\r\n");
            append(&mut imap, &late)?;
            let again = device.sync(&request(&key1, true))?;
            ensure!(
                again.raw == first.raw,
                "EAS {version}: the same request with the previous SyncKey {key1} must replay the \
                 answer (MS-ASCMD §3.1.5.9); {}",
                first_difference(&again.raw, &first.raw)
            );

            let second = device.sync(&request(&key2, false))?;
            let collection = second.collection(&inbox).context("no Inbox")?;
            let key3 = collection.sync_key.clone().context("no SyncKey")?;
            let retried = device.sync(&request(&key2, false))?;
            ensure!(
                retried.raw == second.raw,
                "EAS {version}: retry of {key2}: {}",
                first_difference(&retried.raw, &second.raw)
            );

            // both pages together: every message once (the late one may come now or next)
            let drained = device.sync_drain(&inbox, &key3, 100, None)?;
            let mut ids = HashSet::new();
            for answer in [&first, &second] {
                for command in answer.commands(&inbox) {
                    ensure!(
                        ids.insert(command.server_id.clone()),
                        "EAS {version}: {} twice",
                        command.server_id
                    );
                }
            }
            for command in drained.adds() {
                ensure!(
                    ids.insert(command.server_id.clone()),
                    "EAS {version}: {} twice",
                    command.server_id
                );
            }
            let total = imap.examine("INBOX")?.exists as usize;
            ensure!(
                ids.len() == total,
                "EAS {version}: {} messages synced, IMAP has {total}",
                ids.len()
            );
        }
        Ok(())
    });
}

fn sync_continues_across_gateway_restarts_without_resending(front: FrontEnd) {
    World::start(front, "restart").run(|world| {
        let messages: Vec<TestMessage> = MessageGenerator::new(7, &world.user).take(250).collect();
        seed_mailbox(&mut world.imap()?, "INBOX", &messages)?;
        let (mut device, inbox, key) = bootstrap_inbox(world, "RESTART161", Version::V16_1)?;
        let page = |device: &mut Device, key: &str| {
            device.sync_one(SyncCollection::new(key, inbox.as_str()).window(100))
        };
        let first = page(&mut device, &key)?;
        let key2 =
            first.collection(&inbox).and_then(|c| c.sync_key.clone()).context("no SyncKey")?;

        world.front.gateway.restart()?;
        let second = page(&mut device, &key2)?;
        let collection = second
            .collection(&inbox)
            .with_context(|| format!("after restart:\n{}", second.xml()))?;
        ensure!(
            collection.status == Some(1),
            "after a restart the key {key2} must still be valid:\n{}",
            second.xml()
        );
        let key3 = collection.sync_key.clone().context("no SyncKey")?;

        // the replay state survives a restart too
        world.front.gateway.restart()?;
        let replay = page(&mut device, &key2)?;
        ensure!(
            replay.raw == second.raw,
            "retry of {key2} after a restart: {}",
            first_difference(&replay.raw, &second.raw)
        );

        let rest = device.sync_drain(&inbox, &key3, 100, None)?;
        let mut ids = HashSet::new();
        for command in
            first.commands(&inbox).iter().chain(second.commands(&inbox)).chain(&rest.commands)
        {
            ensure!(command.kind == CommandKind::Add, "unexpected {command:?}");
            ensure!(
                ids.insert(command.server_id.clone()),
                "{} sent again after a restart",
                command.server_id
            );
        }
        ensure!(ids.len() == 250, "{} messages synced of 250", ids.len());
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// Bodies, previews, MIME, attachments, ItemOperations

fn body_preferences_attachments_and_item_operations(front: FrontEnd) {
    World::start(front, "bodies").run(|world| {
        let long = long_text("Dear tester, this is the long plain message.", 6_000);
        let text = "Dear tester, this one also has HTML.\r\n\r\nSecond paragraph.\r\n";
        let html = "<html><body><p>Dear tester, this one also has <b>HTML</b>.</p><p>Second paragraph.</p></body></html>";
        let blob = pseudo_random(30_000, 11);
        let csv = b"name,value\r\nalpha,1\r\nbeta,2\r\n".to_vec();
        let attachments: [(&str, &str, &[u8]); 2] =
            [("blob.bin", "application/octet-stream", &blob), ("table.csv", "text/csv", &csv)];
        let raws = [
            ("Plain long", Mail::new("Plain long", &world.user, 1).plain(&long)),
            ("Alternative", Mail::new("Alternative", &world.user, 2).alternative(text, html)),
            (
                "Attachments",
                Mail::new("Attachments", &world.user, 3).with_attachments("Dear tester, see the files.\r\n", &attachments),
            ),
        ];
        let mut imap = world.imap()?;
        let mut stored = HashMap::new();
        for (subject, raw) in &raws {
            let uid = append(&mut imap, raw)?;
            imap.select("INBOX")?;
            stored.insert(*subject, imap.uid_fetch_rfc822(uid)?);
        }

        for version in Version::TESTED {
            let (mut device, inbox, _) = bootstrap_inbox(world, &device_id("BODY", version), version)?;
            // a fresh relationship (Sync 0) per preference: Options persist per relationship
            let sync_with = |device: &mut Device, options: SyncOptions| -> Result<HashMap<String, (String, Email)>> {
                let key = device.sync_start(&inbox)?;
                let drained = device.sync_drain(&inbox, &key, 100, Some(options))?;
                let adds = adds_by_subject(&drained.commands)?;
                ensure!(adds.len() == 3, "EAS {version}: {} messages", adds.len());
                Ok(adds)
            };

            // Type 1 truncated (MS-ASAIRS §2.2.2.23.2: Truncated, EstimatedDataSize of the whole)
            let adds = sync_with(&mut device, SyncOptions::bodies([BodyPreference::truncated(1, 200)]))?;
            let (plain_id, plain) = &adds["Plain long"];
            let body = plain.body.as_ref().context("no Body")?;
            let data = body.data.as_deref().unwrap_or_default();
            ensure!(
                body.body_type == 1 && body.is_truncated() && data.len() <= 200 && !data.is_empty(),
                "EAS {version}: Type 1 TruncationSize 200 of a 6 KB text: expected Type 1, Truncated 1, \
                 1-200 bytes of Data; got Type {}, Truncated {:?}, {} bytes",
                body.body_type,
                body.truncated,
                data.len()
            );
            ensure!(
                normalised(&long).starts_with(&normalised(&body.text())),
                "EAS {version}: truncated Data is not the start of the text: {:?}",
                body.text()
            );
            ensure!(
                body.estimated_data_size.is_some_and(|size| size >= 5_000),
                "EAS {version}: EstimatedDataSize {:?} should be the full size (about {})",
                body.estimated_data_size,
                long.len()
            );

            // the full body by ItemOperations Fetch (CollectionId + ServerId)
            let fetched = device.item_operations_fetch(&[FetchRequest::item(&inbox, plain_id).body(BodyPreference::new(1))])?;
            ensure!(fetched.status == 1 && fetched.fetches.len() == 1, "EAS {version}:\n{}", fetched.xml());
            let fetch = &fetched.fetches[0];
            ensure!(fetch.status == 1, "EAS {version}: Fetch of {plain_id}:\n{}", fetched.xml());
            let full = fetch.email()?.body.context("fetched item without Body")?;
            ensure!(
                full.body_type == 1 && !full.is_truncated() && normalised(&full.text()) == normalised(&long),
                "EAS {version}: ItemOperations Fetch without TruncationSize must return the whole text \
                 ({} bytes); got Type {}, Truncated {:?}, {} bytes",
                long.len(),
                full.body_type,
                full.truncated,
                full.data.as_ref().map_or(0, Vec::len)
            );

            // the same by ItemOperations Fetch of the LongId a Search handed out
            // (MS-ASCMD §2.2.3.100.1: LongId instead of CollectionId + ServerId)
            let mut query = MailboxQuery::new("Plain long");
            query.collection_id = Some(inbox.clone());
            let found = device.search(&query)?;
            let long_id = match found.results.as_slice() {
                [only] => only.id.clone().with_context(|| format!("EAS {version}: result without LongId:\n{}", found.xml()))?,
                _ => bail!("EAS {version}: Search \"Plain long\" expected one result:\n{}", found.xml()),
            };
            let fetched = device.item_operations_fetch(&[FetchRequest::long_id(&long_id).body(BodyPreference::new(1))])?;
            let fetch = fetched.fetches.first().with_context(|| fetched.xml())?;
            ensure!(fetch.status == 1, "EAS {version}: Fetch of LongId {long_id}:\n{}", fetched.xml());
            let by_long_id = fetch.email()?.body.context("item fetched by LongId without Body")?;
            ensure!(
                by_long_id.body_type == 1 && !by_long_id.is_truncated() && normalised(&by_long_id.text()) == normalised(&long),
                "EAS {version}: Fetch by LongId must return the whole text; got Type {}, Truncated {:?}, {} bytes",
                by_long_id.body_type,
                by_long_id.truncated,
                by_long_id.data.as_ref().map_or(0, Vec::len)
            );

            // attachments: FileReference → the exact bytes
            let (_, with_files) = &adds["Attachments"];
            let listed = with_files.attachment_list();
            ensure!(listed.len() == 2, "EAS {version}: expected 2 Attachments: {with_files:?}");
            for (name, _, bytes) in &attachments {
                let attachment = listed
                    .iter()
                    .find(|a| a.display_name.as_deref() == Some(*name))
                    .with_context(|| format!("EAS {version}: no attachment named {name}: {listed:?}"))?;
                ensure!(attachment.method == Some(1), "EAS {version}: {name}: Method {:?}", attachment.method);
                let size = attachment.estimated_data_size.unwrap_or_default() as usize;
                ensure!(
                    size >= bytes.len() * 9 / 10 && size <= bytes.len() * 14 / 10 + 100,
                    "EAS {version}: {name}: EstimatedDataSize {size} for {} bytes",
                    bytes.len()
                );
                let reference = attachment.file_reference.as_deref().filter(|r| !r.is_empty());
                let reference = reference.with_context(|| format!("EAS {version}: {name} has no FileReference"))?;
                let answer = device.item_operations_fetch(&[FetchRequest::attachment(reference)])?;
                let fetch = answer.fetches.first().with_context(|| answer.xml())?;
                ensure!(answer.status == 1 && fetch.status == 1, "EAS {version}: Fetch of {reference}:\n{}", answer.xml());
                ensure!(fetch.file_reference.as_deref() == Some(reference), "EAS {version}:\n{}", answer.xml());
                let content = fetch.attachment_bytes()?;
                ensure!(
                    content == *bytes,
                    "EAS {version}: attachment {name}: {}",
                    first_difference(&content, bytes)
                );
            }

            // Type 2: HTML for the message that has it
            let adds = sync_with(&mut device, SyncOptions::bodies([BodyPreference::new(2)]))?;
            let body = adds["Alternative"].1.body.clone().context("no Body")?;
            ensure!(
                body.body_type == 2 && body.text().contains("<b>HTML</b>"),
                "EAS {version}: Type 2 of a multipart/alternative: Type {}, Data {:?}",
                body.body_type,
                body.text()
            );

            // Preview (MS-ASAIRS §2.2.2.35): 14.1+ asks for it in BodyPreference
            if version >= Version::V14_1 {
                let adds =
                    sync_with(&mut device, SyncOptions::bodies([BodyPreference::truncated(2, 100).with_preview(60)]))?;
                for (subject, (_, email)) in &adds {
                    let preview = email.body.as_ref().and_then(|b| b.preview.clone()).unwrap_or_default();
                    ensure!(
                        !preview.is_empty() && preview.chars().count() <= 60 && preview.starts_with("Dear tester"),
                        "EAS {version}: {subject}: Preview 60 gave {preview:?}"
                    );
                }
            }

            // Type 4 with MIMESupport 2: the whole message as stored
            let mime_options = SyncOptions {
                body_preferences: vec![BodyPreference::new(4)],
                mime_support: Some(2),
                ..SyncOptions::default()
            };
            let adds = sync_with(&mut device, mime_options)?;
            for (subject, (_, email)) in &adds {
                let body = email.body.as_ref().with_context(|| format!("{subject}: no Body"))?;
                ensure!(body.body_type == 4, "EAS {version}: {subject}: Type {} for MIME", body.body_type);
                let data = body.data.as_deref().unwrap_or_default();
                ensure!(
                    data == stored[subject.as_str()].as_slice(),
                    "EAS {version}: {subject}: MIME Data differs from the stored message: {}",
                    first_difference(data, &stored[subject.as_str()])
                );
            }
        }
        Ok(())
    });
}

fn settings_device_and_user_information(front: FrontEnd) {
    World::start(front, "settings").run(|world| {
        for version in Version::TESTED {
            let mut device = world.device(&device_id("SET", version), version);
            device.provision()?;
            let set = device.settings_device_information()?;
            ensure!(
                set.status == 1 && set.device_information_status == Some(1),
                "EAS {version}: Settings DeviceInformation Set (MS-ASCMD §2.2.1.18):\n{}",
                set.xml()
            );
            let get = device.settings_user_information()?;
            let user = get
                .user_information
                .clone()
                .with_context(|| format!("EAS {version}: no UserInformation:\n{}", get.xml()))?;
            ensure!(get.status == 1 && user.status == Some(1), "EAS {version}:\n{}", get.xml());
            if version >= Version::V14_1 {
                ensure!(
                    user.primary_smtp_address
                        .as_deref()
                        .is_some_and(|a| a.eq_ignore_ascii_case(&world.user)),
                    "EAS {version}: PrimarySmtpAddress should be {}:\n{}",
                    world.user,
                    get.xml()
                );
            }
            ensure!(
                user.smtp_addresses.iter().any(|a| a.eq_ignore_ascii_case(&world.user)),
                "EAS {version}: SMTPAddress {} missing:\n{}",
                world.user,
                get.xml()
            );
            // libwbxml reads what we sent the same way
            if let Some(node) = libwbxml::decode(&device.last_request)? {
                ensure!(
                    node.outline()
                        == "Settings:Settings\n  Settings:UserInformation\n    Settings:Get\n",
                    "{}",
                    node.outline()
                );
            }
            // a stale policy key: the server sends the phone to Provision (HTTP 449 for 12.1,
            // Status 144 for 14.0+, MS-ASPROV §3.1.5.1) and the client re-provisions and retries
            let old_key = device.policy_key;
            device.policy_key = Some(4_242_424_242);
            let folders = device.folder_sync("0")?;
            ensure!(
                folders.status == 1,
                "EAS {version}: FolderSync after re-provisioning:\n{}",
                folders.xml()
            );
            ensure!(
                device.policy_key.is_some_and(|key| key != 4_242_424_242)
                    && device.policy_key != old_key,
                "EAS {version}: the stale key was not replaced by a new Provision"
            );
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// Hostile and broken input

fn hostile_requests_get_protocol_answers_never_500(front: FrontEnd) {
    World::start(front, "hostile").run(|world| {
        let messages: Vec<TestMessage> = MessageGenerator::new(8, &world.user).take(600).collect();
        seed_mailbox(&mut world.imap()?, "INBOX", &messages)?;
        // checks that fail without stopping the others, reported together at the end
        let mut deviations = Vec::new();
        for version in Version::TESTED {
            let (mut device, inbox, key) = bootstrap_inbox(world, &device_id("HOST", version), version)?;

            // bodies that are not WBXML (MS-ASCMD §2.2.2: 102 InvalidWBXML, or Sync Status 4;
            // HTTP 400 for 12.1)
            for garbage in [&b"\x03\x01\x6a\x00\x45\xff\x01"[..], b"\x03\x01\x6a\x00\x45\x5c\x4f\x4b\x03\x30", b"<Sync/>"] {
                let reply = device.post("Sync", Some(eas_edge_tests::eas::WBXML_CONTENT_TYPE), garbage)?;
                let what = format!("EAS {version}: Sync with body {garbage:02x?}");
                if version.uses_http_errors() {
                    ensure!(reply.status == 400, "{what}: expected HTTP 400, got {}", reply.status);
                } else {
                    ensure!(reply.status == 200, "{what}: expected HTTP 200 with a Status, got {}", reply.status);
                    let root = eas_wbxml::decode(&reply.body, &eas_edge_tests::eas::ANSWER_LIMITS)
                        .with_context(|| format!("{what}: answer is not WBXML"))?
                        .root;
                    let status = eas_edge_tests::eas::answer::top_level_status(&root);
                    ensure!(
                        matches!(status, Some(4 | 102)),
                        "{what}: expected Status 4 (protocol error) or 102 (InvalidWBXML), got {status:?}:\n{}",
                        eas_edge_tests::eas::answer::xml(&root)
                    );
                }
            }

            // a key the server never issued: Status 3, the client restarts at 0 (§2.2.3.177.17)
            let unknown = device.sync_one(SyncCollection::new("no-such-key-42", inbox.as_str()))?;
            ensure!(
                unknown.status_of(&inbox) == Some(3),
                "EAS {version}: Sync with an unknown SyncKey: expected Status 3:\n{}",
                unknown.xml()
            );
            let folder = device.folder_sync("no-such-key-42")?;
            ensure!(folder.status == 9, "EAS {version}: FolderSync with an unknown key: expected Status 9:\n{}", folder.xml());

            // WindowSize 100000 → at most 512 per answer, with MoreAvailable (§2.2.3.199)
            let huge = device.sync_one(SyncCollection::new(key.clone(), inbox.as_str()).window(100_000))?;
            let collection = huge.collection(&inbox).with_context(|| huge.xml())?;
            ensure!(
                collection.status == Some(1)
                    && !collection.commands.is_empty()
                    && collection.commands.len() <= MAX_WINDOW
                    && collection.more_available,
                "EAS {version}: WindowSize 100000 over 600 messages: expected 1-{MAX_WINDOW} items and \
                 MoreAvailable, got {} items, MoreAvailable {}",
                collection.commands.len(),
                collection.more_available
            );
            let first = collection.commands.len();
            let key = collection.sync_key.clone().context("no SyncKey")?;
            let rest = device.sync_drain(&inbox, &key, 100_000, None)?;
            ensure!(
                first + rest.commands.len() == 600,
                "EAS {version}: {first} + {} items for 600 messages",
                rest.commands.len()
            );
            ensure!(rest.page_sizes.iter().all(|&n| n <= MAX_WINDOW), "EAS {version}: pages {:?}", rest.page_sizes);

            // two BodyPreferences of one Type: Status 4 (MS-ASAIRS §2.2.2.12, EAS-NOTES §6.2)
            let twice = SyncOptions::bodies([BodyPreference::new(2), BodyPreference::truncated(2, 100)]);
            let answer = device.sync_one(
                SyncCollection::new(rest.sync_key.clone(), inbox.as_str()).options(twice),
            )?;
            ensure!(
                answer.status_of(&inbox) == Some(4),
                "EAS {version}: two BodyPreference elements with Type 2: expected Status 4:\n{}",
                answer.xml()
            );

            // attachments that do not exist: Fetch Status 15 (MS-ASCMD §2.2.3.177.8)
            for reference in ["no-such-reference", "", "999999:1:2"] {
                let answer = device.item_operations_fetch(&[FetchRequest::attachment(reference)])?;
                let status = answer.fetches.first().map(|f| f.status);
                ensure!(
                    status == Some(15),
                    "EAS {version}: Fetch of FileReference {reference:?}: expected Status 15:\n{}",
                    answer.xml()
                );
            }

            // GetChanges with SyncKey 0: Status 4 (MS-ASCMD §2.2.3.84); last, as a key 0 may
            // reset the relationship
            let answer =
                device.sync_one(SyncCollection::new("0", inbox.as_str()).get_changes(true))?;
            if answer.status_of(&inbox) != Some(4) {
                deviations.push(format!(
                    "EAS {version}: Sync with SyncKey 0 and GetChanges: expected Status 4 \
                     (MS-ASCMD §2.2.3.84), got {:?}",
                    answer.status_of(&inbox)
                ));
            }
        }
        ensure!(deviations.is_empty(), "{}", deviations.join("\n"));
        Ok(())
    });
}

/// Raw messages that break MIME rules in the ways real mail does, and one huge one.
/// The body of the message whose header block is longer than a summary's prefix.
const LONG_HEADER_TEXT: &str = "Past a header block of 100 KB.";

fn broken_messages(to: &str) -> Vec<(String, Vec<u8>)> {
    let mut messages = Vec::new();
    let head = |subject: &str, n: i64| Mail::new(subject, to, 100 + n).head();

    messages.push((
        "Broken no boundary".to_string(),
        format!(
            "{}Content-Type: multipart/mixed\r\n\r\n--lost\r\nContent-Type: text/plain\r\n\r\nWhere is my boundary?\r\n--lost--\r\n",
            head("Broken no boundary", 1)
        )
        .into_bytes(),
    ));

    let mut eight_bit = b"Date: Mon, 02 Jun 2025 09:00:00 +0000\r\nFrom: J\xc3\xbcrgen M\xfcller <jm@example.org>\r\n".to_vec();
    eight_bit.extend_from_slice(format!("To: <{to}>\r\n").as_bytes());
    eight_bit.extend_from_slice(
        b"Subject: Broken 8bit \xc3\xa4\xc3\xb6\xc3\xbc \xe4\xf6\xfc \xff\xfe\r\n",
    );
    eight_bit.extend_from_slice(b"Message-ID: <eight-bit@example.org>\r\nContent-Type: text/plain\r\n\r\nGr\xfc\xdfe, \xc3\xa4 und \xe2\x82\xac.\r\n");
    messages.push(("Broken 8bit".to_string(), eight_bit));

    let mut nested = head("Broken nested 30", 2);
    for level in 0..30 {
        nested.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"level{level}\"\r\n\r\n--level{level}\r\n"
        ));
    }
    nested.push_str("Content-Type: text/plain\r\n\r\nThe bottom of 30 levels.\r\n");
    for level in (0..30).rev() {
        nested.push_str(&format!("--level{level}--\r\n"));
    }
    messages.push(("Broken nested 30".to_string(), nested.into_bytes()));

    messages.push((
        "Broken bad base64".to_string(),
        format!(
            "{}Content-Type: text/plain; charset=x-no-such-charset\r\nContent-Transfer-Encoding: base64\r\n\r\n\
             This is *not* base64 at all!!\r\n====\r\n",
            head("Broken bad base64", 3)
        )
        .into_bytes(),
    ));

    messages.push((
        "Broken bare LF".to_string(),
        format!(
            "{}Content-Type: text/plain\r\n\r\nline one\nline two\n",
            head("Broken bare LF", 4)
        )
        .replace("\r\n", "\n")
        .into_bytes(),
    ));

    messages.push(("Broken header only".to_string(), head("Broken header only", 5).into_bytes()));

    // a header block over what a summary holds (64 KiB): the text must still be found
    let received: String = (0..1_600)
        .map(|n| format!("Received: from hop{n}.example.net by mx.example.org; {n:05}\r\n"))
        .collect();
    messages.push((
        "Broken 100 KB header".to_string(),
        format!(
            "{received}{}Content-Type: text/plain\r\n\r\n{LONG_HEADER_TEXT}\r\n",
            head("Broken 100 KB header", 7)
        )
        .into_bytes(),
    ));

    // 50 MB attachment: one 57-byte pattern, so every base64 line is the same 76 characters
    let pattern: Vec<u8> = (0u8..57).map(|i| i.wrapping_mul(37) ^ 0x5a).collect();
    let line = base64_lines(&pattern);
    let lines = 50 * 1024 * 1024 / pattern.len();
    let mut huge = format!(
        "{}Content-Type: multipart/mixed; boundary=\"big\"\r\n\r\n--big\r\nContent-Type: text/plain\r\n\r\n\
         A very large attachment follows.\r\n--big\r\nContent-Type: application/octet-stream; name=\"big.bin\"\r\n\
         Content-Disposition: attachment; filename=\"big.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n",
        head("Broken 50 MB", 6)
    )
    .into_bytes();
    huge.reserve(lines * line.len() + 16);
    for _ in 0..lines {
        huge.extend_from_slice(line.as_bytes());
    }
    huge.extend_from_slice(b"--big--\r\n");
    messages.push(("Broken 50 MB".to_string(), huge));
    messages
}

fn broken_and_huge_mime_still_syncs(front: FrontEnd) {
    World::start(front, "broken").run(|world| {
        let messages = broken_messages(&world.user);
        let mut imap = world.imap()?;
        for (_, raw) in &messages {
            append(&mut imap, raw)?;
        }
        for version in [Version::V16_1, Version::V12_1] {
            let (mut device, inbox, key) =
                bootstrap_inbox(world, &device_id("BROKEN", version), version)?;
            let options = SyncOptions::bodies([
                BodyPreference::truncated(2, 2_000),
                BodyPreference::truncated(1, 2_000),
            ]);
            let drained = device.sync_drain(&inbox, &key, 100, Some(options))?;
            ensure!(
                drained.commands.len() == messages.len(),
                "EAS {version}: {} Adds for {} stored messages",
                drained.commands.len(),
                messages.len()
            );
            let mut subjects = Vec::new();
            for add in &drained.commands {
                let email = add.email()?;
                ensure!(
                    email.body.is_some(),
                    "EAS {version}: {:?} came without a Body (MS-ASAIRS: a body of some type)",
                    email.subject
                );
                subjects.push(email.subject.clone().unwrap_or_default());
            }
            for (subject, _) in &messages {
                ensure!(
                    subjects.iter().any(|s| s.starts_with(subject.as_str())),
                    "EAS {version}: no Add with Subject {subject:?}; got {subjects:?}"
                );
            }
            let long_header = drained
                .commands
                .iter()
                .filter_map(|add| add.email().ok())
                .find(|email| email.subject.as_deref() == Some("Broken 100 KB header"))
                .context("the long-header message")?;
            let text = long_header.body.as_ref().map(|body| body.text()).unwrap_or_default();
            ensure!(
                text.contains(LONG_HEADER_TEXT),
                "EAS {version}: the body after a 100 KB header block: {text:?}"
            );
            // the deep one and the huge one also fetch whole
            for (id, email) in drained.commands.iter().map(|c| (c.server_id.clone(), c.email())) {
                let email = email?;
                let subject = email.subject.unwrap_or_default();
                if subject == "Broken nested 30" || subject == "Broken 50 MB" {
                    let answer = device
                        .item_operations_fetch(&[FetchRequest::item(&inbox, &id)
                            .body(BodyPreference::truncated(1, 10_000))])?;
                    ensure!(
                        answer.status == 1 && answer.fetches.first().map(|f| f.status) == Some(1),
                        "EAS {version}: Fetch of {subject}:\n{}",
                        answer.xml()
                    );
                }
            }
        }
        Ok(())
    });
}

/// Text bodies in the charsets mailboxes hold: (label as mail programs write it, the text's
/// bytes in it, made with Python's codecs, an independent encoder; the text).
const CHARSET_BODIES: &[(&str, &[u8], &str)] = &[
        ("UTF-7", b"Hi Mom +Jjo! +ZeVnLIqeMG4w4TD8MOs-", "Hi Mom \u{263a}! \u{65e5}\u{672c}\u{8a9e}\u{306e}\u{30e1}\u{30fc}\u{30eb}"),
        ("UTF-16LE", b"G\x00r\x00\xfc\x00\xdf\x00e\x00 \x00a\x00u\x00s\x00 \x00K\x00\xf6\x00l\x00n\x00,\x00 \x00\xe5e,g", "Gr\u{fc}\u{df}e aus K\u{f6}ln, \u{65e5}\u{672c}"),
        ("utf-16", b"\xff\xfeG\x00r\x00\xfc\x00\xdf\x00e\x00 \x00a\x00u\x00s\x00 \x00K\x00\xf6\x00l\x00n\x00,\x00 \x00\xe5e,g", "Gr\u{fc}\u{df}e aus K\u{f6}ln, \u{65e5}\u{672c}"),
        ("GB18030", b"\xd6\xd0\xce\xc4\xd3\xca\xbc\xfe\xa3\xba\xc4\xe3\xba\xc3\xa3\xac\xca\xc0\xbd\xe7 \xa2\xe3", "\u{4e2d}\u{6587}\u{90ae}\u{4ef6}\u{ff1a}\u{4f60}\u{597d}\u{ff0c}\u{4e16}\u{754c} \u{20ac}"),
        ("gb2312", b"\xd6\xd0\xce\xc4\xd3\xca\xbc\xfe\xa3\xba\xc4\xe3\xba\xc3", "\u{4e2d}\u{6587}\u{90ae}\u{4ef6}\u{ff1a}\u{4f60}\u{597d}"),
        ("Big5", b"\xc1c\xc5\xe9\xa4\xa4\xa4\xe5\xb6l\xa5\xf3\xa1G\xa7A\xa6n", "\u{7e41}\u{9ad4}\u{4e2d}\u{6587}\u{90f5}\u{4ef6}\u{ff1a}\u{4f60}\u{597d}"),
        ("EUC-KR", b"\xbe\xc8\xb3\xe7\xc7\xcf\xbc\xbc\xbf\xe4, \xbc\xbc\xb0\xe8", "\u{c548}\u{b155}\u{d558}\u{c138}\u{c694}, \u{c138}\u{acc4}"),
        ("ks_c_5601-1987", b"\xbe\xc8\xb3\xe7\xc7\xcf\xbc\xbc\xbf\xe4, \xbc\xbc\xb0\xe8", "\u{c548}\u{b155}\u{d558}\u{c138}\u{c694}, \u{c138}\u{acc4}"),
        ("ISO-2022-KR", b"\x1b$)C\x0e>H3gGO<<?d\x0f, \x0e<<0h\x0f", "\u{c548}\u{b155}\u{d558}\u{c138}\u{c694}, \u{c138}\u{acc4}"),
        ("HZ-GB-2312", b"~{VPNDSJ<~#:Dc:C~}", "\u{4e2d}\u{6587}\u{90ae}\u{4ef6}\u{ff1a}\u{4f60}\u{597d}"),
        ("ISO-2022-JP", b"\x1b$B$3$s$K$A$O!\x22@$3&!#%a!<%k$G$9!#\x1b(B", "\u{3053}\u{3093}\u{306b}\u{3061}\u{306f}\u{3001}\u{4e16}\u{754c}\u{3002}\u{30e1}\u{30fc}\u{30eb}\u{3067}\u{3059}\u{3002}"),
        ("Shift_JIS", b"\x82\xb1\x82\xf1\x82\xc9\x82\xbf\x82\xcd\x81A\x90\xa2\x8aE", "\u{3053}\u{3093}\u{306b}\u{3061}\u{306f}\u{3001}\u{4e16}\u{754c}"),
        ("EUC-JP", b"\xa4\xb3\xa4\xf3\xa4\xcb\xa4\xc1\xa4\xcf\xa1\xa2\xc0\xa4\xb3\xa6", "\u{3053}\u{3093}\u{306b}\u{3061}\u{306f}\u{3001}\u{4e16}\u{754c}"),
        ("KOI8-R", b"\xf0\xd2\xc9\xd7\xc5\xd4, \xcd\xc9\xd2! \xb3\xcc\xcb\xc1", "\u{41f}\u{440}\u{438}\u{432}\u{435}\u{442}, \u{43c}\u{438}\u{440}! \u{401}\u{43b}\u{43a}\u{430}"),
        ("windows-1251", b"\xcf\xf0\xe8\xe2\xe5\xf2, \xec\xe8\xf0!", "\u{41f}\u{440}\u{438}\u{432}\u{435}\u{442}, \u{43c}\u{438}\u{440}!"),
        ("ISO-8859-2", b"Za\xbf\xf3\xb3\xe6 g\xea\xb6l\xb1 ja\xbc\xf1", "Za\u{17c}\u{f3}\u{142}\u{107} g\u{119}\u{15b}l\u{105} ja\u{17a}\u{144}"),
        ("ISO-8859-7", b"\xca\xe1\xeb\xe7\xec\xdd\xf1\xe1 \xea\xfc\xf3\xec\xe5", "\u{39a}\u{3b1}\u{3bb}\u{3b7}\u{3bc}\u{3ad}\u{3c1}\u{3b1} \u{3ba}\u{3cc}\u{3c3}\u{3bc}\u{3b5}"),
        ("windows-1255", b"\xf9\xec\xe5\xed \xf2\xe5\xec\xed", "\u{5e9}\u{5dc}\u{5d5}\u{5dd} \u{5e2}\u{5d5}\u{5dc}\u{5dd}"),
        ("windows-1256", b"\xe3\xd1\xcd\xc8\xc7 \xc8\xc7\xe1\xda\xc7\xe1\xe3", "\u{645}\u{631}\u{62d}\u{628}\u{627} \u{628}\u{627}\u{644}\u{639}\u{627}\u{644}\u{645}"),
        ("TIS-620", b"\xca\xc7\xd1\xca\xb4\xd5\xaa\xd2\xc7\xe2\xc5\xa1", "\u{e2a}\u{e27}\u{e31}\u{e2a}\u{e14}\u{e35}\u{e0a}\u{e32}\u{e27}\u{e42}\u{e25}\u{e01}"),
        ("ISO-8859-15", b"\xa4uro \xbduvre", "\u{20ac}uro \u{153}uvre"),
        ("windows-1252", b"\x93Smart quotes\x94 \x96 caf\xe9", "\u{201c}Smart quotes\u{201d} \u{2013} caf\u{e9}"),
        ("ISO-8859-9", b"G\xfcnayd\xfdn d\xfcnya, \xfei\xfee", "G\u{fc}nayd\u{131}n d\u{fc}nya, \u{15f}i\u{15f}e"),
];

/// RFC 2047's Q encoding of `bytes`: letters and digits as they are, every other byte `=XX`.
fn q_encoded(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| match b.is_ascii_alphanumeric() {
            true => char::from(b).to_string(),
            false => format!("={b:02X}"),
        })
        .collect()
}

/// Each of those bodies reaches the phone as the same text in UTF-8, whether the part is
/// base64 or 8bit, including the two 7-bit charsets the WHATWG decoders give up on
/// (ISO-2022-KR, HZ-GB-2312); so does each as the sender's name in an RFC 2047 word.
#[test]
fn bodies_in_every_charset_arrive_as_utf8() {
    use base64::Engine as _;
    World::start(FrontEnd::Host, "charsets").run(|world| {
        let mut imap = world.imap()?;
        for (n, (label, bytes, _)) in CHARSET_BODIES.iter().enumerate() {
            let (encoding, body) = if bytes.contains(&0) || n % 2 == 0 {
                ("base64", base64_lines(bytes).into_bytes())
            } else {
                ("8bit", [bytes, &b"\r\n"[..]].concat())
            };
            // The same text as the sender's name, an RFC 2047 word in B or Q.
            let name = match n % 2 {
                0 => format!(
                    "=?{label}?B?{}?=",
                    base64::engine::general_purpose::STANDARD.encode(bytes)
                ),
                _ => format!("=?{label}?Q?{}?=", q_encoded(bytes)),
            };
            let mut raw = format!(
                "From: {name} <seed@example.org>\r\nTo: <{}>\r\nSubject: Charset {label}\r\n\
                 MIME-Version: 1.0\r\nContent-Type: text/plain; charset=\"{label}\"\r\n\
                 Content-Transfer-Encoding: {encoding}\r\n\r\n",
                world.user
            )
            .into_bytes();
            raw.extend(body);
            append(&mut imap, &raw)?;
        }
        let (mut device, inbox, key) = bootstrap_inbox(world, "CHARSETS", Version::V16_1)?;
        let options = SyncOptions::bodies([BodyPreference::truncated(1, 10_000)]);
        let drained = device.sync_drain(&inbox, &key, 100, Some(options))?;
        let adds = adds_by_subject(&drained.commands)?;
        let mut wrong = Vec::new();
        for (label, _, text) in CHARSET_BODIES {
            let subject = format!("Charset {label}");
            let (_, email) = adds.get(&subject).with_context(|| format!("no Add for {subject}"))?;
            let got = email.body.as_ref().map(|body| body.text()).unwrap_or_default();
            if got.trim_end() != *text {
                wrong.push(format!("{label}: {got:?}, want {text:?}"));
            }
            let from = email.from.as_deref().unwrap_or_default();
            if !from.contains(text) {
                wrong.push(format!("{label} sender: {from:?}, want the name {text:?}"));
            }
        }
        ensure!(wrong.is_empty(), "bodies not as sent: {wrong:#?}");
        Ok(())
    });
}

eas_edge_tests::for_each_front_end!(
    bootstrap_and_folder_hierarchy_changes,
    initial_sync_pages_2000_messages_each_exactly_once,
    changes_while_the_next_page_is_fetched_ahead_reach_the_phone,
    pages_rendered_ahead_are_the_pages_rendered_in_the_request,
    get_item_estimate_counts_what_is_not_synced_yet,
    new_mail_flag_changes_and_expunges_reach_the_phone,
    a_retried_sync_key_replays_the_same_bytes,
    sync_continues_across_gateway_restarts_without_resending,
    body_preferences_attachments_and_item_operations,
    settings_device_and_user_information,
    hostile_requests_get_protocol_answers_never_500,
    broken_and_huge_mime_still_syncs,
);
