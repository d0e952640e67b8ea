//! Pings written straight onto sockets, so that one thread can hold thousands of them parked
//! (a blocking client would need a thread per parked Ping).

use std::io::{ErrorKind, Write};
use std::net::{SocketAddr, TcpStream};

use anyhow::{Context, Result};
use base64::Engine as _;
use eas_wbxml::tags::ping;
use eas_wbxml::{Document, Element};

use crate::eas::{Device, Version};

/// The WBXML body of a Ping for `folders` (ServerIds of Email folders).
pub fn ping_body(heartbeat_seconds: u32, folders: &[&str]) -> Result<Vec<u8>> {
    let mut list = Element::new(ping::FOLDERS);
    for id in folders {
        list.push(
            Element::new(ping::FOLDER).text_child(ping::ID, *id).text_child(ping::CLASS, "Email"),
        );
    }
    let root = Element::new(ping::PING)
        .text_child(ping::HEARTBEAT_INTERVAL, heartbeat_seconds.to_string())
        .with_child(list);
    eas_wbxml::encode(&Document::new(root)).context("encoding a Ping")
}

/// A complete HTTP/1.1 request: the Ping of `device_id` (EAS 16.1, as an iPhone sends it).
pub fn ping_request(
    gateway: SocketAddr,
    user: &str,
    password: &str,
    device_id: &str,
    body: &[u8],
) -> Vec<u8> {
    let url = Device::new(
        &format!("http://{gateway}/Microsoft-Server-ActiveSync"),
        user,
        password,
        device_id,
        Version::V16_1,
    )
    .command_url("Ping");
    let target = url.strip_prefix(&format!("http://{gateway}")).unwrap_or(&url);
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let mut request = format!(
        "POST {target} HTTP/1.1\r\nHost: {gateway}\r\nAuthorization: Basic {token}\r\n\
         MS-ASProtocolVersion: 16.1\r\nUser-Agent: eas-edge-bench/1\r\n\
         Content-Type: application/vnd.ms-sync.wbxml\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

/// An authenticated `OPTIONS` (answered at once, the connection then stays open idle): what a
/// kept-alive phone connection costs the gateway without any parked request.
pub fn options_request(gateway: SocketAddr, user: &str, password: &str) -> Vec<u8> {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!(
        "OPTIONS /Microsoft-Server-ActiveSync HTTP/1.1\r\nHost: {gateway}\r\n\
         Authorization: Basic {token}\r\nUser-Agent: eas-edge-bench/1\r\n\r\n"
    )
    .into_bytes()
}

/// Where a held Ping stands, seen from the phone's side of the socket.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct HeldState {
    /// Nothing received: still parked.
    pub waiting: usize,
    /// Some answer arrived.
    pub answered: usize,
    /// The gateway closed the connection.
    pub closed: usize,
}

/// Many Pings, each on its own connection, none of them read until [`check`](Self::check).
#[derive(Default)]
pub struct HeldPings {
    streams: Vec<TcpStream>,
    /// The first bytes of the first answer seen, for the report.
    pub sample_answer: Option<String>,
}

impl HeldPings {
    /// Opens a connection and writes `request` on it.
    pub fn send(&mut self, gateway: SocketAddr, request: &[u8]) -> Result<()> {
        let mut stream =
            TcpStream::connect(gateway).with_context(|| format!("connecting to {gateway}"))?;
        stream.set_nodelay(true)?;
        stream.write_all(request).context("writing a Ping")?;
        self.streams.push(stream);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.streams.len()
    }

    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    /// Looks at every connection without blocking.
    pub fn check(&mut self) -> Result<HeldState> {
        let mut state = HeldState::default();
        let mut buffer = [0u8; 512];
        for stream in &mut self.streams {
            stream.set_nonblocking(true)?;
            let seen = stream.peek(&mut buffer);
            stream.set_nonblocking(false)?;
            match seen {
                Ok(0) => state.closed += 1,
                Ok(n) => {
                    state.answered += 1;
                    if self.sample_answer.is_none() {
                        self.sample_answer = Some(describe_answer(&buffer[..n]));
                    }
                }
                Err(error) if error.kind() == ErrorKind::WouldBlock => state.waiting += 1,
                Err(_) => state.closed += 1,
            }
        }
        Ok(state)
    }

    /// How many connections got each kind of answer ("HTTP/1.1 200 OK, Ping Status 2"), and
    /// how many have none yet (under "waiting").
    pub fn answer_counts(&mut self) -> Result<std::collections::BTreeMap<String, usize>> {
        let mut counts = std::collections::BTreeMap::new();
        let mut buffer = [0u8; 512];
        for stream in &mut self.streams {
            stream.set_nonblocking(true)?;
            let seen = stream.peek(&mut buffer);
            stream.set_nonblocking(false)?;
            let kind = match seen {
                Ok(0) => "closed".to_owned(),
                Ok(n) => describe_answer(&buffer[..n]),
                Err(error) if error.kind() == ErrorKind::WouldBlock => "waiting".to_owned(),
                Err(_) => "closed".to_owned(),
            };
            *counts.entry(kind).or_insert(0) += 1;
        }
        Ok(counts)
    }

    /// Closes every connection (the phones went away); the gateway must free their records.
    pub fn close_all(&mut self) {
        for stream in self.streams.drain(..) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// "HTTP/1.1 200 OK, Ping Status 2" from the first bytes of an answer.
fn describe_answer(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let status_line = text.lines().next().unwrap_or_default().to_owned();
    let Some(start) = bytes.windows(4).position(|w| w == b"\r\n\r\n").map(|end| end + 4) else {
        return status_line;
    };
    match eas_wbxml::decode(&bytes[start..], &eas_wbxml::Limits::default()) {
        Ok(document) => format!(
            "{status_line}, Ping Status {}",
            document.root.text_of(ping::STATUS).unwrap_or("?")
        ),
        Err(_) => format!("{status_line}, {} body bytes", bytes.len() - start),
    }
}
