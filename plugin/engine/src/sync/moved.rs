//! Items the device moved itself (MoveItems): its collection states learn the move, so the
//! device is not sent a Delete in the source for what it already moved, nor an Add in the
//! destination for what it already knows under the new ServerId (DstMsgId).

use super::client::forget;
use super::held::UidList;
use super::state::{CollectionState, state_key};
use crate::capabilities::{Capabilities, StateError, StateScope};

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
    Ok(())
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
