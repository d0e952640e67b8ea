//! Items the device moved itself (MoveItems): its collection states learn the move, so the
//! device is not sent a Delete in the source for what it already moved, nor an Add in the
//! destination for what it already knows under the new ServerId (DstMsgId).
//!
//! The device's last moves are also kept by source item ([`recent_move`]): when the answer to
//! a MoveItems is lost after the move was recorded (a crash, a dropped connection), the
//! phone's retry finds the source item gone; it is answered from this record with the same
//! DstMsgId, since the destination will never send the item as an Add.

use super::client::forget;
use super::held::UidList;
use super::state::{CollectionState, state_key};
use crate::capabilities::{Capabilities, StateError, StateScope};
use serde::{Deserialize, Serialize};

/// State key of the recent moves, in the device's scope.
const RECENT_KEY: &str = "moves/recent";
/// Leading byte of the stored form; bump when the layout changes.
const RECENT_FORMAT: u8 = 1;
/// Moves remembered per device: a retry comes within minutes, and a phone moves a few
/// hundred messages at most in one go.
const RECENT_CAPACITY: usize = 1000;

/// A recorded move, by source item, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct RecentMove {
    source: String,
    source_uid: u32,
    destination: String,
    destination_uid: Option<u32>,
}

/// One move as the device will see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    pub source: String,
    pub source_uid: u32,
    pub destination: String,
    /// `None` when the new UID is unknown: the destination's Sync then adds the item.
    pub destination_uid: Option<u32>,
    /// Hash of the flags the message was moved with.
    pub flags_hash: u32,
}

/// Records `moves` in `device`'s collection states (only collections it syncs).
pub async fn record_moves<C: Capabilities>(
    caps: &C,
    device: &str,
    moves: &[Moved],
) -> Result<(), StateError> {
    let scope = StateScope::Device(device.to_owned());
    let mut collections: Vec<&str> =
        moves.iter().flat_map(|m| [m.source.as_str(), m.destination.as_str()]).collect();
    collections.sort_unstable();
    collections.dedup();
    for collection in collections {
        let key = state_key(collection);
        for attempt in 0.. {
            let raw = caps.state_get(&scope, &key).await?;
            let Some(mut state) = raw.as_deref().and_then(CollectionState::decode) else { break };
            apply(&mut state, collection, moves);
            if caps.state_compare_and_swap(&scope, &key, raw, Some(state.encode())).await? {
                break;
            }
            if attempt >= 4 {
                return Err(StateError::Unavailable(format!("{key} kept changing")));
            }
        }
    }
    remember_recent(caps, &scope, moves).await
}

/// Where the device's earlier move of `source_uid` out of collection `source` went: the
/// destination collection and the new UID (when known).
pub async fn recent_move<C: Capabilities>(
    caps: &C,
    device: &str,
    source: &str,
    source_uid: u32,
) -> Result<Option<(String, Option<u32>)>, StateError> {
    let scope = StateScope::Device(device.to_owned());
    let raw = caps.state_get(&scope, RECENT_KEY).await?;
    Ok(decode_recent(raw.as_deref())
        .into_iter()
        .rev()
        .find(|m| m.source == source && m.source_uid == source_uid)
        .map(|m| (m.destination, m.destination_uid)))
}

async fn remember_recent<C: Capabilities>(
    caps: &C,
    scope: &StateScope,
    moves: &[Moved],
) -> Result<(), StateError> {
    for attempt in 0.. {
        let raw = caps.state_get(scope, RECENT_KEY).await?;
        let mut recent = decode_recent(raw.as_deref());
        recent.extend(moves.iter().map(|m| RecentMove {
            source: m.source.clone(),
            source_uid: m.source_uid,
            destination: m.destination.clone(),
            destination_uid: m.destination_uid,
        }));
        let excess = recent.len().saturating_sub(RECENT_CAPACITY);
        recent.drain(..excess);
        let Ok(body) = postcard::to_allocvec(&recent) else {
            return Err(StateError::TooLarge("recent moves".into()));
        };
        let mut encoded = Vec::with_capacity(body.len() + 1);
        encoded.push(RECENT_FORMAT);
        encoded.extend_from_slice(&body);
        if caps.state_compare_and_swap(scope, RECENT_KEY, raw, Some(encoded)).await? {
            return Ok(());
        }
        if attempt >= 4 {
            return Err(StateError::Unavailable(format!("{RECENT_KEY} kept changing")));
        }
    }
    Ok(())
}

/// The stored list; empty when absent or of another format (it is only a retry aid).
fn decode_recent(raw: Option<&[u8]>) -> Vec<RecentMove> {
    match raw {
        Some([RECENT_FORMAT, body @ ..]) => postcard::from_bytes(body).unwrap_or_default(),
        _ => Vec::new(),
    }
}

fn apply(state: &mut CollectionState, collection: &str, moves: &[Moved]) {
    let gone: Vec<u32> =
        moves.iter().filter(|m| m.source == collection).map(|m| m.source_uid).collect();
    forget(state, &gone);
    if !state.primed {
        // Not listed yet: its first listing finds the items anyway.
        return;
    }
    let arrived: Vec<(u32, u32)> = moves
        .iter()
        .filter(|m| m.destination == collection)
        .filter_map(|m| Some((m.destination_uid?, m.flags_hash)))
        .collect();
    let mut uids: Vec<u32> = arrived.iter().map(|&(uid, _)| uid).collect();
    uids.sort_unstable();
    state.pending = UidList(
        std::mem::take(&mut state.pending.0)
            .into_iter()
            .filter(|uid| uids.binary_search(uid).is_err())
            .collect(),
    );
    state.held.set_all(arrived);
}
