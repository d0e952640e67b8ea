//! Long calls of one tenant while another tenant is being served.
//!
//! A tenant runs at most `limits.concurrent_calls` calls at once (`tenant_slots.rs`), two per
//! core by default, so a busy tenant can use every core. When its calls are long (a plugin
//! that spins, or converts a huge message) and another tenant is served at the same time, the
//! other tenant's short calls wait for a core behind them: four spinning calls on two cores
//! took another tenant's OPTIONS p99 from 13 ms to 49 ms (docs/reliability.md, finding 7).
//! Capping the faulty tenant at one call fixed that, but only once an operator knew which
//! tenant to cap.
//!
//! So a call that has run guest code through more than [`HOT_AFTER_TICKS`] epoch ticks is
//! *hot*, and while its tenant is mixed with others (another tenant started a call within
//! [`MIXED_WINDOW`], however long ago its own calls started), only half the cores' worth of
//! one tenant's hot calls (at least one) run guest code at a time; its other hot calls wait
//! for one of those places, which passes to the next in line after [`TURN_TICKS`] ticks. A tenant's long calls then share
//! half the cores in turns, and the other half stays free for short calls, whichever tenant
//! they are for. Turns are long: a call that has waited is favoured by the kernel for a
//! while when it runs again, and with short turns (50 ms) four spinning calls delayed
//! another tenant's calls as much as when they all ran (docs/reliability.md, finding 7).
//!
//! A tenant alone on the gateway is never held back, and short calls (nearly all of them: a
//! Sync page is a few ticks) never are. A call is slowed, never failed, by this; but its
//! wall-clock budget keeps running while it waits, so a tenant whose calls are all long gets
//! fewer of them done while it shares the gateway.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::unpoisoned::lock;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::UpdateDeadline;

/// Ticks (10 ms each) a call may run guest code before it counts as hot.
const HOT_AFTER_TICKS: u32 = 5;

/// Ticks (10 ms each) a hot call runs guest code in its place before passing it on to one
/// waiting for it: two long calls of a tenant (big attachments) both progress, each at half
/// the speed.
const TURN_TICKS: u32 = 100;

/// How often a waiting hot call looks again whether tenants are still mixed (once they are
/// not, it runs on without a place).
const MIXED_RECHECK: Duration = Duration::from_millis(100);

/// How recently another tenant must have started a call for a tenant to count as mixed.
const MIXED_WINDOW: Duration = Duration::from_secs(2);

/// Which tenants' calls started lately: shared by every tenant of the process.
pub struct TenantMix {
    epoch: Instant,
    /// [`MIXED_WINDOW`], shorter in tests.
    window: Duration,
    next_tenant: AtomicU64,
    /// The last call starts of the two tenants that started calls most recently, the latest
    /// first: (tenant, ms after `epoch` plus one); tenant 0 is none yet.
    latest: Mutex<[(u64, u64); 2]>,
}

impl TenantMix {
    fn new(window: Duration) -> Self {
        TenantMix {
            epoch: Instant::now(),
            window,
            next_tenant: AtomicU64::new(1),
            latest: Mutex::new([(0, 0); 2]),
        }
    }

