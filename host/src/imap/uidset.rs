//! UID sets (RFC 9051 §9 `sequence-set`): writing them compactly for commands, reading them from
//! VANISHED, ESEARCH and response codes.

use std::fmt::Write as _;

/// An inclusive range of UIDs; `first == last` for a single UID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UidRange {
    pub first: u32,
    pub last: u32,
}

impl UidRange {
    pub fn new(first: u32, last: u32) -> Self {
        Self { first: first.min(last), last: first.max(last) }
    }

    pub fn single(uid: u32) -> Self {
        Self { first: uid, last: uid }
    }

    pub fn contains(&self, uid: u32) -> bool {
        (self.first..=self.last).contains(&uid)
    }

    pub fn len(&self) -> u64 {
        u64::from(self.last - self.first) + 1
    }

    /// Never empty: a range holds at least one UID (kept for clippy's `len_without_is_empty`).
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Every UID in the ranges, in order (for callers that diff UID lists).
pub fn expand(ranges: &[UidRange]) -> impl Iterator<Item = u32> + '_ {
    ranges.iter().flat_map(|range| range.first..=range.last)
}

/// The UIDs of `sorted` (ascending) that lie in one of `ranges` (any order, overlaps allowed),
/// ascending: a binary search per range, so that checking a page of UIDs against a folder's
/// thousands of ranges stays cheap.
pub fn members_of(ranges: &[UidRange], sorted: &[u32]) -> Vec<u32> {
    let mut inside = vec![false; sorted.len()];
    for range in ranges {
        let start = sorted.partition_point(|&uid| uid < range.first);
        let end = sorted.partition_point(|&uid| uid <= range.last);
        inside[start..end.max(start)].fill(true);
    }
    sorted.iter().zip(inside).filter_map(|(&uid, inside)| inside.then_some(uid)).collect()
}

/// Sorted, merged ranges covering `uids` (any order, duplicates allowed; 0 is not a UID).
pub fn ranges_of(uids: &[u32]) -> Vec<UidRange> {
    let mut sorted: Vec<u32> = uids.iter().copied().filter(|&uid| uid > 0).collect();
    sorted.sort_unstable();
    sorted.dedup();
    let mut ranges: Vec<UidRange> = Vec::new();
    for uid in sorted {
        match ranges.last_mut() {
            Some(range) if range.last.checked_add(1) == Some(uid) => range.last = uid,
            _ => ranges.push(UidRange::single(uid)),
        }
    }
    ranges
}

/// The ranges as sequence-set strings of at most about `max_len` bytes each: servers limit
/// command lines (Dovecot: 64 KB), and a sparse set of 10,000 UIDs can exceed that.
pub fn format_sets(ranges: &[UidRange], max_len: usize) -> Vec<String> {
    let mut sets = Vec::new();
    let mut current = String::new();
    for range in ranges {
        if !current.is_empty() && current.len() >= max_len {
            sets.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(',');
        }
        // writing to a String cannot fail
        let _ = if range.first == range.last {
            write!(current, "{}", range.first)
        } else {
            write!(current, "{}:{}", range.first, range.last)
        };
    }
    if !current.is_empty() {
        sets.push(current);
    }
    sets
}

/// Parses `1:3,5,9:7`; `*` stands for the largest UID, which a server never sends in the places
/// read here, so it becomes `u32::MAX`.
pub fn parse(text: &[u8]) -> Option<Vec<UidRange>> {
    let mut ranges = Vec::new();
    for item in text.split(|&b| b == b',') {
        let mut bounds = item.splitn(2, |&b| b == b':');
        let first = parse_bound(bounds.next()?)?;
        let last = match bounds.next() {
            Some(bound) => parse_bound(bound)?,
            None => first,
        };
        ranges.push(UidRange::new(first, last));
    }
    Some(ranges)
}

fn parse_bound(text: &[u8]) -> Option<u32> {
    if text == b"*" {
        return Some(u32::MAX);
    }
    if text.is_empty() || text.len() > 10 || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok().filter(|&uid| uid > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_found_in_unsorted_and_overlapping_ranges() {
        let ranges = [UidRange::new(20, 30), UidRange::single(5), UidRange::new(25, 40)];
        assert_eq!(members_of(&ranges, &[1, 5, 6, 20, 33, 40, 41]), [5, 20, 33, 40]);
        assert!(members_of(&[], &[1, 2]).is_empty());
        assert!(members_of(&ranges, &[]).is_empty());
    }

    #[test]
    fn uids_become_compact_sets() {
        let ranges = ranges_of(&[5, 1, 2, 3, 9, 10, 3, 0, 12]);
        assert_eq!(format_sets(&ranges, 1000), vec!["1:3,5,9:10,12"]);
        assert_eq!(format_sets(&ranges, 3), vec!["1:3", "5,9:10", "12"]);
        assert!(format_sets(&[], 10).is_empty());
        assert_eq!(
            ranges_of(&[u32::MAX, u32::MAX - 1]),
            vec![UidRange::new(u32::MAX - 1, u32::MAX)]
        );
    }

    #[test]
    fn sets_are_parsed() {
        assert_eq!(
            parse(b"1:3,5,9:7"),
            Some(vec![UidRange::new(1, 3), UidRange::single(5), UidRange::new(7, 9)])
        );
        assert_eq!(parse(b"4:*"), Some(vec![UidRange::new(4, u32::MAX)]));
        for bad in [&b""[..], b"1,", b"a", b"0", b"1:", b"99999999999"] {
            assert_eq!(parse(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        let all: Vec<u32> = expand(&[UidRange::new(1, 3), UidRange::single(7)]).collect();
        assert_eq!(all, vec![1, 2, 3, 7]);
    }
}
