//! What the device holds: UID → hash of the flags last sent, stored compactly.
//!
//! In memory a sorted `Vec<(uid, hash)>` (binary search, no per-entry allocation). Stored,
//! the distinct hashes go into a small table (a mailbox has few distinct flag sets) and each
//! message costs a varint UID delta plus a varint table index: about 2–3 bytes per message,
//! so 100,000 messages stay far below the host's value limit.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::iter::Peekable;

/// UID → flag hash, sorted by UID.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Held {
    entries: Vec<(u32, u32)>,
}

impl Held {
    pub fn get(&self, uid: u32) -> Option<u32> {
        self.entries.binary_search_by_key(&uid, |&(u, _)| u).ok().map(|i| self.entries[i].1)
    }

    pub fn contains(&self, uid: u32) -> bool {
        self.get(uid).is_some()
    }

    /// Inserts or updates.
    #[cfg(test)]
    pub fn set(&mut self, uid: u32, hash: u32) {
        match self.entries.binary_search_by_key(&uid, |&(u, _)| u) {
            Ok(i) => self.entries[i].1 = hash,
            Err(i) => self.entries.insert(i, (uid, hash)),
        }
    }

    /// Sets many at once (cheaper than repeated [`Held::set`] for a whole batch). New UIDs
    /// are merged in rather than appended and re-sorted: an initial sync adds a page at a
    /// time, and sorting the whole list each page made it quadratic.
    pub fn set_all(&mut self, items: impl IntoIterator<Item = (u32, u32)>) {
        let mut added: Vec<(u32, u32)> = Vec::new();
        for (uid, hash) in items {
            match self.entries.binary_search_by_key(&uid, |&(u, _)| u) {
                Ok(i) => self.entries[i].1 = hash,
                Err(_) => added.push((uid, hash)),
            }
        }
        if added.is_empty() {
            return;
        }
        // Stable, so that of a UID given twice the last hash wins, as with `set`.
        added.sort_by_key(|&(uid, _)| uid);
        let mut merged = Vec::with_capacity(self.entries.len() + added.len());
        let mut held = self.entries.iter().copied().peekable();
        for (i, &(uid, hash)) in added.iter().enumerate() {
            if added.get(i + 1).is_some_and(|&(next, _)| next == uid) {
                continue;
            }
            while let Some(entry) = held.next_if(|&(h, _)| h < uid) {
                merged.push(entry);
            }
            merged.push((uid, hash));
        }
        merged.extend(held);
        self.entries = merged;
    }

    pub fn remove_all(&mut self, uids: &[u32]) {
        if uids.is_empty() {
            return;
        }
        let mut gone = uids.to_vec();
        gone.sort_unstable();
        // Both ascending: one walk, not a search per entry (this runs on every page).
        let mut gone = gone.into_iter().peekable();
        self.entries.retain(|&(uid, _)| !is_next_in(&mut gone, uid));
    }

    pub fn uids(&self) -> impl Iterator<Item = u32> + '_ {
        self.entries.iter().map(|&(uid, _)| uid)
    }

    fn to_bytes(&self) -> Vec<u8> {
        // The state is encoded on every page of a sync, so this is one pass over the entries:
        // classes are numbered in order of first appearance, and a mailbox has few of them
        // (a short list searched from its start beats a tree of every entry's hash).
        let mut classes: Vec<u32> = Vec::new();
        let mut indexes = Vec::with_capacity(self.entries.len() * 3);
        let mut previous = 0u32;
        for &(uid, hash) in &self.entries {
            put_varint(&mut indexes, u64::from(uid - previous));
            previous = uid;
            let index = match classes.iter().position(|&class| class == hash) {
                Some(index) => index,
                None => {
                    classes.push(hash);
                    classes.len() - 1
                }
            };
            put_varint(&mut indexes, index as u64);
        }
        let mut out = Vec::with_capacity(classes.len() * 4 + indexes.len() + 16);
        put_varint(&mut out, classes.len() as u64);
        for class in &classes {
            out.extend_from_slice(&class.to_le_bytes());
        }
        put_varint(&mut out, self.entries.len() as u64);
        out.extend_from_slice(&indexes);
        out
    }

    fn from_bytes(bytes: &[u8]) -> Option<Held> {
        let mut reader = Reader(bytes);
        let class_count = usize::try_from(reader.varint()?).ok()?;
        if class_count > bytes.len() / 4 {
            return None;
        }
        let mut classes = Vec::with_capacity(class_count);
        for _ in 0..class_count {
            classes.push(u32::from_le_bytes(reader.take(4)?.try_into().ok()?));
        }
        let count = usize::try_from(reader.varint()?).ok()?;
        if count > bytes.len() {
            return None;
        }
        let mut entries = Vec::with_capacity(count);
        let mut previous = 0u32;
        for i in 0..count {
            let delta = u32::try_from(reader.varint()?).ok()?;
            if i > 0 && delta == 0 {
                return None;
            }
            let uid = previous.checked_add(delta)?;
            previous = uid;
            let index = usize::try_from(reader.varint()?).ok()?;
            entries.push((uid, *classes.get(index)?));
        }
        reader.0.is_empty().then_some(Held { entries })
    }
}

