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
//! *hot*, and while tenants are mixed (calls of different tenants started one after the other
//! within [`MIXED_WINDOW`]), half the cores' worth of one tenant's hot calls (at least one)
//! run freely; its other hot calls wait at each tick, up to [`MAX_WAIT`], for one of those
//! places, so they run about one tick in ten. A tenant alone on the gateway is never held
//! back, and short calls (nearly all of them: a Sync page is a few ticks) never are. A call
//! is slowed, never failed, by this; but its wall-clock budget keeps running while it waits,
//! so a tenant whose calls are all long gets fewer of them done while it shares the gateway.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::UpdateDeadline;

/// Ticks (10 ms each) a call may run guest code before it counts as hot.
const HOT_AFTER_TICKS: u32 = 5;

/// The longest a hot call waits at one tick for a place among those that run freely: then it
/// runs through one more tick and waits again. Bounded so that two legitimately long calls of
/// a tenant (big attachments) both progress, the second at about a tenth of the speed.
const MAX_WAIT: Duration = Duration::from_millis(90);

/// How recently calls of two tenants must have followed each other for the tenants to count
/// as mixed.
const MIXED_WINDOW: Duration = Duration::from_secs(2);

/// Which tenants' calls started lately: shared by every tenant of the process.
pub struct TenantMix {
    epoch: Instant,
    /// [`MIXED_WINDOW`], shorter in tests.
    window: Duration,
    next_tenant: AtomicU64,
    /// The tenant of the call that started last (0: none yet).
    last_tenant: AtomicU64,
    /// When (ms after `epoch`, plus one; 0: never) a call started after another tenant's.
    mixed_at: AtomicU64,
}

impl TenantMix {
    fn new(window: Duration) -> Self {
        TenantMix {
            epoch: Instant::now(),
            window,
            next_tenant: AtomicU64::new(1),
            last_tenant: AtomicU64::new(0),
            mixed_at: AtomicU64::new(0),
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
        let previous = self.last_tenant.swap(tenant, Ordering::Relaxed);
        if previous != 0 && previous != tenant {
            self.mixed_at.store(self.now_ms() + 1, Ordering::Relaxed);
        }
    }

    fn mixed(&self) -> bool {
        let mixed_at = self.mixed_at.load(Ordering::Relaxed);
        let window = u64::try_from(self.window.as_millis()).unwrap_or(u64::MAX);
        mixed_at != 0 && self.now_ms() + 1 - mixed_at <= window
    }
}

/// One tenant's hot calls (a clone is the same tenant).
#[derive(Clone)]
pub struct HotCalls {
    mix: Arc<TenantMix>,
    tenant: u64,
    /// Hot calls allowed to run while tenants are mixed.
    running: Arc<Semaphore>,
}

impl HotCalls {
    /// `cores`: the machine's; half of them (at least one) may run this tenant's hot calls.
    pub fn new(mix: Arc<TenantMix>, cores: usize) -> Self {
        let tenant = mix.next_tenant.fetch_add(1, Ordering::Relaxed);
        HotCalls { mix, tenant, running: Arc::new(Semaphore::new((cores / 2).max(1))) }
    }

    /// Notes a call of this tenant starting; what its epoch callback consults.
    pub fn call_started(&self) -> HotCall {
        self.mix.call_started(self.tenant);
        HotCall {
            mix: self.mix.clone(),
            running: self.running.clone(),
            ticks: 0,
            slot: Arc::new(Mutex::new(None)),
        }
    }
}

/// One call, as its epoch callback sees it.
pub struct HotCall {
    mix: Arc<TenantMix>,
    running: Arc<Semaphore>,
    ticks: u32,
    /// The hot call's place among those allowed to run, once it got one; freed when the call
    /// (its store, which owns this) ends.
    slot: Arc<Mutex<Option<OwnedSemaphorePermit>>>,
}

impl HotCall {
    /// What the call does at a tick it runs through before its budget (ending at
    /// `budget_end`) is spent: yield and go on, or first wait for a place among its tenant's
    /// freely running hot calls, at most [`MAX_WAIT`] and not past `budget_end` (the next tick
    /// then interrupts it).
    pub fn at_tick(&mut self, budget_end: Instant) -> UpdateDeadline {
        self.ticks = self.ticks.saturating_add(1);
        if self.ticks <= HOT_AFTER_TICKS || !self.mix.mixed() || self.has_slot() {
            return UpdateDeadline::Yield(1);
        }
        let (running, slot) = (self.running.clone(), self.slot.clone());
        UpdateDeadline::YieldCustom(
            1,
            Box::pin(async move {
                // (tokio's clock, which is the real one but for tests that pause it)
                let until = tokio::time::Instant::from_std(budget_end)
                    .min(tokio::time::Instant::now() + MAX_WAIT);
                let acquired = tokio::time::timeout_at(until, running.acquire_owned()).await;
                if let Ok(Ok(permit)) = acquired {
                    *slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(permit);
                }
            }),
        )
    }

    fn has_slot(&self) -> bool {
        self.slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner).is_some()
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
        let other = HotCalls::new(mix.clone(), 2);
        let end = Instant::now() + Duration::from_secs(1);
        let mut first = busy.call_started();
        let mut second = busy.call_started();
        let _served = other.call_started();
        assert!(mix.mixed());

        // the first hot call gets the tenant's one place (two cores) and then runs on
        first_wait(&mut first, end).expect("asks for a place").await;
        assert!(first.has_slot());
        assert!(matches!(first.at_tick(end), UpdateDeadline::Yield(1)));
        // the second waits for it, at most MAX_WAIT per tick...
        let started = tokio::time::Instant::now();
        first_wait(&mut second, end).expect("asks for a place").await;
        // (the wait's end is on the real clock, a little ahead of the paused one)
        let waited = started.elapsed();
        assert!(waited >= MAX_WAIT && waited < MAX_WAIT * 2, "waited {waited:?}");
        assert!(!second.has_slot());
        let waiting = match second.at_tick(end) {
            UpdateDeadline::YieldCustom(_, wait) => tokio::spawn(wait),
            _ => panic!("the second call should wait again"),
        };
        tokio::time::sleep(MAX_WAIT / 2).await;
        assert!(!waiting.is_finished());
        // ...and gets the place when the first call ends
        drop(first);
        waiting.await.expect("waited");
        assert!(second.has_slot());
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_ends_with_the_budget_and_mixing_wears_off() {
        let mix = Arc::new(TenantMix::new(WINDOW));
        let busy = HotCalls::new(mix.clone(), 1);
        let other = HotCalls::new(mix.clone(), 1);
        let end = Instant::now() + MAX_WAIT / 3;
        let mut holder = busy.call_started();
        let mut late = busy.call_started();
        let _served = other.call_started();
        first_wait(&mut holder, end).expect("asks").await;
        let started = tokio::time::Instant::now();
        first_wait(&mut late, end).expect("asks").await;
        assert!(started.elapsed() < MAX_WAIT / 2);
        assert!(!late.has_slot());
        drop(holder);

        // mixing is measured on the real clock: it wears off after the window, and the hot
        // call runs on without waiting
        std::thread::sleep(WINDOW + Duration::from_millis(20));
        assert!(!mix.mixed());
        assert!(matches!(late.at_tick(end), UpdateDeadline::Yield(1)));
    }
}
