//! A small TCP fault proxy for the reliability tests: put it between the gateway and IMAP or
//! SMTP (`GatewayOptions::imap_addr` / `smtp`) and make the backend slow, cut it mid-FETCH,
//! swallow everything, or take it down and up again, while it counts what went through.
//!
//! Blocking std networking, two pump threads per connection: the tests open tens of backend
//! connections at most, and a thread per direction keeps each fault a few lines.

use anyhow::Context;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the proxy does to the traffic; switchable at any time with [`FaultProxy::set`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward everything as it comes.
    Pass,
    /// Hold every chunk from the server this long before passing it on (a slow backend).
    Delay(Duration),
    /// Cut the connection when the server starts sending a `FETCH` response (a backend that
    /// dies in the middle of a download).
    DropOnFetch,
    /// Accept connections but pass nothing either way and never answer (a hung backend).
    Blackhole,
    /// SMTP: pass the message's end (DATA's final dot) to the server, then cut the connection
    /// before the server's reply reaches the client: the server has the message and the client
    /// cannot know it (the window of RFC 1047).
    CutAfterDataEnd,
    /// Refuse new connections (the port is closed) and cut the open ones (backend stopped).
    Down,
}

/// Counters a test reads afterwards.
#[derive(Debug, Default)]
pub struct Counters {
    /// Connections accepted from the client side.
    pub accepted: AtomicUsize,
    /// Connections open right now (both pumps still running).
    pub open: AtomicUsize,
    /// IMAP `LOGIN` / `AUTHENTICATE` commands the client sent (a password check each).
    pub logins: AtomicUsize,
    /// Connections the proxy cut because of [`Fault::DropOnFetch`] or [`Fault::Down`].
    pub cut: AtomicUsize,
}

struct Shared {
    upstream: SocketAddr,
    fault: Mutex<Fault>,
    counters: Counters,
    stopping: AtomicBool,
    /// Client-side sockets of the open connections, to cut them when the backend goes down.
    live: Mutex<Vec<(usize, TcpStream)>>,
    next_id: AtomicUsize,
}

pub struct FaultProxy {
    address: SocketAddr,
    shared: Arc<Shared>,
    /// The accept loop's listener while the proxy is up; `None` while [`Fault::Down`].
    listener: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl FaultProxy {
    /// A proxy on a free loopback port forwarding to `upstream`.
    pub fn start(upstream: SocketAddr) -> anyhow::Result<FaultProxy> {
        // not port 0: the proxy binds its port again after `Fault::Down`, and a port of the
        // ephemeral range may have gone to an outgoing connection by then. A port found free
        // can be taken by another process before it is bound again (seen once in CI): the
        // next one is tried.
        let mut attempts = 0;
        let listener = loop {
            attempts += 1;
            let port = crate::process::free_port()?;
            match TcpListener::bind(("127.0.0.1", port)) {
                Ok(listener) => break listener,
                Err(error) if error.kind() == std::io::ErrorKind::AddrInUse && attempts < 5 => {}
                Err(error) => return Err(error).context("binding the fault proxy"),
            }
        };
        let address = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream,
            fault: Mutex::new(Fault::Pass),
            counters: Counters::default(),
            stopping: AtomicBool::new(false),
            live: Mutex::new(Vec::new()),
            next_id: AtomicUsize::new(0),
        });
        let proxy = FaultProxy { address, shared, listener: Mutex::new(None) };
        proxy.spawn_accept(listener);
        Ok(proxy)
    }

    /// Where the gateway should connect instead of the backend.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    pub fn fault(&self) -> Fault {
        *lock(&self.shared.fault)
    }

    /// Switches the fault. Going [`Fault::Down`] closes the port and cuts every open
    /// connection; leaving it binds the same port again.
    pub fn set(&self, fault: Fault) -> anyhow::Result<()> {
        let previous = std::mem::replace(&mut *lock(&self.shared.fault), fault);
        if fault == Fault::Down && previous != Fault::Down {
            self.stop_accepting();
            for (_, stream) in lock(&self.shared.live).drain(..) {
                let _ = stream.shutdown(Shutdown::Both);
                self.shared.counters.cut.fetch_add(1, Ordering::Relaxed);
            }
        } else if fault != Fault::Down && previous == Fault::Down {
            // std sets SO_REUSEADDR, so the port is ours again at once
            let listener =
                TcpListener::bind(self.address).context("re-binding the fault proxy's port")?;
            self.shared.stopping.store(false, Ordering::SeqCst);
            self.spawn_accept(listener);
        }
        Ok(())
    }

    fn spawn_accept(&self, listener: TcpListener) {
        let shared = self.shared.clone();
        let handle = std::thread::spawn(move || accept_loop(listener, shared));
        *lock(&self.listener) = Some(handle);
    }

    fn stop_accepting(&self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // wake the blocking accept so that the loop sees the flag and drops the listener
        let _ = TcpStream::connect_timeout(&self.address, Duration::from_secs(1));
        if let Some(handle) = lock(&self.listener).take() {
            let _ = handle.join();
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if self.fault() != Fault::Down {
            self.stop_accepting();
        }
        for (_, stream) in lock(&self.shared.live).drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // a panicking pump thread must not take the whole proxy with it
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = stream else { continue };
        shared.counters.accepted.fetch_add(1, Ordering::Relaxed);
        let shared = shared.clone();
        std::thread::spawn(move || connect_and_pump(client, shared));
    }
}