impl Serialize for Held {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.to_bytes())
    }
}

impl<'de> Deserialize<'de> for Held {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Borrowed, as postcard hands it over: `Vec<u8>`'s own impl would read these fields
        // (every UID of a collection) as a sequence, one element at a time.
        let bytes = <&[u8]>::deserialize(deserializer)?;
        Held::from_bytes(bytes).ok_or_else(|| serde::de::Error::custom("corrupt held set"))
    }
}

/// An ascending UID list stored as varint deltas (the pending list, the resend list).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UidList(pub Vec<u32>);

impl Serialize for UidList {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = Vec::with_capacity(self.0.len() * 2 + 4);
        put_varint(&mut out, self.0.len() as u64);
        let mut previous = 0u32;
        for &uid in &self.0 {
            put_varint(&mut out, u64::from(uid.wrapping_sub(previous)));
            previous = uid;
        }
        serializer.serialize_bytes(&out)
    }
}

impl<'de> Deserialize<'de> for UidList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // borrowed, as for `Held`
        let bytes = <&[u8]>::deserialize(deserializer)?;
        let corrupt = || serde::de::Error::custom("corrupt UID list");
        let mut reader = Reader(bytes);
        let count = reader.varint().and_then(|n| usize::try_from(n).ok()).ok_or_else(corrupt)?;
        if count > bytes.len() {
            return Err(corrupt());
        }
        let mut uids = Vec::with_capacity(count);
        let mut previous = 0u32;
        for i in 0..count {
            let delta = reader.varint().and_then(|d| u32::try_from(d).ok()).ok_or_else(corrupt)?;
            if i > 0 && delta == 0 {
                return Err(corrupt());
            }
            previous = previous.checked_add(delta).ok_or_else(corrupt)?;
            uids.push(previous);
        }
        if !reader.0.is_empty() {
            return Err(corrupt());
        }
        Ok(UidList(uids))
    }
}

/// Of `list`, the UIDs not in `removed`; both ascending. One walk over the two, for lists of
/// a whole collection that a search per UID made slow (its branches are unpredictable).
pub fn without_sorted(mut list: Vec<u32>, removed: &[u32]) -> Vec<u32> {
    if removed.is_empty() {
        return list;
    }
    let mut removed = removed.iter().copied().peekable();
    list.retain(|&uid| !is_next_in(&mut removed, uid));
    list
}

/// Whether `uid` comes next in `sorted` (ascending) once what is smaller is skipped: asked
/// for ascending UIDs, it walks `sorted` once in all.
fn is_next_in(sorted: &mut Peekable<impl Iterator<Item = u32>>, uid: u32) -> bool {
    while sorted.next_if(|&next| next < uid).is_some() {}
    sorted.peek() == Some(&uid)
}

/// A 32-bit hash of a message's flags, as the device was last told them: FNV-1a over the
/// flags trimmed, lower-cased, sorted and deduplicated, without `\Recent` (session state,
/// not message state). Never 0, which marks "resend whatever the flags are".
pub fn flags_hash(flags: &[String]) -> u32 {
    let mut normalized: Vec<String> = flags
        .iter()
        .map(|flag| flag.trim().to_ascii_lowercase())
        .filter(|flag| !flag.is_empty() && flag != "\\recent")
        .collect();
    normalized.sort_unstable();
    normalized.dedup();
    let mut hash: u32 = 0x811c_9dc5;
    for flag in &normalized {
        for &byte in flag.as_bytes().iter().chain(&[0u8]) {
            hash ^= u32::from(byte);
            hash = hash.wrapping_mul(0x0100_0193);
        }
    }
    if hash == STALE_HASH { 1 } else { hash }
}

/// A held hash no flag set produces: the device's copy is to be overwritten.
pub const STALE_HASH: u32 = 0;

