//! Pure: which of the reconciled changes go into this response. Deletes and soft deletes
//! first, then flag changes (so the device never shows stale state longer than needed), then
//! new items, newest first; at most `window` commands.

use super::reconcile::Reconciled;

/// How many pages after this one are hinted to the host (see [`Plan::next_adds`]).
const PAGES_AHEAD: usize = 2;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub deletes: Vec<u32>,
    pub soft_deletes: Vec<u32>,
    pub changes: Vec<(u32, Vec<String>)>,
    /// Flag resends (fetched with the adds).
    pub resend: Vec<u32>,
    /// UIDs to add, newest first.
    pub adds: Vec<u32>,
    /// The adds the next two requests with the same window would take, if nothing changes
    /// meanwhile: worth fetching ahead. Two pages, so that the host's work on one (fetching,
    /// rendering ahead) spans two requests instead of racing the very next one.
    pub next_adds: Vec<u32>,
    /// Deletes, soft deletes or changes did not all fit.
    pub deferred: bool,
}

impl Plan {
    pub fn len(&self) -> usize {
        self.deletes.len()
            + self.soft_deletes.len()
            + self.changes.len()
            + self.resend.len()
            + self.adds.len()
    }
}

pub fn plan(reconciled: &Reconciled, window: usize) -> Plan {
    let mut room = window;
    let mut take = |len: usize| {
        let n = len.min(room);
        room -= n;
        n
    };
    let deletes = take(reconciled.deletes.len());
    let soft_deletes = take(reconciled.soft_deletes.len());
    let changes = take(reconciled.changes.len());
    let resend = take(reconciled.resend.len());
    let adds = take(reconciled.pending.len());
    Plan {
        deletes: reconciled.deletes[..deletes].to_vec(),
        soft_deletes: reconciled.soft_deletes[..soft_deletes].to_vec(),
        changes: reconciled.changes[..changes].to_vec(),
        resend: reconciled.resend[..resend].to_vec(),
        adds: reconciled.pending.iter().rev().take(adds).copied().collect(),
        next_adds: reconciled
            .pending
            .iter()
            .rev()
            .skip(adds)
            .take(PAGES_AHEAD * window)
            .copied()
            .collect(),
        deferred: deletes < reconciled.deletes.len()
            || soft_deletes < reconciled.soft_deletes.len()
            || changes < reconciled.changes.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reconciled() -> Reconciled {
        Reconciled {
            deletes: vec![1, 2],
            soft_deletes: vec![3],
            changes: vec![(4, vec![]), (5, vec![])],
            pending: vec![10, 11, 12],
            resend: vec![6],
            ..Reconciled::default()
        }
    }

    #[test]
    fn deletes_and_changes_come_first_then_newest_adds() {
        let plan = plan(&reconciled(), 100);
        assert_eq!(plan.adds, [12, 11, 10]);
        assert!(plan.next_adds.is_empty());
        assert_eq!(plan.len(), 9);
        assert!(!plan.deferred);
    }

    #[test]
    fn a_small_window_defers_changes() {
        let small = plan(&reconciled(), 4);
        assert_eq!((small.deletes.len(), small.soft_deletes.len(), small.changes.len()), (2, 1, 1));
        assert!(small.adds.is_empty() && small.deferred);
        let adds_only = plan(&reconciled(), 7);
        assert_eq!(adds_only.adds, [12]);
        assert_eq!(adds_only.next_adds, [11, 10], "the next two pages, fetched ahead");
        assert!(!adds_only.deferred);
        assert_eq!(
            plan(&reconciled(), 0),
            Plan { deferred: true, ..Plan::default() },
            "a window of 0 takes nothing, now or next"
        );
    }
}
