//! Push benchmarks (issue #5): memory per parked Ping, wake-up latency against a bare IMAP
//! IDLE client, and the IMAP load of parked devices.
//!
//! ```sh
//! cargo xtask build
//! export EAS_EDGE_BIN=$CARGO_TARGET_DIR/release/eas-edge EAS_EDGE_PLUGIN=$CARGO_TARGET_DIR/plugin/eas_edge_plugin.wasm
//! cargo run --release -p eas-edge-tests --bin bench-push -- memory   # 15,000 Pings, 1,500 accounts
//! cargo run --release -p eas-edge-tests --bin bench-push -- latency  # 3 configurations × SMTP, APPEND
//! cargo run --release -p eas-edge-tests --bin bench-push -- load     # 1,000 devices idle 10 minutes
//! cargo run --release -p eas-edge-tests --bin bench-push -- memory --accounts 100 --devices 10  # smaller
//! cargo run --release -p eas-edge-tests --bin bench-push -- envoy    # 3,000 Pings parked in Envoy
//! ```
//!
//! Runs as root (the mail stack, as for the end-to-end tests; `fs.inotify.max_user_instances` is
//! raised, and the output says so, when more than 100 watchers will IDLE). Each benchmark starts
//! its own Dovecot + Postfix and gateway. Progress goes to stderr, the results (markdown) to
//! stdout. Options are `--name value`; each subcommand lists its own below.
//!
//! * **memory** (`--accounts 1500 --devices 10 --heartbeat 3000 --rate 250 --per-worker 5000
//!   --imap-client-limit 20 --steady-wait 65 --setup-threads 6 --idle-settle 30`): every device is set up like a
//!   phone (Provision and FolderSync; device 0 of each account also syncs its Inbox — a Ping
//!   from a device without FolderSync gets Status 7, and what the host keeps for a parked
//!   Ping does not depend on the sync state). The gateway is then restarted so that the baseline is a fresh
//!   process, not one with the setup's heap, warmed with a few Syncs, and measured idle
//!   (`--idle-settle` seconds after its CPU is quiet: the allocator returns freed pages late). Pings
//!   are written by client worker processes (this binary re-executed, at most `--per-worker`
//!   connections each: the fd limit is per process) at `--rate` per second in total: first one
//!   per account (which also starts every account's watcher), then the rest. VmRSS of the
//!   gateway is read after each phase once its CPU is quiet, and again after `--steady-wait`
//!   seconds (the request pool's idle IMAP sessions have logged out by then). Finally the
//!   clients disconnect, and the gateway must drop every record and stop every watcher.
//!   `--send options` holds the same connections after one answered `OPTIONS` each instead:
//!   the cost of an idle kept-alive HTTP connection, without any parked request or watcher.
//! * **latency** (`--rounds 30 --hibernate 2s --configs plain,hibernate,hibernate-idle`): one
//!   synced device and a bare IMAP client IDLEing on the same Inbox; per round the device Pings,
//!   after a settle time mail is delivered (SMTP to Postfix, or APPEND over IMAP), and the time
//!   from the end of the delivery to the Ping answer and to the IDLE client's `EXISTS` is taken.
//!   Configurations: `plain` (no hibernation, watcher with NOTIFY), `hibernate` (Dovecot's
//!   `imap_hibernate_timeout`, watcher with NOTIFY), `hibernate-idle` (hibernation, watcher
//!   with IDLE: `[watchers] use_notify = false`).
//! * **load** (`--accounts 100 --devices 10 --idle-seconds 600 --settle 70`): all devices park,
//!   the gateway reaches IMAP through a counting proxy ([`bench::proxy`]); after `--settle`
//!   seconds (pool sessions idle out) the commands and connections of the next
//!   `--idle-seconds` are counted, by kind of connection (watcher: sent NOTIFY or IDLE).
//! * **envoy** (`--accounts 300 --devices 10 --heartbeat 3000 --rate 250 --timeout 300`
//!   and `memory`'s setup options; needs `EAS_EDGE_ENVOY_FILTER`): the devices are set up
//!   through the host, then every Ping goes through real Envoy (`envoy/eas-edge.yaml.in`) and
//!   parks there, on a long-poll to the host's capability endpoint (every device has synced its
//!   Inbox: a Ping only reports changes in folders the device has synced). Envoy's and the host's VmRSS
//!   are read idle and with every Ping parked; then one message is delivered to every account
//!   at once (one SMTP transaction, all of them recipients) and every Ping must answer with
//!   Status 2. Reported: RSS per parked Ping for both processes, and how long until the last
//!   Ping answered.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use eas_edge_tests::bench::percentiles::percentile;
use eas_edge_tests::bench::proxy::{CountingProxy, Window};
use eas_edge_tests::bench::raw_ping::{
    HeldPings, HeldState, options_request, ping_body, ping_request,
};
use eas_edge_tests::bench::system;
use eas_edge_tests::eas::{Device, Version};
use eas_edge_tests::gateway::{Gateway, GatewayOptions, TEST_DOMAIN};
use eas_edge_tests::imap::AppendOptions;
use eas_edge_tests::mailstack::MailStack;
use eas_edge_tests::smtp;
use eas_wbxml::Limits;
use eas_wbxml::tags::ping;

