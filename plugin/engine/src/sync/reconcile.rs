//! Pure: what changed for the device, from its stored state and one `changes` answer (plus,
//! with a date window, the UIDs inside it). Nothing here touches the state; the caller
//! applies what it actually sends (see `batch.rs`).

use super::held::{flags_hash, is_deleted};
use super::limits::MAX_TRACKED;
use super::state::CollectionState;
use super::uidset::UidSet;
use crate::mailbox::{ChangeMethod, Changes};

/// The UIDs inside the date window (`uids_since`), and whether to hold the device's items
/// against it (the window moved, the options changed, or this is the first listing).
#[derive(Debug, Clone, Copy)]
pub struct Window<'a> {
    pub uids: &'a UidSet,
    pub full_check: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Held UIDs that are gone (expunged or `\Deleted`), ascending.
    pub deletes: Vec<u32>,
    /// Held UIDs that fell out of the date window, ascending.
    pub soft_deletes: Vec<u32>,
    /// Held UIDs whose flags differ from what the device was sent, with the new flags.
    pub changes: Vec<(u32, Vec<String>)>,
    /// The whole list of UIDs still to add, ascending (the newest are sent first).
    pub pending: Vec<u32>,
    /// The resend list without UIDs that are gone or already in `changes`.
    pub resend: Vec<u32>,
    /// Whether the window's full check was applied (`soft_deletes` is complete).
    pub window_checked: bool,
    /// UIDs left out because the collection tracks at most [`MAX_TRACKED`] messages.
    pub dropped_over_limit: usize,
}

/// What the host says is gone.
struct Gone<'a> {
    vanished: Option<UidSet>,
    current: Option<UidSet>,
    /// UIDs reported with `\Deleted`, ascending.
    deleted: Vec<u32>,
    changes: &'a Changes,
}

impl Gone<'_> {
    fn new(changes: &Changes) -> Gone<'_> {
        let (vanished, current) = match changes.method {
            ChangeMethod::Qresync => (Some(UidSet::from_ranges(&changes.vanished)), None),
            ChangeMethod::Condstore | ChangeMethod::Full => {
                (None, changes.current_uids.as_deref().map(UidSet::from_ranges))
            }
        };
        let mut deleted: Vec<u32> =
            changes.changed.iter().filter(|m| is_deleted(&m.flags)).map(|m| m.uid).collect();
        deleted.sort_unstable();
        Gone { vanished, current, deleted, changes }
    }

    /// Nothing can be gone: no VANISHED, no current listing, nothing `\Deleted`. The usual
    /// answer between two pages of a sync, so the walks over every held and pending UID below
    /// are skipped then.
    fn is_empty(&self) -> bool {
        self.vanished.as_ref().is_none_or(UidSet::is_empty)
            && self.current.is_none()
            && self.deleted.is_empty()
    }

    fn contains(&self, uid: u32) -> bool {
        self.vanished.as_ref().is_some_and(|set| set.contains(uid))
            || self.current.as_ref().is_some_and(|set| !set.contains(uid))
            || self.deleted.binary_search(&uid).is_ok()
    }
}

/// Whether [`reconcile`] needs the date window's UIDs: on the first listing, when the window
/// must be checked again, or when messages older than the last listing turn up that the
/// device does not have (flag changes of out-of-window mail, a full listing).
pub fn needs_window(
    state: &CollectionState,
    changes: &Changes,
    filter_active: bool,
    window_due: bool,
) -> bool {
    if !filter_active {
        return false;
    }
    if window_due || !state.primed || state.relist {
        return true;
    }
    changes.changed.iter().any(|m| {
        m.uid < state.uid_next_seen
            && !is_deleted(&m.flags)
            && !state.held.contains(m.uid)
            && state.pending.0.binary_search(&m.uid).is_err()
    })
}

