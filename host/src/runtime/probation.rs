//! A tenant whose plugin keeps failing is put on probation, without an operator.
//!
//! `hot_calls.rs` makes a tenant's long calls take turns while other tenants are served, but
//! a plugin that traps, spins or grows on every request still kept both cores busy on the
//! project's machine: four spinning calls at the default `concurrent_calls` took another
//! tenant's OPTIONS p99 from under 1 ms to 12.5 ms (docs/reliability.md, finding 7). Such a
//! plugin announces itself: its calls end in traps and spent budgets, which a working
//! plugin's do not.
//!
//! So [`FAULTS_FOR_PROBATION`] faulty calls within [`FAULT_WINDOW`] put the tenant on
//! probation until [`PROBATION`] has passed without another. A faulty call is one that
//! trapped, or spent its budget after running guest code through at least
//! [`TICKS_FOR_A_FAULT`] epoch ticks: a call that spent it waiting for a slow IMAP or SMTP
//! server (the budget is wall-clock) says nothing about the plugin. While the probation lasts,
//! every call of the tenant, also one that was running when it began, sleeps [`PAUSE`] at each
//! epoch tick (10 ms of guest code) it runs through, within its usual wall-clock budget: a
//! spinning call uses a tenth of a core instead of all of it. Short calls (an OPTIONS, most
//! Sync pages: a few milliseconds of guest code) pass no tick or one and lose at most one
//! pause, so the tenant's working requests go on being answered; only a call that needs more
//! than a tenth of its budget in guest code (a second of the default ten) fails that would
//! not have.
//!
//! A call that fails on probation also keeps its slot (`tenant_slots.rs`) for [`PENALTY`]
//! after it: traps and allocations in a loop are short calls, not slowed by the pauses, and
//! each costs an instance and often a burst of page faults; the slots they keep bound how
//! many run per second. With a one-second penalty, the traps and grows of the abuse test kept
//! another tenant's p99 at 2–4× its quiet one; with five, it is within 2× once the probation
//! began (docs/reliability.md, finding 7).
//!
//! The tenant keeps its `concurrent_calls`: capping it at one call would make its working
//! requests wait behind the failing ones, and the requirement is that only those fail.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::PluginFault;

/// How long the slot of a call that failed on probation stays taken after it.
pub const PENALTY: Duration = Duration::from_secs(5);

/// Epoch ticks (10 ms each) of guest code a call that spent its budget must have run through
/// to count as faulty: a spin does (even on probation, three in the test's 300 ms budget); a
/// Sync page that waited on IMAP runs through one or two.
pub const TICKS_FOR_A_FAULT: u32 = 3;

/// Faulty calls within [`FAULT_WINDOW`] that start a probation.
pub const FAULTS_FOR_PROBATION: u32 = 3;

/// How close together the faults must be.
pub const FAULT_WINDOW: Duration = Duration::from_secs(10);

/// How long a probation lasts after the tenant's last fault.
pub const PROBATION: Duration = Duration::from_secs(60);

/// What a call on probation sleeps at each epoch tick (10 ms of guest code) it runs through.
pub const PAUSE: Duration = Duration::from_millis(90);

/// Whether a call that ended in `fault` after running guest code through `ticks` epoch
/// ticks counts against its plugin.
pub fn is_the_plugins(fault: &PluginFault, ticks: u32) -> bool {
    match fault {
        PluginFault::Trap(_) => true,
        // the budget is wall-clock: one spent waiting for IMAP or SMTP is not the plugin's
        PluginFault::Deadline => ticks >= TICKS_FOR_A_FAULT,
        // no slot or instance, or the state store's failure
        PluginFault::Busy(_) | PluginFault::State(_) => false,
    }
}

/// Where a recorded fault left the tenant.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not on probation (yet).
    Clear,
    /// This fault began a probation.
    Began,
    /// On probation already; this fault prolonged it.
    Prolonged,
}

/// One tenant's record (a clone is the same tenant).
#[derive(Clone, Default)]
pub struct Probation {
    record: Arc<Mutex<Record>>,
}

