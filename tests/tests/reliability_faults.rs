//! Faults end to end (issue #10): the gateway killed with SIGKILL in the middle of a Sync, a
//! MoveItems and a SendMail at random points; IMAP down, slow, hung and cut mid-FETCH (through
//! the fault proxy of `eas_edge_tests::faults`); SMTP refusing, hung and down; a folder
//! recreated under the device (new UIDVALIDITY).
//!
//! The invariant checked after every fault is the one a phone user sees: the device's view
//! (every Add/Delete it received, applied like a phone does, plus its retries with the same
//! SyncKey or ClientId) equals the IMAP mailbox, as a multiset of subjects: nothing lost,
//! nothing twice; and the recipient of a SendMail has each message exactly once.
//!
//! `EAS_EDGE_RELIABILITY_RUNS` sets the repetitions of the kill scenarios (3 in CI, 50 in
//! `cargo xtask reliability`); `RELIABILITY |` lines carry the figures. Nothing is timed.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use eas_edge_tests::eas::write::{
    ComposeKind, ComposeRequest, ComposeSource, DraftFields, MoveRequest,
};
use eas_edge_tests::eas::write_answer::{ComposeOutcome, MoveItemsAnswer};
use eas_edge_tests::eas::{
    ClientCommand, CommandKind, Device, SyncAnswer, SyncCollection, SyncRequest, Version,
};
use eas_edge_tests::faults::{
    AdminMetrics, Fault, FaultProxy, Rng, Usage, figure, full_form, runs,
};
use eas_edge_tests::front::{Front, FrontEnd};
use eas_edge_tests::gateway::{Gateway, GatewayOptions, TEST_DOMAIN};
use eas_edge_tests::imap::{AppendOptions, ImapClient};
use eas_edge_tests::mailstack::MailStack;
use eas_edge_tests::messages::header_value;
use eas_edge_tests::postgres::Postgres;
use eas_wbxml::tags::ping;
use eas_wbxml::{Document, Element, Limits};

const PASSWORD: &str = "faults pw";

struct World {
    gateway: Gateway,
    stack: MailStack,
}

impl World {
    fn start(options: GatewayOptions) -> World {
        let stack = MailStack::start().expect("mail stack");
        let gateway = Gateway::start_with(&stack, options).expect("gateway");
        World { gateway, stack }
    }

    fn user(&self, local: &str) -> String {
        let user = format!("{local}@{TEST_DOMAIN}");
        self.stack.add_user(&user, PASSWORD).expect("mail user");
        user
    }

    fn imap(&self, user: &str) -> Result<ImapClient> {
        self.stack.imap_login(user, PASSWORD)
    }

    fn device(&self, user: &str, id: &str) -> Device {
        Device::new(&self.gateway.url(), user, PASSWORD, id, Version::V16_1)
    }

    fn run(mut self, body: impl FnOnce(&mut World) -> Result<()>) {
        let outcome = body(&mut self);
        let log = self.gateway.log();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(80)..].join("\n");
        if let Err(error) = outcome {
            panic!("{error:#}\n--- gateway log:\n{tail}");
        }
    }
}

/// The same phone on another connection (a request in flight blocks its caller).
fn twin(device: &Device, url: &str) -> Device {
    let mut twin = Device::new(url, &device.user, PASSWORD, &device.device_id, device.version);
    twin.policy_key = device.policy_key;
    twin.auto_provision = false;
    twin
}

fn message(to: &str, subject: &str) -> Vec<u8> {
    format!(
        "From: <seed@example.org>\r\nTo: <{to}>\r\nSubject: {subject}\r\n\
         Message-ID: <{}@faults.test>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=us-ascii\r\n\r\nBody of {subject}.\r\n",
        subject.replace(' ', "-")
    )
    .into_bytes()
}

fn append(imap: &mut ImapClient, mailbox: &str, to: &str, subjects: &[String]) -> Result<()> {
    for subject in subjects {
        imap.append(mailbox, &message(to, subject), &AppendOptions::default())?;
    }
    Ok(())
}

/// Subjects of `mailbox` with their counts.
fn imap_subjects(imap: &mut ImapClient, mailbox: &str) -> Result<BTreeMap<String, usize>> {
    imap.select(mailbox)?;
    let mut subjects = BTreeMap::new();
    for uid in imap.uid_search("ALL")? {
        let raw = imap.uid_fetch_rfc822(uid)?;
        *subjects.entry(header_value(&raw, "Subject").unwrap_or_default()).or_insert(0) += 1;
    }
    Ok(subjects)
}

/// One folder as the phone holds it: ServerId → Subject.
#[derive(Default)]
struct View {
    items: BTreeMap<String, String>,
}

impl View {
    /// Applies a Sync answer's server commands like a phone: an Add of a ServerId it already
    /// holds is an error (the server sent something twice).
    fn apply(&mut self, answer: &SyncAnswer, collection_id: &str) -> Result<Option<String>> {
        let Some(collection) = answer.collection(collection_id) else {
            return Ok(None);
        };
        ensure!(
            collection.status == Some(1),
            "Sync of {collection_id}: Status {:?}:\n{}",
            collection.status,
            answer.xml()
        );
        for command in &collection.commands {
            match command.kind {
                CommandKind::Add => {
                    let subject = command.email()?.subject.unwrap_or_default();
                    if let Some(old) = self.items.insert(command.server_id.clone(), subject) {
                        bail!("ServerId {} added again (held as {old:?})", command.server_id);
                    }
                }
                CommandKind::Delete | CommandKind::SoftDelete => {
                    self.items.remove(&command.server_id);
                }
                CommandKind::Change => {}
            }
        }
        Ok(collection.sync_key.clone())
    }

    fn subjects(&self) -> BTreeMap<String, usize> {
        let mut subjects = BTreeMap::new();
        for subject in self.items.values() {
            *subjects.entry(subject.clone()).or_insert(0) += 1;
        }
        subjects
    }

    /// Syncs `collection_id` from `key` to the end, applying every page; returns the new key.
    fn drain(&mut self, device: &mut Device, collection_id: &str, key: &str) -> Result<String> {
        let mut key = key.to_owned();
        loop {
            let answer =
                device.sync_one(SyncCollection::new(key.clone(), collection_id).window(50))?;
            let more = answer.collection(collection_id).is_some_and(|c| c.more_available);
            if let Some(new_key) = self.apply(&answer, collection_id)? {
                key = new_key;
            }
            if !more {
                return Ok(key);
            }
        }
    }
}

fn inbox_of(device: &mut Device) -> Result<(String, eas_edge_tests::eas::FolderSyncAnswer)> {
    let folders = device.bootstrap()?;
    let inbox =
        folders.adds.iter().find(|f| f.folder_type == 2).context("no inbox")?.server_id.clone();
    Ok((inbox, folders))
}

