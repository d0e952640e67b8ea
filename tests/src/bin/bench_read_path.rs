//! Read-path benchmark (issue #4): the initial sync of a fresh account through the gateway,
//! against a raw IMAP client fetching the same mailbox, in one run on one machine.
//!
//! ```sh
//! cargo xtask build
//! cargo run --release -p eas-edge-tests --bin bench-read-path            # 2,000 and 10,000
//! cargo run --release -p eas-edge-tests --bin bench-read-path -- 500 2000  # other sizes
//! cargo run --release -p eas-edge-tests --bin bench-read-path -- --body 2:200000 2000
//! ```
//!
//! `--body TYPE:TRUNCATION` sets the phone's BodyPreference. The default, `1:255`, asks for
//! what the IMAP reference fetches (the message data and a 255-byte plain-text body): the
//! comparison issue #4 sets. `2:200000` asks for whole HTML bodies as iOS Mail does (~9 KB
//! per message here, against the reference's 255 bytes). `--trace-headers` gives every message what
//! delivery over the Internet adds on top (four `Received` hops, `Authentication-Results`,
//! a `DKIM-Signature`: ~1.7 KB), as mail in a real mailbox has. `--no-render-ahead` runs the
//! gateway with `render_ahead = false` (every page converted in its own request): the
//! reference for what rendering the next page ahead gains, in interleaved runs.
//!
//! With `CARGO_TARGET_DIR` set (CI keeps it in /var/tmp/eas-edge-target), point the harness at
//! the artifacts as `cargo xtask test` does: `EAS_EDGE_BIN=$CARGO_TARGET_DIR/release/eas-edge
//! EAS_EDGE_PLUGIN=$CARGO_TARGET_DIR/plugin/eas_edge_plugin.wasm`. Runs as root (the mail
//! stack, as for the end-to-end tests).
//!
//! For each size: a new Dovecot + Postfix and gateway; the account gets that many realistic
//! messages (`messages::MessageGenerator`: 2-20 KB, plain / alternative / with 1-2 attachments,
//! three charsets) by MULTIAPPEND. Then
//!
//! * **EAS**: one phone (EAS 16.1) does what a new iPhone does — Provision (both phases),
//!   FolderSync 0, Sync 0 of the Inbox, then Sync with WindowSize 100 until MoreAvailable is
//!   gone. Options on the first real Sync: `FilterType 0` (all mail, so the count matches IMAP;
//!   iOS defaults to a date window), the one `BodyPreference` of `--body` (by default Type 1,
//!   TruncationSize 255; with `2:200000` HTML with a 200 KB cap, the shape iOS Mail sends, in
//!   which our bodies arrive whole). The clock runs from the first Provision to the last page.
//! * **IMAP**: a client logged in directly (no gateway) SELECTs the Inbox and runs
//!   `UID FETCH a:b (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE BODY.PEEK[]<0.255>)`
//!   in batches of 100 UIDs — the header data plus a preview, what an IMAP phone client needs
//!   for a message list. The clock runs from the connect to the last batch. It runs once before
//!   the gateway (cold: Dovecot has cached nothing of these messages yet) and once after it
//!   (the compared figure: both sides then find Dovecot's caches filled, as on a mailbox in use).
//!   A last pass fetches whole messages (`BODY.PEEK[]`), closer to the bytes the EAS phone
//!   receives.
//!
//! Output: a markdown table on stdout (progress on stderr). Both clients are blocking and single
//! threaded; the numbers compare the two paths on the same machine, not absolute capacity.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use eas_edge_tests::eas::{BodyPreference, CommandKind, Device, SyncOptions, Version};
use eas_edge_tests::gateway::{Gateway, GatewayOptions, TEST_DOMAIN};
use eas_edge_tests::imap::ImapClient;
use eas_edge_tests::mailstack::MailStack;
use eas_edge_tests::messages::{MessageGenerator, TestMessage};
use eas_edge_tests::seed::seed_mailbox;

