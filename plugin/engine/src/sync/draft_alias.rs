//! Drafts keep their ServerId across Changes.
//!
//! IMAP cannot rewrite a message: a draft Change appends the new version (a new UID) and
//! expunges the old one. Phones do not expect the ServerId of a draft they are editing to
//! change (iOS keeps editing and finally sends the draft by the id it got from its Add; a
//! Delete + Add in between shows as the draft vanishing from the compose screen), so the
//! device keeps its ServerId `"{collection}:{device_uid}"` and this map says which IMAP UID it
//! stands for now. It is used both ways: client commands naming the device's id act on the
//! current UID, and server changes of the current UID are sent under the device's id.
//!
//! The map lives beside the collection state (its own key, so the state's format is
//! unchanged), tagged with the state's key generation: a new relationship (SyncKey 0) starts
//! with no aliases, because the device then learns every draft by its real UID. Entries whose
//! draft the device no longer holds are dropped.

use super::held::Held;
use super::render;
use crate::capabilities::{Capabilities, StateError, StateScope};
use eas_wbxml::Element;
use eas_wbxml::tags::air_sync;

const FORMAT: u8 = 1;
/// More aliases than drafts anyone edits at once; the oldest go first.
const MAX_ALIASES: usize = 256;

pub fn alias_key(collection_id: &str) -> String {
    format!("sync/{collection_id}/draft-alias")
}

/// (device UID, current IMAP UID) pairs of one collection relationship.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Aliases {
    generation: u64,
    entries: Vec<(u32, u32)>,
    changed: bool,
}

impl Aliases {
    /// An empty map for the relationship of `generation`.
    pub fn new(generation: u64) -> Aliases {
        Aliases { generation, ..Aliases::default() }
    }

    /// The collection's aliases for the relationship of `generation`; none when absent,
    /// unreadable, or of another generation.
    pub async fn load<C: Capabilities>(
        caps: &C,
        scope: &StateScope,
        collection_id: &str,
        generation: u64,
    ) -> Result<Aliases, StateError> {
        let raw = caps.state_get(scope, &alias_key(collection_id)).await?;
        let mut aliases = raw.as_deref().and_then(decode).unwrap_or_default();
        if aliases.generation != generation {
            // stale (an older relationship): forgotten at the next save
            aliases = Aliases { changed: raw.is_some(), ..Aliases::new(generation) };
        }
        Ok(aliases)
    }

    /// Writes the map back if it changed.
    pub async fn save<C: Capabilities>(
        &mut self,
        caps: &C,
        scope: &StateScope,
        collection_id: &str,
    ) -> Result<(), StateError> {
        if !self.changed {
            return Ok(());
        }
        caps.state_put(scope, &alias_key(collection_id), encode(self)).await?;
        self.changed = false;
        Ok(())
    }

    /// The IMAP UID the device's `device_uid` stands for.
    pub fn imap_uid(&self, device_uid: u32) -> u32 {
        self.entries.iter().find(|&&(d, _)| d == device_uid).map_or(device_uid, |&(_, i)| i)
    }

    /// The device's UID for the message at `imap_uid`.
    pub fn device_uid(&self, imap_uid: u32) -> u32 {
        self.entries.iter().find(|&&(_, i)| i == imap_uid).map_or(imap_uid, |&(d, _)| d)
    }

    /// The draft the device knows as `device_uid` is now `imap_uid`.
    pub fn set(&mut self, device_uid: u32, imap_uid: u32) {
        self.entries.retain(|&(d, _)| d != device_uid);
        if device_uid != imap_uid {
            self.entries.push((device_uid, imap_uid));
        }
        if self.entries.len() > MAX_ALIASES {
            self.entries.remove(0);
        }
        self.changed = true;
    }

    /// Drops aliases of drafts the device no longer holds (deleted, sent, or moved away).
    pub fn retain_held(&mut self, held: &Held) {
        let before = self.entries.len();
        self.entries.retain(|&(device, imap)| held.contains(imap) || held.contains(device));
        self.changed |= self.entries.len() != before;
    }

