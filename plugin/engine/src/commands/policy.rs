//! A device's provisioning record: its policy keys and any pending wipe ([MS-ASPROV]).
//!
//! Stored in the device's state scope as one short text line, so it stays readable with the
//! admin tools: `v1 temporary=<key|-> permanent=<key|-> wipe=<none|full|account>`, then
//! ` wiped=<status>` once the device acknowledged a wipe and ` blocked=yes` for a device an
//! administrator blocked. The two optional fields are written only when set, so the record of
//! an ordinary device is the same line older engines wrote and read.
//!
//! The host's admin commands (`eas-edge devices`) read and write this record through
//! [`crate::device_records`]; keep both in this one place.

use crate::capabilities::{Capabilities, StateResult, StateScope};

/// State key of the record inside the device scope.
pub const KEY: &str = "provisioning";

/// A remote wipe an administrator asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wipe {
    None,
    /// Wipe the whole device (MS-ASPROV RemoteWipe).
    Full,
    /// 16.1: remove only this account's data (AccountOnlyRemoteWipe).
    AccountOnly,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRecord {
    /// Issued by phase 1, valid only for the acknowledgement.
    pub temporary: Option<u32>,
    /// Issued by phase 2; every later request must carry it.
    pub permanent: Option<u32>,
    pub wipe: Wipe,
    /// The `Status` of the device's wipe acknowledgement (1 wiped, 2 failed), kept for the
    /// administrator; the wipe itself stays pending, as on Exchange, until an administrator
    /// removes it.
    pub wiped: Option<u8>,
    /// Blocked by an administrator: every command is refused with 129 (MS-ASCMD §2.2.2).
    pub blocked: bool,
}

impl PolicyRecord {
    pub const EMPTY: PolicyRecord = PolicyRecord {
        temporary: None,
        permanent: None,
        wipe: Wipe::None,
        wiped: None,
        blocked: false,
    };

    pub fn encode(&self) -> Vec<u8> {
        let key = |k: Option<u32>| k.map_or_else(|| "-".to_owned(), |k| k.to_string());
        let wipe = match self.wipe {
            Wipe::None => "none",
            Wipe::Full => "full",
            Wipe::AccountOnly => "account",
        };
        let mut line = format!(
            "v1 temporary={} permanent={} wipe={wipe}",
            key(self.temporary),
            key(self.permanent)
        );
        if let Some(status) = self.wiped {
            line.push_str(&format!(" wiped={status}"));
        }
        if self.blocked {
            line.push_str(" blocked=yes");
        }
        line.into_bytes()
    }

    /// `None` for anything unreadable: the device then simply provisions again.
    pub fn decode(bytes: &[u8]) -> Option<PolicyRecord> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut fields = text.split(' ');
        if fields.next()? != "v1" {
            return None;
        }
        let mut record = PolicyRecord::EMPTY;
        for field in fields {
            let (name, value) = field.split_once('=')?;
            let key = || if value == "-" { Some(None) } else { value.parse().ok().map(Some) };
            match name {
                "temporary" => record.temporary = key()?,
                "permanent" => record.permanent = key()?,
                "wipe" => {
                    record.wipe = match value {
                        "none" => Wipe::None,
                        "full" => Wipe::Full,
                        "account" => Wipe::AccountOnly,
                        _ => return None,
                    }
                }
                "wiped" => record.wiped = Some(value.parse().ok()?),
                "blocked" => {
                    record.blocked = match value {
                        "yes" => true,
                        "no" => false,
                        _ => return None,
                    }
                }
                _ => return None,
            }
        }
        Some(record)
    }
}

/// The stored record and its raw bytes (for compare-and-swap).
pub struct Stored {
    pub record: PolicyRecord,
    pub raw: Option<Vec<u8>>,
}

pub async fn load(caps: &impl Capabilities, device: &str) -> StateResult<Stored> {
    let raw = caps.state_get(&StateScope::Device(device.to_owned()), KEY).await?;
    let record = raw.as_deref().and_then(PolicyRecord::decode).unwrap_or(PolicyRecord::EMPTY);
    Ok(Stored { record, raw })
}

/// Replaces the record if nobody changed it since `stored` was loaded.
pub async fn replace(
    caps: &impl Capabilities,
    device: &str,
    stored: &Stored,
    record: &PolicyRecord,
) -> StateResult<bool> {
    let scope = StateScope::Device(device.to_owned());
    caps.state_compare_and_swap(&scope, KEY, stored.raw.clone(), Some(record.encode())).await
}

/// A new policy key: a non-zero random u32 (MS-ASPROV §2.2.2.42; 0 means "none"), or `None`
/// without a source of randomness.
pub fn new_key(caps: &impl Capabilities) -> Option<u32> {
    loop {
        let key = (caps.random_u64()? >> 32) as u32;
        if key != 0 {
            return Some(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        for record in [
            PolicyRecord::EMPTY,
            PolicyRecord { temporary: Some(7), ..PolicyRecord::EMPTY },
            PolicyRecord {
                permanent: Some(u32::MAX),
                wipe: Wipe::AccountOnly,
                ..PolicyRecord::EMPTY
            },
            PolicyRecord {
                temporary: Some(1),
                permanent: Some(2),
                wipe: Wipe::Full,
                wiped: Some(1),
                blocked: true,
            },
        ] {
            assert_eq!(PolicyRecord::decode(&record.encode()), Some(record));
        }
    }

    #[test]
    fn an_ordinary_record_is_the_line_older_engines_wrote() {
        let record = PolicyRecord { permanent: Some(5), ..PolicyRecord::EMPTY };
        assert_eq!(record.encode(), b"v1 temporary=- permanent=5 wipe=none");
    }

    #[test]
    fn garbage_reads_as_absent() {
        for bad in [
            &b""[..],
            b"v2 temporary=-",
            b"v1 temporary=x",
            b"v1 wipe=maybe",
            b"v1 blocked=1",
            b"v1 wiped=x",
            b"\xff",
        ] {
            assert_eq!(PolicyRecord::decode(bad), None, "{bad:?}");
        }
    }
}