const PASSWORD: &str = "bench pw";
const WINDOW: u32 = 100;
const IMAP_BATCH: usize = 100;
const IMAP_ITEMS: &str =
    "(UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE BODY.PEEK[]<0.255>)";
/// The same with whole messages: closer to what the EAS phone receives (whole bodies).
const IMAP_FULL_ITEMS: &str =
    "(UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE BODY.PEEK[])";

struct Row {
    messages: usize,
    mailbox_bytes: usize,
    with_attachments: usize,
    seed: Duration,
    eas: Duration,
    /// CPU time (user + system, all threads) the gateway process spent during the EAS sync:
    /// less dependent than wall time on what else the machine is running.
    eas_gateway_cpu: Duration,

    eas_requests: usize,
    eas_bytes: usize,
    /// The reference's first pass, before the gateway touched the mailbox: Dovecot's caches of
    /// parsed headers and body structures are still empty.
    imap_cold: Duration,
    imap: Duration,
    imap_commands: usize,
    imap_full: Duration,
}

/// The phone's one BodyPreference.
#[derive(Clone, Copy)]
struct Body {
    body_type: u8,
    truncation_size: u32,
}

impl Body {
    fn parse(text: &str) -> Result<Body> {
        let (body_type, truncation_size) = text
            .split_once(':')
            .with_context(|| format!("--body {text:?}: want TYPE:TRUNCATION"))?;
        Ok(Body {
            body_type: body_type.parse().with_context(|| format!("bad body type {body_type:?}"))?,
            truncation_size: truncation_size
                .parse()
                .with_context(|| format!("bad truncation size {truncation_size:?}"))?,
        })
    }
}

const USAGE: &str = "usage: bench-read-path [--body TYPE:TRUNCATION] [--trace-headers] \
                     [--no-render-ahead] [MESSAGES ...]
  --body TYPE:TRUNCATION  the phone's BodyPreference (default 1:255, what the IMAP reference
                          fetches; 2:200000 is how iOS Mail asks, whole HTML bodies)
  --trace-headers         messages carry delivery trace headers (~1.7 KB)
  --no-render-ahead       the gateway with render_ahead = false
  MESSAGES                mailbox sizes to run (default 2000 10000)
The header of tests/src/bin/bench_read_path.rs says what is measured and how to set it up.";

fn main() -> Result<()> {
    let mut body = Body { body_type: 1, truncation_size: 255 };
    let mut trace_headers = false;
    let mut render_ahead = true;
    let mut sizes = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--body" {
            body = Body::parse(&args.next().context("--body wants TYPE:TRUNCATION")?)?;
        } else if arg == "--trace-headers" {
            trace_headers = true;
        } else if arg == "--no-render-ahead" {
            render_ahead = false;
        } else if arg == "--help" || arg == "-h" {
            println!("{USAGE}");
            return Ok(());
        } else {
            sizes.push(
                arg.replace(['_', ','], "")
                    .parse()
                    .with_context(|| format!("bad size {arg:?}\n{USAGE}"))?,
            );
        }
    }
    if sizes.is_empty() {
        sizes = vec![2_000, 10_000];
    }
    let mut rows = Vec::new();
    for size in sizes {
        eprintln!("bench-read-path: {size} messages …");
        let row = run(size, body, trace_headers, render_ahead);
        rows.push(row.with_context(|| format!("benchmark with {size} messages"))?);
    }
    print_table(&rows, body, trace_headers, render_ahead);
    Ok(())
}

