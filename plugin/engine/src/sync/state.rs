//! What the server keeps per device and collection (device scope, key `sync/{collection}`),
//! and the encoded last answer kept for a retry (keys `sync/{collection}/last/{0,1}`).
//!
//! Stored as a format byte followed by postcard, like the folder map. An unreadable record
//! (older format, corruption) is treated as absent: the client is told its key is invalid and
//! starts the collection over, which loses nothing on the server.

use super::held::{Held, UidList};
use super::key::SyncKey;
use super::options::CollectionOptions;
use crate::mailbox::{Changes, FolderStatus, SyncPoint};
use serde::{Deserialize, Serialize};

/// Leading byte of the stored state; bump when the layout changes.
const FORMAT: u8 = 2;
/// Leading byte of the stored last answer.
const REPLAY_FORMAT: u8 = 1;

pub fn state_key(collection_id: &str) -> String {
    format!("sync/{collection_id}")
}

/// Where the answer to the key with `counter` is kept for a retry. Two slots, by the
/// counter's parity, so that a new answer never lands where the stored state's answer is
/// (that of the counter before). The answer and the key that moves on are written in one
/// transaction (`collection.rs`), so a request that loses the race for the key writes none.
pub fn replay_key(collection_id: &str, counter: u32) -> String {
    format!("sync/{collection_id}/last/{}", counter & 1)
}

/// A folder's STATUS counters as of the last answered batch: Ping compares them with a fresh
/// STATUS to decide cheaply whether the collection has changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub uid_validity: u32,
    pub uid_next: u32,
    /// 0 without CONDSTORE.
    pub highest_modseq: u64,
    pub messages: u32,
}

impl Fingerprint {
    pub fn of_changes(changes: &Changes) -> Fingerprint {
        Fingerprint {
            uid_validity: changes.uid_validity,
            uid_next: changes.uid_next,
            highest_modseq: changes.highest_modseq,
            messages: changes.messages,
        }
    }

    /// True when `status` shows any change since (new or expunged messages, flag changes
    /// where the server has CONDSTORE, a recreated folder).
    pub fn differs_from(&self, status: &FolderStatus) -> bool {
        self.uid_validity != status.uid_validity
            || self.uid_next != status.uid_next
            || self.messages != status.messages
            || self.highest_modseq != status.highest_modseq.unwrap_or(0)
    }

    /// True when `status` shows new messages (what Ping reports early, MS-ASCMD §3.1.5.8).
    pub fn has_new_messages(&self, status: &FolderStatus) -> bool {
        self.uid_validity != status.uid_validity || status.uid_next > self.uid_next
    }
}

/// When the date window was last applied to what the device holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowCheck {
    /// The day (unix days) the window started on; rechecked when it moves.
    pub start_day: i64,
}

/// The retry of the previous key: which key it answers and the stored answer's tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayRef {
    /// The counter of the key the client sent (the current counter minus one).
    pub counter: u32,
    /// Matches the tag of the stored answer (guards against a stale blob).
    pub nonce: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionState {
    /// The key the client must send next.
    pub key: SyncKeyRecord,
    pub replay: Option<ReplayRef>,
    /// The folder was listed once (at the first Sync after SyncKey 0).
    pub primed: bool,
    pub uid_validity: u32,
    /// The point to ask `changes` from; 0 = none (full listing, or no CONDSTORE).
    pub highest_modseq: u64,
    /// UIDNEXT when last reconciled: UIDs below it that the device lacks are old messages.
    pub uid_next_seen: u32,
    /// What the device holds.
    pub held: Held,
    /// UIDs still to send, ascending (the newest are sent first, from the end).
    pub pending: UidList,
    /// Held UIDs whose flags are to be sent again (a refused client change).
    pub resend: UidList,
    /// Deletes or flag changes were left for a later batch: the sync point was not advanced.
    pub deferred: bool,
    /// The full listing must be taken again (the date window was removed).
    pub relist: bool,
    pub window: Option<WindowCheck>,
    pub options: CollectionOptions,
    pub fingerprint: Option<Fingerprint>,
}

/// [`SyncKey`] in the stored form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncKeyRecord {
    pub generation: u64,
    pub counter: u32,
}

impl From<SyncKey> for SyncKeyRecord {
    fn from(key: SyncKey) -> Self {
        SyncKeyRecord { generation: key.generation, counter: key.counter }
    }
}

impl From<SyncKeyRecord> for SyncKey {
    fn from(key: SyncKeyRecord) -> Self {
        SyncKey { generation: key.generation, counter: key.counter }
    }
}

