//! When each device was last seen, and doing what: kept in memory for `eas-edge top` and the
//! device API, and written to the device's state scope (key [`LAST_SEEN_KEY`]) at most every
//! [`PERSIST_EVERY`] per device, so that `eas-edge devices list` shows it with the server
//! stopped too, without a store write per request.

use crate::state::{Namespace, StateStore};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The host's key in a device's scope (the engine's keys have no `/host` prefix).
pub const LAST_SEEN_KEY: &str = "host/last-seen";

/// How stale the stored last-seen time may get (the in-memory one is exact).
const PERSIST_EVERY: Duration = Duration::from_secs(300);

/// Devices remembered in memory; beyond this the ones not seen for a day are forgotten (the
/// stored record stays).
const MAX_REMEMBERED: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DeviceKey {
    pub tenant: String,
    pub user: String,
    pub device: String,
}

/// The last request of a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastSeen {
    /// Seconds since the Unix epoch.
    pub at: u64,
    pub command: String,
    /// `DeviceType` from the request line (e.g. `iPhone`).
    pub device_type: String,
    pub status: u16,
}

impl LastSeen {
    /// `v1 at=<unix seconds> type=<DeviceType> command=<Cmd> status=<HTTP status>`; the
    /// device type is percent-encoded where it is not plain text.
    pub fn encode(&self) -> Vec<u8> {
        format!(
            "v1 at={} type={} command={} status={}",
            self.at,
            escape(&self.device_type),
            escape(&self.command),
            self.status
        )
        .into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Option<LastSeen> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut fields = text.split(' ');
        if fields.next()? != "v1" {
            return None;
        }
        let mut seen =
            LastSeen { at: 0, command: String::new(), device_type: String::new(), status: 0 };
        for field in fields {
            match field.split_once('=')? {
                ("at", value) => seen.at = value.parse().ok()?,
                ("type", value) => seen.device_type = unescape(value)?,
                ("command", value) => seen.command = unescape(value)?,
                ("status", value) => seen.status = value.parse().ok()?,
                _ => {}
            }
        }
        Some(seen)
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_graphic() && byte != b'%' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn unescape(text: &str) -> Option<String> {
    super::percent_decode(text)
}

struct Entry {
    seen: LastSeen,
    /// When the stored record was last written by this process.
    persisted: Option<u64>,
}

fn table() -> MutexGuard<'static, HashMap<DeviceKey, Entry>> {
    static TABLE: LazyLock<Mutex<HashMap<DeviceKey, Entry>>> = LazyLock::new(Default::default);
    // no code panics while holding the lock; if one did, the map is still consistent
    crate::unpoisoned::lock(&TABLE)
}

pub fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs())
}

/// Notes a device's request; writes the record in the background when the stored one is
/// older than [`PERSIST_EVERY`] (or was never written by this process).
pub fn record(store: &Arc<dyn StateStore>, key: DeviceKey, seen: LastSeen) {
    let persist = {
        let mut table = table();
        if table.len() >= MAX_REMEMBERED {
            let day_ago = seen.at.saturating_sub(86_400);
            table.retain(|_, entry| entry.seen.at > day_ago);
        }
        let at = seen.at;
        let entry =
            table.entry(key.clone()).or_insert(Entry { seen: seen.clone(), persisted: None });
        entry.seen = seen.clone();
        let due =
            entry.persisted.is_none_or(|then| at.saturating_sub(then) >= PERSIST_EVERY.as_secs());
        if due {
            entry.persisted = Some(at);
        }
        due
    };
    if persist {
        let store = store.clone();
        tokio::spawn(async move {
            let ns = Namespace::device(key.tenant, key.user, key.device);
            if let Err(error) = store.put(&ns, LAST_SEEN_KEY, seen.encode()).await {
                tracing::warn!("storing when a device was last seen: {error}");
            }
        });
    }
}

/// What this process saw of a device since it started.
pub fn seen(key: &DeviceKey) -> Option<LastSeen> {
    table().get(key).map(|entry| entry.seen.clone())
}

/// Devices seen in the last `within`, most recent first.
pub fn recent(within: Duration) -> Vec<(DeviceKey, LastSeen)> {
    let since = now_unix().saturating_sub(within.as_secs());
    let mut devices: Vec<_> = table()
        .iter()
        .filter(|(_, entry)| entry.seen.at >= since)
        .map(|(key, entry)| (key.clone(), entry.seen.clone()))
        .collect();
    devices.sort_by(|a, b| b.1.at.cmp(&a.1.at).then_with(|| a.0.cmp(&b.0)));
    devices
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_with_odd_device_types() {
        let seen = LastSeen {
            at: 1_800_000_000,
            command: "Ping".into(),
            device_type: "Odd Type=%é".into(),
            status: 200,
        };
        assert_eq!(LastSeen::decode(&seen.encode()), Some(seen));
        assert_eq!(LastSeen::decode(b"v2 at=1"), None);
    }
}