    /// The one of the process.
    pub fn global() -> Arc<TenantMix> {
        static GLOBAL: OnceLock<Arc<TenantMix>> = OnceLock::new();
        GLOBAL.get_or_init(|| Arc::new(TenantMix::new(MIXED_WINDOW))).clone()
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn call_started(&self, tenant: u64) {
        let now = self.now_ms() + 1;
        let mut latest = lock(&self.latest);
        if latest[0].0 != tenant {
            latest[1] = latest[0];
        }
        latest[0] = (tenant, now);
    }

    /// Whether another tenant than `tenant` started a call within the window: its calls are
    /// being served beside `tenant`'s. (Not whether `tenant` started one lately: a spinning
    /// plugin's calls started once and run on.)
    fn mixed_for(&self, tenant: u64) -> bool {
        let latest = *lock(&self.latest);
        let window = u64::try_from(self.window.as_millis()).unwrap_or(u64::MAX);
        let now = self.now_ms() + 1;
        latest
            .iter()
            .find(|(other, _)| *other != 0 && *other != tenant)
            .is_some_and(|(_, at)| now - at <= window)
    }
}

/// One tenant's hot calls (a clone is the same tenant).
#[derive(Clone)]
pub struct HotCalls {
    mix: Arc<TenantMix>,
    tenant: u64,
    /// The places of hot calls allowed to run while tenants are mixed (a fair semaphore:
    /// they are handed out in the order they were asked for).
    running: Arc<Semaphore>,
    /// Hot calls of the tenant waiting for a place.
    waiting: Arc<AtomicUsize>,
}

impl HotCalls {
    /// `cores`: the machine's; half of them (at least one) may run this tenant's hot calls.
    pub fn new(mix: Arc<TenantMix>, cores: usize) -> Self {
        let tenant = mix.next_tenant.fetch_add(1, Ordering::Relaxed);
        HotCalls {
            mix,
            tenant,
            running: Arc::new(Semaphore::new((cores / 2).max(1))),
            waiting: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Notes a call of this tenant starting; what its epoch callback consults.
    pub fn call_started(&self) -> HotCall {
        self.mix.call_started(self.tenant);
        HotCall {
            mix: self.mix.clone(),
            tenant: self.tenant,
            running: self.running.clone(),
            waiting: self.waiting.clone(),
            ticks: 0,
            turn: 0,
            slot: Arc::new(Mutex::new(None)),
        }
    }
}

/// One call, as its epoch callback sees it.
pub struct HotCall {
    mix: Arc<TenantMix>,
    tenant: u64,
    running: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    ticks: u32,
    /// Ticks run in the place it holds.
    turn: u32,
    /// The hot call's place among those allowed to run, once it got one; freed when the call
    /// (its store, which owns this) ends, or when its turn is over.
    slot: Arc<Mutex<Option<OwnedSemaphorePermit>>>,
}

impl HotCall {
    /// What the call does at a tick it runs through before its budget (ending at
    /// `budget_end`) is spent: yield and go on, or first wait for a place among its tenant's
    /// running hot calls, until it gets one, tenants are no longer mixed, or `budget_end`
    /// (the next tick then interrupts it). A call whose turn in a place is over while another
    /// waits gives the place up and queues again.
    pub fn at_tick(&mut self, budget_end: Instant) -> UpdateDeadline {
        self.ticks = self.ticks.saturating_add(1);
        if self.ticks <= HOT_AFTER_TICKS || !self.mix.mixed_for(self.tenant) {
            return UpdateDeadline::Yield(1);
        }
        if self.has_slot() {
            self.turn = self.turn.saturating_add(1);
            if self.turn < TURN_TICKS || self.waiting.load(Ordering::Relaxed) == 0 {
                return UpdateDeadline::Yield(1);
            }
            *lock(&self.slot) = None;
        }
        self.turn = 0;
        let (mix, tenant) = (self.mix.clone(), self.tenant);
        let (running, slot) = (self.running.clone(), self.slot.clone());
        let waiting = Waiting::new(self.waiting.clone());
        UpdateDeadline::YieldCustom(
            1,
            Box::pin(async move {
                let _waiting = waiting;
                // (tokio's clock, which is the real one but for tests that pause it)
                let budget_end = tokio::time::Instant::from_std(budget_end);
                let acquire = running.acquire_owned();
                tokio::pin!(acquire);
                loop {
                    let until = budget_end.min(tokio::time::Instant::now() + MIXED_RECHECK);
                    match tokio::time::timeout_at(until, &mut acquire).await {
                        Ok(Ok(permit)) => {
                            *lock(&slot) = Some(permit);
                            return;
                        }
                        Ok(Err(_closed)) => return,
                        Err(_elapsed) if until == budget_end || !mix.mixed_for(tenant) => return,
                        Err(_elapsed) => {}
                    }
                }
            }),
        )
    }

    fn has_slot(&self) -> bool {
        lock(&self.slot).is_some()
    }
}

/// A hot call counted among those waiting for a place, for as long as this lives (also when
/// the call is dropped while it waits).
struct Waiting(Arc<AtomicUsize>);

impl Waiting {
    fn new(count: Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Waiting(count)
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_millis(100);

    /// Runs `tick` until it stops asking to yield plainly; returns the wait it asked for.
    fn first_wait(
        call: &mut HotCall,
        budget_end: Instant,
    ) -> Option<std::pin::Pin<Box<dyn Future<Output = ()> + Send>>> {
        for _ in 0..=HOT_AFTER_TICKS + 1 {
            match call.at_tick(budget_end) {
                UpdateDeadline::YieldCustom(_, wait) => return Some(wait),
                UpdateDeadline::Yield(1) => {}
                _ => panic!("unexpected deadline update"),
            }
        }
        None
    }

    #[tokio::test(start_paused = true)]
    async fn alone_a_tenant_runs_its_long_calls_freely() {
        let mix = Arc::new(TenantMix::new(WINDOW));
        let tenant = HotCalls::new(mix, 2);
        let end = Instant::now() + Duration::from_secs(1);
        let (mut first, mut second) = (tenant.call_started(), tenant.call_started());
        assert!(first_wait(&mut first, end).is_none());
        assert!(first_wait(&mut second, end).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn mixed_with_another_tenant_its_hot_calls_take_turns() {
        let mix = Arc::new(TenantMix::new(WINDOW));
        let busy = HotCalls::new(mix.clone(), 2);
        let end = Instant::now() + Duration::from_secs(3600);
        let mut first = busy.call_started();
        let mut second = busy.call_started();
        // alone, the tenant is not mixed; once another tenant starts a call it is, although
        // its own calls started before
        assert!(!mix.mixed_for(busy.tenant));
        let other = HotCalls::new(mix.clone(), 2);
        let _served = other.call_started();
        assert!(mix.mixed_for(busy.tenant));
        // and stays so while the other tenant's calls keep starting, however long ago its own
        // calls started (a spinning plugin's calls start once and run on)
        for _ in 0..3 {
            std::thread::sleep(WINDOW / 2);
            let _served = other.call_started();
        }
        assert!(mix.mixed_for(busy.tenant));

        // the first hot call gets the tenant's one place (two cores) and then runs on
        first_wait(&mut first, end).expect("asks for a place").await;
        assert!(first.has_slot());
        assert!(matches!(first.at_tick(end), UpdateDeadline::Yield(1)));
        // the second waits for it, as long as tenants are mixed (the mix is read from the
        // real clock, which hardly moves here)...
        let waiting = tokio::spawn(first_wait(&mut second, end).expect("asks for a place"));
        tokio::time::sleep(MIXED_RECHECK * 20).await;
        assert!(!waiting.is_finished());
        // ...until the first's turn is over: it gives its place up and queues again
        let mut ticks = 1;
        let requeued = loop {
            match first.at_tick(end) {
                UpdateDeadline::Yield(1) => ticks += 1,
                UpdateDeadline::YieldCustom(_, wait) => break tokio::spawn(wait),
                _ => panic!("unexpected deadline update"),
            }
        };
        // (the tick at which it gives the place up is the last of its turn)
        assert_eq!(ticks + 1, TURN_TICKS);
        waiting.await.expect("waited");
        assert!(second.has_slot() && !first.has_slot());
        tokio::time::sleep(MIXED_RECHECK * 20).await;
        assert!(!requeued.is_finished());
        // the place comes back when the second call ends
        drop(second);
        requeued.await.expect("waited");
        assert!(first.has_slot());
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_ends_with_the_budget_or_when_mixing_wears_off() {
        let mix = Arc::new(TenantMix::new(WINDOW));
        let busy = HotCalls::new(mix.clone(), 1);
        let other = HotCalls::new(mix.clone(), 1);
        let mut holder = busy.call_started();
        let mut late = busy.call_started();
        let _served = other.call_started();
        let far = Instant::now() + Duration::from_secs(3600);
        first_wait(&mut holder, far).expect("asks").await;

        // a wait ends with the budget, without a place
        let soon = Instant::now() + MIXED_RECHECK * 3;
        let started = tokio::time::Instant::now();
        first_wait(&mut late, soon).expect("asks").await;
        assert!(started.elapsed() <= MIXED_RECHECK * 4, "{:?}", started.elapsed());
        assert!(!late.has_slot());

        // mixing is measured on the real clock: once it wears off, a waiting call runs on
        let waiting = match late.at_tick(far) {
            UpdateDeadline::YieldCustom(_, wait) => tokio::spawn(wait),
            _ => panic!("the late call should wait again"),
        };
        std::thread::sleep(WINDOW + Duration::from_millis(20));
        assert!(!mix.mixed_for(busy.tenant));
        tokio::time::sleep(MIXED_RECHECK * 2).await;
        assert!(waiting.is_finished());
        assert!(!late.has_slot());
        assert!(matches!(late.at_tick(far), UpdateDeadline::Yield(1)));
    }
}
