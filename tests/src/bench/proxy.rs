//! A TCP proxy between the gateway and Dovecot that counts the IMAP commands and connections
//! the gateway opens: exact, independent of Dovecot's logging, and able to tell a watcher's
//! connection (one that sent NOTIFY or IDLE) from the request pool's.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Instant;

use anyhow::{Context, Result};

/// One proxied connection.
#[derive(Debug, Clone)]
pub struct ConnectionLog {
    pub opened: Instant,
    pub closed: Option<Instant>,
    /// (when, command name in upper case, `DONE` for the end of an IDLE).
    pub commands: Vec<(Instant, String)>,
}

impl ConnectionLog {
    /// Sent NOTIFY or IDLE at some point: a push watcher (or one of its IDLE helpers).
    pub fn is_watcher(&self) -> bool {
        self.commands.iter().any(|(_, name)| name == "NOTIFY" || name == "IDLE")
    }

    fn open_at(&self, at: Instant) -> bool {
        self.opened <= at && self.closed.is_none_or(|closed| closed > at)
    }
}

/// What happened between two instants.
#[derive(Debug, Default)]
pub struct Window {
    /// Commands by connection kind ("watcher", "pool") and name.
    pub commands: BTreeMap<(&'static str, String), usize>,
    pub opened: usize,
    pub closed: usize,
    /// Connections open at the start and at the end, by kind.
    pub open_at_start: BTreeMap<&'static str, usize>,
    pub open_at_end: BTreeMap<&'static str, usize>,
}

impl Window {
    pub fn total_commands(&self) -> usize {
        self.commands.values().sum()
    }
}

/// The proxy: listens on a free loopback port, forwards to `upstream`.
pub struct CountingProxy {
    pub address: SocketAddr,
    log: Arc<Mutex<Vec<ConnectionLog>>>,
}

impl CountingProxy {
    pub fn start(upstream: SocketAddr) -> Result<CountingProxy> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).context("binding the IMAP proxy")?;
        let address = listener.local_addr()?;
        let log: Arc<Mutex<Vec<ConnectionLog>>> = Arc::default();
        let shared = log.clone();
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let log = shared.clone();
                thread::spawn(move || {
                    if let Err(error) = relay(client, upstream, &log) {
                        eprintln!("imap proxy: {error:#}");
                    }
                });
            }
        });
        Ok(CountingProxy { address, log })
    }

    /// Counts over `[from, to)`.
    pub fn window(&self, from: Instant, to: Instant) -> Window {
        let log = self.log.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut window = Window::default();
        for connection in log.iter() {
            let kind = if connection.is_watcher() { "watcher" } else { "pool" };
            if connection.open_at(from) {
                *window.open_at_start.entry(kind).or_default() += 1;
            }
            if connection.open_at(to) {
                *window.open_at_end.entry(kind).or_default() += 1;
            }
            if (from..to).contains(&connection.opened) {
                window.opened += 1;
            }
            if connection.closed.is_some_and(|closed| (from..to).contains(&closed)) {
                window.closed += 1;
            }
            for (at, name) in &connection.commands {
                if (from..to).contains(at) {
                    *window.commands.entry((kind, name.clone())).or_default() += 1;
                }
            }
        }
        window
    }

    /// All connections ever opened.
    pub fn connections(&self) -> usize {
        self.log.lock().map(|log| log.len()).unwrap_or_default()
    }
}

fn relay(client: TcpStream, upstream: SocketAddr, log: &Mutex<Vec<ConnectionLog>>) -> Result<()> {
    let server = TcpStream::connect(upstream).context("connecting to Dovecot")?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    let index = {
        let mut log = log.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        log.push(ConnectionLog { opened: Instant::now(), closed: None, commands: Vec::new() });
        log.len() - 1
    };
    // server → client: copied as is, on its own thread
    let (mut from_server, mut to_client) = (server.try_clone()?, client.try_clone()?);
    let downstream = thread::spawn(move || {
        let _ = std::io::copy(&mut from_server, &mut to_client);
        let _ = to_client.shutdown(Shutdown::Write);
    });
    // client → server: copied and parsed into commands
    let (mut from_client, mut to_server) = (client, server);
    let mut parser = CommandParser::default();
    let mut buffer = [0u8; 16 * 1024];
    loop {
        let n = match from_client.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let names = parser.feed(&buffer[..n]);
        if !names.is_empty() {
            let now = Instant::now();
            let mut log = log.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            log[index].commands.extend(names.into_iter().map(|name| (now, name)));
        }
        if to_server.write_all(&buffer[..n]).is_err() {
            break;
        }
    }
    let _ = to_server.shutdown(Shutdown::Write);
    let _ = downstream.join();
    log.lock().unwrap_or_else(|poisoned| poisoned.into_inner())[index].closed =
        Some(Instant::now());
    Ok(())
}

/// Splits a client's byte stream into IMAP commands (RFC 9051 §2.2.1): lines, skipping
/// literals (`{n}` / `{n+}` at a line end announce n raw bytes that continue the command).
#[derive(Default)]
struct CommandParser {
    pending: Vec<u8>,
    literal_left: usize,
    /// The next line continues a command after a literal.
    continuing: bool,
}

impl CommandParser {
    /// The names of the commands that start in `bytes`.
    fn feed(&mut self, mut bytes: &[u8]) -> Vec<String> {
        let mut names = Vec::new();
        loop {
            if self.literal_left > 0 {
                let skip = self.literal_left.min(bytes.len());
                self.literal_left -= skip;
                bytes = &bytes[skip..];
                if self.literal_left > 0 {
                    return names;
                }
            }
            let Some(end) = bytes.iter().position(|&b| b == b'\n') else {
                self.pending.extend_from_slice(bytes);
                return names;
            };
            self.pending.extend_from_slice(&bytes[..end]);
            bytes = &bytes[end + 1..];
            let line = String::from_utf8_lossy(&self.pending).trim_end_matches('\r').to_owned();
            self.pending.clear();
            if !self.continuing {
                let mut words = line.split_whitespace();
                let first = words.next().unwrap_or_default();
                let name = if first.eq_ignore_ascii_case("DONE") {
                    "DONE".to_owned()
                } else {
                    words.next().unwrap_or("?").to_ascii_uppercase()
                };
                // UID FETCH, UID STORE …: the second word says what it does
                let name = if name == "UID" {
                    format!("UID {}", words.next().unwrap_or("?").to_ascii_uppercase())
                } else {
                    name
                };
                names.push(name);
            }
            match literal_length(&line) {
                Some(length) => {
                    self.literal_left = length;
                    self.continuing = true;
                }
                None => self.continuing = false,
            }
        }
    }
}

/// `{n}` or `{n+}` at the end of a line.
fn literal_length(line: &str) -> Option<usize> {
    let inner = line.strip_suffix('}')?;
    let open = inner.rfind('{')?;
    inner[open + 1..].trim_end_matches('+').parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_counted_once_across_literals_and_reads() {
        let mut parser = CommandParser::default();
        let mut names = parser.feed(b"a1 LOGIN \"user\" {9}\r\n");
        names.extend(parser.feed(b"pass\r\nwor"));
        names.extend(parser.feed(b"d\r\na2 NOTIFY SET (selected (MessageNew))\r\na3 IDLE\r\n"));
        names.extend(parser.feed(b"DONE\r\na4 uid fetch 1:* (FLAGS)\r\n"));
        assert_eq!(names, ["LOGIN", "NOTIFY", "IDLE", "DONE", "UID FETCH"]);
    }
}