fn connect_and_pump(client: TcpStream, shared: Arc<Shared>) {
    let Ok(server) = TcpStream::connect_timeout(&shared.upstream, Duration::from_secs(5)) else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let (Ok(client_side), Ok(client_out), Ok(server_out)) =
        (client.try_clone(), client.try_clone(), server.try_clone())
    else {
        return;
    };
    lock(&shared.live).push((id, client_side));
    shared.counters.open.fetch_add(1, Ordering::Relaxed);
    let upstream_shared = shared.clone();
    let data_ended = Arc::new(AtomicBool::new(false));
    let upstream_data_ended = data_ended.clone();
    let upstream = std::thread::spawn(move || {
        pump(client, server_out, &upstream_shared, Direction::ToServer(&upstream_data_ended))
    });
    pump(server, client_out, &shared, Direction::ToClient(&data_ended));
    let _ = upstream.join();
    lock(&shared.live).retain(|(live, _)| *live != id);
    shared.counters.open.fetch_sub(1, Ordering::Relaxed);
}

/// Which way a pump copies; both know whether the client has sent an SMTP message's end.
#[derive(Clone, Copy)]
enum Direction<'a> {
    ToServer(&'a AtomicBool),
    ToClient(&'a AtomicBool),
}

/// Copies `from` to `to` under the current fault until either side closes; then closes both.
fn pump(mut from: TcpStream, mut to: TcpStream, shared: &Shared, direction: Direction<'_>) {
    let client_to_server = matches!(direction, Direction::ToServer(_));
    let mut buffer = vec![0u8; 16 * 1024];
    // the last bytes sent to the server, for a message end split across chunks
    let mut tail: Vec<u8> = Vec::new();
    loop {
        let read = match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        let chunk = &buffer[..read];
        if let Direction::ToServer(data_ended) = direction {
            shared.counters.logins.fetch_add(count_logins(chunk), Ordering::Relaxed);
            tail.extend_from_slice(chunk);
            // dot-stuffing keeps this sequence out of a message: it only ever ends one
            if contains(&tail, b"\r\n.\r\n") {
                data_ended.store(true, Ordering::SeqCst);
            }
            tail.drain(..tail.len().saturating_sub(4));
        }
        match *lock(&shared.fault) {
            Fault::Pass => {}
            Fault::Delay(delay) => {
                if !client_to_server {
                    std::thread::sleep(delay);
                }
            }
            Fault::DropOnFetch => {
                if !client_to_server && contains(chunk, b" FETCH ") {
                    // pass half of it: the client sees a response that stops mid-way
                    let _ = to.write_all(&chunk[..read / 2]);
                    shared.counters.cut.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
            Fault::Blackhole => continue,
            Fault::CutAfterDataEnd => {
                if let Direction::ToClient(data_ended) = direction
                    && data_ended.load(Ordering::SeqCst)
                {
                    shared.counters.cut.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
            Fault::Down => break,
        }
        if to.write_all(chunk).is_err() {
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

/// IMAP password checks in a chunk the client sent: `tag LOGIN ...` or `tag AUTHENTICATE ...`
/// at the start of a line (the gateway sends one command per line; a password that contains
/// the word is inside a quoted string after the command, not at a line start).
fn count_logins(chunk: &[u8]) -> usize {
    chunk
        .split(|&byte| byte == b'\n')
        .filter(|line| {
            let mut words = line.split(|&byte| byte == b' ');
            let _tag = words.next();
            words.next().is_some_and(|command| {
                command.eq_ignore_ascii_case(b"LOGIN")
                    || command.eq_ignore_ascii_case(b"AUTHENTICATE")
            })
        })
        .count()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

/// What a process holds right now, read from `/proc` (Linux): the resource bounds the
/// reliability figures report.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// Open file descriptors (sockets included).
    pub fds: usize,
    /// Resident memory now and its peak (VmRSS, VmHWM), KiB.
    pub rss_kib: u64,
    pub peak_rss_kib: u64,
    /// User + system CPU time so far, ms.
    pub cpu_ms: u64,
}

impl Usage {
    pub fn of(pid: u32) -> anyhow::Result<Usage> {
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))?.count();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let kib = |key: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(key))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|value| value.parse().ok())
                .unwrap_or(0)
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        // fields after the parenthesised command name; utime and stime are the 12th and 13th
        let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let ticks = |index: usize| fields.get(index).and_then(|f| f.parse::<u64>().ok());
        // USER_HZ is 100 on every Linux this runs on
        let cpu_ms = (ticks(11).unwrap_or(0) + ticks(12).unwrap_or(0)) * 10;
        Ok(Usage { fds, rss_kib: kib("VmRSS:"), peak_rss_kib: kib("VmHWM:"), cpu_ms })
    }
}

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} fds, RSS {} MiB (peak {} MiB), CPU {} ms",
            self.fds,
            self.rss_kib / 1024,
            self.peak_rss_kib / 1024,
            self.cpu_ms
        )
    }
}