impl CollectionState {
    /// A fresh relationship (SyncKey 0): nothing held, nothing listed yet.
    pub fn new(key: SyncKey, options: CollectionOptions) -> CollectionState {
        CollectionState {
            key: key.into(),
            replay: None,
            primed: false,
            uid_validity: 0,
            highest_modseq: 0,
            uid_next_seen: 0,
            held: Held::default(),
            pending: UidList::default(),
            resend: UidList::default(),
            deferred: false,
            relist: false,
            window: None,
            options,
            fingerprint: None,
        }
    }

    pub fn current_key(&self) -> SyncKey {
        self.key.into()
    }

    /// Where `changes` should start from; `None` asks for a full listing.
    pub fn sync_point(&self) -> Option<SyncPoint> {
        (self.primed && !self.relist && self.highest_modseq > 0).then_some(SyncPoint {
            uid_validity: self.uid_validity,
            highest_modseq: self.highest_modseq,
        })
    }

    /// Whether the next Sync has something to send without asking the mailbox.
    pub fn has_queued_work(&self) -> bool {
        !self.primed || self.deferred || !self.pending.0.is_empty() || !self.resend.0.is_empty()
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = vec![FORMAT];
        // Serialising owned data into a Vec cannot fail.
        bytes.extend(postcard::to_allocvec(self).unwrap_or_default());
        bytes
    }

    pub fn decode(bytes: &[u8]) -> Option<CollectionState> {
        let (&format, rest) = bytes.split_first()?;
        if format != FORMAT {
            return None;
        }
        postcard::from_bytes(rest).ok()
    }
}

/// The stored last answer: tag and the encoded airsync:Collection document.
pub fn encode_replay(nonce: u64, collection: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(collection.len() + 9);
    bytes.push(REPLAY_FORMAT);
    bytes.extend_from_slice(&nonce.to_le_bytes());
    bytes.extend_from_slice(collection);
    bytes
}

/// The encoded collection if the blob carries `nonce`.
pub fn decode_replay(bytes: &[u8], nonce: u64) -> Option<&[u8]> {
    let (&format, rest) = bytes.split_first()?;
    if format != REPLAY_FORMAT || rest.len() < 8 {
        return None;
    }
    let (tag, collection) = rest.split_at(8);
    (u64::from_le_bytes(tag.try_into().ok()?) == nonce).then_some(collection)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_rejects_other_formats() {
        let mut state = CollectionState::new(
            SyncKey { generation: 0xABCD, counter: 7 },
            CollectionOptions { filter_type: Some(3), ..Default::default() },
        );
        state.held.set_all([(1, 5), (9, 6)]);
        state.pending = UidList(vec![10, 11, 12]);
        state.fingerprint =
            Some(Fingerprint { uid_validity: 1, uid_next: 13, highest_modseq: 99, messages: 5 });
        let bytes = state.encode();
        assert_eq!(CollectionState::decode(&bytes), Some(state));
        assert_eq!(CollectionState::decode(&[]), None);
        let mut other = bytes.clone();
        other[0] = 9;
        assert_eq!(CollectionState::decode(&other), None);
        assert_eq!(CollectionState::decode(&bytes[..bytes.len() - 1]), None);
    }

    #[test]
    fn a_hundred_thousand_messages_fit_a_state_value() {
        let mut state =
            CollectionState::new(SyncKey { generation: 1, counter: 1 }, Default::default());
        // Real UIDs have gaps; flags come in a handful of combinations.
        state.held.set_all((0..100_000u32).map(|i| (i * 3 + 1, [11, 22, 33, 44][i as usize % 4])));
        state.pending = UidList((0..100_000u32).map(|i| 400_000 + i * 2).collect());
        let bytes = state.encode();
        assert!(bytes.len() < 512 * 1024, "{} bytes", bytes.len());
        assert_eq!(CollectionState::decode(&bytes), Some(state));
    }

    #[test]
    fn replay_blobs_carry_their_tag() {
        let blob = encode_replay(42, b"doc");
        assert_eq!(decode_replay(&blob, 42), Some(&b"doc"[..]));
        assert_eq!(decode_replay(&blob, 41), None);
        assert_eq!(decode_replay(&blob[..5], 42), None);
    }

    #[test]
    fn fingerprints_compare_with_status() {
        let fingerprint =
            Fingerprint { uid_validity: 1, uid_next: 10, highest_modseq: 0, messages: 3 };
        let mut status = FolderStatus {
            uid_validity: 1,
            uid_next: 10,
            highest_modseq: None,
            messages: 3,
            unseen: 1,
        };
        assert!(!fingerprint.differs_from(&status));
        status.uid_next = 11;
        assert!(fingerprint.differs_from(&status) && fingerprint.has_new_messages(&status));
        status.uid_next = 10;
        status.messages = 2;
        assert!(fingerprint.differs_from(&status) && !fingerprint.has_new_messages(&status));
    }
}