fn ensure_same(view: &View, imap: BTreeMap<String, usize>, what: &str) -> Result<()> {
    let device = view.subjects();
    if device != imap {
        let missing: Vec<_> = imap.keys().filter(|s| !device.contains_key(*s)).collect();
        let extra: Vec<_> = device.iter().filter(|(s, n)| imap.get(*s) != Some(n)).collect();
        bail!(
            "{what}: the device's view differs from IMAP: missing {missing:?}, extra or duplicated \
             {extra:?} ({} on the device, {} in IMAP)",
            device.values().sum::<usize>(),
            imap.values().sum::<usize>()
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// a state file damaged on disk

/// Damages the stopped gateway's state file like a bad disk or a stray write would: `header`
/// flips bytes 16..64 of the file (redb's region header); otherwise every copy of `needle` (the
/// login, part of every key of the user's state) is zeroed, wherever it lies in the file.
fn damage_state_file(path: &std::path::Path, header: bool, needle: &[u8]) -> Result<usize> {
    let mut bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut damaged = 0;
    if header {
        for byte in &mut bytes[16..64] {
            *byte ^= 0x5A;
        }
        damaged = 48;
    } else {
        let hits: Vec<usize> =
            (0..bytes.len() - needle.len()).filter(|&at| bytes[at..].starts_with(needle)).collect();
        ensure!(!hits.is_empty(), "the login is nowhere in {}", path.display());
        for at in hits {
            bytes[at..at + needle.len()].fill(0);
            damaged += needle.len();
        }
    }
    std::fs::write(path, &bytes)?;
    Ok(damaged)
}

/// Files next to the state file that a damaged store was moved to.
fn moved_aside(state: &std::path::Path) -> Result<Vec<std::path::PathBuf>> {
    let dir = state.parent().context("state file directory")?;
    let prefix = format!("{}.corrupt-", state.file_name().unwrap_or_default().to_string_lossy());
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.file_name().is_some_and(|name| name.to_string_lossy().starts_with(&prefix)) {
            found.push(path);
        }
    }
    Ok(found)
}

/// The phone after the gateway came back on a new, empty store: its SyncKeys are unknown
/// (never a Status 1 from a store that should not know them), and FolderSync 0 + Sync 0 give
/// exactly the mailbox. Returns the old key's Sync status.
fn resync_after_a_fresh_store(
    world: &mut World,
    device: &mut Device,
    inbox: &str,
    key: &str,
    user: &str,
) -> Result<u32> {
    let answer = device.sync_one(SyncCollection::new(key, inbox))?;
    let status = answer.status_of(inbox).or(answer.status).unwrap_or(0);
    ensure!(
        status != 1,
        "the old SyncKey was accepted by a store that was started fresh:\n{}",
        answer.xml()
    );
    let (inbox, _) = inbox_of(device)?;
    let mut view = View::default();
    let key = device.sync_start(&inbox)?;
    view.drain(device, &inbox, &key)?;
    ensure_same(&view, imap_subjects(&mut world.imap(user)?, "INBOX")?, "after the resync")?;
    Ok(status)
}

#[test]
fn a_state_file_damaged_on_disk_is_moved_aside_or_refused_never_served() {
    let state = "[state]\npath = \"state.redb\"\n\n[state.redb]\non_corruption = \"start_fresh\"\n";
    let options = GatewayOptions { state: Some(state.to_owned()), ..GatewayOptions::default() };
    World::start(options).run(|world| {
        let alice = world.user("alice");
        let subjects: Vec<String> = (1..=12).map(|n| format!("Kept {n}")).collect();
        append(&mut world.imap(&alice)?, "INBOX", &alice, &subjects)?;
        let mut device = world.device(&alice, "DAMAGED1");
        let (inbox, _) = inbox_of(&mut device)?;
        let mut view = View::default();
        let key = device.sync_start(&inbox)?;
        let key = view.drain(&mut device, &inbox, &key)?;
        ensure_same(&view, imap_subjects(&mut world.imap(&alice)?, "INBOX")?, "before")?;
        let config = world.gateway.config_path().to_path_buf();
        let path = config.parent().context("config directory")?.join("state.redb");
        let mut results = Vec::new();

        // 1. the header, with on_corruption = "start_fresh" (the default)
        world.gateway.stop();
        damage_state_file(&path, true, alice.as_bytes())?;
        world.gateway.restart().context("restart on a damaged header")?;
        let log = world.gateway.log();
        ensure!(log.contains("THE STATE STORE WAS DAMAGED"), "no recovery logged:\n{log}");
        let aside = moved_aside(&path)?;
        ensure!(aside.len() == 1, "moved aside: {aside:?}");
        let status = resync_after_a_fresh_store(world, &mut device, &inbox, &key, &alice)?;
        results.push(format!(
            "header damaged (bytes 16..64): moved aside, new store; old SyncKey Status \
             {status}, resync equals IMAP"
        ));

        // the phone's state on the new store, before the next damage
        let (inbox, _) = inbox_of(&mut device)?;
        let mut view = View::default();
        let key = device.sync_start(&inbox)?;
        let key = view.drain(&mut device, &inbox, &key)?;

        // 2. every key of the user zeroed (pages in the middle of the file), with "refuse"
        world.gateway.stop();
        let zeroed = damage_state_file(&path, false, alice.as_bytes())?;
        let damaged = std::fs::read(&path)?;
        let text = std::fs::read_to_string(&config)?;
        std::fs::write(&config, text.replace("\"start_fresh\"", "\"refuse\""))?;
        let refused = world.gateway.restart();
        let error = match refused {
            Ok(()) => bail!("the gateway started on a damaged file with on_corruption = refuse"),
            Err(error) => format!("{error:#}"),
        };
        ensure!(
            error.contains("state.redb") && error.contains("damaged"),
            "the refusal does not name the file and the damage: {error}"
        );
        ensure!(std::fs::read(&path)? == damaged, "the refused file was changed");
        ensure!(moved_aside(&path)?.len() == 1, "a refused file was moved");
        results.push(format!(
            "{zeroed} bytes of keys zeroed, on_corruption = \"refuse\": the gateway does not \
             start, the error names the file, the file is left as it was"
        ));

        // 3. the same file with "start_fresh": moved aside, and the phone resyncs
        std::fs::write(&config, text)?;
        world.gateway.restart().context("restart with start_fresh")?;
        ensure!(moved_aside(&path)?.len() == 2, "the second damaged file was not moved aside");
        let status = resync_after_a_fresh_store(world, &mut device, &inbox, &key, &alice)?;
        results.push(format!(
            "same file, on_corruption = \"start_fresh\": moved aside, new store; old SyncKey \
             Status {status}, resync equals IMAP"
        ));
        for result in &results {
            figure("state file damaged on disk (gateway killed, file damaged, started)", result);
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// kill -9

/// Requests of the MoveItems and SendMail scenarios that are not killed: they warm the
/// session up and time a request for the kill points.
const CALIBRATION: usize = 2;

// These scenarios run once with the gateway serving phones itself (`host::…`) and once with
// Envoy in front (`envoy::…`: the proxy-wasm filter reaching the host's capabilities by HTTP
// callouts): with either, the phone gets a status, not a hang, and nothing is lost or sent twice.
eas_edge_tests::for_each_front_end!(
    kill_9_mid_sync,
    imap_faults_during_a_sync_page,
    smtp_refusing_hung_or_down,
    smtp_cut_after_the_message_end,
    kill_9_mid_move_items,
    kill_9_mid_send_mail,
    kill_9_mid_draft_send,
    imap_down_under_load,
);

/// When to kill: uniformly within one and a half times what such a request takes (`typical`,
/// timed on an undisturbed one), so that kills land before, inside and after the work.
fn kill_point(rng: &mut Rng, typical: Duration) -> Duration {
    // (the first requests of a session are slower: `typical` is timed on a warm one)
    Duration::from_micros(rng.below(typical.as_micros() as u64 * 3 / 2 + 1))
}

/// Kill points within the requests of one scenario: the first [`CALIBRATION`] requests run
/// undisturbed and time a typical one; during each later one the gateway is killed and
/// restarted at a random point within one and a half times that.
struct KillSchedule {
    rng: Rng,
    typical: Duration,
}

impl KillSchedule {
    fn new() -> Self {
        KillSchedule { rng: Rng::from_env_or_clock(), typical: Duration::ZERO }
    }

    /// Runs `request` (the phone's) on a thread of its own, killing the gateway during it
    /// unless `run` is a calibration; its outcome, and whether the gateway was killed.
    fn run<T: Send + 'static>(
        &mut self,
        run: usize,
        gateway: &mut Gateway,
        request: impl FnOnce() -> T + Send + 'static,
    ) -> Result<(T, bool)> {
        let started = Instant::now();
        let in_flight = thread::spawn(request);
        let killed = run >= CALIBRATION;
        if killed {
            thread::sleep(kill_point(&mut self.rng, self.typical));
            gateway.restart()?;
        } else {
            while !in_flight.is_finished() {
                thread::sleep(Duration::from_millis(1));
            }
            self.typical = started.elapsed();
        }
        let outcome = in_flight.join().map_err(|_| anyhow::anyhow!("the request panicked"))?;
        Ok((outcome, killed))
    }
}

/// A phone's retry after the gateway came back: the request again, 300 ms apart, at most 10
/// times, until `served` holds: phones retry "server error, retry later" (110, 111, MoveItems
/// Status 7), and the front end may not serve them for a moment (Envoy's callouts just after
/// the gateway behind it restarted). The last outcome.
fn retry_like_a_phone<T>(
    mut request: impl FnMut() -> Result<T>,
    served: impl Fn(&T) -> bool,
) -> Result<T> {
    let mut outcome = request();
    for _ in 1..10 {
        if outcome.as_ref().is_ok_and(&served) {
            break;
        }
        thread::sleep(Duration::from_millis(300));
        outcome = request();
    }
    outcome
}

/// The retry of a Sync page with the same SyncKey, until served.
fn retry_until_served(
    device: &mut Device,
    request: &SyncCollection,
    collection: &str,
) -> Result<SyncAnswer> {
    let served = |answer: &SyncAnswer| !matches!(answer.status_of(collection), Some(110 | 111));
    let answer = retry_like_a_phone(|| device.sync_one(request.clone()), served)
        .context("the retry with the same SyncKey")?;
    ensure!(
        served(&answer),
        "the retry with the same SyncKey still failed after 10 attempts: Status {:?}",
        answer.status_of(collection)
    );
    Ok(answer)
}

/// The gateway killed during a Sync page (with Envoy in front: the gateway behind it, which
/// holds the state and the mailbox capabilities), restarted, and the page retried.
fn kill_9_mid_sync(kind: FrontEnd) {
    with_front(kind, |stack, front| {
        let alice = format!("alice@{TEST_DOMAIN}");
        stack.add_user(&alice, PASSWORD)?;
        let mut imap = stack.imap_login(&alice, PASSWORD)?;
        let seed: Vec<String> = (0..60).map(|n| format!("Seed {n}")).collect();
        append(&mut imap, "INBOX", &alice, &seed)?;
        let url = front.url();
        let mut device = Device::new(&url, &alice, PASSWORD, "KILLSYNC", Version::V16_1);
        let (inbox, _) = inbox_of(&mut device)?;
        let mut key = device.sync_start(&inbox)?;
        let mut view = View::default();
        let mut rng = Rng::from_env_or_clock();
        let runs = runs(3);
        let started = Instant::now();
        let answer = device.sync_one(SyncCollection::new(key.clone(), &inbox).window(5))?;
        let typical = started.elapsed();
        key = view.apply(&answer, &inbox)?.context("no SyncKey")?;
        let (mut lost, mut restarts_ms, mut recovered) = (0, Vec::new(), 0);
        let mut failed_statuses = BTreeMap::new();
        for run in 0..runs {
            // the mailbox changes between syncs: 3 new, 1 expunged
            append(
                &mut imap,
                "INBOX",
                &alice,
                &(0..3).map(|k| format!("Run {run} new {k}")).collect::<Vec<_>>(),
            )?;
            imap.select("INBOX")?;
            let uids = imap.uid_search("ALL")?;
            let victim = uids[rng.below(uids.len() as u64) as usize];
            imap.uid_store(&victim.to_string(), "+FLAGS", &["\\Deleted"])?;
            imap.uid_expunge(&victim.to_string())?;
            // a page of 5 in flight, the gateway killed 0-150 ms into it
            let mut phone = twin(&device, &url);
            let request = SyncCollection::new(key.clone(), &inbox).window(5);
            let sent = request.clone();
            let in_flight = thread::spawn(move || phone.sync_one(sent));
            thread::sleep(kill_point(&mut rng, typical));
            let restart = Instant::now();
            front.gateway.restart()?;
            restarts_ms.push(restart.elapsed().as_millis());
            // redb rolls back to the last commit; the store says so when it opens
            recovered += usize::from(front.gateway.log().contains("not shut down cleanly"));
            let answer = match in_flight
                .join()
                .map_err(|_| anyhow::anyhow!("sync thread panicked"))?
            {
                Ok(answer) if answer.status_of(&inbox).is_none_or(|status| status == 1) => answer,
                outcome => {
                    // the answer was lost, or (Envoy in front) the page failed when the
                    // gateway behind it went away: the phone resends the same request
                    lost += 1;
                    let why = match outcome {
                        Ok(answer) => format!("Status {:?}", answer.status_of(&inbox)),
                        Err(_) => "no answer".to_owned(),
                    };
                    *failed_statuses.entry(why).or_insert(0) += 1;
                    retry_until_served(&mut device, &request, &inbox)?
                }
            };
            if let Some(new_key) =
                view.apply(&answer, &inbox).with_context(|| format!("run {run}"))?
            {
                key = new_key;
            }
        }
        key = view.drain(&mut device, &inbox, &key)?;
        let _ = key;
        ensure_same(&view, imap_subjects(&mut imap, "INBOX")?, "after the kills")?;
        restarts_ms.sort();
        let through = match kind {
            FrontEnd::Host => {
                "kill -9 mid-Sync (window 5, mailbox changing), retry with the same SyncKey"
            }
            FrontEnd::Envoy => {
                "kill -9 of the gateway behind Envoy mid-Sync (window 5, mailbox changing), retry \
                 with the same SyncKey"
            }
        };
        figure(
            through,
            &format!(
                "{runs}/{runs} runs consistent (device view == IMAP, no ServerId twice); \
                 {lost} pages failed or lost and replayed ({failed_statuses:?}); the state store \
                 reported an unclean shutdown and recovered on {recovered}/{runs} restarts; kill \
                 points uniform in 0..1.5 x {typical:.0?}; restart to listening p50 {} ms",
                restarts_ms[restarts_ms.len() / 2]
            ),
        );
        Ok(())
    });
}

/// The retry of a MoveItems whose answer was lost, until served (no answer, a top-level
/// status, or Status 7 "retry later" are not).
fn move_until_served(device: &mut Device, moves: &[MoveRequest]) -> Result<MoveItemsAnswer> {
    let served =
        |answer: &MoveItemsAnswer| answer.responses.first().is_some_and(|r| r.status != Some(7));
    let answer =
        retry_like_a_phone(|| device.move_items(moves), served).context("the retried MoveItems")?;
    ensure!(
        served(&answer),
        "the retried MoveItems still failed after 10 attempts: {}",
        answer.xml()
    );
    Ok(answer)
}

/// The gateway killed during a MoveItems (with Envoy in front: the gateway behind it), and
/// the move retried: each message ends in exactly one folder, and both views equal IMAP.
fn kill_9_mid_move_items(kind: FrontEnd) {
    with_front(kind, |stack, front| {
        let alice = format!("alice@{TEST_DOMAIN}");
        stack.add_user(&alice, PASSWORD)?;
        let mut imap = stack.imap_login(&alice, PASSWORD)?;
        imap.run("CREATE Moved")?;
        let runs = runs(3);
        let seed: Vec<String> =
            (0..runs + CALIBRATION + 5).map(|n| format!("Movable {n}")).collect();
        append(&mut imap, "INBOX", &alice, &seed)?;
        let url = front.url();
        let mut device = Device::new(&url, &alice, PASSWORD, "KILLMOVE", Version::V16_1);
        let (inbox, folders) = inbox_of(&mut device)?;
        let archive = folders
            .adds
            .iter()
            .find(|f| f.display_name == "Moved")
            .context("no Moved folder")?
            .server_id
            .clone();
        let mut inbox_view = View::default();
        let mut archive_view = View::default();
        let mut inbox_key = device.sync_start(&inbox)?;
        inbox_key = inbox_view.drain(&mut device, &inbox, &inbox_key)?;
        let mut archive_key = device.sync_start(&archive)?;
        archive_key = archive_view.drain(&mut device, &archive, &archive_key)?;
        let mut schedule = KillSchedule::new();
        let (mut lost, mut retry_statuses) = (0, BTreeMap::new());
        for run in 0..runs + CALIBRATION {
            let source = inbox_view.items.keys().next().context("INBOX view empty")?.clone();
            let subject = inbox_view.items[&source].clone();
            let moves = vec![MoveRequest {
                src_msg_id: source.clone(),
                src_fld_id: inbox.clone(),
                dst_fld_id: archive.clone(),
            }];
            let mut phone = twin(&device, &url);
            let sent = moves.clone();
            let (outcome, _) =
                schedule.run(run, &mut front.gateway, move || phone.move_items(&sent))?;
            // the phone moved it locally either way
            inbox_view.items.remove(&source);
            let answer = match outcome {
                Ok(answer) if answer.responses.first().is_some_and(|r| r.status != Some(7)) => {
                    answer
                }
                // the answer was lost, or (Envoy in front) the move failed when the
                // gateway behind it went away: the phone resends it
                _ => {
                    lost += 1;
                    let retry = move_until_served(&mut device, &moves)?;
                    let status = retry.responses.first().and_then(|r| r.status);
                    *retry_statuses.entry(format!("{status:?}")).or_insert(0) += 1;
                    retry
                }
            };
            let response =
                answer.responses.first().with_context(|| format!("run {run}: {}", answer.xml()))?;
            match (response.status, &response.dst_msg_id) {
                (Some(3), Some(destination)) => {
                    archive_view.items.insert(destination.clone(), subject);
                }
                // already moved by the killed attempt: the next Sync of Archive brings it
                (Some(1), _) => {}
                other => bail!("run {run}: MoveItems answered {other:?}:\n{}", answer.xml()),
            }
        }
        // the next Syncs: the server may confirm the moves; the views must end equal to IMAP
        let apply_all =
            |view: &mut View, device: &mut Device, id: &str, key: &str| -> Result<String> {
                let mut key = key.to_owned();
                loop {
                    let answer =
                        device.sync_one(SyncCollection::new(key.clone(), id).window(50))?;
                    let Some(collection) = answer.collection(id) else { return Ok(key) };
                    ensure!(
                        collection.status == Some(1),
                        "Sync {id}: {:?}:\n{}",
                        collection.status,
                        answer.xml()
                    );
                    for command in &collection.commands {
                        match command.kind {
                            // an Add of an item the phone placed itself replaces it
                            CommandKind::Add => {
                                view.items.insert(
                                    command.server_id.clone(),
                                    command.email()?.subject.unwrap_or_default(),
                                );
                            }
                            CommandKind::Delete | CommandKind::SoftDelete => {
                                view.items.remove(&command.server_id);
                            }
                            CommandKind::Change => {}
                        }
                    }
                    key = collection.sync_key.clone().unwrap_or(key);
                    if !collection.more_available {
                        return Ok(key);
                    }
                }
            };
        apply_all(&mut inbox_view, &mut device, &inbox, &inbox_key)?;
        apply_all(&mut archive_view, &mut device, &archive, &archive_key)?;
        let mut check = || -> Result<()> {
            ensure_same(&inbox_view, imap_subjects(&mut imap, "INBOX")?, "INBOX after the kills")?;
            ensure_same(
                &archive_view,
                imap_subjects(&mut imap, "Moved")?,
                "Moved after the kills",
            )?;
            let mut all = imap_subjects(&mut imap, "INBOX")?;
            for (subject, count) in imap_subjects(&mut imap, "Moved")? {
                *all.entry(subject).or_insert(0) += count;
            }
            ensure!(all.values().all(|&n| n == 1) && all.len() == seed.len(), "IMAP holds {all:?}");
            Ok(())
        };
        let consistent = check();
        let typical = schedule.typical;
        figure(
            match kind {
                FrontEnd::Host => "kill -9 mid-MoveItems, retry of the same move",
                FrontEnd::Envoy => {
                    "kill -9 of the gateway behind Envoy mid-MoveItems, retry of the same move"
                }
            },
            &format!(
                "{}: {lost} answers lost, retry statuses {retry_statuses:?}; kill points uniform \
                 in 0..1.5 x {typical:.0?}",
                match &consistent {
                    Ok(()) => format!(
                        "{runs}/{runs} runs consistent (each message once in IMAP, \
                                       both folders' views == IMAP)"
                    ),
                    Err(error) => format!("INCONSISTENT after {runs} runs: {error:#}"),
                }
            ),
        );
        consistent
    });
}

/// The retry of a SendMail whose answer was lost: a 111 that persists is a message claimed
/// before the kill, which is not sent again (`compose::dedupe`).
fn compose_until_served(device: &mut Device, request: &ComposeRequest) -> Result<ComposeOutcome> {
    retry_like_a_phone(|| device.compose(request), |answer| answer.status != Some(111))
        .context("the retried SendMail")
}

/// The gateway killed during a SendMail or SmartReply (with Envoy in front: the gateway behind
/// it, which holds the submission capability), restarted, and the message resent with the
/// same ClientId: the recipient gets it exactly once, and Sent holds its copy.
fn kill_9_mid_send_mail(kind: FrontEnd) {
    let scenario = match kind {
        FrontEnd::Host => "kill -9 mid-SendMail or SmartReply, retry with the same ClientId",
        FrontEnd::Envoy => {
            "kill -9 of the gateway behind Envoy mid-SendMail or SmartReply, retry with the same \
             ClientId"
        }
    };
    with_front(kind, |stack, front| send_killed_and_retried(stack, front, scenario));
}

/// The same with the PostgreSQL state store: the node keeps its own send journal, which
/// withdraws the claims of messages that never left (without it they were presumed sent
/// after ten minutes, and lost) and presumes sent those that left.
#[test]
fn postgres_kill_9_mid_send_mail() {
    let postgres = Postgres::start().expect("PostgreSQL");
    let state = format!(
        "[state]\nbackend = \"postgres\"\n\n[state.postgres]\nurl = \"{}\"\n",
        postgres.url()
    );
    let options = GatewayOptions { state: Some(state), ..GatewayOptions::default() };
    let scenario = "kill -9 mid-SendMail or SmartReply with the PostgreSQL store, retry with the \
                    same ClientId";
    with_front_options(FrontEnd::Host, options, |stack, front| {
        send_killed_and_retried(stack, front, scenario)
    });
}

fn send_killed_and_retried(stack: &MailStack, front: &mut Front, scenario: &str) -> Result<()> {
    let (alice, bob) = (format!("alice@{TEST_DOMAIN}"), format!("bob@{TEST_DOMAIN}"));
    stack.add_user(&alice, PASSWORD)?;
    stack.add_user(&bob, PASSWORD)?;
    let url = front.url();
    // Odd runs answer a message of Alice's (SmartReply: the retry rebuilds the Sent copy from
    // it), even runs send new mail.
    let mut alice_imap = stack.imap_login(&alice, PASSWORD)?;
    alice_imap.append("INBOX", &message(&alice, "To be answered"), &AppendOptions::default())?;
    let mut device = Device::new(&url, &alice, PASSWORD, "KILLSEND", Version::V16_1);
    let folders = device.bootstrap()?;
    let inbox = folders.adds.iter().find(|f| f.folder_type == 2).context("no Inbox")?;
    let inbox = inbox.server_id.clone();
    let key = device.sync_start(&inbox)?;
    let drained = device.sync_drain(&inbox, &key, 100, None)?;
    let original = drained.commands.first().context("the message to answer")?.server_id.clone();
    let runs = runs(3);
    let mut schedule = KillSchedule::new();
    let (mut lost, mut retry_outcomes, mut withdrawn, mut presumed) = (0, BTreeMap::new(), 0, 0);
    for run in 0..runs + CALIBRATION {
        let request = ComposeRequest {
            kind: if run % 2 == 1 { ComposeKind::SmartReply } else { ComposeKind::SendMail },
            client_id: Some(format!("kill-send-{run}")),
            save_in_sent: true,
            source: (run % 2 == 1)
                .then(|| ComposeSource { folder_id: inbox.clone(), item_id: original.clone() }),
            mime: format!(
                "From: <{alice}>\r\nTo: <{bob}>\r\nSubject: Killed send {run}\r\n\
                 MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nrun {run}\r\n"
            )
            .into_bytes(),
        };
        let mut phone = twin(&device, &url);
        let sent = request.clone();
        let (outcome, killed) =
            schedule.run(run, &mut front.gateway, move || phone.compose(&sent))?;
        if killed {
            // killed between the claim and the dot: the send journal withdraws the claim;
            // killed after the dot, before the outcome was recorded: it presumes it sent
            let log = front.gateway.log();
            withdrawn += usize::from(log.contains("send claim is withdrawn"));
            presumed += usize::from(log.contains("send claim is presumed sent"));
        }
        if outcome.as_ref().map_or(true, |o| !o.is_success()) {
            lost += 1;
            let retry = compose_until_served(&mut device, &request)?;
            // Sent (again, or presumed sent: the restarted gateway found the claim of a
            // message that had left), or 118 (previously sent); never "retry later" for
            // long, which only a claim of a gateway still running may cause
            ensure!(
                retry.is_success() || retry.status == Some(118),
                "run {run}: retried SendMail: {}",
                retry.describe()
            );
            let outcome = if retry.is_success() { "sent" } else { "118" };
            *retry_outcomes.entry(outcome.to_owned()).or_insert(0) += 1;
        }
    }
    let expected: BTreeMap<String, usize> =
        (0..runs + CALIBRATION).map(|run| (format!("Killed send {run}"), 1)).collect();
    let mut bob_imap = stack.imap_login(&bob, PASSWORD)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while imap_subjects(&mut bob_imap, "INBOX")?.len() < runs + CALIBRATION
        && Instant::now() < deadline
    {
        thread::sleep(Duration::from_millis(200));
    }
    // a duplicate still in Postfix's queue would land within this
    thread::sleep(Duration::from_secs(3));
    let received = imap_subjects(&mut bob_imap, "INBOX")?;
    let sent = imap_subjects(&mut stack.imap_login(&alice, PASSWORD)?, "Sent")?;
    let twice: Vec<&String> = received.iter().filter(|(_, n)| **n > 1).map(|(s, _)| s).collect();
    let missing = expected.keys().filter(|s| !received.contains_key(*s)).count();
    let typical = schedule.typical;
    figure(
        scenario,
        &format!(
            "{}/{runs} killed runs delivered exactly once ({} sent twice, {missing} lost); \
             Sent {}; {lost} answers lost, retries {retry_outcomes:?}; claims withdrawn at \
             restart (killed between the claim and the dot) {withdrawn}, presumed sent \
             (killed after the dot, before the outcome was recorded) {presumed}; kill \
             points uniform in 0..1.5 x {typical:.0?}",
            runs.saturating_sub(twice.len() + missing),
            twice.len(),
            if sent == received {
                "matches what was delivered".to_owned()
            } else {
                format!("lacks {} of the delivered", received.len().saturating_sub(sent.len()))
            }
        ),
    );
    ensure!(received == expected, "Bob received {received:?}");
    // Nothing in Sent that was not sent, nothing twice.
    ensure!(
        sent.iter().all(|(subject, n)| *n == 1 && received.contains_key(subject)),
        "Alice's Sent holds {sent:?}"
    );
    // And nothing sent without its copy: a kill between SMTP and the Sent APPEND is
    // presumed sent at the restart, and the phone's retry makes the copy. Behind Envoy the
    // filter outlives the gateway and tells the phone to retry when neither the copy nor
    // the outcome could be written (docs/reliability.md, finding 21).
    ensure!(sent == received, "Alice's Sent holds {sent:?}, Bob received {received:?}");
    Ok(())
}

/// The gateway killed while a 16.x phone sends a draft from the Drafts folder (a Sync Change
/// with a last edit and `Send`), restarted, and the Sync retried like a phone: the same
/// SyncKey while there is no answer, the Change again under the new key after an item
/// Status 5. The recipient gets each draft once, Sent holds each once, Drafts ends empty.
fn kill_9_mid_draft_send(kind: FrontEnd) {
    with_front(kind, |stack, front| {
        let (alice, bob) = (format!("alice@{TEST_DOMAIN}"), format!("bob@{TEST_DOMAIN}"));
        stack.add_user(&alice, PASSWORD)?;
        stack.add_user(&bob, PASSWORD)?;
        let url = front.url();
        let mut device = Device::new(&url, &alice, PASSWORD, "KILLDRAFT", Version::V16_1);
        let folders = device.bootstrap()?;
        let drafts = folders.adds.iter().find(|f| f.folder_type == 3).context("no Drafts")?;
        let drafts = drafts.server_id.clone();
        let mut key = device.sync_start(&drafts)?;
        let runs = runs(3);
        let mut schedule = KillSchedule::new();
        let (mut lost, mut told_to_retry) = (0, 0);
        for run in 0..runs + CALIBRATION {
            let draft = DraftFields {
                to: Some(bob.clone()),
                subject: Some(format!("Killed draft {run}")),
                body: Some(format!("run {run}")),
                send: false,
            };
            let add = SyncCollection::new(key.clone(), &drafts).command(ClientCommand::Add {
                client_id: format!("draft-{run}"),
                application_data: draft.application_data(),
            });
            let answer = device.sync_one(add)?;
            let added = answer.collection(&drafts).context("draft Add answered")?;
            let server_id = added.responses.first().and_then(|r| r.server_id.clone());
            let server_id = server_id.with_context(|| format!("draft Add: {}", answer.xml()))?;
            key = added.sync_key.clone().context("draft Add without SyncKey")?;
            let send = DraftFields {
                body: Some(format!("run {run}, final")),
                send: true,
                ..DraftFields::default()
            };
            let change = ClientCommand::Change {
                server_id: server_id.clone(),
                application_data: send.application_data(),
            };
            let request =
                |key: &str| SyncCollection::new(key.to_owned(), &drafts).command(change.clone());
            let mut phone = twin(&device, &url);
            let first_request = request(&key);
            let (mut outcome, _) =
                schedule.run(run, &mut front.gateway, move || phone.sync_one(first_request))?;
            let mut attempts = 0;
            loop {
                let collection = outcome.as_ref().ok().and_then(|a| a.collection(&drafts));
                if let Some(answered) = collection.filter(|c| c.status == Some(1)) {
                    key = answered.sync_key.clone().unwrap_or(key);
                    if answered.responses.iter().all(|r| r.status != Some(5)) {
                        break;
                    }
                    told_to_retry += 1;
                }
                attempts += 1;
                ensure!(attempts < 10, "run {run}: the draft's Send never served: {outcome:?}");
                if attempts == 1 {
                    lost += 1;
                }
                thread::sleep(Duration::from_millis(300));
                outcome = device.sync_one(request(&key));
            }
        }
        // the Deletes of the sent drafts, and anything else the phone has not seen
        device.sync_drain(&drafts, &key, 100, None)?;
        let expected: BTreeMap<String, usize> =
            (0..runs + CALIBRATION).map(|run| (format!("Killed draft {run}"), 1)).collect();
        let mut bob_imap = stack.imap_login(&bob, PASSWORD)?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while imap_subjects(&mut bob_imap, "INBOX")?.len() < expected.len()
            && Instant::now() < deadline
        {
            thread::sleep(Duration::from_millis(200));
        }
        // a duplicate still in Postfix's queue would land within this
        thread::sleep(Duration::from_secs(3));
        let received = imap_subjects(&mut bob_imap, "INBOX")?;
        let mut alice_imap = stack.imap_login(&alice, PASSWORD)?;
        let sent = imap_subjects(&mut alice_imap, "Sent")?;
        let left = imap_subjects(&mut alice_imap, "Drafts")?;
        let typical = schedule.typical;
        figure(
            match kind {
                FrontEnd::Host => "kill -9 mid-draft Send (16.x, Sync Change), retry like a phone",
                FrontEnd::Envoy => {
                    "kill -9 of the gateway behind Envoy mid-draft Send (16.x), retry like a phone"
                }
            },
            &format!(
                "{}/{} drafts delivered exactly once ({runs} sends killed); Sent {}; Drafts \
                 left {}; {lost} answers lost or told to retry ({told_to_retry} item Status \
                 5); kill points uniform in 0..1.5 x {typical:.0?}",
                expected.keys().filter(|s| received.get(*s) == Some(&1)).count(),
                expected.len(),
                if sent == received { "matches what was delivered" } else { "differs" },
                left.len()
            ),
        );
        ensure!(received == expected, "Bob received {received:?}");
        ensure!(sent == received, "Alice's Sent holds {sent:?}, Bob received {received:?}");
        ensure!(left.is_empty(), "Drafts still holds {left:?}");
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// IMAP faults

fn ping_body(inbox: &str, heartbeat: u32) -> Vec<u8> {
    let root = Element::new(ping::PING)
        .text_child(ping::HEARTBEAT_INTERVAL, heartbeat.to_string())
        .with_child(Element::new(ping::FOLDERS).with_child(
            Element::new(ping::FOLDER).text_child(ping::ID, inbox).text_child(ping::CLASS, "Email"),
        ));
    eas_wbxml::encode(&Document::new(root)).expect("Ping encodes")
}

/// What a request got while a backend was faulty: "HTTP 503", "Status 111", ...
fn outcome_of(reply: &eas_edge_tests::http::Reply) -> String {
    if reply.status != 200 {
        return format!("HTTP {}", reply.status);
    }
    match eas_wbxml::decode(&reply.body, &Limits::default()) {
        Ok(document) => {
            let status = eas_edge_tests::eas::answer::top_level_status(&document.root)
                .or_else(|| first_status(&document.root));
            format!("Status {}", status.map_or("none".to_owned(), |s| s.to_string()))
        }
        Err(_) if reply.body.is_empty() => "HTTP 200 empty".to_owned(),
        Err(_) => "HTTP 200, not WBXML".to_owned(),
    }
}

fn first_status(element: &Element) -> Option<u32> {
    element.child_elements().iter().find_map(|child| {
        if child.tag.name() == "Status" {
            child.text().and_then(|t| t.trim().parse().ok())
        } else {
            first_status(child)
        }
    })
}

/// IMAP stopped for 30 s while Syncs run and Pings are parked (with Envoy in front: parked in
/// Envoy, each waiting on the host's watch endpoint): Syncs get a status, every parked request
/// gets its answer, the watchers come back, and no IMAP connection or fd is left over.
fn imap_down_under_load(kind: FrontEnd) {
    let stack = MailStack::start().expect("mail stack");
    let proxy = FaultProxy::start(stack.imap_addr().expect("imap")).expect("proxy");
    let admin = AdminMetrics::new().expect("admin port");
    let options = GatewayOptions {
        imap_addr: Some(proxy.address()),
        // (for the gateway and for Envoy's filter alike)
        heartbeat_seconds: Some((2, 900)),
        // watchers retry within 4 s once IMAP is back (the default backoff reaches 120 s)
        config_extra: format!("{}[watchers]\nreconnect_max_seconds = 4\n", admin.config()),
        ..GatewayOptions::default()
    };
    let front = Front::start(kind, &stack, options).expect("gateway");
    let outcome = (|| -> Result<()> {
        let url = front.url();
        let accounts = 5;
        let pings_per_account = if full_form() { 200 } else { 20 };
        let outage = Duration::from_secs(30);
        // Half the parked requests end their heartbeat during the outage (the stored answer:
        // Ping Status 1, an empty Sync), half outlive it and are woken by mail delivered once
        // IMAP is back (Ping Status 2, a Sync with the message). One in five is a Sync with a
        // HeartbeatInterval, parked the same way.
        let (short_heartbeat, long_heartbeat) = (20, 600);
        let mut users = Vec::new();
        for n in 0..accounts {
            let user = format!("down{n}@{TEST_DOMAIN}");
            stack.add_user(&user, PASSWORD)?;
            users.push(user);
        }
        let mut devices = Vec::new();
        for (n, user) in users.iter().enumerate() {
            let mut device = Device::new(&url, user, PASSWORD, &format!("DOWN{n}"), Version::V16_1);
            let (inbox, _) = inbox_of(&mut device)?;
            let key = device.sync_start(&inbox)?;
            let key = View::default().drain(&mut device, &inbox, &key)?;
            devices.push((device, inbox, key));
        }
        // Every Ping comes from its own phone that ran FolderSync and synced the Inbox, as a
        // real phone does before it pings (else Ping answers 7, or never reports the Inbox).
        let mut phones = Vec::new();
        for (n, (device, inbox, _)) in devices.iter().enumerate() {
            for p in 0..pings_per_account {
                let id = format!("P{n}X{p}");
                let mut phone = Device::new(&url, &device.user, PASSWORD, &id, Version::V16_1);
                phone.bootstrap()?;
                let key = phone.sync_start(inbox)?;
                let key = View::default().drain(&mut phone, inbox, &key)?;
                let heartbeat = if p % 2 == 0 { short_heartbeat } else { long_heartbeat };
                let waits_in_sync = p % 5 == 4;
                phones.push((phone, inbox.clone(), key, heartbeat, waits_in_sync));
            }
        }
        let before = Usage::of(front.gateway.pid())?;
        let imap_before = proxy.counters().open.load(Ordering::Relaxed);
        let total = phones.len();
        let mut pings = Vec::new();
        for (mut phone, inbox, key, heartbeat, waits_in_sync) in phones {
            pings.push(thread::spawn(move || -> Result<(u32, String, Instant)> {
                let outcome = if waits_in_sync {
                    let answer = phone.sync(&SyncRequest {
                        heartbeat_interval: Some(heartbeat),
                        ..SyncRequest::one(SyncCollection::new(key, inbox.clone()))
                    })?;
                    if answer.is_empty() {
                        "Sync empty".to_owned()
                    } else {
                        format!(
                            "Sync Status {}, {} change(s)",
                            answer.status_of(&inbox).unwrap_or(0),
                            answer.commands(&inbox).len()
                        )
                    }
                } else {
                    let body = ping_body(&inbox, heartbeat);
                    let reply = phone.post("Ping", Some("application/vnd.ms-sync.wbxml"), &body)?;
                    outcome_of(&reply)
                };
                Ok((heartbeat, outcome, Instant::now()))
            }));
        }
        // parked: the gateway's own count (a bound, not a timed assertion: it only avoids a hang)
        let parking_deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let parked = admin.value("eas_edge_parked_requests")? as usize;
            if parked >= total {
                break;
            }
            ensure!(
                Instant::now() < parking_deadline,
                "the {total} Pings never all parked: {parked} parked"
            );
            thread::sleep(Duration::from_millis(200));
        }
        let parked = Usage::of(front.gateway.pid())?;
        let watchers_before = admin.value("eas_edge_watcher_imap_connections")?;
        proxy.set(Fault::Down)?;
        let down_at = Instant::now();
        // under load while down: Syncs from every account, answered with a proper status
        let mut during = BTreeMap::new();
        let mut slowest = Duration::ZERO;
        while down_at.elapsed() < outage {
            for (device, inbox, key) in &mut devices {
                let body = eas_wbxml::encode(
                    &eas_edge_tests::eas::SyncRequest::one(SyncCollection::new(
                        key.clone(),
                        inbox.clone(),
                    ))
                    .document(Version::V16_1),
                )?;
                let started = Instant::now();
                let reply = device.post("Sync", Some("application/vnd.ms-sync.wbxml"), &body)?;
                slowest = slowest.max(started.elapsed());
                *during.entry(outcome_of(&reply)).or_insert(0) += 1;
            }
            thread::sleep(Duration::from_secs(1));
        }
        let parked_at_the_end_of_the_outage = admin.value("eas_edge_parked_requests")? as usize;
        proxy.set(Fault::Pass)?;
        let up_at = Instant::now();
        ensure!(
            during.keys().all(|o| o == "HTTP 503" || o == "Status 111" || o == "Status 110"),
            "Syncs while IMAP was down got {during:?}"
        );
        // The watchers reconnect (with backoff) and check every folder again; nothing
        // changed during the outage, so the long Pings stay parked.
        let reconnect_deadline = Instant::now() + Duration::from_secs(120);
        while (admin.value("eas_edge_watcher_imap_connections")? as usize) < accounts {
            ensure!(Instant::now() < reconnect_deadline, "the watchers never reconnected");
            thread::sleep(Duration::from_millis(100));
        }
        let reconnected_after = up_at.elapsed();
        let still_parked = admin.value("eas_edge_parked_requests")? as usize;
        // Mail for every account: each long Ping wakes with Status 2.
        for user in &users {
            let mut imap = stack.imap_login(user, PASSWORD)?;
            append(&mut imap, "INBOX", user, &["After the outage".to_owned()])?;
        }
        let mut outcomes: BTreeMap<(u32, String), usize> = BTreeMap::new();
        let mut answered_during_outage = 0;
        for ping in pings {
            let (heartbeat, outcome, at) =
                ping.join().map_err(|_| anyhow::anyhow!("ping thread panicked"))??;
            *outcomes.entry((heartbeat, outcome)).or_insert(0) += 1;
            answered_during_outage += usize::from(at < up_at);
        }
        let wrong: Vec<_> = outcomes
            .iter()
            .filter(|((heartbeat, outcome), _)| {
                let want: &[&str] = if *heartbeat == short_heartbeat {
                    &["Status 1", "Sync empty"]
                } else {
                    &["Status 2", "Sync Status 1, 1 change(s)"]
                };
                !want.contains(&outcome.as_str())
            })
            .collect();
        ensure!(
            wrong.is_empty(),
            "parked requests (heartbeat, answer): {outcomes:?}; want Ping Status 1 or an empty Sync \
             for the {short_heartbeat} s heartbeats (they end during the outage), Ping Status 2 or \
             a Sync with the new message for the {long_heartbeat} s ones (woken by mail after it)"
        );
        // No leak: once the pool's sessions are idle, every connection the proxy sees is a
        // watcher's or a pooled session the gateway counts.
        thread::sleep(Duration::from_secs(3));
        let after = Usage::of(front.gateway.pid())?;
        let open = proxy.counters().open.load(Ordering::Relaxed);
        let watcher_connections = admin.value("eas_edge_watcher_imap_connections")?;
        let pooled = admin.value("eas_edge_imap_pool_idle_sessions")?
            + admin.value("eas_edge_imap_pool_busy_sessions")?;
        ensure!(
            open == (watcher_connections + pooled) as usize,
            "the proxy sees {open} IMAP connections, the gateway counts {watcher_connections} \
             watcher and {pooled} pooled ones"
        );
        // (the pool may hold more idle IMAP sessions than before the load: counted above)
        let pool_growth = open.saturating_sub(imap_before);
        ensure!(
            after.fds <= before.fds + pool_growth + 2 * accounts,
            "the gateway held {} fds before and {} after the outage ({pool_growth} more IMAP \
             connections)",
            before.fds,
            after.fds
        );
        let through = match kind {
            FrontEnd::Host => "",
            FrontEnd::Envoy => ", Envoy in front (parked in Envoy)",
        };
        figure(
            &format!("IMAP down {outage:?} under load, {total} Pings and Syncs parked{through}"),
            &format!(
                "Syncs during the outage: {during:?} (slowest answer {slowest:.1?}); parked Pings \
                 and Syncs with Wait (heartbeat s, answer): {outcomes:?}, {answered_during_outage} answered during \
                 the outage (their heartbeat ended), {parked_at_the_end_of_the_outage} still \
                 parked at its end, {still_parked} once the watchers were back; watchers {watchers_before} connections before, all {accounts} \
                 back {reconnected_after:.1?} after IMAP returned; gateway fds {} before, {} \
                 parked, {} after; IMAP connections after: {open} = {watcher_connections} \
                 watcher + {pooled} pooled; {} cut by the outage",
                before.fds,
                parked.fds,
                after.fds,
                proxy.counters().cut.load(Ordering::Relaxed)
            ),
        );
        Ok(())
    })();
    if let Err(error) = outcome {
        fail_with_logs(&front, &error);
    }
}

/// IMAP slow, hung, or cut mid-FETCH during a Sync page: the phone gets a status within the
/// call's budget, and the retry of the page is complete.
fn imap_faults_during_a_sync_page(kind: FrontEnd) {
    with_fault_proxy(kind, Backend::Imap, |stack, proxy, front| {
        let url = front.url();
        let alice = format!("alice@{TEST_DOMAIN}");
        stack.add_user(&alice, PASSWORD)?;
        let mut imap = stack.imap_login(&alice, PASSWORD)?;
        append(
            &mut imap,
            "INBOX",
            &alice,
            &(0..30).map(|n| format!("Fetched {n}")).collect::<Vec<_>>(),
        )?;
        let mut device = Device::new(&url, &alice, PASSWORD, "SLOWIMAP", Version::V16_1);
        let (inbox, _) = inbox_of(&mut device)?;
        let mut key = device.sync_start(&inbox)?;
        let mut view = View::default();
        let mut results = Vec::new();
        for fault in [Fault::DropOnFetch, Fault::Delay(Duration::from_secs(2)), Fault::Blackhole] {
            // cut the pooled connections so that the gateway meets the fault on a new one
            proxy.set(Fault::Down)?;
            proxy.set(fault)?;
            let body = eas_wbxml::encode(
                &eas_edge_tests::eas::SyncRequest::one(
                    SyncCollection::new(key.clone(), inbox.clone()).window(10),
                )
                .document(Version::V16_1),
            )?;
            let started = Instant::now();
            let mut phone = twin(&device, &url);
            let reply = phone.post("Sync", Some("application/vnd.ms-sync.wbxml"), &body);
            let took = started.elapsed();
            let outcome = match &reply {
                Ok(reply) => outcome_of(reply),
                Err(error) => format!("no answer ({error:#})"),
            };
            results.push(format!("{fault:?}: {outcome} after {took:.1?}"));
            let reply = reply.with_context(|| format!("{fault:?}: the Sync was not answered"))?;
            // an EAS answer, not the HTTP 503 of a plugin call cut at its budget: mailbox
            // reads give up at 80 % of it
            ensure!(reply.status == 200, "{fault:?}: {outcome}");
            // a page that did come through is the phone's: apply it and go on from its key
            if !reply.body.is_empty() {
                let root = eas_wbxml::decode(&reply.body, &Limits::default())?.root;
                let answer = SyncAnswer::parse(reply.body.clone(), Some(root))?;
                if answer.status_of(&inbox) == Some(1) {
                    if let Some(new_key) = view.apply(&answer, &inbox)? {
                        key = new_key;
                    }
                } else {
                    ensure!(
                        matches!(answer.status_of(&inbox).or(answer.status), Some(110 | 111 | 5)),
                        "{fault:?}: {outcome}:\n{}",
                        answer.xml()
                    );
                }
            }
            proxy.set(Fault::Down)?;
            proxy.set(Fault::Pass)?;
        }
        // the same SyncKey afterwards: everything, once
        view.drain(&mut device, &inbox, &key)?;
        ensure_same(&view, imap_subjects(&mut imap, "INBOX")?, "after the IMAP faults")?;
        let through = match kind {
            FrontEnd::Host => "IMAP fault during a Sync page",
            FrontEnd::Envoy => "IMAP fault during a Sync page, Envoy in front",
        };
        for result in &results {
            figure(through, result);
        }
        Ok(())
    });
}

/// The backend the fault proxy stands in front of.
#[derive(Debug, Clone, Copy)]
enum Backend {
    Imap,
    Smtp,
}

/// A mail stack whose `backend` the gateway reaches through a fault proxy, the gateway (with
/// Envoy in front for [`FrontEnd::Envoy`]), and `body` run against them; a failure shows the
/// logs.
/// Runs `body` against a fresh mail stack and the gateway with `kind` in front; a failure
/// panics with the front end's logs.
fn with_front(kind: FrontEnd, body: impl FnOnce(&MailStack, &mut Front) -> Result<()>) {
    with_front_options(kind, GatewayOptions::default(), body);
}

fn with_front_options(
    kind: FrontEnd,
    options: GatewayOptions,
    body: impl FnOnce(&MailStack, &mut Front) -> Result<()>,
) {
    let stack = MailStack::start().expect("mail stack");
    let mut front = Front::start(kind, &stack, options).expect("gateway");
    if let Err(error) = body(&stack, &mut front) {
        fail_with_logs(&front, &error);
    }
}

fn with_fault_proxy(
    kind: FrontEnd,
    backend: Backend,
    body: impl FnOnce(&MailStack, &FaultProxy, &Front) -> Result<()>,
) {
    let stack = MailStack::start().expect("mail stack");
    let upstream = match backend {
        Backend::Imap => stack.imap_addr(),
        Backend::Smtp => stack.submission_addr(),
    };
    let proxy = FaultProxy::start(upstream.expect("backend address")).expect("proxy");
    let options = match backend {
        Backend::Imap => GatewayOptions { imap_addr: Some(proxy.address()), ..Default::default() },
        Backend::Smtp => GatewayOptions { smtp: Some(proxy.address()), ..Default::default() },
    };
    let front = Front::start(kind, &stack, options).expect("gateway");
    if let Err(error) = body(&stack, &proxy, &front) {
        fail_with_logs(&front, &error);
    }
}

/// Fails the test with `error` and the end of the front end's logs.
fn fail_with_logs(front: &Front, error: &anyhow::Error) -> ! {
    let logs = front.logs();
    let lines: Vec<&str> = logs.lines().collect();
    panic!("{error:#}\n--- logs:\n{}", lines[lines.len().saturating_sub(120)..].join("\n"));
}

/// SMTP refusing the recipient, hung, or down during SendMail: the phone gets the failure
/// status, and nothing is saved to Sent.
fn smtp_refusing_hung_or_down(kind: FrontEnd) {
    with_fault_proxy(kind, Backend::Smtp, |stack, proxy, front| {
        let alice = format!("alice@{TEST_DOMAIN}");
        stack.add_user(&alice, PASSWORD)?;
        let mut device = Device::new(&front.url(), &alice, PASSWORD, "SMTPFAULT", Version::V16_1);
        device.bootstrap()?;
        let mut results = Vec::new();
        let cases: [(&str, Fault, &str); 3] = [
            ("refused recipient", Fault::Pass, "nobody-here@example.test"),
            ("SMTP hung", Fault::Blackhole, "x@example.org"),
            ("SMTP down", Fault::Down, "x@example.org"),
        ];
        for (n, (name, fault, to)) in cases.into_iter().enumerate() {
            proxy.set(fault)?;
            let request = ComposeRequest {
                kind: ComposeKind::SendMail,
                client_id: Some(format!("smtp-fault-{n}")),
                save_in_sent: true,
                source: None,
                mime: format!(
                    "From: <{alice}>\r\nTo: <{to}>\r\nSubject: Not sent {n}\r\n\r\nnope\r\n"
                )
                .into_bytes(),
            };
            let started = Instant::now();
            let outcome = device.compose(&request).with_context(|| format!("{name}: no answer"))?;
            let took = started.elapsed();
            ensure!(!outcome.is_success(), "{name}: SendMail claims success");
            ensure!(
                // 14.0+: a ComposeMail Status (110-120), never an empty HTTP error: a hung
                // server is given up on (greeting timeout, bounded by the request's budget)
                // before the plugin call's budget ends (finding 10)
                outcome.http_status == 200 && matches!(outcome.status, Some(110..=120)),
                "{name}: {}",
                outcome.describe()
            );
            if fault != Fault::Pass {
                // unreachable or silent: "server error, retry later", the phone keeps the mail
                ensure!(outcome.status == Some(111), "{name}: {}", outcome.describe());
            }
            results.push(format!(
                "{name}: HTTP {}, Status {:?} after {took:.1?}",
                outcome.http_status, outcome.status
            ));
            proxy.set(Fault::Down)?;
            proxy.set(Fault::Pass)?;
        }
        let sent = imap_subjects(&mut stack.imap_login(&alice, PASSWORD)?, "Sent")?;
        ensure!(sent.is_empty(), "Sent holds {sent:?} although nothing was sent");
        let through = match kind {
            FrontEnd::Host => "SMTP fault during SendMail",
            FrontEnd::Envoy => "SMTP fault during SendMail, Envoy in front",
        };
        for result in &results {
            figure(through, &format!("{result}; nothing saved in Sent"));
        }
        Ok(())
    });
}

/// SendMail whose SMTP connection is cut between the message's final dot and the server's
/// reply (RFC 1047: the server has the message, the gateway cannot know), then retried.
fn smtp_cut_after_the_message_end(kind: FrontEnd) {
    with_fault_proxy(kind, Backend::Smtp, |stack, proxy, front| {
        let alice = format!("alice@{TEST_DOMAIN}");
        let bob = format!("bob@{TEST_DOMAIN}");
        stack.add_user(&alice, PASSWORD)?;
        stack.add_user(&bob, PASSWORD)?;
        let mut device = Device::new(&front.url(), &alice, PASSWORD, "SMTPCUT", Version::V16_1);
        device.bootstrap()?;
        let request = ComposeRequest {
            kind: ComposeKind::SendMail,
            client_id: Some("smtp-cut-after-dot".to_owned()),
            save_in_sent: true,
            source: None,
            mime: format!(
                "From: <{alice}>\r\nTo: <{bob}>\r\nSubject: Cut after the dot\r\n\
                 Message-ID: <cut-after-dot@{TEST_DOMAIN}>\r\n\r\nmaybe sent\r\n"
            )
            .into_bytes(),
        };
        proxy.set(Fault::CutAfterDataEnd)?;
        let first = device.compose(&request).context("SendMail cut after the dot")?;
        ensure!(first.status == Some(111), "cut after the dot: {}", first.describe());
        // the phone retries once SMTP works again: the message may have left, so it is not
        // sent again ("retry later" until the claim is stale, then "sent")
        proxy.set(Fault::Pass)?;
        let retry = device.compose(&request).context("the retried SendMail")?;
        ensure!(retry.status == Some(111), "retry: {}", retry.describe());
        let mut bob_imap = stack.imap_login(&bob, PASSWORD)?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while imap_subjects(&mut bob_imap, "INBOX")?.is_empty() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(200));
        }
        // a second copy still in Postfix's queue would land within this
        thread::sleep(Duration::from_secs(3));
        let received = imap_subjects(&mut bob_imap, "INBOX")?;
        ensure!(
            received == BTreeMap::from([("Cut after the dot".to_owned(), 1)]),
            "Bob received {received:?}"
        );
        let through = match kind {
            FrontEnd::Host => "SMTP cut after the message's end (RFC 1047), SendMail retried",
            FrontEnd::Envoy => {
                "SMTP cut after the message's end (RFC 1047), SendMail retried, Envoy in front"
            }
        };
        figure(
            through,
            &format!(
                "first answer Status {:?}, retry Status {:?} (not sent again); delivered once",
                first.status, retry.status
            ),
        );
        Ok(())
    });
}

#[test]
fn a_recreated_folder_new_uidvalidity_makes_the_device_resync() {
    World::start(GatewayOptions::default()).run(|world| {
        let alice = world.user("alice");
        let mut imap = world.imap(&alice)?;
        imap.run("CREATE Projects")?;
        append(&mut imap, "Projects", &alice, &["Old 1".to_owned(), "Old 2".to_owned()])?;
        let mut device = world.device(&alice, "UIDVAL");
        let folders = device.bootstrap()?;
        let projects = folders
            .adds
            .iter()
            .find(|f| f.display_name == "Projects")
            .context("no Projects")?
            .server_id
            .clone();
        let mut view = View::default();
        let key = device.sync_start(&projects)?;
        let key = view.drain(&mut device, &projects, &key)?;
        let validity = imap.examine("Projects")?.uid_validity;
        // Dovecot ends a session whose selected mailbox is deleted: select another first
        imap.examine("INBOX")?;
        imap.run("DELETE Projects")?;
        imap.run("CREATE Projects")?;
        append(
            &mut imap,
            "Projects",
            &alice,
            &["New 1".to_owned(), "New 2".to_owned(), "New 3".to_owned()],
        )?;
        let new_validity = imap.examine("Projects")?.uid_validity;
        imap.examine("INBOX")?;
        ensure!(validity != new_validity, "Dovecot kept UIDVALIDITY {validity}");
        let answer = device.sync_one(SyncCollection::new(key, &projects))?;
        let status = answer.status_of(&projects).or(answer.status);
        ensure!(
            matches!(status, Some(3 | 8 | 12)),
            "Sync of a recreated folder: Status {status:?} (want 3 invalid key, 8 not found or 12 \
             hierarchy changed):\n{}",
            answer.xml()
        );
        // the phone starts over: FolderSync, then Sync 0 of the folder it finds
        let folders = device.folder_sync("0")?;
        let projects = folders
            .adds
            .iter()
            .find(|f| f.display_name == "Projects")
            .context("no Projects after FolderSync 0")?
            .server_id
            .clone();
        let mut fresh = View::default();
        let key = device.sync_start(&projects)?;
        fresh.drain(&mut device, &projects, &key)?;
        ensure_same(&fresh, imap_subjects(&mut imap, "Projects")?, "after the resync")?;
        figure(
            "UIDVALIDITY change (folder deleted and recreated)",
            &format!(
                "Sync with the old key: Status {}; resync from 0 equals IMAP",
                status.unwrap_or(0)
            ),
        );
        Ok(())
    });
}