/// How many times a repeated fault scenario runs: `EAS_EDGE_RELIABILITY_RUNS` (the full form,
/// `cargo xtask reliability`, sets 50), else `short` (the CI form).
pub fn runs(short: usize) -> usize {
    std::env::var("EAS_EDGE_RELIABILITY_RUNS")
        .ok()
        .and_then(|runs| runs.parse().ok())
        .filter(|&runs| runs > 0)
        .unwrap_or(short)
}

/// Whether the full form runs (bigger loads, longer outages).
pub fn full_form() -> bool {
    std::env::var_os("EAS_EDGE_RELIABILITY_RUNS").is_some()
}

/// Prints one line of figures; `cargo xtask reliability` collects these lines into its summary.
pub fn figure(scenario: &str, result: &str) {
    eprintln!("RELIABILITY | {scenario} | {result}");
}

/// A small xorshift generator for the randomised kill points; the seed is printed so that a
/// failing run can be repeated (`EAS_EDGE_RELIABILITY_SEED`).
pub struct Rng(u64);

impl Rng {
    pub fn from_env_or_clock() -> Rng {
        let seed = std::env::var("EAS_EDGE_RELIABILITY_SEED")
            .ok()
            .and_then(|seed| seed.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            })
            | 1;
        eprintln!("reliability: random seed {seed} (EAS_EDGE_RELIABILITY_SEED to repeat)");
        Rng(seed)
    }

    /// A number in `0..bound` (bound > 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound.max(1)
    }
}

/// The gateway's admin `/metrics` (an `[admin]` listener with a bearer token, see
/// [`AdminMetrics::config`]): what the gateway itself counts (parked requests, watchers and
/// their IMAP connections, pooled sessions), to compare with what the fault proxy counted.
pub struct AdminMetrics {
    address: SocketAddr,
    token: &'static str,
}

impl AdminMetrics {
    /// A free loopback port for the admin listener.
    pub fn new() -> anyhow::Result<AdminMetrics> {
        let port = crate::process::free_port()?;
        Ok(AdminMetrics {
            address: SocketAddr::from(([127, 0, 0, 1], port)),
            token: "faults-admin",
        })
    }

    /// The `[admin]` table to put into `GatewayOptions::config_extra`.
    pub fn config(&self) -> String {
        format!("[admin]\nlisten = \"{}\"\ntoken = \"{}\"\n", self.address, self.token)
    }

    /// The value of `series` (name plus labels exactly as exposed; the sum over every
    /// tenant's labels when `series` has no labels and the family has some), 0 if absent.
    pub fn value(&self, series: &str) -> anyhow::Result<f64> {
        let url = format!("http://{}/metrics", self.address);
        let bearer = format!("Bearer {}", self.token);
        let reply = crate::http::Client::default().send(
            "GET",
            &url,
            None,
            &[("Authorization", &bearer)],
            b"",
        )?;
        anyhow::ensure!(reply.status == 200, "/metrics answered {}", reply.status);
        let text = String::from_utf8(reply.body)?;
        Ok(text
            .lines()
            .filter_map(|line| {
                let rest = line.strip_prefix(series)?;
                let rest = if series.contains('{') || !rest.starts_with('{') {
                    rest
                } else {
                    &rest[rest.find('}')? + 1..]
                };
                rest.strip_prefix(' ')?.trim().parse::<f64>().ok()
            })
            .sum())
    }
}

