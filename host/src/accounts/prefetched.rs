//! Message summaries fetched ahead for a request that is about to want them: the next page of
//! a Sync (`mailbox.prefetch-summaries`), so that the IMAP server reads those messages while
//! the gateway converts the current page and the phone reads it.
//!
//! Only what never changes for a UID while its folder keeps its UIDVALIDITY is held: the date,
//! size, structure and first bytes (RFC 9051 §2.3.1.1: a UID names one message for good). A
//! request that takes entries still asks the server for their flags in the same round trip, and
//! a message expunged meanwhile is missing from that answer, so what the plugin sees is as
//! fresh as without this cache.

use crate::imap::Summary;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Message data one account holds ahead: a page of 100 messages at the largest prefix a Sync
/// asks for (64 KiB) fits, and several of the usual 16 KiB ones.
pub const MAX_BYTES_PER_ACCOUNT: usize = 8 << 20;

/// Message data all accounts of a tenant hold ahead together: eight accounts' worth, so that
/// many phones starting an initial sync at once cannot make the gateway hold a second page
/// for each of them (beyond it, pages are simply not fetched ahead).
pub const MAX_BYTES_PER_TENANT: usize = 8 * MAX_BYTES_PER_ACCOUNT;

/// Entries nobody took within this long are dropped: the phone stopped paging.
pub const LIFETIME: Duration = Duration::from_secs(60);

/// What an entry costs besides its prefix (structure, date, size), roughly.
const ENTRY_OVERHEAD_BYTES: usize = 512;

/// What a tenant's accounts hold ahead together, against [`MAX_BYTES_PER_TENANT`].
#[derive(Debug, Default)]
pub struct TenantBudget {
    used: AtomicUsize,
}

impl TenantBudget {
    /// Whether a prefetch is worth starting: the tenant holds less than its cap.
    pub fn has_room(&self) -> bool {
        self.used.load(Ordering::Relaxed) < MAX_BYTES_PER_TENANT
    }

    fn try_take(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(bytes).filter(|&total| total <= MAX_BYTES_PER_TENANT)
            })
            .is_ok()
    }

    fn give_back(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// One account's summaries fetched ahead, by folder and UID.
#[derive(Debug)]
pub struct Prefetched {
    entries: HashMap<(String, u32), Entry>,
    bytes: usize,
    tenant: Arc<TenantBudget>,
}

#[derive(Debug)]
struct Entry {
    uid_validity: u32,
    /// The body bytes asked for: a request for up to this many can take the entry.
    prefix_bytes: u32,
    summary: Summary,
    stored: Instant,
}

/// A summary taken from the cache, without flags, and the UIDVALIDITY it was fetched under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub uid_validity: u32,
    pub summary: Summary,
}

impl Prefetched {
    pub fn new(tenant: Arc<TenantBudget>) -> Self {
        Prefetched { entries: HashMap::new(), bytes: 0, tenant }
    }

    /// Keeps `summaries` of `folder` (fetched under `uid_validity` with `prefix_bytes`), as
    /// many as fit; their flags are dropped, since they are fetched again when taken. Returns
    /// how many were kept.
    pub fn put(
        &mut self,
        folder: &str,
        uid_validity: u32,
        prefix_bytes: u32,
        summaries: Vec<Summary>,
        now: Instant,
    ) -> usize {
        self.drop_expired(now);
        let mut kept = 0;
        for mut summary in summaries {
            let size = entry_size(&summary);
            if self.bytes + size > MAX_BYTES_PER_ACCOUNT || !self.tenant.try_take(size) {
                break;
            }
            summary.flags = Vec::new();
            let entry = Entry { uid_validity, prefix_bytes, summary, stored: now };
            let key = (folder.to_owned(), entry.summary.uid);
            if let Some(replaced) = self.entries.insert(key, entry) {
                self.release(entry_size(&replaced.summary));
            }
            self.bytes += size;
            kept += 1;
        }
        kept
    }