const PASSWORD: &str = "bench-pw";

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_default();
    let options = Options::parse(args)?;
    match command.as_str() {
        "memory" => memory(&options),
        "latency" => latency(&options),
        "load" => load(&options),
        "envoy" => envoy(&options),
        "worker" => worker(&options),
        _ => bail!(
            "usage: bench-push memory|latency|load|envoy [--option value …] (see the source header)"
        ),
    }
}

/// `--name value` pairs.
struct Options(HashMap<String, String>);

impl Options {
    fn parse(args: impl Iterator<Item = String>) -> Result<Options> {
        let mut map = HashMap::new();
        let mut args = args.peekable();
        while let Some(name) = args.next() {
            let name = name
                .strip_prefix("--")
                .with_context(|| format!("expected --option, got {name:?}"))?;
            let value = args.next().with_context(|| format!("--{name} needs a value"))?;
            map.insert(name.to_owned(), value);
        }
        Ok(Options(map))
    }

    fn get<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T>
    where
        T::Err: std::fmt::Display,
    {
        match self.0.get(name) {
            None => Ok(default),
            Some(value) => value
                .replace('_', "")
                .parse()
                .map_err(|error| anyhow::anyhow!("--{name} {value:?}: {error}")),
        }
    }

    fn text(&self, name: &str, default: &str) -> String {
        self.0.get(name).cloned().unwrap_or_else(|| default.to_owned())
    }
}

fn user_name(account: usize) -> String {
    format!("push{account:05}@{TEST_DOMAIN}")
}

/// A mail stack sized for `connections` concurrent IMAP connections, with the accounts.
fn start_stack(
    accounts: usize,
    connections: usize,
    client_limit: usize,
    hibernate: &str,
) -> Result<MailStack> {
    // each imap process serves up to client_limit connections; leave room for the pool
    let processes = (connections / client_limit.max(1) + 100).max(1024).to_string();
    let client_limit = client_limit.max(1).to_string();
    let settings = [
        ("IMAP_PROCESS_LIMIT", processes.as_str()),
        ("IMAP_CLIENT_LIMIT", client_limit.as_str()),
        ("HIBERNATE_TIMEOUT", hibernate),
        // PLAIN: hashing 1,500 passwords with doveadm would take minutes (nothing is measured
        // about logins here)
        ("PASS_SCHEME", "PLAIN"),
    ];
    let stack = MailStack::start_with(&settings)?;
    let users: Vec<(String, String)> =
        (0..accounts).map(|account| (user_name(account), PASSWORD.to_owned())).collect();
    let started = Instant::now();
    for chunk in users.chunks(250) {
        stack.add_users(chunk)?;
    }
    eprintln!("  {accounts} accounts created in {:.0} s", started.elapsed().as_secs_f64());
    Ok(stack)
}

/// Dovecot needs an inotify instance per IDLE/NOTIFY connection (per imap process when it
/// serves several): raise the kernel's per-user limit when more than ~100 will watch.
fn ensure_inotify(watchers: usize) -> Result<String> {
    if watchers <= 100 {
        return Ok(String::new());
    }
    let wanted = (watchers as u64) * 2 + 256;
    let (old, new) = system::raise_inotify_instances(wanted)?;
    let note = if new != old {
        format!("raised fs.inotify.max_user_instances from {old} to {new} ({watchers} watchers)")
    } else {
        format!("fs.inotify.max_user_instances is {old}: enough for {watchers} watchers")
    };
    eprintln!("  {note}");
    Ok(note)
}