/// An authenticated OPTIONS to `url` sent from the local address `source` (any of 127.0.0.0/8
/// on Linux, e.g. `127.0.0.2`), through curl's `--interface`: another client address for the
/// per-address limits, without a proxy. The HTTP status; 0 when the connection was closed
/// without an answer.
pub fn options_from(source: &str, url: &str, user: &str, password: &str) -> anyhow::Result<u16> {
    let output = std::process::Command::new("curl")
        .args(["--silent", "--output", "/dev/null", "--write-out", "%{http_code}"])
        .args(["--max-time", "60", "--interface", source, "--request", "OPTIONS"])
        .args(["--user", &format!("{user}:{password}"), url])
        .output()
        .context("running curl")?;
    let code = String::from_utf8_lossy(&output.stdout);
    code.trim().parse().with_context(|| format!("curl --interface {source}: {code:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_login_commands_at_line_starts_only() {
        assert_eq!(count_logins(b"a1 LOGIN \"u\" \"p\"\r\n"), 1);
        assert_eq!(count_logins(b"a1 login u p\r\na2 AUTHENTICATE PLAIN\r\n"), 2);
        assert_eq!(count_logins(b"a1 SELECT INBOX\r\na2 LOGOUT\r\n"), 0);
        assert_eq!(count_logins(b"a3 LOGIN u \"pw LOGIN x\"\r\n"), 1);
    }

    #[test]
    fn forwards_and_goes_down_and_up() {
        let backend = TcpListener::bind("127.0.0.1:0").expect("backend");
        let backend_addr = backend.local_addr().expect("address");
        std::thread::spawn(move || {
            for stream in backend.incoming() {
                let mut stream = stream.expect("accept");
                let mut buffer = [0u8; 64];
                while let Ok(read) = stream.read(&mut buffer) {
                    if read == 0 || stream.write_all(&buffer[..read]).is_err() {
                        break;
                    }
                }
            }
        });
        let proxy = FaultProxy::start(backend_addr).expect("proxy");
        let echo = |proxy: &FaultProxy| -> std::io::Result<Vec<u8>> {
            let mut stream = TcpStream::connect(proxy.address())?;
            stream.set_read_timeout(Some(Duration::from_secs(5)))?;
            stream.write_all(b"ping")?;
            let mut answer = [0u8; 4];
            stream.read_exact(&mut answer)?;
            Ok(answer.to_vec())
        };
        assert_eq!(echo(&proxy).expect("echo"), b"ping");
        proxy.set(Fault::Down).expect("down");
        // The listener is closed when `set` returns, but a child process another test forks
        // at that moment holds a copy of it until its exec (CI saw one connect get through):
        // the port must be closed soon, not at the same instant.
        let closed = (0..50).any(|_| {
            std::thread::sleep(Duration::from_millis(20));
            TcpStream::connect(proxy.address()).is_err()
        });
        assert!(closed, "the port should be closed");
        proxy.set(Fault::Pass).expect("up");
        assert_eq!(echo(&proxy).expect("echo after restart"), b"ping");
    }

    #[test]
    fn cuts_the_reply_to_a_message_end_split_across_writes() {
        let backend = TcpListener::bind("127.0.0.1:0").expect("backend");
        let backend_addr = backend.local_addr().expect("address");
        let (received_tx, received_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let (mut stream, _) = backend.accept().expect("accept");
            let mut received = Vec::new();
            let mut buffer = [0u8; 64];
            // answers each line; reports what it got once the client's message has ended
            while let Ok(read) = stream.read(&mut buffer) {
                if read == 0 {
                    break;
                }
                received.extend_from_slice(&buffer[..read]);
                if stream.write_all(b"250 ok\r\n").is_err() {
                    break;
                }
                if received.ends_with(b"\r\n.\r\n") {
                    let _ = received_tx.send(received.clone());
                }
            }
        });
        let proxy = FaultProxy::start(backend_addr).expect("proxy");
        proxy.set(Fault::CutAfterDataEnd).expect("fault");
        let mut client = TcpStream::connect(proxy.address()).expect("connect");
        client.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        let mut reply = [0u8; 8];
        client.write_all(b"DATA\r\n").expect("write");
        client.read_exact(&mut reply).expect("the reply before the message end passes");
        client.write_all(b"Subject: x\r\n\r\n.. stuffed\r\n").expect("write");
        client.read_exact(&mut reply).expect("a stuffed dot is no message end");
        client.write_all(b".\r\n").expect("write");
        let received = received_rx.recv_timeout(Duration::from_secs(5)).expect("server got it");
        assert!(received.ends_with(b".. stuffed\r\n.\r\n"));
        let mut rest = Vec::new();
        let cut = client.read_to_end(&mut rest).map(|_| rest.is_empty()).unwrap_or(true);
        assert!(cut, "the reply to the message end reached the client: {rest:?}");
        assert_eq!(proxy.counters().cut.load(Ordering::Relaxed), 1);
    }
}