    /// Renames the ServerIds of server commands (Add, Change, Delete, SoftDelete) to the
    /// device's ids.
    pub fn rename(&self, collection_id: &str, commands: &mut [Element]) {
        if self.entries.is_empty() {
            return;
        }
        for command in commands {
            let Some(server_id) = command.child_mut(air_sync::SERVER_ID) else { continue };
            let Some(uid) = server_id.text().and_then(|id| render::uid_of(collection_id, id))
            else {
                continue;
            };
            let device = self.device_uid(uid);
            if device != uid {
                *server_id = Element::with_text(
                    air_sync::SERVER_ID,
                    render::server_id(collection_id, device),
                );
            }
        }
    }
}

/// Server commands of a Drafts collection, renamed to the ids the device knows; then the
/// map forgets drafts the device no longer holds (`held` is the state after the batch).
pub async fn rename_server_changes<C: Capabilities>(
    caps: &C,
    scope: &StateScope,
    collection_id: &str,
    generation: u64,
    held: &Held,
    commands: &mut [Element],
) -> Result<(), StateError> {
    let mut aliases = Aliases::load(caps, scope, collection_id, generation).await?;
    aliases.rename(collection_id, commands);
    aliases.retain_held(held);
    aliases.save(caps, scope, collection_id).await
}

/// The IMAP UID a device's ServerId in `collection_id` stands for (ItemOperations, SmartReply
/// and SmartForward name drafts by the device's id too). Without a map, the UID itself.
pub async fn resolve<C: Capabilities>(
    caps: &C,
    device: &str,
    collection_id: &str,
    device_uid: u32,
) -> u32 {
    let scope = StateScope::Device(device.to_owned());
    match caps.state_get(&scope, &alias_key(collection_id)).await {
        Ok(Some(raw)) => decode(&raw).map_or(device_uid, |aliases| aliases.imap_uid(device_uid)),
        _ => device_uid,
    }
}

fn encode(aliases: &Aliases) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(9 + aliases.entries.len() * 8);
    bytes.push(FORMAT);
    bytes.extend_from_slice(&aliases.generation.to_le_bytes());
    for &(device, imap) in &aliases.entries {
        bytes.extend_from_slice(&device.to_le_bytes());
        bytes.extend_from_slice(&imap.to_le_bytes());
    }
    bytes
}

fn decode(bytes: &[u8]) -> Option<Aliases> {
    let (&format, rest) = bytes.split_first()?;
    if format != FORMAT || rest.len() < 8 || (rest.len() - 8) % 8 != 0 {
        return None;
    }
    let (generation, pairs) = rest.split_at(8);
    let word = |chunk: &[u8]| chunk.try_into().ok().map(u32::from_le_bytes);
    let entries = pairs
        .chunks_exact(8)
        .map(|pair| Some((word(&pair[..4])?, word(&pair[4..])?)))
        .collect::<Option<Vec<_>>>()?;
    Some(Aliases {
        generation: u64::from_le_bytes(generation.try_into().ok()?),
        entries,
        changed: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_round_trip_and_map_both_ways() {
        let mut aliases = Aliases { generation: 7, ..Aliases::default() };
        aliases.set(3, 9);
        aliases.set(3, 12);
        aliases.set(5, 5);
        assert_eq!(aliases.imap_uid(3), 12);
        assert_eq!(aliases.device_uid(12), 3);
        assert_eq!(aliases.imap_uid(5), 5);
        assert_eq!(aliases.device_uid(9), 9);
        let decoded = decode(&encode(&aliases)).expect("decodes");
        assert_eq!(decoded.entries, aliases.entries);
        assert_eq!(decoded.generation, 7);
        assert!(decode(&[FORMAT, 1, 2]).is_none());
    }

    #[test]
    fn server_ids_are_renamed_and_gone_drafts_dropped() {
        let mut aliases = Aliases::default();
        aliases.set(3, 12);
        aliases.set(4, 20);
        let mut commands = vec![
            Element::new(air_sync::CHANGE).text_child(air_sync::SERVER_ID, "5:12"),
            Element::new(air_sync::DELETE).text_child(air_sync::SERVER_ID, "5:13"),
            Element::new(air_sync::DELETE).text_child(air_sync::SERVER_ID, "6:12"),
        ];
        aliases.rename("5", &mut commands);
        let ids: Vec<_> =
            commands.iter().map(|c| c.text_of(air_sync::SERVER_ID).unwrap_or("")).collect();
        assert_eq!(ids, ["5:3", "5:13", "6:12"]);
        let mut held = Held::default();
        held.set_all([(12, 1)]);
        aliases.retain_held(&held);
        assert_eq!(aliases.entries, [(3, 12)]);
    }
}