/// A device that has synced its Inbox (so a Ping waits); returns it, the Inbox and the key.
fn synced_device(
    gateway: &Gateway,
    user: &str,
    device_id: &str,
) -> Result<(Device, String, String)> {
    let mut device = Device::new(&gateway.url(), user, PASSWORD, device_id, Version::V16_1);
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

/// Sets up `devices` devices per account on `threads` threads, device 0 of every account
/// first: device 0 syncs the Inbox (the latency and warm-up use it), the others Provision and
/// FolderSync (a Ping names folders by the ServerIds the device got from its FolderSync).
/// Returns each account's devices' Inbox ServerIds, and device 0's SyncKey.
fn set_up_devices(
    gateway: &Gateway,
    accounts: usize,
    devices: usize,
    threads: usize,
) -> Result<Vec<(Vec<String>, String)>> {
    set_up_devices_syncing(gateway, accounts, devices, threads, false)
}

/// [`set_up_devices`], with every device's Inbox synced when `sync_all` (a Ping only reports
/// changes in folders the device has synced: the others it merely watches).
fn set_up_devices_syncing(
    gateway: &Gateway,
    accounts: usize,
    devices: usize,
    threads: usize,
    sync_all: bool,
) -> Result<Vec<(Vec<String>, String)>> {
    let next = AtomicUsize::new(0);
    let total = accounts * devices;
    let results: Mutex<Vec<(Vec<String>, String)>> =
        Mutex::new(vec![(vec![String::new(); devices], String::new()); accounts]);
    let started = Instant::now();
    thread::scope(|scope| -> Result<()> {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| -> Result<()> {
                    loop {
                        let task = next.fetch_add(1, Ordering::Relaxed);
                        if task >= total {
                            return Ok(());
                        }
                        let (account, device) = (task % accounts, task / accounts);
                        let user = user_name(account);
                        let id = device_name(account, device);
                        let (inbox, key) = if device == 0 || sync_all {
                            let (_, inbox, key) = synced_device(gateway, &user, &id)
                                .with_context(|| format!("setting up {id}"))?;
                            (inbox, key)
                        } else {
                            let mut phone =
                                Device::new(&gateway.url(), &user, PASSWORD, &id, Version::V16_1);
                            let folders =
                                phone.bootstrap().with_context(|| format!("setting up {id}"))?;
                            let inbox = folders
                                .adds
                                .iter()
                                .find(|folder| folder.folder_type == 2)
                                .context("FolderSync lists no inbox")?
                                .server_id
                                .clone();
                            (inbox, String::new())
                        };
                        let mut results =
                            results.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
                        results[account].0[device] = inbox;
                        if device == 0 {
                            results[account].1 = key;
                        }
                        if task % 1000 == 999 {
                            eprintln!("  {} devices set up", task + 1);
                        }
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.join().map_err(|_| anyhow::anyhow!("setup thread panicked"))??;
        }
        Ok(())
    })?;
    eprintln!("  {total} devices set up in {:.0} s", started.elapsed().as_secs_f64());
    results.into_inner().map_err(|_| anyhow::anyhow!("poisoned"))
}

fn device_name(account: usize, device: usize) -> String {
    format!("BENCH{account:05}D{device:02}")
}

fn gateway_options(extra: &str) -> GatewayOptions {
    GatewayOptions {
        tenant_extra: extra.to_owned(),
        // every simulated phone comes from 127.0.0.1: no per-address connection cap
        config_extra: "[connections]\nmax_per_address = 0\n".to_owned(),
        ..Default::default()
    }
}

// ------------------------------------------------------------------------------ workers

/// A client process holding parked Pings (this binary, `worker` subcommand).
struct Worker {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl Worker {
    fn spawn(gateway: SocketAddr, heartbeat: u32, rate: f64, kind: &str) -> Result<Worker> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["worker", "--gateway", &gateway.to_string(), "--send", kind])
            .args(["--heartbeat", &heartbeat.to_string(), "--rate", &rate.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting a client worker")?;
        let input = child.stdin.take().context("worker stdin")?;
        let output = BufReader::new(child.stdout.take().context("worker stdout")?);
        Ok(Worker { child, input, output })
    }

    fn send(&mut self, line: &str) -> Result<()> {
        writeln!(self.input, "{line}")?;
        self.input.flush()?;
        Ok(())
    }

    fn reply(&mut self) -> Result<String> {
        let mut line = String::new();
        ensure!(self.output.read_line(&mut line)? > 0, "a client worker exited");
        Ok(line.trim_end().to_owned())
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.send("QUIT");
        let _ = self.child.wait();
    }
}

/// The client workers of one benchmark.
struct Clients {
    workers: Vec<Worker>,
}

impl Clients {
    fn start(
        count: usize,
        gateway: SocketAddr,
        heartbeat: u32,
        total_rate: f64,
        kind: &str,
    ) -> Result<Clients> {
        let rate = total_rate / count as f64;
        let workers = (0..count)
            .map(|_| Worker::spawn(gateway, heartbeat, rate, kind))
            .collect::<Result<_>>()?;
        Ok(Clients { workers })
    }

    /// Parks the Pings of `devices` (user, device id, folder), spread over the workers; returns
    /// once all are written.
    fn park(&mut self, devices: &[(String, String, String)]) -> Result<Duration> {
        let started = Instant::now();
        let count = self.workers.len();
        for (index, (user, device, folder)) in devices.iter().enumerate() {
            self.workers[index % count].send(&format!("P {user} {device} {folder}"))?;
        }
        for worker in &mut self.workers {
            worker.send("GO")?;
        }
        for worker in &mut self.workers {
            let reply = worker.reply()?;
            ensure!(reply.starts_with("SENT"), "worker: {reply}");
        }
        Ok(started.elapsed())
    }

    fn check(&mut self) -> Result<(HeldState, Option<String>)> {
        let mut total = HeldState::default();
        let mut sample = None;
        for worker in &mut self.workers {
            worker.send("CHECK")?;
            let reply = worker.reply()?;
            let mut words = reply.splitn(5, ' ');
            ensure!(words.next() == Some("STATE"), "worker: {reply}");
            let mut number =
                || -> Result<usize> { Ok(words.next().context("short STATE")?.parse()?) };
            total.waiting += number()?;
            total.answered += number()?;
            total.closed += number()?;
            if let Some(text) = words.next().filter(|text| !text.is_empty()) {
                sample.get_or_insert_with(|| text.to_owned());
            }
        }
        Ok((total, sample))
    }

    /// Answers by kind over all workers (see [`HeldPings::answer_counts`]).
    fn counts(&mut self) -> Result<std::collections::BTreeMap<String, usize>> {
        let mut total = std::collections::BTreeMap::new();
        for worker in &mut self.workers {
            worker.send("COUNTS")?;
            let reply = worker.reply()?;
            let list = reply.strip_prefix("COUNTS ").with_context(|| format!("worker: {reply}"))?;
            for item in list.split('|').filter(|item| !item.is_empty()) {
                let (count, kind) = item.split_once('=').context("COUNTS item")?;
                *total.entry(kind.to_owned()).or_insert(0) += count.parse::<usize>()?;
            }
        }
        Ok(total)
    }

    fn close_all(&mut self) -> Result<()> {
        for worker in &mut self.workers {
            worker.send("CLOSE")?;
        }
        for worker in &mut self.workers {
            let reply = worker.reply()?;
            ensure!(reply == "CLOSED", "worker: {reply}");
        }
        Ok(())
    }
}

/// The `worker` subcommand: reads `P user device folder` lines, `GO` (send the queued Pings at
/// `--rate` per second), `CHECK`, `CLOSE`, `QUIT` from stdin; answers on stdout.
fn worker(options: &Options) -> Result<()> {
    let gateway: SocketAddr = options.text("gateway", "").parse().context("--gateway")?;
    let heartbeat: u32 = options.get("heartbeat", 3000)?;
    let rate: f64 = options.get("rate", 100.0)?;
    let send_options = options.text("send", "ping") == "options";
    let mut held = HeldPings::default();
    let mut queued: Vec<(String, String, String)> = Vec::new();
    let mut bodies: HashMap<String, Vec<u8>> = HashMap::new();
    let stdout = std::io::stdout();
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let words: Vec<&str> = line.split(' ').collect();
        match words.as_slice() {
            ["P", user, device, folder] => {
                queued.push(((*user).to_owned(), (*device).to_owned(), (*folder).to_owned()))
            }
            ["GO"] => {
                let started = Instant::now();
                for (index, (user, device, folder)) in queued.drain(..).enumerate() {
                    let due = started + Duration::from_secs_f64(index as f64 / rate.max(0.001));
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        thread::sleep(wait);
                    }
                    if !bodies.contains_key(&folder) {
                        bodies.insert(folder.clone(), ping_body(heartbeat, &[&folder])?);
                    }
                    let request = if send_options {
                        options_request(gateway, &user, PASSWORD)
                    } else {
                        ping_request(gateway, &user, PASSWORD, &device, &bodies[&folder])
                    };
                    held.send(gateway, &request)?;
                }
                writeln!(stdout.lock(), "SENT {}", held.len())?;
            }
            ["CHECK"] => {
                let state = held.check()?;
                let sample = held.sample_answer.clone().unwrap_or_default();
                writeln!(
                    stdout.lock(),
                    "STATE {} {} {} {sample}",
                    state.waiting,
                    state.answered,
                    state.closed
                )?;
            }
            ["COUNTS"] => {
                let counts = held.answer_counts()?;
                let line: Vec<String> =
                    counts.iter().map(|(kind, count)| format!("{count}={kind}")).collect();
                writeln!(stdout.lock(), "COUNTS {}", line.join("|"))?;
            }
            ["CLOSE"] => {
                held.close_all();
                writeln!(stdout.lock(), "CLOSED")?;
            }
            ["QUIT"] => break,
            _ => bail!("worker: unknown line {line:?}"),
        }
        stdout.lock().flush()?;
    }
    Ok(())
}

// ------------------------------------------------------------------------------ memory

struct Sample {
    label: String,
    parked: usize,
    rss_kib: u64,
    imap_connections: usize,
    fds: usize,
    threads: u64,
}

fn sample(label: &str, parked: usize, gateway: &Gateway, imap_port: u16) -> Result<Sample> {
    let pid = gateway.pid();
    let sample = Sample {
        label: label.to_owned(),
        parked,
        rss_kib: system::rss_kib(pid)?,
        imap_connections: system::connections_to(imap_port)?,
        fds: system::open_fds(pid)?,
        threads: system::threads(pid)?,
    };
    eprintln!(
        "  {label}: {parked} parked, VmRSS {} KiB, {} IMAP connections, {} fds, {} threads",
        sample.rss_kib, sample.imap_connections, sample.fds, sample.threads
    );
    Ok(sample)
}

fn memory(options: &Options) -> Result<()> {
    let accounts: usize = options.get("accounts", 1500)?;
    let devices: usize = options.get("devices", 10)?;
    let heartbeat: u32 = options.get("heartbeat", 3000)?;
    let rate: f64 = options.get("rate", 250.0)?;
    let per_worker: usize = options.get("per-worker", 5000)?;
    let client_limit: usize = options.get("imap-client-limit", 20)?;
    let steady_wait: u64 = options.get("steady-wait", 65)?;
    let setup_threads: usize = options.get("setup-threads", 6)?;
    let idle_settle: u64 = options.get("idle-settle", 30)?;
    // "options": the same connections each with one answered OPTIONS instead of a parked Ping,
    // to tell the HTTP connection's own cost from the parked request's
    let send = options.text("send", "ping");
    ensure!(send == "ping" || send == "options", "--send is ping or options");
    let linger: u64 = 5;
    ensure!(accounts > 0 && devices > 0, "--accounts and --devices must be at least 1");
    let total = accounts * devices;
    eprintln!("bench-push memory: {total} Pings from {accounts} accounts × {devices} devices");

    let inotify = ensure_inotify(accounts)?;
    // watchers, plus up to 4 pooled sessions per account while Pings arrive
    let stack = start_stack(accounts, accounts * 6, client_limit, "0")?;
    let imap_port = stack.imap_addr()?.port();
    let extra = format!("[watchers]\nlinger_seconds = {linger}\n");
    let mut gateway = Gateway::start_with(&stack, gateway_options(&extra))?;
    let inboxes = set_up_devices(&gateway, accounts, devices, setup_threads)?;

    // a fresh process for the baseline: the setup's heap is not the parked Pings' cost
    gateway.restart()?;
    for (account, (inbox, key)) in inboxes.iter().enumerate().take(3) {
        let inbox = &inbox[0];
        let mut device = Device::new(
            &gateway.url(),
            &user_name(account),
            PASSWORD,
            &device_name(account, 0),
            Version::V16_1,
        );
        device.provision()?;
        device.sync_drain(inbox, key, 100, None)?;
    }
    system::wait_quiet(gateway.pid(), 2, 3, Duration::from_secs(60))?;
    // jemalloc (the host's allocator) hands freed pages back ~10 s after the fact: without
    // this pause the warm-up's garbage leaves the baseline while the Pings arrive, and the
    // per-Ping figure comes out too low (even negative on small runs)
    thread::sleep(Duration::from_secs(idle_settle));
    let mut samples = vec![sample("idle (fresh, warmed)", 0, &gateway, imap_port)?];

    let workers = total.div_ceil(per_worker.max(1));
    let mut clients = Clients::start(workers, gateway.address, heartbeat, rate, &send)?;
    let first: Vec<_> = (0..accounts)
        .map(|account| (user_name(account), device_name(account, 0), inboxes[account].0[0].clone()))
        .collect();
    let rest: Vec<_> = (1..devices)
        .flat_map(|device| (0..accounts).map(move |account| (account, device)))
        .map(|(account, device)| {
            (user_name(account), device_name(account, device), inboxes[account].0[device].clone())
        })
        .collect();

    let took = clients.park(&first)?;
    let quiet = system::wait_quiet(gateway.pid(), 2, 3, Duration::from_secs(600))?;
    eprintln!(
        "  {} Pings sent in {:.0} s, gateway quiet {:.0} s later",
        first.len(),
        took.as_secs_f64(),
        quiet.as_secs_f64()
    );
    samples.push(sample("one Ping per account", first.len(), &gateway, imap_port)?);
    if !rest.is_empty() {
        let took = clients.park(&rest)?;
        let quiet = system::wait_quiet(gateway.pid(), 2, 3, Duration::from_secs(900))?;
        eprintln!(
            "  {} Pings sent in {:.0} s, gateway quiet {:.0} s later",
            rest.len(),
            took.as_secs_f64(),
            quiet.as_secs_f64()
        );
        samples.push(sample("all Pings", total, &gateway, imap_port)?);
    }
    thread::sleep(Duration::from_secs(steady_wait));
    samples.push(sample(&format!("all Pings, {steady_wait} s later"), total, &gateway, imap_port)?);
    let (state, answer) = clients.check()?;
    eprintln!("  phones: {state:?}");

    clients.close_all()?;
    let release_started = Instant::now();
    let mut left = usize::MAX;
    while release_started.elapsed() < Duration::from_secs(linger + 120) {
        thread::sleep(Duration::from_secs(2));
        left = system::connections_to(imap_port)?;
        if left == 0 {
            break;
        }
    }
    system::wait_quiet(gateway.pid(), 2, 3, Duration::from_secs(60))?;
    samples.push(sample("phones gone", 0, &gateway, imap_port)?);
    let freed_in = release_started.elapsed();
    drop(clients);

    let base = samples[0].rss_kib as f64;
    let what =
        if send == "ping" { "parked Pings" } else { "kept-alive connections (one OPTIONS each)" };
    println!("\n### Push memory: {total} {what}, {accounts} accounts × {devices} devices\n");
    println!(
        "| moment | parked | gateway VmRSS | over idle | per parked Ping | IMAP connections | fds | threads |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for s in &samples {
        let over = s.rss_kib as f64 - base;
        let per =
            if s.parked > 0 { format!("{:.2} KiB", over / s.parked as f64) } else { "–".into() };
        println!(
            "| {} | {} | {:.1} MiB | {:+.1} MiB | {per} | {} | {} | {} |",
            s.label,
            s.parked,
            s.rss_kib as f64 / 1024.0,
            over / 1024.0,
            s.imap_connections,
            s.fds,
            s.threads
        );
    }
    if samples.len() >= 4 {
        let one = &samples[1];
        let all = &samples[2];
        let marginal =
            (all.rss_kib as f64 - one.rss_kib as f64) / (all.parked - one.parked).max(1) as f64;
        println!(
            "\nMarginal cost of a further Ping on an already watched account: {marginal:.2} KiB; \
             first Ping of an account (record + watcher + its IMAP connection): {:.2} KiB.",
            (one.rss_kib as f64 - base) / one.parked.max(1) as f64
        );
    }
    println!(
        "\nPhones at the end: {} still waiting, {} answered early{}, {} closed by the gateway. \
         After they disconnected: {left} IMAP connections left after {:.0} s (linger {linger} s).",
        state.waiting,
        state.answered,
        answer.map(|a| format!(" (first answer: {a})")).unwrap_or_default(),
        state.closed,
        freed_in.as_secs_f64()
    );
    println!(
        "\nSettings: heartbeat {heartbeat} s, {rate}/s Pings, {workers} client processes, Dovecot \
         imap client_limit {client_limit}. {inotify}"
    );
    if send == "ping" {
        ensure!(state.answered == 0 && state.closed == 0, "some Pings did not stay parked");
    }
    Ok(())
}

// ------------------------------------------------------------------------------ envoy

fn envoy(options: &Options) -> Result<()> {
    let accounts: usize = options.get("accounts", 300)?;
    let devices: usize = options.get("devices", 10)?;
    let heartbeat: u32 = options.get("heartbeat", 3000)?;
    let rate: f64 = options.get("rate", 250.0)?;
    let per_worker: usize = options.get("per-worker", 5000)?;
    let client_limit: usize = options.get("imap-client-limit", 20)?;
    let setup_threads: usize = options.get("setup-threads", 6)?;
    let timeout: u64 = options.get("timeout", 300)?;
    ensure!(accounts > 0 && devices > 0, "--accounts and --devices must be at least 1");
    let total = accounts * devices;
    eprintln!(
        "bench-push envoy: {total} Pings through Envoy, {accounts} accounts × {devices} devices"
    );

    let inotify = ensure_inotify(accounts)?;
    let stack = start_stack(accounts, accounts * 6, client_limit, "0")?;
    let gateway = Gateway::start_with(&stack, gateway_options(""))?;
    let inboxes = set_up_devices_syncing(&gateway, accounts, devices, setup_threads, true)?;
    let envoy = eas_edge_tests::envoy::Envoy::start(&gateway)?;
    // one request through Envoy so that its workers' VMs and the capability connections exist
    let mut warm =
        Device::new(&envoy.url(), &user_name(0), PASSWORD, &device_name(0, 0), Version::V16_1);
    warm.provision()?;
    system::wait_quiet(envoy.pid(), 2, 3, Duration::from_secs(60))?;
    let rss = |label: &str, parked: usize| -> Result<(String, usize, u64, u64)> {
        let (envoy_kib, host_kib) =
            (system::rss_kib(envoy.pid())?, system::rss_kib(gateway.pid())?);
        eprintln!(
            "  {label}: {parked} parked, Envoy VmRSS {envoy_kib} KiB, host VmRSS {host_kib} KiB"
        );
        Ok((label.to_owned(), parked, envoy_kib, host_kib))
    };
    let mut samples = vec![rss("idle", 0)?];

    let workers = total.div_ceil(per_worker.max(1));
    let mut clients = Clients::start(workers, envoy.address, heartbeat, rate, "ping")?;
    let pings: Vec<_> = (0..devices)
        .flat_map(|device| (0..accounts).map(move |account| (account, device)))
        .map(|(account, device)| {
            (user_name(account), device_name(account, device), inboxes[account].0[device].clone())
        })
        .collect();
    let took = clients.park(&pings)?;
    system::wait_quiet(envoy.pid(), 2, 3, Duration::from_secs(600))?;
    system::wait_quiet(gateway.pid(), 2, 3, Duration::from_secs(600))?;
    eprintln!("  {total} Pings sent in {:.0} s", took.as_secs_f64());
    samples.push(rss("all Pings parked", total)?);
    let (state, answer) = clients.check()?;
    ensure!(
        state.waiting == total,
        "before any mail, {} Pings answered and {} closed (first: {answer:?})",
        state.answered,
        state.closed
    );

    let recipients: Vec<String> = (0..accounts).map(user_name).collect();
    let recipient_refs: Vec<&str> = recipients.iter().map(String::as_str).collect();
    let message = format!(
        "From: sender@{TEST_DOMAIN}\r\nTo: everyone@{TEST_DOMAIN}\r\nSubject: wake all\r\n\
         Message-ID: <wake-all@bench.test>\r\n\r\nfor every account at once\r\n"
    );
    let delivered = Instant::now();
    smtp::send(
        stack.smtp_addr()?,
        None,
        &format!("sender@{TEST_DOMAIN}"),
        &recipient_refs,
        message.as_bytes(),
    )?;
    let mut all_answered = None;
    while delivered.elapsed() < Duration::from_secs(timeout) {
        thread::sleep(Duration::from_millis(500));
        let (state, _) = clients.check()?;
        if state.waiting == 0 {
            all_answered = Some(delivered.elapsed());
            break;
        }
    }
    let counts = clients.counts()?;
    eprintln!("  answers: {counts:?}");
    clients.close_all()?;
    drop(clients);

    let (_, _, envoy_idle, host_idle) = samples[0];
    println!(
        "\n### Pings parked in Envoy: {total} Pings, {accounts} accounts × {devices} devices\n"
    );
    println!("| moment | parked | Envoy VmRSS | Envoy per Ping | host VmRSS | host per Ping |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (label, parked, envoy_kib, host_kib) in &samples {
        let per = |now: u64, idle: u64| {
            if *parked > 0 {
                format!("{:.2} KiB", (now as f64 - idle as f64) / *parked as f64)
            } else {
                "–".to_owned()
            }
        };
        println!(
            "| {label} | {parked} | {:.1} MiB | {} | {:.1} MiB | {} |",
            *envoy_kib as f64 / 1024.0,
            per(*envoy_kib, envoy_idle),
            *host_kib as f64 / 1024.0,
            per(*host_kib, host_idle)
        );
    }
    let answers: Vec<String> = counts.iter().map(|(kind, n)| format!("{n} × {kind}")).collect();
    println!(
        "\nOne message to all {accounts} accounts: {}; answers: {}.",
        all_answered.map_or_else(
            || format!("not every Ping answered within {timeout} s"),
            |took| format!("every Ping answered {:.1} s after the delivery", took.as_secs_f64())
        ),
        answers.join(", ")
    );
    println!(
        "\nSettings: heartbeat {heartbeat} s, {rate}/s Pings, {workers} client processes. {inotify}"
    );
    let good = counts.get("HTTP/1.1 200 OK, Ping Status 2").copied().unwrap_or(0);
    ensure!(good == total, "{} of {total} Pings answered Status 2", good);
    Ok(())
}

// ------------------------------------------------------------------------------ latency

/// What one configuration of the latency benchmark measured (milliseconds).
struct LatencyRow {
    config: String,
    delivery: &'static str,
    idle: Vec<f64>,
    ping: Vec<f64>,
}

fn latency(options: &Options) -> Result<()> {
    let rounds: usize = options.get("rounds", 30)?;
    let hibernate = options.text("hibernate", "2s");
    let hibernate_secs: f64 =
        hibernate.trim_end_matches('s').parse().context("--hibernate: seconds like 2s")?;
    let configs = options.text("configs", "plain,hibernate,hibernate-idle");
    let mut rows = Vec::new();
    for config in configs.split(',') {
        let (hibernation, notify) = match config {
            "plain" => ("0", true),
            "hibernate" => (hibernate.as_str(), true),
            "hibernate-idle" => (hibernate.as_str(), false),
            other => bail!("unknown configuration {other:?}"),
        };
        eprintln!("bench-push latency: {config} (hibernation {hibernation}, NOTIFY {notify})");
        // after a notice the connections need imap_hibernate_timeout of quiet to hibernate again
        let settle = if hibernation == "0" {
            Duration::from_millis(1500)
        } else {
            Duration::from_secs_f64(hibernate_secs + 2.0)
        };
        rows.extend(latency_config(config, hibernation, notify, rounds, settle)?);
    }
    println!("\n### Push latency: delivery → Ping answer vs delivery → IDLE `EXISTS` (ms)\n");
    println!(
        "| configuration | delivery | rounds | IDLE p50 | IDLE p99 | Ping p50 | Ping p99 \
         | Δ p50 | Δ p99 | goal (Δ p50 ≤ 20, Δ p99 ≤ 50) |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---|");
    for row in &rows {
        let p = |samples: &[f64], q| percentile(samples, q).unwrap_or(f64::NAN);
        let (d50, d99) =
            (p(&row.ping, 50.0) - p(&row.idle, 50.0), p(&row.ping, 99.0) - p(&row.idle, 99.0));
        println!(
            "| {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:+.0} | {:+.0} | {} |",
            row.config,
            row.delivery,
            row.ping.len(),
            p(&row.idle, 50.0),
            p(&row.idle, 99.0),
            p(&row.ping, 50.0),
            p(&row.ping, 99.0),
            d50,
            d99,
            if d50 <= 20.0 && d99 <= 50.0 { "met" } else { "not met" }
        );
    }
    Ok(())
}

fn latency_config(
    config: &str,
    hibernation: &str,
    notify: bool,
    rounds: usize,
    settle: Duration,
) -> Result<Vec<LatencyRow>> {
    let stack = start_stack(1, 16, 1, hibernation)?;
    let user = user_name(0);
    let extra = format!("[watchers]\nuse_notify = {notify}\n");
    let gateway = Gateway::start_with(&stack, gateway_options(&extra))?;
    let (mut device, inbox, mut key) = synced_device(&gateway, &user, &device_name(0, 0))?;

    // the bare IDLE client, timestamping every line as it arrives
    let mut idle = stack.imap_login(&user, PASSWORD)?;
    idle.select("INBOX")?;
    idle.idle()?;
    let (lines_tx, lines) = mpsc::channel::<(Instant, String)>();
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        thread::spawn(move || -> Result<()> {
            while !stop.load(Ordering::Relaxed) {
                if let Some(line) = idle.read_line(Duration::from_millis(200))? {
                    let _ = lines_tx.send((Instant::now(), line.text));
                }
            }
            Ok(())
        })
    };
    let mut appender = stack.imap_login(&user, PASSWORD)?;
    let smtp_addr = stack.smtp_addr()?;

    let mut smtp_row =
        LatencyRow { config: config.to_owned(), delivery: "SMTP", idle: vec![], ping: vec![] };
    let mut append_row = LatencyRow {
        config: config.to_owned(),
        delivery: "IMAP APPEND",
        idle: vec![],
        ping: vec![],
    };
    for round in 0..rounds * 2 {
        let over_smtp = round % 2 == 0;
        let waiting = {
            let mut twin =
                Device::new(&gateway.url(), &user, PASSWORD, &device.device_id, Version::V16_1);
            twin.policy_key = device.policy_key;
            let inbox = inbox.clone();
            thread::spawn(move || -> Result<(Instant, u32)> {
                let status = ping_status(&mut twin, 600, &inbox)?;
                Ok((Instant::now(), status))
            })
        };
        thread::sleep(settle);
        while lines.try_recv().is_ok() {}
        let message = format!(
            "From: sender@{TEST_DOMAIN}\r\nTo: {user}\r\nSubject: latency {round}\r\n\
             Message-ID: <latency-{config}-{round}@bench.test>\r\n\r\nround {round}\r\n"
        );
        let delivered = if over_smtp {
            smtp::send(
                smtp_addr,
                None,
                &format!("sender@{TEST_DOMAIN}"),
                &[user.as_str()],
                message.as_bytes(),
            )?;
            Instant::now()
        } else {
            appender.append("INBOX", message.as_bytes(), &AppendOptions::default())?;
            Instant::now()
        };
        let idle_at = loop {
            let (at, text) = lines
                .recv_timeout(Duration::from_secs(60))
                .context("the IDLE client saw no EXISTS")?;
            if text.contains("EXISTS") {
                break at;
            }
        };
        let (ping_at, status) =
            waiting.join().map_err(|_| anyhow::anyhow!("Ping thread panicked"))??;
        ensure!(status == 2, "round {round}: Ping answered Status {status}, not 2");
        let ms = |at: Instant| {
            if at >= delivered {
                at.duration_since(delivered).as_secs_f64() * 1000.0
            } else {
                -(delivered.duration_since(at).as_secs_f64() * 1000.0)
            }
        };
        let row = if over_smtp { &mut smtp_row } else { &mut append_row };
        row.idle.push(ms(idle_at));
        row.ping.push(ms(ping_at));
        key = device.sync_drain(&inbox, &key, 100, None)?.sync_key;
        if round % 10 == 9 {
            eprintln!("  {} rounds", round + 1);
        }
    }
    stop.store(true, Ordering::Relaxed);
    reader.join().map_err(|_| anyhow::anyhow!("IDLE reader panicked"))??;
    Ok(vec![smtp_row, append_row])
}

