//! Message summaries fetched ahead for a request that is about to want them: the next page of
//! a Sync (`mailbox.prefetch-summaries`), so that the IMAP server reads those messages while
//! the gateway converts the current page and the phone reads it.
//!
//! What never changes for a UID while its folder keeps its UIDVALIDITY is held for good: the
//! date, size, structure and first bytes (RFC 9051 §2.3.1.1: a UID names one message for
//! good). Flags do change, so a request that takes entries needs them as they are now: either
//! the request's own `changes` answer vouches for the flags fetched ahead
//! ([`Prefetched::flags_as_of`]), or it asks the server for them in the same round trip as the
//! rest of its page. A message expunged meanwhile is then missing, so what the plugin sees is as
//! fresh as without this cache.
//!
//! With a page can come what the plugin made of it ahead ([`RenderedAhead`], the plugin's
//! `render-ahead`): it is handed to a request of the same plugin that names the same render
//! request, for a message whose flags are still the ones it was rendered with.

use crate::imap::uidset;
use crate::imap::{ChangeMethod, Changes, Summary, SyncPoint};
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
    under: FetchedUnder,
    /// The body bytes asked for: a request for up to this many can take the entry.
    prefix_bytes: u32,
    /// With the flags as they were when fetched.
    summary: Summary,
    /// Made from `summary` as it is (flags included), for a request of `prefix_bytes`.
    rendered: Option<RenderedAhead>,
    stored: Instant,
}

/// What the plugin made of a message ahead of the request that sends it (`render-ahead`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedAhead {
    /// The loaded plugin that made it (`runtime::Plugin::id`): another one (a reload) may
    /// render differently.
    pub plugin: u64,
    /// The plugin's render request it answers, opaque to the host.
    pub request: Arc<[u8]>,
    pub rendering: Vec<u8>,
}

/// The folder's state that a page was fetched ahead under, from the EXAMINE that preceded
/// its FETCH in the same round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchedUnder {
    pub uid_validity: u32,
    /// The folder's HIGHESTMODSEQ then (`None` without CONDSTORE): the flags fetched reflect
    /// every change up to it.
    pub highest_modseq: Option<u64>,
}

/// A summary taken from the cache, with the flags it was fetched with, and the UIDVALIDITY it
/// was fetched under; with what the plugin made of exactly that summary, if it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub uid_validity: u32,
    pub summary: Summary,
    pub rendered: Option<RenderedAhead>,
}

impl Prefetched {
    pub fn new(tenant: Arc<TenantBudget>) -> Self {
        Prefetched { entries: HashMap::new(), bytes: 0, tenant }
    }

    /// Keeps `summaries` of `folder` (fetched `under` that state with `prefix_bytes`), as
    /// many as fit. Returns how many were kept.
    pub fn put(
        &mut self,
        folder: &str,
        under: FetchedUnder,
        prefix_bytes: u32,
        summaries: Vec<Summary>,
        now: Instant,
    ) -> usize {
        self.drop_expired(now);
        let mut kept = 0;
        for summary in summaries {
            let entry = Entry { under, prefix_bytes, summary, rendered: None, stored: now };
            let size = entry_size(&entry);
            if self.bytes + size > MAX_BYTES_PER_ACCOUNT || !self.tenant.try_take(size) {
                break;
            }
            let key = (folder.to_owned(), entry.summary.uid);
            if let Some(replaced) = self.entries.insert(key, entry) {
                self.release(entry_size(&replaced));
            }
            self.bytes += size;
            kept += 1;
        }
        kept
    }

    /// Whether UID `uid` of `folder` is held for a request of `prefix_bytes`.
    pub fn holds(&self, folder: &str, uid: u32, prefix_bytes: u32) -> bool {
        self.entries
            .get(&(folder.to_owned(), uid))
            .is_some_and(|entry| entry.prefix_bytes >= prefix_bytes)
    }

