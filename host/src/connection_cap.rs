//! At most so many open connections per client address on the phone listeners: one client
//! opening thousands of connections (a broken phone in a loop, or an attack) must not use up
//! the process's file descriptors and memory while everyone else waits.
//!
//! A connection over the cap is closed as soon as it is accepted, before any byte is read;
//! that is logged at most once per [`LOG_EVERY`] (with how many were refused since) and
//! counted in `eas_edge_connections_refused_total`. IPv6 clients are counted per /64, like
//! the login throttle, since one subscriber usually holds the whole block.

use crate::auth::throttle::address_key;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How often a refusal may be logged: a flood must not become a flood of log lines.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// `[connections]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectionSettings {
    /// Open connections one client address may hold on the phone listeners together; 0: no
    /// cap. Not applied when `[login_throttle] trust_forwarded_for` says a proxy is in front
    /// (every connection then comes from the proxy; cap per client in the proxy).
    pub max_per_address: usize,
}

impl Default for ConnectionSettings {
    fn default() -> Self {
        // A phone holds one or two connections (a parked Ping and a Sync); a carrier-grade
        // NAT or a company's Wi-Fi puts hundreds of phones behind one address. 2,000 idle
        // connections cost about 5 MiB and 2,000 descriptors: bounded, and far from the
        // tens of thousands a flood would open.
        ConnectionSettings { max_per_address: 2000 }
    }
}

pub struct ConnectionCap {
    max: usize,
    inner: Mutex<Inner>,
}

struct Inner {
    open: HashMap<IpAddr, usize>,
    /// Refusals not logged yet, and when the last line was logged.
    unlogged: u64,
    logged: Option<Instant>,
}

/// An admitted connection's place under the cap, given back when dropped.
pub struct Slot {
    cap: Arc<ConnectionCap>,
    key: IpAddr,
}

impl ConnectionCap {
    /// `max` open connections per address; 0: no cap.
    pub fn new(max: usize) -> Arc<ConnectionCap> {
        Arc::new(ConnectionCap {
            max,
            inner: Mutex::new(Inner { open: HashMap::new(), unlogged: 0, logged: None }),
        })
    }

    /// A slot for a new connection from `peer`, or `None` when the address holds `max`
    /// connections already (the caller closes the connection).
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Option<Slot> {
        if self.max == 0 {
            return Some(Slot { cap: self.clone(), key: peer });
        }
        let key = address_key(peer);
        let mut inner = self.inner();
        let open = inner.open.entry(key).or_default();
        if *open < self.max {
            *open += 1;
            return Some(Slot { cap: self.clone(), key });
        }
        inner.unlogged += 1;
        let now = Instant::now();
        if inner.logged.is_none_or(|logged| now.duration_since(logged) >= LOG_EVERY) {
            tracing::warn!(
                client = %key,
                max = self.max,
                refused = inner.unlogged,
                "too many connections from one address: closed at once \
                 (refused this many since the last such line; [connections] max_per_address)"
            );
            inner.unlogged = 0;
            inner.logged = Some(now);
        }
        drop(inner);
        crate::admin::metrics::global().connection_refused();
        None
    }

    /// Open connections of `peer`'s address (for tests and the admin view).
    pub fn open(&self, peer: IpAddr) -> usize {
        self.inner().open.get(&address_key(peer)).copied().unwrap_or(0)
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        // only counting happens under the lock: a panic there leaves usable numbers
        crate::unpoisoned::lock(&self.inner)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.cap.max == 0 {
            return;
        }
        let mut inner = self.cap.inner();
        if let Some(open) = inner.open.get_mut(&self.key) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                inner.open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_up_to_the_cap_per_address_and_frees_on_drop() {
        let cap = ConnectionCap::new(2);
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "192.0.2.2".parse().expect("ip");
        let first = cap.admit(a).expect("first");
        let second = cap.admit(a).expect("second");
        assert!(cap.admit(a).is_none(), "third from the same address");
        assert!(cap.admit(b).is_some(), "another address");
        drop(first);
        assert!(cap.admit(a).is_some(), "a slot came back");
        drop(second);
        assert_eq!(cap.open(a), 0);
        assert!(cap.inner().open.is_empty(), "no entry left behind");
    }

    #[test]
    fn ipv6_is_counted_per_64_and_zero_means_no_cap() {
        let cap = ConnectionCap::new(1);
        let one: IpAddr = "2001:db8:1:2::1".parse().expect("ip");
        let same_64: IpAddr = "2001:db8:1:2::2".parse().expect("ip");
        let _held = cap.admit(one).expect("first");
        assert!(cap.admit(same_64).is_none());
        let off = ConnectionCap::new(0);
        let held: Vec<Slot> = (0..100).filter_map(|_| off.admit(one)).collect();
        assert_eq!(held.len(), 100);
    }
}