/// Sends a Ping for `folder` and returns its Status.
fn ping_status(device: &mut Device, heartbeat: u32, folder: &str) -> Result<u32> {
    let body = ping_body(heartbeat, &[folder])?;
    let reply = device.post("Ping", Some("application/vnd.ms-sync.wbxml"), &body)?;
    ensure!(reply.status == 200, "Ping answered HTTP {}", reply.status);
    let answer = eas_wbxml::decode(&reply.body, &Limits::default())?.root;
    answer.text_of(ping::STATUS).context("Ping answer without Status")?.parse().context("Status")
}

// ------------------------------------------------------------------------------ load

fn load(options: &Options) -> Result<()> {
    let accounts: usize = options.get("accounts", 100)?;
    let devices: usize = options.get("devices", 10)?;
    let idle_seconds: u64 = options.get("idle-seconds", 600)?;
    let settle: u64 = options.get("settle", 70)?;
    let rate: f64 = options.get("rate", 200.0)?;
    let notify = options.text("notify", "true") == "true";
    let total = accounts * devices;
    eprintln!(
        "bench-push load: {total} parked devices ({accounts} accounts × {devices}), idle {idle_seconds} s"
    );
    let inotify = ensure_inotify(accounts)?;
    let stack = start_stack(accounts, accounts * 6, 20, "0")?;
    let proxy = CountingProxy::start(stack.imap_addr()?)?;
    let extra = format!("[watchers]\nuse_notify = {notify}\n");
    let options = GatewayOptions { imap_addr: Some(proxy.address), ..gateway_options(&extra) };
    let gateway = Gateway::start_with(&stack, options)?;
    let inboxes = set_up_devices(&gateway, accounts, devices, 6)?;

    let heartbeat = u32::try_from(settle + idle_seconds + 120)?.clamp(60, 3540);
    let mut clients =
        Clients::start(total.div_ceil(5000), gateway.address, heartbeat, rate, "ping")?;
    let all: Vec<_> = (0..devices)
        .flat_map(|device| (0..accounts).map(move |account| (account, device)))
        .map(|(account, device)| {
            (user_name(account), device_name(account, device), inboxes[account].0[device].clone())
        })
        .collect();
    let parking = Instant::now();
    clients.park(&all)?;
    system::wait_quiet(gateway.pid(), 2, 3, Duration::from_secs(600))?;
    thread::sleep(Duration::from_secs(settle));
    let from = Instant::now();
    eprintln!("  all parked; counting for {idle_seconds} s");
    thread::sleep(Duration::from_secs(idle_seconds));
    let to = Instant::now();
    let (state, answer) = clients.check()?;
    let parked_window = proxy.window(parking, from);
    let idle_window = proxy.window(from, to);

    println!(
        "\n### Push backend load: {total} parked devices, {accounts} accounts, idle {idle_seconds} s\n"
    );
    print_window(&format!("parking + {settle} s settle"), &parked_window);
    print_window(&format!("idle {idle_seconds} s"), &idle_window);
    let watchers_at_end = idle_window.open_at_end.get("watcher").copied().unwrap_or_default();
    let pool_at_end = idle_window.open_at_end.get("pool").copied().unwrap_or_default();
    let watcher_commands: usize = idle_window
        .commands
        .iter()
        .filter(|((kind, _), _)| *kind == "watcher")
        .map(|(_, count)| count)
        .sum();
    println!(
        "\nDuring the idle window: {} commands ({watcher_commands} on watcher connections), {} \
         connections opened, {} closed; open at its end: {watchers_at_end} watcher, {pool_at_end} \
         pool (accounts: {accounts}). Proxied connections in the whole run: {}.",
        idle_window.total_commands(),
        idle_window.opened,
        idle_window.closed,
        proxy.connections()
    );
    println!(
        "Phones at the end: {} waiting, {} answered{}, {} closed. NOTIFY {notify}, heartbeat \
         {heartbeat} s. {inotify}",
        state.waiting,
        state.answered,
        answer.map(|a| format!(" (first: {a})")).unwrap_or_default(),
        state.closed
    );
    Ok(())
}

fn print_window(label: &str, window: &Window) {
    let list: Vec<String> = window
        .commands
        .iter()
        .map(|((kind, name), count)| format!("{kind} {name} ×{count}"))
        .collect();
    println!(
        "- **{label}**: {} commands{}; connections opened {}, closed {}; open at the start {:?}, at the end {:?}",
        window.total_commands(),
        if list.is_empty() { String::new() } else { format!(" ({})", list.join(", ")) },
        window.opened,
        window.closed,
        window.open_at_start,
        window.open_at_end
    );
}