fn run(size: usize, body: Body, trace_headers: bool, render_ahead: bool) -> Result<Row> {
    let stack = MailStack::start()?;
    let user = format!("bench@{TEST_DOMAIN}");
    stack.add_user(&user, PASSWORD)?;
    let generator = MessageGenerator::new(2024, &user);
    let generator = if trace_headers { generator.with_trace_headers() } else { generator };
    let messages: Vec<TestMessage> = generator.take(size).collect();
    let started = Instant::now();
    let mut imap = stack.imap_login(&user, PASSWORD)?;
    seed_mailbox(&mut imap, "INBOX", &messages)?;
    let seed = started.elapsed();
    let exists = imap.examine("INBOX")?.exists as usize;
    ensure!(exists == size, "seeded {exists} of {size}");
    imap.logout()?;
    eprintln!("  seeded in {:.1} s", seed.as_secs_f64());

    // Dovecot caches what a client fetched (`dovecot.index.cache`) and the kernel the files it
    // read: a first reference pass before the gateway, so that neither side runs on caches the
    // other one filled. The pass after the gateway is the figure compared.
    let (imap_cold, _) = imap_fetch(&stack, &user, size, IMAP_ITEMS)?;
    eprintln!("  IMAP fetch, cold, in {:.2} s", imap_cold.as_secs_f64());
    let tenant_extra = match render_ahead {
        true => String::new(),
        false => "[tenant.limits]\nrender_ahead = false\n".to_string(),
    };
    let gateway =
        Gateway::start_with(&stack, GatewayOptions { tenant_extra, ..Default::default() })?;
    let cpu_before = process_cpu(gateway.pid())?;
    let (eas, eas_requests, eas_bytes) = eas_initial_sync(&gateway, &user, size, body)
        .with_context(|| format!("gateway log:\n{}", tail(&gateway.log(), 40)))?;
    let eas_gateway_cpu = process_cpu(gateway.pid())?.saturating_sub(cpu_before);
    eprintln!(
        "  EAS initial sync in {:.1} s (gateway CPU {:.2} s)",
        eas.as_secs_f64(),
        eas_gateway_cpu.as_secs_f64()
    );
    let (imap, imap_commands) = imap_fetch(&stack, &user, size, IMAP_ITEMS)?;
    eprintln!("  IMAP fetch in {:.1} s", imap.as_secs_f64());
    let (imap_full, _) = imap_fetch(&stack, &user, size, IMAP_FULL_ITEMS)?;
    eprintln!("  IMAP fetch of whole messages in {:.1} s", imap_full.as_secs_f64());

    Ok(Row {
        messages: size,
        mailbox_bytes: messages.iter().map(|m| m.raw.len()).sum(),
        with_attachments: messages.iter().filter(|m| !m.attachment_names.is_empty()).count(),
        seed,
        eas,
        eas_gateway_cpu,
        eas_requests,
        eas_bytes,
        imap_cold,
        imap,
        imap_commands,
        imap_full,
    })
}

/// Provision → FolderSync → Sync 0 → Sync until done; (time, requests, response bytes).
fn eas_initial_sync(
    gateway: &Gateway,
    user: &str,
    expected: usize,
    body: Body,
) -> Result<(Duration, usize, usize)> {
    let mut device = Device::new(&gateway.url(), user, PASSWORD, "BENCH0001", Version::V16_1);
    let started = Instant::now();
    let folders = device.bootstrap()?; // Provision ×2, FolderSync 0
    let inbox = folders
        .adds
        .iter()
        .find(|f| f.folder_type == 2)
        .context("no Inbox in FolderSync")?
        .server_id
        .clone();
    let key = device.sync_start(&inbox)?;
    let options = SyncOptions {
        filter_type: Some(0),
        body_preferences: vec![BodyPreference::truncated(body.body_type, body.truncation_size)],
        ..SyncOptions::default()
    };
    let mut requests = 4;
    let mut bytes = 0;
    let mut key = key;
    let mut options = Some(options);
    let mut added = 0;
    loop {
        let mut collection =
            eas_edge_tests::eas::SyncCollection::new(key.clone(), inbox.as_str()).window(WINDOW);
        if let Some(options) = options.take() {
            collection = collection.options(options);
        }
        let answer = device.sync_one(collection)?;
        requests += 1;
        bytes += answer.raw.len();
        let Some(collection) = answer.collection(&inbox) else { break };
        if collection.status != Some(1) {
            bail!("Sync status {:?}:\n{}", collection.status, answer.xml());
        }
        added += collection.commands.iter().filter(|c| c.kind == CommandKind::Add).count();
        key = collection.sync_key.clone().context("Sync answer without SyncKey")?;
        if !collection.more_available {
            break;
        }
    }
    let elapsed = started.elapsed();
    ensure!(added == expected, "the phone got {added} messages of {expected}");
    Ok((elapsed, requests, bytes))
}

