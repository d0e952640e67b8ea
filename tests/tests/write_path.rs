//! The write path end to end (issue #6): what a phone does to the mailbox — flags, deletes,
//! moves, sending, replies and forwards, drafts, folders, Search, Find and ResolveRecipients —
//! through the real host (`eas-edge` + the plugin) against a real Dovecot/Postfix, checked with
//! a separate IMAP client and, for delivered mail, through the recipient's own EAS session.
//!
//! Every test starts its own mail stack and gateway; expectations come from the protocol
//! documents (MS-ASCMD / MS-ASEMAIL section numbers as cited in EAS-NOTES.md), not from the
//! engine. A failure shows what was sent, what the spec expects and what came back, followed
//! by the gateway's log. Nothing is timed.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use eas_edge_tests::eas::directory::Person;
use eas_edge_tests::eas::request::{ClientCommand, FetchRequest};
use eas_edge_tests::eas::write::{
    ComposeKind, ComposeRequest, ComposeSource, DraftFields, EmailChange, MailboxQuery, MoveRequest,
};
use eas_edge_tests::eas::{
    CommandKind, Device, FolderSyncAnswer, ServerCommand, SyncCollection, Version,
};
use eas_edge_tests::front::{Front, FrontEnd};
use eas_edge_tests::gateway::{GatewayOptions, TEST_DOMAIN};
use eas_edge_tests::imap::{AppendOptions, ImapClient};
use eas_edge_tests::mailstack::MailStack;
use eas_edge_tests::messages::{header_value, rfc5322_date};

const PASSWORD: &str = "write path pw";
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// Harness

/// A mail stack, a gateway in front of it, and the users of the test.
struct World {
    // dropped first: the gateway goes before the stack it talks to
    front: Front,
    stack: MailStack,
}

impl World {
    fn start(front: FrontEnd) -> World {
        World::start_with(front, GatewayOptions::default())
    }

    fn start_with(front: FrontEnd, options: GatewayOptions) -> World {
        let stack = MailStack::start().expect("mail stack");
        let front = Front::start(front, &stack, options).expect("gateway");
        World { front, stack }
    }

    /// Creates `local@example.test` and returns the address.
    fn user(&self, local: &str) -> String {
        let user = format!("{local}@{TEST_DOMAIN}");
        self.stack.add_user(&user, PASSWORD).expect("mail user");
        user
    }

    fn device(&self, user: &str, device_id: &str, version: Version) -> Device {
        Device::new(&self.front.url(), user, PASSWORD, device_id, version)
    }