    /// Adds what the plugin made of entries of `folder` ahead, by UID, as far as the account's
    /// and the tenant's caps allow. Returns how many were kept.
    pub fn attach_rendered(&mut self, folder: &str, rendered: Vec<(u32, RenderedAhead)>) -> usize {
        let mut kept = 0;
        for (uid, rendered) in rendered {
            let size = rendered.rendering.len();
            let Some(entry) = self.entries.get_mut(&(folder.to_owned(), uid)) else { continue };
            if entry.rendered.is_some()
                || self.bytes + size > MAX_BYTES_PER_ACCOUNT
                || !self.tenant.try_take(size)
            {
                continue;
            }
            entry.rendered = Some(rendered);
            self.bytes += size;
            kept += 1;
        }
        kept
    }

    /// Takes the entries of `folder` for `uids` fetched with at least `prefix_bytes` of body
    /// (their prefix cut to that; what was rendered ahead goes with them only uncut). Taken
    /// entries leave the cache: each page is wanted once.
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
            if !self.holds(folder, uid, prefix_bytes) {
                continue;
            }
            let Some(entry) = self.entries.remove(&(folder.to_owned(), uid)) else { continue };
            self.release(entry_size(&entry));
            let rendered = entry.rendered.filter(|_| entry.prefix_bytes == prefix_bytes);
            let mut summary = entry.summary;
            summary.cut_body_to(prefix_bytes);
            taken.insert(uid, Held { uid_validity: entry.under.uid_validity, summary, rendered });
        }
        taken
    }

    /// The flags of `folder`'s entries as of `changes`, the answer to a `changes` call from
    /// `since`, for the entries whose flags it vouches for; by UID.
    ///
    /// The entries' flags reflect every change up to the HIGHESTMODSEQ they were fetched
    /// under, and the answer lists (with their flags then) the messages changed after `since`.
    /// When `since` is not after the former, the two together show each entry as the answer
    /// found it: a plugin that records the answer's new HIGHESTMODSEQ as its sync point learns
    /// of any later change at its next `changes` call, exactly as if it had fetched the flags
    /// itself, and saves that round trip. A full listing shows every message's flags outright.
    /// Entries of another UIDVALIDITY, or gone in the answer, are left out (the caller asks the
    /// server, which then leaves out what is gone).
    pub fn flags_as_of(
        &self,
        folder: &str,
        since: Option<SyncPoint>,
        changes: &Changes,
    ) -> HashMap<u32, Vec<String>> {
        let mut ahead: Vec<(u32, &Entry)> = self
            .entries
            .iter()
            .filter(|((name, _), entry)| name == folder && vouches_for(since, changes, entry.under))
            .map(|((_, uid), entry)| (*uid, entry))
            .collect();
        if ahead.is_empty() {
            return HashMap::new();
        }
        ahead.sort_unstable_by_key(|&(uid, _)| uid);
        let uids: Vec<u32> = ahead.iter().map(|&(uid, _)| uid).collect();
        // without a listing, nothing is missing from it
        let listed =
            changes.current_uids.as_ref().map(|current| uidset::members_of(current, &uids));
        let vanished = uidset::members_of(&changes.vanished, &uids);
        let mut flags: HashMap<u32, Vec<String>> = ahead
            .into_iter()
            .filter(|(uid, _)| {
                listed.as_ref().is_none_or(|listed| listed.binary_search(uid).is_ok())
                    && vanished.binary_search(uid).is_err()
            })
            .map(|(uid, entry)| (uid, entry.summary.flags.clone()))
            .collect();
        // newer than what was fetched ahead (a full listing, whose `current_uids` left out
        // what is gone above, has every message's flags here)
        for message in &changes.changed {
            if let Some(current) = flags.get_mut(&message.uid) {
                current.clone_from(&message.flags);
            }
        }
        flags
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
            let held: usize = self.entries.values().map(entry_size).sum();
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

/// Whether `changes`, asked from `since`, together with flags fetched `under` a folder state,
/// shows flags as the answer found them (see [`Prefetched::flags_as_of`]).
fn vouches_for(since: Option<SyncPoint>, changes: &Changes, under: FetchedUnder) -> bool {
    if changes.uid_validity_changed || changes.uid_validity != under.uid_validity {
        return false;
    }
    // what is gone: QRESYNC's VANISHED, otherwise whatever `current_uids` leaves out
    if changes.method != ChangeMethod::Qresync && changes.current_uids.is_none() {
        return false;
    }
    match changes.method {
        ChangeMethod::Full => true,
        ChangeMethod::Qresync | ChangeMethod::Condstore => since.is_some_and(|since| {
            since.uid_validity == under.uid_validity
                && under.highest_modseq.is_some_and(|fetched| fetched >= since.highest_modseq)
        }),
    }
}

fn entry_size(entry: &Entry) -> usize {
    let rendered = entry.rendered.as_ref().map_or(0, |rendered| rendered.rendering.len());
    entry.summary.prefix.len() + ENTRY_OVERHEAD_BYTES + rendered
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::{MessageFlags, UidRange};

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

    /// Fetched under UIDVALIDITY `uid_validity` at HIGHESTMODSEQ 50.
    fn under(uid_validity: u32) -> FetchedUnder {
        FetchedUnder { uid_validity, highest_modseq: Some(50) }
    }

    fn cache() -> Prefetched {
        Prefetched::new(Arc::new(TenantBudget::default()))
    }

    #[test]
    fn taken_once_with_their_flags_and_cut_to_the_prefix_asked() {
        let now = Instant::now();
        let mut cache = cache();
        cache.put("INBOX", under(7), 16_384, vec![summary(1, 3_000), summary(2, 3_000)], now);
        let taken = cache.take("INBOX", &[1, 2, 3], 1_000, now);
        assert_eq!(taken.len(), 2);
        let held = &taken[&1];
        assert_eq!(held.uid_validity, 7);
        assert_eq!(held.summary.flags, ["\\Seen"], "the flags as fetched ahead");
        assert_eq!(held.summary.prefix.len(), 200 + 1_000, "the header block and 1,000 more");
        assert_eq!(held.summary.size, 5_000);
        assert!(cache.take("INBOX", &[1, 2], 1_000, now).is_empty(), "taken once");
        assert_eq!(cache.bytes(), 0);
    }

    #[test]
    fn a_shorter_prefix_or_another_folder_is_not_served() {
        let now = Instant::now();
        let mut cache = cache();
        cache.put("INBOX", under(7), 1_000, vec![summary(1, 1_000)], now);
        assert!(cache.take("INBOX", &[1], 2_000, now).is_empty());
        assert!(cache.take("Archive", &[1], 500, now).is_empty());
        assert_eq!(cache.take("INBOX", &[1], 1_000, now).len(), 1);
    }

    #[test]
    fn entries_expire_and_the_size_is_bounded() {
        let now = Instant::now();
        let mut cache = cache();
        cache.put("INBOX", under(7), 16_384, vec![summary(1, 100)], now);
        assert!(cache.take("INBOX", &[1], 100, now + LIFETIME).is_empty());
        assert_eq!(cache.bytes(), 0);

        let big = MAX_BYTES_PER_ACCOUNT / 4;
        let kept = cache.put(
            "INBOX",
            under(7),
            16_384,
            (1..=10).map(|uid| summary(uid, big)).collect(),
            now,
        );
        assert_eq!(kept, 3);
        assert!(cache.bytes() <= MAX_BYTES_PER_ACCOUNT);
        assert_eq!(cache.take("INBOX", &(1..=10).collect::<Vec<_>>(), 16_384, now).len(), 3);
    }

    #[test]
    fn storing_a_uid_again_replaces_it() {
        let now = Instant::now();
        let mut cache = cache();
        cache.put("INBOX", under(7), 16_384, vec![summary(1, 100)], now);
        cache.put("INBOX", under(8), 16_384, vec![summary(1, 200)], now);
        assert_eq!(cache.bytes(), 200 + ENTRY_OVERHEAD_BYTES);
        assert_eq!(cache.take("INBOX", &[1], 16_384, now)[&1].uid_validity, 8);
    }

    #[test]
    fn renderings_go_with_uncut_entries_and_count_against_the_budget() {
        let now = Instant::now();
        let tenant = Arc::new(TenantBudget::default());
        let mut cache = Prefetched::new(Arc::clone(&tenant));
        cache.put("INBOX", under(7), 16_384, vec![summary(1, 100), summary(2, 100)], now);
        let rendered = |uid: u32| RenderedAhead {
            plugin: 3,
            request: Arc::from(&b"request"[..]),
            rendering: vec![uid as u8; 50],
        };
        let kept = cache
            .attach_rendered("INBOX", vec![(1, rendered(1)), (2, rendered(2)), (9, rendered(9))]);
        assert_eq!(kept, 2, "not for a UID the cache does not hold");
        assert_eq!(cache.attach_rendered("INBOX", vec![(1, rendered(1))]), 0, "once");
        assert_eq!(cache.bytes(), 2 * (100 + ENTRY_OVERHEAD_BYTES + 50));
        assert_eq!(tenant.used.load(Ordering::Relaxed), cache.bytes());

        let taken = cache.take("INBOX", &[1], 16_384, now);
        assert_eq!(taken[&1].rendered, Some(rendered(1)));
        let cut = cache.take("INBOX", &[2], 1_000, now);
        assert_eq!(cut[&2].rendered, None, "rendered from a prefix the request does not get");
        assert_eq!(tenant.used.load(Ordering::Relaxed), 0);
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
        let kept: usize = accounts
            .iter_mut()
            .map(|account| account.put("INBOX", under(1), 16_384, page(1), now))
            .sum();
        assert_eq!(kept, MAX_BYTES_PER_TENANT / (MAX_BYTES_PER_ACCOUNT / 8 + ENTRY_OVERHEAD_BYTES));
        let mut another = Prefetched::new(Arc::clone(&tenant));
        assert_eq!(another.put("INBOX", under(1), 16_384, page(1), now), 0, "the tenant is full");

        assert_eq!(accounts[0].take("INBOX", &[1, 2], 16_384, now).len(), 2);
        assert_eq!(
            another.put("INBOX", under(1), 16_384, page(1), now),
            2,
            "what is taken is given back"
        );
        drop(another);
        accounts[1].drop_expired(now + LIFETIME);
        accounts.truncate(2);
        drop(accounts);
        assert_eq!(tenant.used.load(Ordering::Relaxed), 0, "and what is dropped");
    }

    fn changes(method: ChangeMethod, changed: &[(u32, &str)]) -> Changes {
        Changes {
            method,
            uid_validity: 7,
            uid_validity_changed: false,
            new_highest_modseq: 60,
            uid_next: Some(100),
            exists: 90,
            changed: changed
                .iter()
                .map(|&(uid, flag)| MessageFlags {
                    uid,
                    flags: vec![flag.to_string()],
                    modseq: Some(55),
                })
                .collect(),
            vanished: Vec::new(),
            current_uids: (method != ChangeMethod::Qresync)
                .then(|| vec![UidRange::new(1, 2), UidRange::new(4, 90)]),
        }
    }

    fn point(uid_validity: u32, highest_modseq: u64) -> Option<SyncPoint> {
        Some(SyncPoint { uid_validity, highest_modseq })
    }

    /// UIDs 1 to 4 of INBOX fetched ahead under UIDVALIDITY 7 at HIGHESTMODSEQ 50, and UID 1 of
    /// Archive.
    fn page_ahead() -> Prefetched {
        let mut cache = cache();
        let now = Instant::now();
        cache.put("INBOX", under(7), 1_000, (1..=4).map(|uid| summary(uid, 10)).collect(), now);
        cache.put("Archive", under(7), 1_000, vec![summary(1, 10)], now);
        cache
    }

    fn sorted(flags: HashMap<u32, Vec<String>>) -> Vec<(u32, String)> {
        let mut flags: Vec<(u32, String)> =
            flags.into_iter().map(|(uid, flags)| (uid, flags.join(" "))).collect();
        flags.sort();
        flags
    }

    #[test]
    fn changes_from_a_point_the_page_covers_vouch_for_its_flags() {
        let cache = page_ahead();
        let mut answer = changes(ChangeMethod::Qresync, &[(2, "\\Flagged"), (80, "\\Seen")]);
        answer.vanished = vec![UidRange::new(3, 3), UidRange::new(95, 96)];
        // the point is the page's own HIGHESTMODSEQ or older: every later change is listed
        for since in [50, 40] {
            assert_eq!(
                sorted(cache.flags_as_of("INBOX", point(7, since), &answer)),
                [(1, "\\Seen".into()), (2, "\\Flagged".into()), (4, "\\Seen".into())],
                "from {since}: UID 2 as changed, 3 gone, 1 and 4 as fetched"
            );
        }
    }

    #[test]
    fn nothing_is_vouched_for_that_the_answer_may_have_missed() {
        let ahead = page_ahead();
        let answer = changes(ChangeMethod::Qresync, &[(2, "\\Flagged")]);
        // a change between HIGHESTMODSEQ 50 and 51 would be in neither
        assert!(ahead.flags_as_of("INBOX", point(7, 51), &answer).is_empty());
        assert!(ahead.flags_as_of("INBOX", None, &answer).is_empty(), "no point");
        assert!(ahead.flags_as_of("INBOX", point(8, 40), &answer).is_empty(), "another point");
        let mut recreated = changes(ChangeMethod::Full, &[(1, "\\Seen")]);
        recreated.uid_validity = 8;
        recreated.uid_validity_changed = true;
        assert!(ahead.flags_as_of("INBOX", point(7, 40), &recreated).is_empty(), "recreated");
        assert!(ahead.flags_as_of("Drafts", point(7, 40), &answer).is_empty(), "another folder");

        let mut without_modseq = cache();
        let under = FetchedUnder { uid_validity: 7, highest_modseq: None };
        without_modseq.put("INBOX", under, 1_000, vec![summary(1, 10)], Instant::now());
        assert!(without_modseq.flags_as_of("INBOX", point(7, 0), &answer).is_empty());
    }

    #[test]
    fn a_full_listing_vouches_for_every_message_it_lists() {
        let cache = page_ahead();
        let mut answer = changes(ChangeMethod::Full, &[(1, ""), (2, "\\Answered"), (4, "$label1")]);
        answer.current_uids = Some(uidset::ranges_of(&[1, 2, 4]));
        assert_eq!(
            sorted(cache.flags_as_of("INBOX", None, &answer)),
            [(1, String::new()), (2, "\\Answered".into()), (4, "$label1".into())],
            "UID 3 is not listed: gone"
        );
    }

    #[test]
    fn condstore_finds_what_is_gone_by_the_current_uids() {
        let cache = page_ahead();
        let answer = changes(ChangeMethod::Condstore, &[(4, "\\Draft")]);
        assert_eq!(
            sorted(cache.flags_as_of("INBOX", point(7, 50), &answer)),
            [(1, "\\Seen".into()), (2, "\\Seen".into()), (4, "\\Draft".into())],
            "UID 3 is not among the current UIDs"
        );
        let mut unlisted = answer;
        unlisted.current_uids = None;
        assert!(cache.flags_as_of("INBOX", point(7, 50), &unlisted).is_empty());
    }
}
