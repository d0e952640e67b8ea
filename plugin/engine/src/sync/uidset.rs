//! A set of UIDs given as ranges by the host (VANISHED, current UIDs, SEARCH results):
//! normalised into sorted, disjoint ranges so membership is a binary search and a range like
//! `1:4294967295` costs nothing.

use crate::mailbox::UidRange;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UidSet {
    /// Sorted, disjoint, non-adjacent inclusive ranges.
    ranges: Vec<(u32, u32)>,
}

impl UidSet {
    /// From untrusted ranges: inverted ones are dropped, overlaps merged.
    pub fn from_ranges(ranges: &[UidRange]) -> UidSet {
        let mut sorted: Vec<(u32, u32)> = ranges
            .iter()
            .filter(|range| range.first <= range.last)
            .map(|range| (range.first, range.last))
            .collect();
        sorted.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(sorted.len());
        for (first, last) in sorted {
            match merged.last_mut() {
                Some(previous) if first <= previous.1.saturating_add(1) => {
                    previous.1 = previous.1.max(last);
                }
                _ => merged.push((first, last)),
            }
        }
        UidSet { ranges: merged }
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    pub fn contains(&self, uid: u32) -> bool {
        let index = self.ranges.partition_point(|&(first, _)| first <= uid);
        index > 0 && uid <= self.ranges[index - 1].1
    }

    /// The UIDs, ascending, at most `limit` of them, the highest ones kept.
    pub fn newest(&self, limit: usize) -> Vec<u32> {
        let mut uids = Vec::new();
        for &(first, last) in self.ranges.iter().rev() {
            let mut uid = last;
            loop {
                if uids.len() >= limit {
                    uids.reverse();
                    return uids;
                }
                uids.push(uid);
                if uid == first {
                    break;
                }
                uid -= 1;
            }
        }
        uids.reverse();
        uids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ranges: &[(u32, u32)]) -> UidSet {
        let ranges: Vec<UidRange> =
            ranges.iter().map(|&(first, last)| UidRange { first, last }).collect();
        UidSet::from_ranges(&ranges)
    }

    #[test]
    fn membership_over_merged_ranges() {
        let uids = set(&[(5, 9), (1, 2), (3, 3), (20, 10), (8, 12), (u32::MAX, u32::MAX)]);
        for uid in [1, 2, 3, 5, 9, 12, u32::MAX] {
            assert!(uids.contains(uid), "{uid}");
        }
        for uid in [0, 4, 13, 20, u32::MAX - 1] {
            assert!(!uids.contains(uid), "{uid}");
        }
    }

    #[test]
    fn newest_keeps_the_highest_and_stops_early() {
        let uids = set(&[(1, 3), (10, 11), (0, u32::MAX)]);
        assert_eq!(uids.newest(3), vec![u32::MAX - 2, u32::MAX - 1, u32::MAX]);
        assert_eq!(set(&[(1, 3), (10, 11)]).newest(100), vec![1, 2, 3, 10, 11]);
        assert_eq!(set(&[(0, 0)]).newest(5), vec![0]);
    }
}