    fn imap(&self, user: &str) -> Result<ImapClient> {
        self.stack.imap_login(user, PASSWORD)
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

/// The ServerId of the one folder of `folder_type` (2 Inbox, 3 Drafts, 4 Deleted Items,
/// 5 Sent Items; MS-ASCMD §2.2.3.186.3).
fn folder_of_type(folders: &FolderSyncAnswer, folder_type: u32) -> Result<String> {
    let found: Vec<_> = folders.adds.iter().filter(|f| f.folder_type == folder_type).collect();
    match found.as_slice() {
        [folder] => Ok(folder.server_id.clone()),
        _ => bail!(
            "expected one folder of Type {folder_type}, got {}:\n{}",
            found.len(),
            folders.xml()
        ),
    }
}

fn folder_named(folders: &FolderSyncAnswer, name: &str) -> Result<String> {
    folders
        .adds
        .iter()
        .find(|f| f.display_name == name)
        .map(|f| f.server_id.clone())
        .with_context(|| format!("FolderSync has no folder {name:?}:\n{}", folders.xml()))
}

/// A phone with one collection synced: its id and current SyncKey.
struct Phone {
    device: Device,
    folders: FolderSyncAnswer,
}

impl Phone {
    /// Provision + FolderSync 0.
    fn bootstrap(world: &World, user: &str, id: &str, version: Version) -> Result<Phone> {
        let mut device = world.device(user, id, version);
        let folders = device.bootstrap().with_context(|| format!("bootstrap of EAS {version}"))?;
        Ok(Phone { device, folders })
    }

    /// Sync 0 and the initial download of `collection`: (SyncKey, ServerId by Subject).
    fn download(&mut self, collection: &str) -> Result<(String, HashMap<String, String>)> {
        let key = self.device.sync_start(collection)?;
        let drained = self.device.sync_drain(collection, &key, 100, None)?;
        Ok((drained.sync_key.clone(), ids_by_subject(&drained.commands)?))
    }
}

/// ServerId of each Add, by Subject.
fn ids_by_subject(commands: &[ServerCommand]) -> Result<HashMap<String, String>> {
    let mut ids = HashMap::new();
    for command in commands.iter().filter(|c| c.kind == CommandKind::Add) {
        let subject = command.email()?.subject.unwrap_or_default();
        ensure!(
            ids.insert(subject.clone(), command.server_id.clone()).is_none(),
            "two Adds with Subject {subject:?}"
        );
    }
    Ok(ids)
}

/// One Sync of `collection` with `commands` from `key`; checks Status 1 and moves the key on.
/// Returns the collection's answer (server commands and Responses).
fn sync_with(
    device: &mut Device,
    collection: SyncCollection,
    key: &mut String,
) -> Result<eas_edge_tests::eas::SyncCollectionAnswer> {
    let id = collection.collection_id.clone();
    let answer = device.sync_one(collection)?;
    ensure!(answer.status.is_none(), "Sync: global Status {:?}:\n{}", answer.status, answer.xml());
    let Some(found) = answer.collection(&id) else {
        ensure!(answer.collections.is_empty(), "Sync answer without {id}:\n{}", answer.xml());
        return Ok(eas_edge_tests::eas::SyncCollectionAnswer {
            class: None,
            sync_key: Some(key.clone()),
            collection_id: Some(id),
            status: Some(1),
            more_available: false,
            commands: Vec::new(),
            responses: Vec::new(),
        });
    };
    ensure!(found.status == Some(1), "Sync of {id}: Status {:?}:\n{}", found.status, answer.xml());
    if let Some(new_key) = &found.sync_key {
        *key = new_key.clone();
    }
    Ok(found.clone())
}

/// A small RFC 5322 message whose every byte the test knows.
fn plain_message(from: &str, to: &str, subject: &str, message_id: &str, text: &str) -> Vec<u8> {
    format!(
        "Date: {}\r\nFrom: <{from}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n\
         Message-ID: <{message_id}>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=us-ascii\r\n\r\n{text}\r\n",
        rfc5322_date(1_748_000_000, 60)
    )
    .into_bytes()
}

/// APPENDs messages with these subjects to `mailbox`; returns their UIDs.
fn seed(imap: &mut ImapClient, mailbox: &str, user: &str, subjects: &[&str]) -> Result<Vec<u32>> {
    let mut uids = Vec::new();
    for (n, subject) in subjects.iter().enumerate() {
        let raw = plain_message(
            "seed@example.org",
            user,
            subject,
            &format!("seed-{n}-{}@example.org", subject.replace(' ', "-")),
            &format!("Body of {subject}."),
        );
        let uid = imap.append(mailbox, &raw, &AppendOptions::default())?;
        uids.push(uid.context("APPEND without APPENDUID")?);
    }
    Ok(uids)
}

/// UID of the one message of `mailbox` with this exact Subject, if any (SEARCH is a substring
/// match, so the candidates are checked).
fn uid_by_subject(imap: &mut ImapClient, mailbox: &str, subject: &str) -> Result<Option<u32>> {
    imap.select(mailbox)?;
    let candidates = imap.uid_search(&format!("SUBJECT \"{subject}\""))?;
    let mut found = Vec::new();
    for uid in candidates {
        let raw = imap.uid_fetch_rfc822(uid)?;
        if header_value(&raw, "Subject").as_deref() == Some(subject) {
            found.push(uid);
        }
    }
    ensure!(found.len() <= 1, "{mailbox}: {} messages with Subject {subject:?}", found.len());
    Ok(found.first().copied())
}

fn flags_of(imap: &mut ImapClient, mailbox: &str, uid: u32) -> Result<Vec<String>> {
    imap.select(mailbox)?;
    let flags = imap.uid_fetch_flags(&uid.to_string())?;
    flags.into_iter().find(|(u, _)| *u == uid).map(|(_, f)| f).context("message gone")
}

/// Waits until `mailbox` has a message with `subject`; returns its raw bytes.
fn wait_for_subject(imap: &mut ImapClient, mailbox: &str, subject: &str) -> Result<Vec<u8>> {
    let deadline = Instant::now() + DELIVERY_TIMEOUT;
    loop {
        if let Some(uid) = uid_by_subject(imap, mailbox, subject)? {
            return imap.uid_fetch_rfc822(uid);
        }
        if Instant::now() >= deadline {
            bail!("{mailbox}: no message with Subject {subject:?} after {DELIVERY_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Subjects of every message in `mailbox`.
fn subjects_in(imap: &mut ImapClient, mailbox: &str) -> Result<Vec<String>> {
    imap.select(mailbox)?;
    let mut subjects = Vec::new();
    for uid in imap.uid_search("ALL")? {
        let raw = imap.uid_fetch_rfc822(uid)?;
        subjects.push(header_value(&raw, "Subject").unwrap_or_default());
    }
    subjects.sort();
    Ok(subjects)
}

fn ensure_sent(
    outcome: &eas_edge_tests::eas::write_answer::ComposeOutcome,
    what: &str,
) -> Result<()> {
    ensure!(
        outcome.is_success(),
        "{what}: expected the empty 200 of success (MS-ASCMD §2.2.1.17.2), got {}",
        outcome.describe()
    );
    Ok(())
}

/// A message a phone composes: the whole RFC 5322 text, CRLF line ends.
fn composed(from: &str, to: &str, subject: &str, text: &str) -> Vec<u8> {
    format!(
        "From: <{from}>\r\nTo: <{to}>\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n"
    )
    .into_bytes()
}

// ---------------------------------------------------------------------------------------------
// 1. Read, flag and delete on the device

fn device_flags_and_deletes_reach_imap_and_do_not_come_back(front: FrontEnd) {
    World::start(front).run(|world| {
        for version in [Version::V16_1, Version::V14_1, Version::V12_1] {
            let user = world.user(&format!("flags{}", version.as_str().replace('.', "")));
            let mut imap = world.imap(&user)?;
            let subjects = ["Read me", "Flag me", "Trash me", "Expunge me", "Unread me"];
            let uids = seed(&mut imap, "INBOX", &user, &subjects)?;
            imap.select("INBOX")?;
            imap.uid_store(&uids[4].to_string(), "+FLAGS", &[r"\Seen", r"\Flagged"])?;

            let mut phone = Phone::bootstrap(world, &user, &device_id("FLAGS", version), version)?;
            let inbox = folder_of_type(&phone.folders, 2)?;
            let (mut key, ids) = phone.download(&inbox)?;
            ensure!(ids.len() == 5, "EAS {version}: initial sync gave {ids:?}");

            // Change (Read, Flag, and both undone) and a Delete with the default
            // DeletesAsMoves (true: to Deleted Items, MS-ASCMD §2.2.3.44)
            let change = |subject: &str, change: EmailChange| ClientCommand::Change {
                server_id: ids[subject].clone(),
                application_data: change.application_data(),
            };
            let collection = SyncCollection::new(key.clone(), &inbox)
                .command(change("Read me", EmailChange { read: Some(true), flagged: None }))
                .command(change("Flag me", EmailChange { read: None, flagged: Some(true) }))
                .command(change(
                    "Unread me",
                    EmailChange { read: Some(false), flagged: Some(false) },
                ))
                .command(ClientCommand::Delete { server_id: ids["Trash me"].clone() });
            let answer = sync_with(&mut phone.device, collection, &mut key)?;
            // successful Change and Delete need no Responses entry; any there must say 1
            for response in &answer.responses {
                ensure!(
                    response.status == Some(1),
                    "EAS {version}: a client change failed: {response:?}"
                );
            }
            ensure!(
                answer.commands.is_empty(),
                "EAS {version}: the client's own changes came back in the same Sync: {:?}",
                answer.commands
            );

            let seen = flags_of(&mut imap, "INBOX", uids[0])?;
            ensure!(seen.iter().any(|f| f == r"\Seen"), "EAS {version}: Read 1 → flags {seen:?}");
            let flagged = flags_of(&mut imap, "INBOX", uids[1])?;
            ensure!(
                flagged.iter().any(|f| f == r"\Flagged"),
                "EAS {version}: Flag Status 2 → flags {flagged:?}"
            );
            let undone = flags_of(&mut imap, "INBOX", uids[4])?;
            ensure!(
                !undone.iter().any(|f| f == r"\Seen" || f == r"\Flagged"),
                "EAS {version}: Read 0 and an empty Flag → flags {undone:?}"
            );
            ensure!(
                uid_by_subject(&mut imap, "INBOX", "Trash me")?.is_none(),
                "EAS {version}: deleted message still in INBOX"
            );
            ensure!(
                uid_by_subject(&mut imap, "Trash", "Trash me")?.is_some(),
                "EAS {version}: with DeletesAsMoves the message belongs in Trash"
            );

            // DeletesAsMoves 0: gone for good
            let mut collection = SyncCollection::new(key.clone(), &inbox)
                .command(ClientCommand::Delete { server_id: ids["Expunge me"].clone() });
            collection.deletes_as_moves = Some(false);
            let answer = sync_with(&mut phone.device, collection, &mut key)?;
            ensure!(
                answer.commands.is_empty() && answer.responses.iter().all(|r| r.status == Some(1)),
                "EAS {version}: Delete with DeletesAsMoves 0: {answer:?}"
            );
            ensure!(
                uid_by_subject(&mut imap, "INBOX", "Expunge me")?.is_none()
                    && uid_by_subject(&mut imap, "Trash", "Expunge me")?.is_none(),
                "EAS {version}: DeletesAsMoves 0 must expunge, not move to Trash"
            );

            // the next Sync has nothing: none of it bounces back as a server change
            let answer =
                sync_with(&mut phone.device, SyncCollection::new(key.clone(), &inbox), &mut key)?;
            ensure!(
                answer.commands.is_empty(),
                "EAS {version}: the device's own changes came back as server changes: {:?}",
                answer.commands
            );
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// 2. MoveItems (and FolderCreate for its destination)

fn move_items_gives_working_new_server_ids(front: FrontEnd) {
    World::start(front).run(|world| {
        let user = world.user("mover");
        let mut imap = world.imap(&user)?;
        seed(&mut imap, "INBOX", &user, &["Move one", "Move two", "Stay"])?;
        let version = Version::V16_1;
        let mut phone = Phone::bootstrap(world, &user, "MOVER161", version)?;
        let inbox = folder_of_type(&phone.folders, 2)?;
        let (mut inbox_key, ids) = phone.download(&inbox)?;

        // a folder made on the device is a real IMAP folder, known to FolderSync
        let folder_key = phone.folders.sync_key.clone().context("FolderSync without SyncKey")?;
        let created = phone.device.folder_create(&folder_key, "0", "Projects")?;
        ensure!(
            created.status == 1,
            "FolderCreate: Status {}:\n{:?}",
            created.status,
            created.root
        );
        let projects = created.server_id.clone().context("FolderCreate without ServerId")?;
        ensure!(
            imap.list("", "*")?.iter().any(|entry| entry.name == "Projects"),
            "FolderCreate Projects: no such IMAP folder"
        );
        let after = phone.device.folder_sync(created.sync_key.as_deref().unwrap_or(&folder_key))?;
        ensure!(
            after.status == 1 && after.adds.is_empty(),
            "FolderSync after FolderCreate must not add the folder again:\n{}",
            after.xml()
        );
        let (mut projects_key, nothing) = phone.download(&projects)?;
        ensure!(nothing.is_empty(), "new folder not empty: {nothing:?}");

        let moves = ["Move one", "Move two"].map(|subject| MoveRequest {
            src_msg_id: ids[subject].clone(),
            src_fld_id: inbox.clone(),
            dst_fld_id: projects.clone(),
        });
        let answer = phone.device.move_items(&moves)?;
        ensure!(
            answer.responses.len() == 2,
            "MoveItems: two Responses expected:\n{}",
            answer.xml()
        );
        let mut new_ids = HashMap::new();
        for (subject, response) in ["Move one", "Move two"].iter().zip(&answer.responses) {
            ensure!(
                response.status == Some(3)
                    && response.src_msg_id.as_deref() == Some(&ids[*subject]),
                "MoveItems {subject}: expected Status 3 for its SrcMsgId (§2.2.3.177.10):\n{}",
                answer.xml()
            );
            let dst = response.dst_msg_id.clone().context("MoveItems success without DstMsgId")?;
            new_ids.insert(*subject, dst);
        }

        // IMAP shows the move
        ensure!(
            uid_by_subject(&mut imap, "INBOX", "Move one")?.is_none(),
            "Move one still in INBOX"
        );
        ensure!(
            uid_by_subject(&mut imap, "Projects", "Move one")?.is_some(),
            "Move one not in Projects"
        );

        // the new ServerId works for ItemOperations …
        let fetched = phone
            .device
            .item_operations_fetch(&[FetchRequest::item(&projects, &new_ids["Move one"])])?;
        let email = fetched.fetches.first().context("ItemOperations without Fetch")?.email()?;
        ensure!(
            fetched.status == 1 && email.subject.as_deref() == Some("Move one"),
            "ItemOperations of DstMsgId: {}",
            fetched.xml()
        );
        // … and Sync knows it: no Delete in the source, no second Add in the target, and a
        // Change by the new id reaches the moved message
        let answer = sync_with(
            &mut phone.device,
            SyncCollection::new(inbox_key.clone(), &inbox),
            &mut inbox_key,
        )?;
        ensure!(answer.commands.is_empty(), "Inbox after MoveItems: {:?}", answer.commands);
        let collection =
            SyncCollection::new(projects_key.clone(), &projects).command(ClientCommand::Change {
                server_id: new_ids["Move two"].clone(),
                application_data: EmailChange { read: Some(true), flagged: None }
                    .application_data(),
            });
        let answer = sync_with(&mut phone.device, collection, &mut projects_key)?;
        ensure!(
            answer.commands.is_empty() && answer.responses.iter().all(|r| r.status == Some(1)),
            "Projects after MoveItems (the device already holds both): {answer:?}"
        );
        let uid = uid_by_subject(&mut imap, "Projects", "Move two")?
            .context("Move two not in Projects")?;
        let flags = flags_of(&mut imap, "Projects", uid)?;
        ensure!(flags.iter().any(|f| f == r"\Seen"), "Change by DstMsgId: flags {flags:?}");

        // an unknown item and the same folder get their own statuses
        let answer = phone.device.move_items(&[
            MoveRequest {
                src_msg_id: format!("{inbox}:999999"),
                src_fld_id: inbox.clone(),
                dst_fld_id: projects.clone(),
            },
            MoveRequest {
                src_msg_id: ids["Stay"].clone(),
                src_fld_id: inbox.clone(),
                dst_fld_id: inbox.clone(),
            },
        ])?;
        let statuses: Vec<Option<u32>> = answer.responses.iter().map(|r| r.status).collect();
        ensure!(
            statuses == [Some(1), Some(4)],
            "MoveItems of a missing item / to the same folder: expected Status 1 and 4:\n{}",
            answer.xml()
        );
        ensure!(uid_by_subject(&mut imap, "INBOX", "Stay")?.is_some(), "Stay was moved");
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// 3. SendMail to another local user

fn send_mail_reaches_the_other_users_phone_with_sent_copy_as_asked(front: FrontEnd) {
    World::start(front).run(|world| {
        let alice = world.user("alice");
        let bob = world.user("bob");
        let mut bob_imap = world.imap(&bob)?;
        let mut bob_phone = Phone::bootstrap(world, &bob, "BOBPHONE", Version::V16_1)?;
        let bob_inbox = folder_of_type(&bob_phone.folders, 2)?;
        let (mut bob_key, _) = bob_phone.download(&bob_inbox)?;
        let mut alice_imap = world.imap(&alice)?;

        // (version, save a copy) — 12.1 sends the raw message with SaveInSent=T in the query
        let cases = [(Version::V16_1, true), (Version::V14_1, false), (Version::V12_1, true)];
        for (version, save) in cases {
            let mut phone = Phone::bootstrap(world, &alice, &device_id("ALICE", version), version)?;
            let subject = format!("Hello Bob via EAS {version}");
            let request = ComposeRequest {
                kind: ComposeKind::SendMail,
                client_id: (version >= Version::V14_0).then(|| format!("send-{version}")),
                save_in_sent: save,
                source: None,
                mime: composed(&alice, &bob, &subject, "Sent from the phone. Grüße."),
            };
            ensure_sent(&phone.device.compose(&request)?, &format!("SendMail EAS {version}"))?;

            let raw = wait_for_subject(&mut bob_imap, "INBOX", &subject)?;
            ensure!(
                header_value(&raw, "Message-ID").is_some(),
                "EAS {version}: the delivered message has no Message-ID"
            );
            // Bob's own phone sees it
            let answer = sync_with(
                &mut bob_phone.device,
                SyncCollection::new(bob_key.clone(), &bob_inbox),
                &mut bob_key,
            )?;
            let adds = ids_by_subject(&answer.commands)?;
            ensure!(
                adds.contains_key(&subject) && adds.len() == 1,
                "EAS {version}: Bob's phone expected one Add {subject:?}, got {:?}",
                answer.commands
            );
            let in_sent = uid_by_subject(&mut alice_imap, "Sent", &subject)?.is_some();
            ensure!(
                in_sent == save,
                "EAS {version}: SaveInSent {save} but a copy in Sent is {in_sent}"
            );
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// 4. SmartReply and SmartForward

/// The original Bob sends Alice: a thread reply with an attachment.
fn original_with_attachment(from: &str, to: &str, attachment: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(attachment);
    let b = "=_orig_boundary_3";
    format!(
        "Date: {}\r\nFrom: <{from}>\r\nTo: <{to}>\r\nSubject: Quarterly plan\r\n\
         Message-ID: <orig-plan@example.test>\r\nReferences: <root-plan@example.test>\r\n\
         In-Reply-To: <root-plan@example.test>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"{b}\"\r\n\r\n--{b}\r\n\
         Content-Type: text/plain; charset=us-ascii\r\n\r\nThe plan is attached.\r\n--{b}\r\n\
         Content-Type: application/octet-stream; name=\"plan.bin\"\r\n\
         Content-Disposition: attachment; filename=\"plan.bin\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{encoded}\r\n--{b}--\r\n",
        rfc5322_date(1_748_000_000, 0)
    )
    .into_bytes()
}

fn smart_reply_and_forward_keep_threading_and_attachments(front: FrontEnd) {
    World::start(front).run(|world| {
        let alice = world.user("alice");
        let bob = world.user("bob");
        let carol = world.user("carol");
        let attachment: Vec<u8> = (0..3000u32).map(|n| (n * 7 % 251) as u8).collect();
        let mut alice_imap = world.imap(&alice)?;
        alice_imap.append(
            "INBOX",
            &original_with_attachment(&bob, &alice, &attachment),
            &AppendOptions::default(),
        )?;
        let mut bob_imap = world.imap(&bob)?;
        let mut carol_imap = world.imap(&carol)?;

        for version in [Version::V16_1, Version::V12_1] {
            let mut phone = Phone::bootstrap(world, &alice, &device_id("SMART", version), version)?;
            let inbox = folder_of_type(&phone.folders, 2)?;
            let (_, ids) = phone.download(&inbox)?;
            let original = ids.get("Quarterly plan").context("original not synced")?;
            let source =
                Some(ComposeSource { folder_id: inbox.clone(), item_id: original.clone() });

            let reply_subject = format!("Re: Quarterly plan ({version})");
            let reply = ComposeRequest {
                kind: ComposeKind::SmartReply,
                client_id: (version >= Version::V14_0).then(|| format!("reply-{version}")),
                save_in_sent: true,
                source: source.clone(),
                mime: composed(&alice, &bob, &reply_subject, "Looks good to me."),
            };
            ensure_sent(&phone.device.compose(&reply)?, &format!("SmartReply EAS {version}"))?;
            let raw = wait_for_subject(&mut bob_imap, "INBOX", &reply_subject)?;
            let text = String::from_utf8_lossy(&raw);
            ensure!(
                header_value(&raw, "In-Reply-To").as_deref() == Some("<orig-plan@example.test>"),
                "EAS {version}: the reply's In-Reply-To must be the original's Message-ID:\n{text}"
            );
            let references = header_value(&raw, "References").unwrap_or_default();
            ensure!(
                references.contains("<root-plan@example.test>")
                    && references.contains("<orig-plan@example.test>"),
                "EAS {version}: References must carry the thread (RFC 5322 §3.6.4): {references:?}"
            );
            ensure!(
                text.contains("Looks good to me."),
                "EAS {version}: the reply lost its text:\n{text}"
            );

            let forward_subject = format!("Fw: Quarterly plan ({version})");
            let forward = ComposeRequest {
                kind: ComposeKind::SmartForward,
                client_id: (version >= Version::V14_0).then(|| format!("forward-{version}")),
                save_in_sent: false,
                source,
                mime: composed(&alice, &carol, &forward_subject, "FYI, see the attachment."),
            };
            ensure_sent(&phone.device.compose(&forward)?, &format!("SmartForward EAS {version}"))?;
            let raw = wait_for_subject(&mut carol_imap, "INBOX", &forward_subject)?;
            let text = String::from_utf8_lossy(&raw);
            ensure!(
                text.contains("FYI, see the attachment."),
                "EAS {version}: forward lost its text:\n{text}"
            );
            ensure!(
                text.contains("plan.bin") && contains_base64_of(&text, &attachment),
                "EAS {version}: SmartForward must carry the original's attachment:\n{text}"
            );
        }
        // the original is marked answered (MS-ASCMD §2.2.1.20: the server updates the
        // original's reply state)
        let uid =
            uid_by_subject(&mut alice_imap, "INBOX", "Quarterly plan")?.context("original gone")?;
        let flags = flags_of(&mut alice_imap, "INBOX", uid)?;
        ensure!(
            flags.iter().any(|f| f == r"\Answered"),
            "original after SmartReply: flags {flags:?}"
        );
        Ok(())
    });
}

/// Whether the base64 bodies in `text` decode to something containing `bytes`.
fn contains_base64_of(text: &str, bytes: &[u8]) -> bool {
    use base64::Engine as _;
    // every run of base64 lines, decoded
    let mut run = String::new();
    for line in text.lines().chain(std::iter::once("")) {
        let line = line.trim_end();
        let is_base64 = !line.is_empty()
            && line.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b));
        if is_base64 {
            run.push_str(line);
            continue;
        }
        if !run.is_empty() {
            if let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(&run)
                && decoded.windows(bytes.len()).any(|w| w == bytes)
            {
                return true;
            }
            run.clear();
        }
    }
    false
}

// ---------------------------------------------------------------------------------------------
// 5. Idempotent retries

fn a_retried_send_mail_with_the_same_client_id_delivers_once(front: FrontEnd) {
    World::start(front).run(|world| {
        let alice = world.user("alice");
        let bob = world.user("bob");
        let mut bob_imap = world.imap(&bob)?;
        let mut phone = Phone::bootstrap(world, &alice, "RETRY161", Version::V16_1)?;
        let request = ComposeRequest {
            kind: ComposeKind::SendMail,
            client_id: Some("retry-client-id-1".to_string()),
            save_in_sent: true,
            source: None,
            mime: composed(&alice, &bob, "Only once", "A phone that lost the answer retries."),
        };
        ensure_sent(&phone.device.compose(&request)?, "SendMail")?;
        // the retry: a success or MessagePreviouslySent (118), never a second message
        let retry = phone.device.compose(&request)?;
        ensure!(
            retry.is_success() || retry.status == Some(118),
            "retried SendMail: expected success or Status 118, got {}",
            retry.describe()
        );
        // a different ClientId is a different message: sent, and after the duplicate would be
        let marker = ComposeRequest {
            client_id: Some("retry-client-id-2".to_string()),
            mime: composed(&alice, &bob, "Marker", "Sent after the retry."),
            ..request.clone()
        };
        ensure_sent(&phone.device.compose(&marker)?, "SendMail with a new ClientId")?;
        wait_for_subject(&mut bob_imap, "INBOX", "Marker")?;
        wait_for_subject(&mut bob_imap, "INBOX", "Only once")?;
        // a duplicate queued behind the marker would have had time to land by now
        std::thread::sleep(Duration::from_secs(2));
        let subjects = subjects_in(&mut bob_imap, "INBOX")?;
        ensure!(subjects == ["Marker", "Only once"], "Bob's INBOX: {subjects:?}");
        let mut alice_imap = world.imap(&alice)?;
        let sent = subjects_in(&mut alice_imap, "Sent")?;
        ensure!(sent == ["Marker", "Only once"], "Alice's Sent: {sent:?}");
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// 6. Drafts (16.1)

fn drafts_written_on_the_device_are_imap_drafts_and_send_empties_them(front: FrontEnd) {
    World::start(front).run(|world| {
        let alice = world.user("alice");
        let bob = world.user("bob");
        let mut alice_imap = world.imap(&alice)?;
        let mut bob_imap = world.imap(&bob)?;
        let mut phone = Phone::bootstrap(world, &alice, "DRAFT161", Version::V16_1)?;
        let drafts = folder_of_type(&phone.folders, 3)?;
        let mut key = phone.device.sync_start(&drafts)?;

        let add = DraftFields {
            to: Some(bob.clone()),
            subject: Some("Draft subject".to_string()),
            body: Some("First words.".to_string()),
            send: false,
        };
        let collection = SyncCollection::new(key.clone(), &drafts).command(ClientCommand::Add {
            client_id: "draft-1".to_string(),
            application_data: add.application_data(),
        });
        let answer = sync_with(&mut phone.device, collection, &mut key)?;
        let response = answer
            .responses
            .iter()
            .find(|r| r.client_id.as_deref() == Some("draft-1"))
            .with_context(|| format!("Sync Add: no Response for ClientId draft-1: {answer:?}"))?;
        ensure!(response.status == Some(1), "draft Add: {response:?}");
        let server_id = response.server_id.clone().context("draft Add without ServerId")?;
        let uid = uid_by_subject(&mut alice_imap, "Drafts", "Draft subject")?
            .context("the draft is not in IMAP Drafts")?;
        let flags = flags_of(&mut alice_imap, "Drafts", uid)?;
        ensure!(flags.iter().any(|f| f == r"\Draft"), "IMAP draft without \\Draft: {flags:?}");
        let raw = alice_imap.uid_fetch_rfc822(uid)?;
        ensure!(String::from_utf8_lossy(&raw).contains("First words."), "draft body missing");

        // Changes: IMAP cannot rewrite a message, so each is a new IMAP draft, but the device
        // keeps the ServerId it got from its Add (phones keep editing and finally send by it);
        // no Delete or Add of it comes back
        for (n, subject) in ["Draft subject v1", "Draft subject v2"].iter().enumerate() {
            let change =
                DraftFields { subject: Some(subject.to_string()), ..DraftFields::default() };
            let collection =
                SyncCollection::new(key.clone(), &drafts).command(ClientCommand::Change {
                    server_id: server_id.clone(),
                    application_data: change.application_data(),
                });
            let answer = sync_with(&mut phone.device, collection, &mut key)?;
            ensure!(
                answer.responses.iter().all(|r| r.status == Some(1)),
                "draft Change {n} by the Add's ServerId: {answer:?}"
            );
            ensure!(
                answer.commands.is_empty(),
                "draft Change {n} came back: {:?}",
                answer.commands
            );
            let subjects = subjects_in(&mut alice_imap, "Drafts")?;
            ensure!(subjects == [*subject], "Drafts after Change {n}: {subjects:?}");
        }
        let answer =
            sync_with(&mut phone.device, SyncCollection::new(key.clone(), &drafts), &mut key)?;
        ensure!(answer.commands.is_empty(), "Drafts after the Changes: {:?}", answer.commands);
        let fetched =
            phone.device.item_operations_fetch(&[FetchRequest::item(&drafts, &server_id)])?;
        let email = fetched.fetches.first().context("ItemOperations without Fetch")?.email()?;
        ensure!(
            email.subject.as_deref() == Some("Draft subject v2"),
            "ItemOperations of the edited draft by its ServerId: {}",
            fetched.xml()
        );

        // Send: delivered, copied to Sent, gone from Drafts; the device is told by its own id
        let send = DraftFields {
            body: Some("Final words.".to_string()),
            send: true,
            ..DraftFields::default()
        };
        let collection = SyncCollection::new(key.clone(), &drafts).command(ClientCommand::Change {
            server_id: server_id.clone(),
            application_data: send.application_data(),
        });
        let answer = sync_with(&mut phone.device, collection, &mut key)?;
        ensure!(answer.responses.iter().all(|r| r.status == Some(1)), "draft Send: {answer:?}");
        let mut deletes = answer.commands.clone();
        if deletes.is_empty() {
            deletes =
                sync_with(&mut phone.device, SyncCollection::new(key.clone(), &drafts), &mut key)?
                    .commands;
        }
        ensure!(
            deletes.len() == 1
                && deletes[0].kind == CommandKind::Delete
                && deletes[0].server_id == server_id,
            "after Send the device expects a Delete of {server_id}: {deletes:?}"
        );
        let raw = wait_for_subject(&mut bob_imap, "INBOX", "Draft subject v2")?;
        ensure!(String::from_utf8_lossy(&raw).contains("Final words."), "sent draft lost its body");
        let left = subjects_in(&mut alice_imap, "Drafts")?;
        ensure!(left.is_empty(), "Drafts after Send: {left:?}");
        ensure!(
            uid_by_subject(&mut alice_imap, "Sent", "Draft subject v2")?.is_some(),
            "no Sent copy"
        );
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// 7. Search and Find

fn search_and_find_return_the_matching_items(front: FrontEnd) {
    World::start(front).run(|world| {
        let user = world.user("seeker");
        let mut imap = world.imap(&user)?;
        imap.run("CREATE Archive/Old")?;
        seed(
            &mut imap,
            "INBOX",
            &user,
            &["Zebra crossing", "Zebra stripes", "Lion pride", "Giraffe"],
        )?;
        seed(&mut imap, "Archive/Old", &user, &["Zebra archive"])?;

        let mut phone = Phone::bootstrap(world, &user, "SEEK161", Version::V16_1)?;
        let inbox = folder_of_type(&phone.folders, 2)?;
        let all_zebras = ["Zebra archive", "Zebra crossing", "Zebra stripes"];

        // Search across the mailbox (no CollectionId)
        let answer = phone.device.search(&MailboxQuery::new("zebra"))?;
        ensure!(
            answer.status == Some(1) && answer.store_status == Some(1),
            "Search: statuses:\n{}",
            answer.xml()
        );
        ensure!(
            answer.subjects() == all_zebras,
            "Search zebra: {:?}\n{}",
            answer.subjects(),
            answer.xml()
        );
        ensure!(answer.total == Some(3), "Search Total: {:?}", answer.total);

        // one folder, then paging with Range
        let mut query = MailboxQuery::new("zebra");
        query.collection_id = Some(inbox.clone());
        let answer = phone.device.search(&query)?;
        ensure!(
            answer.subjects() == ["Zebra crossing", "Zebra stripes"],
            "Search in Inbox: {:?}",
            answer.subjects()
        );
        query.range = Some((0, 0));
        let answer = phone.device.search(&query)?;
        ensure!(
            answer.results.len() == 1
                && answer.total == Some(2)
                && answer.range.as_deref() == Some("0-0"),
            "Search Range 0-0: {} results, Total {:?}, Range {:?}",
            answer.results.len(),
            answer.total,
            answer.range
        );
        // a LongId leads to the item
        let long_id = answer.results[0].id.clone().context("Search result without LongId")?;
        let fetched =
            phone.device.item_operations_fetch(&[FetchRequest::item(&inbox, &long_id)])?;
        ensure!(
            fetched.status == 1 && fetched.fetches.first().is_some_and(|f| f.status == 1),
            "fetch by LongId: {}",
            fetched.xml()
        );

        // nothing found
        let answer = phone.device.search(&MailboxQuery::new("okapi"))?;
        ensure!(
            answer.store_status == Some(1) && answer.results.is_empty(),
            "Search okapi:\n{}",
            answer.xml()
        );

        // Find (16.1) over everything, with previews
        let answer = phone
            .device
            .find("6F9619FF-8B86-D011-B42D-00C04FC964FF", &MailboxQuery::new("zebra"))?;
        ensure!(
            answer.status == Some(1) && answer.store_status == Some(1),
            "Find: statuses:\n{}",
            answer.xml()
        );
        ensure!(
            answer.subjects() == all_zebras,
            "Find zebra: {:?}\n{}",
            answer.subjects(),
            answer.xml()
        );
        for result in &answer.results {
            ensure!(
                result.preview().is_some_and(|p| p.contains("Body of Zebra")),
                "Find result without its Preview:\n{}",
                answer.xml()
            );
        }
        let mut query = MailboxQuery::new("zebra");
        query.collection_id = Some(inbox.clone());
        let answer = phone.device.find("7F9619FF-8B86-D011-B42D-00C04FC964FF", &query)?;
        ensure!(
            answer.subjects() == ["Zebra crossing", "Zebra stripes"],
            "Find in Inbox: {:?}",
            answer.subjects()
        );
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// 7b. People and threads: ResolveRecipients, GAL Search and Search by ConversationId, all read
// from the mailbox's headers (the address book and the conversation scan fetch header blocks
// only, so a wrong fetch shows here as missing or garbled names)

/// A message with these header lines (CRLF added) and a one-line body.
fn message_with_headers(headers: &[&str], text: &str) -> Vec<u8> {
    let mut raw = format!("Date: {}\r\n", rfc5322_date(1_748_000_000, 60));
    for line in headers {
        raw.push_str(line);
        raw.push_str("\r\n");
    }
    raw.push_str("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n");
    raw.push_str(text);
    raw.push_str("\r\n");
    raw.into_bytes()
}

fn people_and_threads_are_found_from_the_mailbox(front: FrontEnd) {
    World::start(front).run(|world| {
        let user = world.user("finder");
        let mut imap = world.imap(&user)?;
        let to_user = format!("To: <{user}>");
        let inbox_messages = [
            message_with_headers(
                &[
                    "From: =?UTF-8?Q?Zo=C3=AB?= Quartermain <zoe.q@example.org>",
                    &to_user,
                    "Subject: Trip plans",
                    "Message-ID: <trip-root@example.org>",
                ],
                "Shall we go north?",
            ),
            message_with_headers(
                &[
                    "From: Yusuf Quinn <yusuf@example.org>",
                    &to_user,
                    "Cc: =?UTF-8?Q?Zo=C3=AB?= Quartermain <zoe.q@example.org>",
                    "Subject: Re: Trip plans",
                    "Message-ID: <trip-r1@example.org>",
                    "In-Reply-To: <trip-root@example.org>",
                    "References: <trip-root@example.org>",
                ],
                "North it is.",
            ),
            message_with_headers(
                &[
                    "From: Walter Other <walter@example.net>",
                    &to_user,
                    "Subject: Lunch",
                    "Message-ID: <lunch@example.net>",
                ],
                "Noon?",
            ),
        ];
        for raw in &inbox_messages {
            imap.append("INBOX", raw, &AppendOptions::default())?;
        }
        let sent_reply = message_with_headers(
            &[
                &format!("From: <{user}>"),
                "To: Quentin Blake <quentin@example.com>",
                "Subject: Re: Trip plans",
                "Message-ID: <trip-r2@example.test>",
                "In-Reply-To: <trip-r1@example.org>",
                "References: <trip-root@example.org> <trip-r1@example.org>",
            ],
            "Quentin, you are coming too.",
        );
        imap.append("Sent", &sent_reply, &AppendOptions::default())?;

        let mut phone = Phone::bootstrap(world, &user, "PEOPLE161", Version::V16_1)?;

        // ResolveRecipients: an address seen in From and Cc, a name seen only in Sent's To, an
        // address never seen, and a prefix three people share
        let names = ["zoe.q@example.org", "Quentin", "nobody@nowhere.example", "Qu"];
        let answer = phone.device.resolve_recipients(&names)?;
        ensure!(answer.status == Some(1), "ResolveRecipients Status:\n{}", answer.xml());
        let [zoe, quentin, nobody, qu] = answer.responses.as_slice() else {
            bail!("ResolveRecipients: one Response per To expected:\n{}", answer.xml());
        };
        let person = |name: &str, address: &str| Person {
            display_name: Some(name.to_string()),
            email_address: Some(address.to_string()),
        };
        for (resolution, expected) in [
            (zoe, person("Zoë Quartermain", "zoe.q@example.org")),
            (quentin, person("Quentin Blake", "quentin@example.com")),
        ] {
            ensure!(
                resolution.status == Some(1)
                    && resolution.recipient_count == Some(1)
                    && resolution.types == [Some(2)]
                    && resolution.recipients == [expected.clone()],
                "ResolveRecipients {:?}: expected {expected:?}:\n{}",
                resolution.to,
                answer.xml()
            );
        }
        ensure!(
            nobody.status == Some(4) && nobody.recipients.is_empty(),
            "ResolveRecipients of an unknown address:\n{}",
            answer.xml()
        );
        let mut shared: Vec<String> =
            qu.recipients.iter().filter_map(|p| p.email_address.clone()).collect();
        shared.sort();
        ensure!(
            qu.status == Some(2)
                && shared == ["quentin@example.com", "yusuf@example.org", "zoe.q@example.org"],
            "ResolveRecipients \"Qu\": ambiguous between the three expected:\n{}",
            answer.xml()
        );

        // the same address book behind a GAL Search
        let answer = phone.device.search_gal("quinn", (0, 9))?;
        ensure!(
            answer.status == Some(1)
                && answer.store_status == Some(1)
                && answer.people() == [person("Yusuf Quinn", "yusuf@example.org")],
            "Search GAL quinn:\n{}",
            answer.xml()
        );

        // the thread: Sync gives the three Inbox messages' ConversationIds; a Search by the
        // thread's id finds its messages in the Inbox and in Sent, and nothing else
        let inbox = folder_of_type(&phone.folders, 2)?;
        let key = phone.device.sync_start(&inbox)?;
        let drained = phone.device.sync_drain(&inbox, &key, 100, None)?;
        let mut conversations = HashMap::new();
        for command in drained.commands.iter().filter(|c| c.kind == CommandKind::Add) {
            let email = command.email()?;
            let id = email.conversation_id.context("an Add without ConversationId")?;
            conversations.insert(email.subject.unwrap_or_default(), id);
        }
        let thread = conversations.get("Trip plans").context("no Add for \"Trip plans\"")?;
        ensure!(
            conversations.get("Re: Trip plans") == Some(thread)
                && conversations.get("Lunch") != Some(thread),
            "ConversationIds: {conversations:?}"
        );
        let mut query = MailboxQuery::new("");
        query.conversation_id = Some(thread.clone());
        let answer = phone.device.search(&query)?;
        ensure!(
            answer.status == Some(1) && answer.store_status == Some(1),
            "Search by ConversationId: statuses:\n{}",
            answer.xml()
        );
        ensure!(
            answer.subjects() == ["Re: Trip plans", "Re: Trip plans", "Trip plans"],
            "Search by ConversationId: {:?}\n{}",
            answer.subjects(),
            answer.xml()
        );
        let sent = folder_of_type(&phone.folders, 5)?;
        ensure!(
            answer.results.iter().any(|r| r.collection_id.as_deref() == Some(sent.as_str())),
            "Search by ConversationId: the reply in Sent is missing:\n{}",
            answer.xml()
        );
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// 8. SMTP down

fn send_mail_with_smtp_down_fails_and_saves_nothing(front: FrontEnd) {
    // a port nothing listens on: the submission server is down
    let closed =
        std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port");
    let options = GatewayOptions { smtp: Some(closed), ..GatewayOptions::default() };
    World::start_with(front, options).run(|world| {
        let alice = world.user("alice");
        let bob = world.user("bob");
        for version in [Version::V16_1, Version::V12_1] {
            let mut phone = Phone::bootstrap(world, &alice, &device_id("DOWN", version), version)?;
            let request = ComposeRequest {
                kind: ComposeKind::SendMail,
                client_id: (version >= Version::V14_0).then(|| "down-1".to_string()),
                save_in_sent: true,
                source: None,
                mime: composed(&alice, &bob, "Into the void", "Nobody is listening."),
            };
            let outcome = phone.device.compose(&request)?;
            // 14.0+: Status 111 ServerErrorRetryLater or 120 MailSubmissionFailed in the body;
            // 12.1: the HTTP form of those (503 / 500) (MS-ASCMD §2.2.2)
            let failed = if version >= Version::V14_0 {
                outcome.http_status == 200 && matches!(outcome.status, Some(111 | 120))
            } else {
                matches!(outcome.http_status, 500 | 503)
            };
            ensure!(failed, "EAS {version}: SendMail with SMTP down: {}", outcome.describe());
            // the phone retries later: the same ClientId must still be sendable, not
            // remembered as sent
            let again = phone.device.compose(&request)?;
            ensure!(
                !again.is_success(),
                "EAS {version}: the retry claims success: {}",
                again.describe()
            );
        }
        let mut imap = world.imap(&alice)?;
        let sent = subjects_in(&mut imap, "Sent")?;
        ensure!(sent.is_empty(), "nothing was sent, yet Sent holds {sent:?}");
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// 9. A folder deleted under the device's feet

fn a_folder_deleted_elsewhere_gets_the_spec_statuses(front: FrontEnd) {
    World::start(front).run(|world| {
        let user = world.user("doomed");
        let mut imap = world.imap(&user)?;
        imap.run("CREATE Doomed")?;
        seed(&mut imap, "Doomed", &user, &["Inside doomed"])?;
        seed(&mut imap, "INBOX", &user, &["In the inbox"])?;
        for version in [Version::V16_1, Version::V12_1] {
            if version == Version::V12_1 {
                imap.run("CREATE Doomed")?;
                seed(&mut imap, "Doomed", &user, &["Inside doomed"])?;
            }
            let mut phone = Phone::bootstrap(world, &user, &device_id("DOOM", version), version)?;
            let inbox = folder_of_type(&phone.folders, 2)?;
            let doomed = folder_named(&phone.folders, "Doomed")?;
            let (_, inbox_ids) = phone.download(&inbox)?;
            let (key, doomed_ids) = phone.download(&doomed)?;
            let inside = doomed_ids.get("Inside doomed").context("Doomed not synced")?.clone();

            imap.run("DELETE Doomed")?;

            // Sync: Status 12, the folder hierarchy changed (MS-ASCMD §2.2.3.177.17)
            let collection =
                SyncCollection::new(key.clone(), &doomed).command(ClientCommand::Change {
                    server_id: inside.clone(),
                    application_data: EmailChange { read: Some(true), flagged: None }
                        .application_data(),
                });
            let answer = phone.device.sync_one(collection)?;
            ensure!(
                answer.status_of(&doomed) == Some(12),
                "EAS {version}: Sync of a deleted folder: expected Status 12:\n{}",
                answer.xml()
            );
            // MoveItems into it: 2 (invalid destination); out of it: 1 (invalid source)
            let answer = phone.device.move_items(&[
                MoveRequest {
                    src_msg_id: inbox_ids["In the inbox"].clone(),
                    src_fld_id: inbox.clone(),
                    dst_fld_id: doomed.clone(),
                },
                MoveRequest {
                    src_msg_id: inside.clone(),
                    src_fld_id: doomed.clone(),
                    dst_fld_id: inbox.clone(),
                },
            ])?;
            let statuses: Vec<Option<u32>> = answer.responses.iter().map(|r| r.status).collect();
            ensure!(
                statuses == [Some(2), Some(1)],
                "EAS {version}: MoveItems to / from a deleted folder: expected Status 2 and 1 \
                 (§2.2.3.177.10):\n{}",
                answer.xml()
            );
            ensure!(
                uid_by_subject(&mut imap, "INBOX", "In the inbox")?.is_some(),
                "the inbox message moved"
            );
            // FolderSync tells the device, and the gateway is still alive
            let key = phone.folders.sync_key.clone().context("no FolderSync key")?;
            let changes = phone.device.folder_sync(&key)?;
            ensure!(
                changes.status == 1 && changes.deletes == [doomed.clone()],
                "EAS {version}: FolderSync after the DELETE:\n{}",
                changes.xml()
            );
        }
        ensure!(world.front.gateway.is_running(), "the gateway died");
        Ok(())
    });
}

eas_edge_tests::for_each_front_end!(
    device_flags_and_deletes_reach_imap_and_do_not_come_back,
    move_items_gives_working_new_server_ids,
    send_mail_reaches_the_other_users_phone_with_sent_copy_as_asked,
    smart_reply_and_forward_keep_threading_and_attachments,
    a_retried_send_mail_with_the_same_client_id_delivers_once,
    drafts_written_on_the_device_are_imap_drafts_and_send_empties_them,
    search_and_find_return_the_matching_items,
    people_and_threads_are_found_from_the_mailbox,
    send_mail_with_smtp_down_fails_and_saves_nothing,
    a_folder_deleted_elsewhere_gets_the_spec_statuses,
);