/// True when `\Deleted` is set: such a message is gone as far as the device is concerned.
pub fn is_deleted(flags: &[String]) -> bool {
    flags.iter().any(|flag| flag.trim().eq_ignore_ascii_case("\\Deleted"))
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self.0.split_first()?;
            self.0 = rest;
            value |= u64::from(byte & 0x7F) << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(list: &[&str]) -> Vec<String> {
        list.iter().map(|f| (*f).to_owned()).collect()
    }

    #[test]
    fn hash_ignores_order_case_and_recent() {
        assert_eq!(
            flags_hash(&flags(&["\\Seen", "\\Flagged"])),
            flags_hash(&flags(&["\\flagged", " \\SEEN", "\\Recent", "\\Seen"]))
        );
        assert_ne!(flags_hash(&flags(&["\\Seen"])), flags_hash(&flags(&[])));
        assert_ne!(flags_hash(&flags(&["ab", "c"])), flags_hash(&flags(&["a", "bc"])));
        assert_ne!(flags_hash(&[]), STALE_HASH);
    }

    #[test]
    fn held_sets_round_trip_compactly() {
        let mut held = Held::default();
        held.set_all((1..=10_000u32).map(|uid| (uid * 2, if uid % 3 == 0 { 7 } else { 9 })));
        held.set(5, 1);
        held.remove_all(&[4, 6]);
        assert_eq!(held.get(5), Some(1));
        assert!(!held.contains(4));
        let bytes = postcard::to_allocvec(&held).expect("encodes");
        assert!(bytes.len() < 3 * held.entries.len(), "{} bytes", bytes.len());
        assert_eq!(postcard::from_bytes::<Held>(&bytes).expect("decodes"), held);
    }

    proptest::proptest! {
        /// Batches merged in (UIDs repeated within a batch and across batches, in any order)
        /// give what setting each entry in turn gives, and encode the same.
        #[test]
        fn merged_batches_equal_entries_set_one_by_one(
            batches in proptest::collection::vec(
                proptest::collection::vec((0u32..64, 0u32..4), 0..20),
                0..6,
            ),
        ) {
            let (mut merged, mut one_by_one) = (Held::default(), Held::default());
            for batch in batches {
                merged.set_all(batch.iter().copied());
                for (uid, hash) in batch {
                    one_by_one.set(uid, hash);
                }
            }
            proptest::prop_assert_eq!(&merged, &one_by_one);
            proptest::prop_assert_eq!(Held::from_bytes(&merged.to_bytes()), Some(one_by_one));
        }
    }

    proptest::proptest! {
        /// The one-walk difference is the filter it replaces.
        #[test]
        fn without_sorted_is_a_set_difference(
            list in proptest::collection::btree_set(0u32..200, 0..80),
            removed in proptest::collection::btree_set(0u32..200, 0..80),
        ) {
            let list: Vec<u32> = list.into_iter().collect();
            let removed: Vec<u32> = removed.into_iter().collect();
            let expected: Vec<u32> =
                list.iter().copied().filter(|uid| !removed.contains(uid)).collect();
            proptest::prop_assert_eq!(without_sorted(list, &removed), expected);
        }

        /// Many distinct flag sets (numbered as they first appear) round-trip too.
        #[test]
        fn held_sets_with_many_classes_round_trip(
            entries in proptest::collection::btree_map(1u32..5_000, 0u32..300, 0..400),
        ) {
            let mut held = Held::default();
            held.set_all(entries);
            let bytes = postcard::to_allocvec(&held).expect("encodes");
            proptest::prop_assert_eq!(postcard::from_bytes::<Held>(&bytes).ok(), Some(held));
        }
    }

    #[test]
    fn corrupt_held_sets_are_refused() {
        let mut held = Held::default();
        held.set_all([(3, 1), (9, 2)]);
        let bytes = held.to_bytes();
        for cut in 0..bytes.len() {
            assert_eq!(Held::from_bytes(&bytes[..cut]), None, "cut at {cut}");
        }
        assert_eq!(Held::from_bytes(&[0xFF; 12]), None);
        // A repeated UID (delta 0) is corrupt.
        assert_eq!(Held::from_bytes(&[1, 0, 0, 0, 0, 2, 3, 0, 0, 0]), None);
    }

    /// The stored form did not change when the bytes stopped being read one at a time: a
    /// list written as a sequence of bytes (as `Vec<u8>` writes it) still reads back.
    #[test]
    fn uid_lists_read_from_a_byte_sequence() {
        let list = UidList(vec![3, 70, 1000]);
        let bytes = postcard::to_allocvec(&list).expect("encodes");
        let as_sequence: Vec<u8> = postcard::from_bytes(&bytes).expect("a byte sequence");
        let written = postcard::to_allocvec(&as_sequence).expect("encodes");
        assert_eq!(written, bytes);
        assert_eq!(postcard::from_bytes::<UidList>(&written).expect("decodes"), list);
    }

    #[test]
    fn uid_lists_round_trip() {
        let list = UidList(vec![1, 2, 1000, u32::MAX]);
        let bytes = postcard::to_allocvec(&list).expect("encodes");
        assert_eq!(postcard::from_bytes::<UidList>(&bytes).expect("decodes"), list);
        assert!(postcard::from_bytes::<UidList>(&bytes[..bytes.len() - 1]).is_err());
    }
}