#[derive(Default)]
struct Record {
    /// The first fault of the current window and the faults in it.
    window: Option<(Instant, u32)>,
    /// When the probation ends, if the tenant is on it (or was: an end in the past).
    until: Option<Instant>,
}

impl Probation {
    /// Whether the tenant is on probation at `now`.
    pub fn active(&self, now: Instant) -> bool {
        self.lock().until.is_some_and(|until| now < until)
    }

    /// Records a faulty call that ended at `now`.
    pub fn fault(&self, now: Instant) -> Verdict {
        let mut record = self.lock();
        if record.until.is_some_and(|until| now < until) {
            record.until = Some(now + PROBATION);
            return Verdict::Prolonged;
        }
        let (first, faults) = match record.window {
            Some((first, faults)) if now.saturating_duration_since(first) < FAULT_WINDOW => {
                (first, faults + 1)
            }
            _ => (now, 1),
        };
        if faults < FAULTS_FOR_PROBATION {
            record.window = Some((first, faults));
            return Verdict::Clear;
        }
        record.window = None;
        record.until = Some(now + PROBATION);
        Verdict::Began
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Record> {
        // a panic under the lock cannot leave the record half-written: keep using it
        crate::unpoisoned::lock(&self.record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traps_and_budgets_spent_in_guest_code_count_waits_and_busy_do_not() {
        let trap = PluginFault::Trap(anyhow::anyhow!("unreachable"));
        assert!(is_the_plugins(&trap, 0));
        assert!(is_the_plugins(&PluginFault::Deadline, TICKS_FOR_A_FAULT));
        // spent waiting for a slow IMAP server: a tick of guest work, then the one at its end
        assert!(!is_the_plugins(&PluginFault::Deadline, 2));
        let busy = PluginFault::Busy(anyhow::anyhow!("no slot"));
        assert!(!is_the_plugins(&busy, 1000));
    }

    #[test]
    fn faults_close_together_begin_a_probation_that_wears_off() {
        let probation = Probation::default();
        let start = Instant::now();
        for fault in 1..FAULTS_FOR_PROBATION {
            let at = start + Duration::from_secs(u64::from(fault));
            assert_eq!(probation.fault(at), Verdict::Clear);
            assert!(!probation.active(at));
        }
        let last = start + Duration::from_secs(u64::from(FAULTS_FOR_PROBATION));
        assert_eq!(probation.fault(last), Verdict::Began);
        assert!(probation.active(last));
        assert!(probation.active(last + PROBATION - Duration::from_millis(1)));
        assert!(!probation.active(last + PROBATION));
    }

    /// A record put on probation at `start`.
    fn on_probation_since(start: Instant) -> Probation {
        let probation = Probation::default();
        for _ in 0..FAULTS_FOR_PROBATION {
            probation.fault(start);
        }
        assert!(probation.active(start));
        probation
    }

    #[test]
    fn a_fault_on_probation_prolongs_it() {
        let start = Instant::now();
        let probation = on_probation_since(start);
        let later = start + PROBATION / 2;
        assert_eq!(probation.fault(later), Verdict::Prolonged);
        assert!(probation.active(later + PROBATION - Duration::from_millis(1)));
        assert!(!probation.active(later + PROBATION));
    }

    #[test]
    fn faults_spread_out_never_begin_one() {
        let probation = Probation::default();
        let start = Instant::now();
        // two per window, for many windows
        for window in 0..20u32 {
            let first = start + FAULT_WINDOW * window;
            assert_eq!(probation.fault(first), Verdict::Clear);
            let second = first + FAULT_WINDOW / 2;
            assert_eq!(probation.fault(second), Verdict::Clear);
            assert!(!probation.active(second));
        }
    }

    #[test]
    fn after_a_probation_it_takes_as_many_faults_again() {
        let start = Instant::now();
        let probation = on_probation_since(start);
        let after = start + PROBATION + Duration::from_secs(1);
        for _ in 1..FAULTS_FOR_PROBATION {
            assert_eq!(probation.fault(after), Verdict::Clear);
        }
        assert!(!probation.active(after));
        assert_eq!(probation.fault(after), Verdict::Began);
    }
}