/// SELECT + UID FETCH in batches; (time, FETCH commands).
fn imap_fetch(
    stack: &MailStack,
    user: &str,
    expected: usize,
    items: &str,
) -> Result<(Duration, usize)> {
    let started = Instant::now();
    let mut imap = ImapClient::connect(stack.imap_addr()?)?;
    imap.login(user, PASSWORD)?;
    imap.select("INBOX")?;
    let uids = imap.uid_search("ALL")?;
    let mut fetched = 0;
    let mut commands = 0;
    for batch in uids.chunks(IMAP_BATCH) {
        let (first, last) = (batch[0], batch[batch.len() - 1]);
        fetched += imap.uid_fetch(&format!("{first}:{last}"), items)?.len();
        commands += 1;
    }
    let elapsed = started.elapsed();
    imap.logout()?;
    ensure!(fetched == expected, "IMAP fetched {fetched} of {expected}");
    Ok((elapsed, commands))
}

/// User + system CPU time of a process, all threads (`/proc/PID/stat` fields 14 and 15, in
/// clock ticks of 1/100 s: USER_HZ is 100 on every Linux this runs on).
fn process_cpu(pid: u32) -> Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces; the fields after it are plain numbers.
    let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).context("bad /proc stat")?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |index: usize| -> Result<u64> {
        fields.get(index).context("short /proc stat")?.parse().context("bad /proc stat field")
    };
    // fields[0] is field 3 (state), so utime (14) and stime (15) are at 11 and 12.
    Ok(Duration::from_millis((ticks(11)? + ticks(12)?) * 10))
}

fn print_table(rows: &[Row], body: Body, trace_headers: bool, render_ahead: bool) {
    println!(
        "| messages | mailbox | with attachments | seed (MULTIAPPEND) | EAS initial sync | EAS msg/s \
         | gateway CPU | EAS requests | EAS response bytes | IMAP fetch, cold | IMAP fetch | IMAP msg/s | IMAP FETCH commands \
         | IMAP whole messages | IMAP whole msg/s |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        let rate = |d: Duration| row.messages as f64 / d.as_secs_f64().max(1e-9);
        println!(
            "| {} | {:.1} MB | {} | {:.1} s | {:.1} s | {:.0} | {:.2} s | {} | {:.1} MB | {:.2} s | {:.2} s | {:.0} | {} \
             | {:.2} s | {:.0} |",
            row.messages,
            row.mailbox_bytes as f64 / 1e6,
            row.with_attachments,
            row.seed.as_secs_f64(),
            row.eas.as_secs_f64(),
            rate(row.eas),
            row.eas_gateway_cpu.as_secs_f64(),
            row.eas_requests,
            row.eas_bytes as f64 / 1e6,
            row.imap_cold.as_secs_f64(),
            row.imap.as_secs_f64(),
            rate(row.imap),
            row.imap_commands,
            row.imap_full.as_secs_f64(),
            rate(row.imap_full),
        );
    }
    println!(
        "\nEAS 16.1, WindowSize {WINDOW}, BodyPreference Type {} TruncationSize {}, FilterType 0; \
         IMAP UID FETCH {IMAP_ITEMS} in batches of {IMAP_BATCH}; \
         \"whole messages\": the same with BODY.PEEK[].{}{}",
        body.body_type,
        body.truncation_size,
        if trace_headers { " Messages with delivery trace headers (~1.7 KB)." } else { "" },
        if render_ahead { "" } else { " Gateway with render_ahead = false." }
    );
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