    /// Takes the entries of `folder` for `uids` fetched with at least `prefix_bytes` of body
    /// (their prefix cut to that). Taken entries leave the cache: each page is wanted once.
    pub fn take(
        &mut self,
        folder: &str,
        uids: &[u32],
        prefix_bytes: u32,
        now: Instant,
    ) -> HashMap<u32, Held> {
        self.drop_expired(now);
        let mut taken = HashMap::new();
        if self.entries.is_empty() {
            return taken;
        }
        for &uid in uids {
            let key = (folder.to_owned(), uid);
            if self.entries.get(&key).is_none_or(|entry| entry.prefix_bytes < prefix_bytes) {
                continue;
            }
            let Some(entry) = self.entries.remove(&key) else { continue };
            self.release(entry_size(&entry.summary));
            let mut summary = entry.summary;
            summary.cut_body_to(prefix_bytes);
            taken.insert(uid, Held { uid_validity: entry.uid_validity, summary });
        }
        taken
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Drops what nobody took within [`LIFETIME`] (also called by the pool's reaper, for a
    /// phone that stopped paging).
    pub fn drop_expired(&mut self, now: Instant) {
        let before = self.entries.len();
        self.entries.retain(|_, entry| now.saturating_duration_since(entry.stored) < LIFETIME);
        if self.entries.len() != before {
            let held: usize = self.entries.values().map(|entry| entry_size(&entry.summary)).sum();
            self.release(self.bytes - held);
        }
    }

    fn release(&mut self, bytes: usize) {
        self.bytes -= bytes;
        self.tenant.give_back(bytes);
    }
}

impl Drop for Prefetched {
    fn drop(&mut self) {
        self.tenant.give_back(self.bytes);
    }
}

fn entry_size(summary: &Summary) -> usize {
    summary.prefix.len() + ENTRY_OVERHEAD_BYTES
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(uid: u32, prefix_len: usize) -> Summary {
        Summary {
            uid,
            flags: vec!["\\Seen".to_string()],
            internal_date: 1_700_000_000,
            size: 5_000,
            body_structure: Vec::new(),
            prefix: vec![b'x'; prefix_len],
            header_len: 200,
        }
    }

    fn cache() -> Prefetched {
        Prefetched::new(Arc::new(TenantBudget::default()))
    }

    #[test]
    fn taken_once_without_flags_and_cut_to_the_prefix_asked() {
        let now = Instant::now();
        let mut cache = cache();
        cache.put("INBOX", 7, 16_384, vec![summary(1, 3_000), summary(2, 3_000)], now);
        let taken = cache.take("INBOX", &[1, 2, 3], 1_000, now);
        assert_eq!(taken.len(), 2);
        let held = &taken[&1];
        assert_eq!(held.uid_validity, 7);
        assert!(held.summary.flags.is_empty(), "flags are fetched fresh");
        assert_eq!(held.summary.prefix.len(), 200 + 1_000, "the header block and 1,000 more");
        assert_eq!(held.summary.size, 5_000);
        assert!(cache.take("INBOX", &[1, 2], 1_000, now).is_empty(), "taken once");
        assert_eq!(cache.bytes(), 0);
    }

    #[test]
    fn a_shorter_prefix_or_another_folder_is_not_served() {
        let now = Instant::now();
        let mut cache = cache();
        cache.put("INBOX", 7, 1_000, vec![summary(1, 1_000)], now);
        assert!(cache.take("INBOX", &[1], 2_000, now).is_empty());
        assert!(cache.take("Archive", &[1], 500, now).is_empty());
        assert_eq!(cache.take("INBOX", &[1], 1_000, now).len(), 1);
    }

    #[test]
    fn entries_expire_and_the_size_is_bounded() {
        let now = Instant::now();
        let mut cache = cache();
        cache.put("INBOX", 7, 16_384, vec![summary(1, 100)], now);
        assert!(cache.take("INBOX", &[1], 100, now + LIFETIME).is_empty());
        assert_eq!(cache.bytes(), 0);

        let big = MAX_BYTES_PER_ACCOUNT / 4;
        let kept =
            cache.put("INBOX", 7, 16_384, (1..=10).map(|uid| summary(uid, big)).collect(), now);
        assert_eq!(kept, 3);
        assert!(cache.bytes() <= MAX_BYTES_PER_ACCOUNT);
        assert_eq!(cache.take("INBOX", &(1..=10).collect::<Vec<_>>(), 16_384, now).len(), 3);
    }

    #[test]
    fn storing_a_uid_again_replaces_it() {
        let now = Instant::now();
        let mut cache = cache();
        cache.put("INBOX", 7, 16_384, vec![summary(1, 100)], now);
        cache.put("INBOX", 8, 16_384, vec![summary(1, 200)], now);
        assert_eq!(cache.bytes(), 200 + ENTRY_OVERHEAD_BYTES);
        assert_eq!(cache.take("INBOX", &[1], 16_384, now)[&1].uid_validity, 8);
    }

    #[test]
    fn a_tenant_holds_at_most_its_budget_and_gets_it_back() {
        let now = Instant::now();
        let tenant = Arc::new(TenantBudget::default());
        let page = |first: u32| -> Vec<Summary> {
            (first..first + 7).map(|uid| summary(uid, MAX_BYTES_PER_ACCOUNT / 8)).collect()
        };
        let mut accounts: Vec<Prefetched> =
            (0..10).map(|_| Prefetched::new(Arc::clone(&tenant))).collect();
        let kept: usize =
            accounts.iter_mut().map(|account| account.put("INBOX", 1, 16_384, page(1), now)).sum();
        assert_eq!(kept, MAX_BYTES_PER_TENANT / (MAX_BYTES_PER_ACCOUNT / 8 + ENTRY_OVERHEAD_BYTES));
        let mut another = Prefetched::new(Arc::clone(&tenant));
        assert_eq!(another.put("INBOX", 1, 16_384, page(1), now), 0, "the tenant is full");

        assert_eq!(accounts[0].take("INBOX", &[1, 2], 16_384, now).len(), 2);
        assert_eq!(another.put("INBOX", 1, 16_384, page(1), now), 2, "what is taken is given back");
        drop(another);
        accounts[1].drop_expired(now + LIFETIME);
        accounts.truncate(2);
        drop(accounts);
        assert_eq!(tenant.used.load(Ordering::Relaxed), 0, "and what is dropped");
    }
}