pub fn reconcile(
    state: &CollectionState,
    changes: &Changes,
    window: Option<Window<'_>>,
    filter_active: bool,
) -> Reconciled {
    let gone = Gone::new(changes);
    let mut result = Reconciled::default();
    if !gone.is_empty() {
        result.deletes = state.held.uids().filter(|&uid| gone.contains(uid)).collect();
    }

    // Flag changes of held messages; the last report of a UID wins.
    let mut seen_changes: Vec<(u32, &Vec<String>)> = Vec::new();
    for message in &gone.changes.changed {
        if is_deleted(&message.flags) || gone.contains(message.uid) {
            continue;
        }
        if let Some(hash) = state.held.get(message.uid)
            && flags_hash(&message.flags) != hash
        {
            seen_changes.push((message.uid, &message.flags));
        }
    }
    seen_changes.sort_by_key(|&(uid, _)| uid);
    seen_changes.reverse();
    seen_changes.dedup_by_key(|&mut (uid, _)| uid);
    seen_changes.reverse();
    result.changes = seen_changes.into_iter().map(|(uid, flags)| (uid, flags.clone())).collect();

    // What is still to add: the old list without what is gone, plus newcomers.
    let mut pending: Vec<u32> = if gone.is_empty() {
        state.pending.0.clone()
    } else {
        state.pending.0.iter().copied().filter(|&uid| !gone.contains(uid)).collect()
    };
    let is_pending = |uid: u32| state.pending.0.binary_search(&uid).is_ok();
    let in_window = |uid: u32| window.is_none_or(|w| w.uids.contains(uid));
    for message in &gone.changes.changed {
        let uid = message.uid;
        if is_deleted(&message.flags)
            || gone.contains(uid)
            || state.held.contains(uid)
            || is_pending(uid)
        {
            continue;
        }
        let is_new_arrival = state.primed && !state.relist && uid >= state.uid_next_seen;
        // New arrivals are in the window (their date is checked again when fetched); older
        // messages only when the window says so.
        if !filter_active || is_new_arrival || in_window(uid) {
            pending.push(uid);
        }
    }
    if let Some(window) = window.filter(|w| w.full_check) {
        result.window_checked = true;
        result.soft_deletes = state
            .held
            .uids()
            .filter(|&uid| !gone.contains(uid) && !window.uids.contains(uid))
            .collect();
        // A wider window: what it holds that the device lacks.
        for uid in window.uids.newest(MAX_TRACKED) {
            if !gone.contains(uid) && !state.held.contains(uid) {
                pending.push(uid);
            }
        }
    }
    pending.sort_unstable();
    pending.dedup();
    if pending.len() > MAX_TRACKED {
        result.dropped_over_limit = pending.len() - MAX_TRACKED;
        pending.drain(..result.dropped_over_limit);
    }
    result.pending = pending;

    result.resend = state
        .resend
        .0
        .iter()
        .copied()
        .filter(|&uid| {
            !gone.contains(uid)
                && state.held.contains(uid)
                && !result.changes.iter().any(|&(changed, _)| changed == uid)
        })
        .collect();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mailbox::{MessageFlags, UidRange};
    use crate::sync::held::UidList;
    use crate::sync::key::SyncKey;

    fn state() -> CollectionState {
        let mut state =
            CollectionState::new(SyncKey { generation: 1, counter: 2 }, Default::default());
        state.primed = true;
        state.uid_next_seen = 10;
        state
    }

    fn message(uid: u32, flags: &[&str]) -> MessageFlags {
        MessageFlags { uid, flags: flags.iter().map(|f| (*f).to_owned()).collect() }
    }

    fn range(first: u32, last: u32) -> UidRange {
        UidRange { first, last }
    }

    fn changes(method: ChangeMethod, changed: Vec<MessageFlags>) -> Changes {
        Changes {
            method,
            uid_validity: 1,
            uid_validity_changed: false,
            highest_modseq: 5,
            uid_next: 12,
            messages: 0,
            changed,
            vanished: Vec::new(),
            current_uids: None,
        }
    }

    #[test]
    fn qresync_deletes_changes_and_new_mail() {
        let mut state = state();
        state.held.set_all([(1, flags_hash(&[])), (2, flags_hash(&[])), (3, flags_hash(&[]))]);
        state.pending = UidList(vec![4, 5]);
        let mut answer = changes(
            ChangeMethod::Qresync,
            vec![
                message(2, &["\\Seen"]),
                message(3, &[]),
                message(5, &["\\Seen"]),
                message(11, &[]),
            ],
        );
        answer.vanished = vec![range(1, 1), range(4, 4), range(100, 50)];
        let result = reconcile(&state, &answer, None, false);
        assert_eq!(result.deletes, [1]);
        assert_eq!(result.changes, [(2, vec!["\\Seen".to_owned()])]);
        assert_eq!(result.pending, [5, 11]);
    }

    #[test]
    fn full_listing_diffs_against_the_current_uids() {
        let mut state = state();
        state.held.set_all([(1, flags_hash(&[])), (2, flags_hash(&[])), (3, flags_hash(&[]))]);
        let mut answer = changes(
            ChangeMethod::Full,
            vec![message(1, &[]), message(3, &["\\Deleted"]), message(7, &[])],
        );
        answer.current_uids = Some(vec![range(1, 1), range(3, 3), range(7, 7)]);
        let result = reconcile(&state, &answer, None, false);
        assert_eq!(result.deletes, [2, 3]);
        assert!(result.changes.is_empty());
        assert_eq!(result.pending, [7]);
    }

    #[test]
    fn a_window_limits_old_mail_and_soft_deletes_what_fell_out() {
        let mut state = state();
        state.held.set_all([(1, flags_hash(&[])), (8, flags_hash(&[]))]);
        let window = UidSet::from_ranges(&[range(7, 8), range(10, 10)]);
        let answer = changes(
            ChangeMethod::Full,
            vec![
                message(1, &[]),
                message(2, &[]),
                message(7, &[]),
                message(8, &[]),
                message(10, &[]),
            ],
        );
        assert!(needs_window(&state, &answer, true, false));
        let result =
            reconcile(&state, &answer, Some(Window { uids: &window, full_check: true }), true);
        assert_eq!(result.soft_deletes, [1]);
        assert_eq!(result.pending, [7, 10]);
        assert!(result.window_checked);
    }

    #[test]
    fn under_a_filter_old_messages_need_the_window() {
        let state = state();
        let new_only = changes(ChangeMethod::Qresync, vec![message(10, &[])]);
        assert!(!needs_window(&state, &new_only, true, false), "UID 10 is new mail");
        assert!(needs_window(&state, &new_only, true, true), "unless the window moved");
        let old = changes(ChangeMethod::Qresync, vec![message(3, &["\\Seen"]), message(10, &[])]);
        assert!(needs_window(&state, &old, true, false), "UID 3 is an old message");
        // Without the window (the caller did not ask), old messages are kept for the date
        // check at fetch time rather than lost.
        assert_eq!(reconcile(&state, &old, None, true).pending, [3, 10]);
        let window = UidSet::from_ranges(&[range(10, 10)]);
        let within =
            reconcile(&state, &old, Some(Window { uids: &window, full_check: false }), true);
        assert_eq!(within.pending, [10]);
    }

    #[test]
    fn resend_skips_gone_and_changed() {
        let mut state = state();
        state.held.set_all([(1, 7), (2, 7), (3, 7)]);
        state.resend = UidList(vec![1, 2, 3]);
        let mut answer = changes(ChangeMethod::Qresync, vec![message(2, &["\\Seen"])]);
        answer.vanished = vec![range(3, 3)];
        let result = reconcile(&state, &answer, None, false);
        assert_eq!(result.resend, [1]);
        assert_eq!(result.deletes, [3]);
    }
}
