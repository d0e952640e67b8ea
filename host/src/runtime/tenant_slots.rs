//! At most `limits.concurrent_calls` plugin calls of one tenant run at once; further calls wait
//! for a slot, at most as long as their own CPU budget, then fail with 503 (the phone retries).
//! This keeps one tenant, however busy or faulty, from occupying every guest thread
//! (`guest_threads.rs`); parked Pings hold no slot (they hold no call).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Clone)]
pub struct TenantSlots {
    slots: Arc<Semaphore>,
    limit: u32,
}

/// No slot came free in time.
#[derive(Debug, thiserror::Error)]
#[error("{limit} plugin calls of this tenant were running for {waited:?}")]
pub struct NoSlot {
    limit: u32,
    waited: Duration,
}

impl TenantSlots {
    pub fn new(limit: u32) -> Self {
        let limit = limit.max(1);
        TenantSlots { slots: Arc::new(Semaphore::new(limit as usize)), limit }
    }

    /// A slot, held until the permit is dropped; waits at most `wait`.
    pub async fn acquire(&self, wait: Duration) -> Result<OwnedSemaphorePermit, NoSlot> {
        let no_slot = NoSlot { limit: self.limit, waited: wait };
        match tokio::time::timeout(wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            // the semaphore is never closed; treat it like a timeout if it were
            Ok(Err(_)) | Err(_) => Err(no_slot),
        }
    }

    /// A slot if one is free now (for work that is only worth doing then).
    pub fn try_acquire(&self) -> Option<OwnedSemaphorePermit> {
        self.slots.clone().try_acquire_owned().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_full_tenant_waits_then_fails_and_a_freed_slot_is_reused() {
        let slots = TenantSlots::new(2);
        let first = slots.acquire(Duration::from_secs(1)).await.expect("slot 1");
        let _second = slots.acquire(Duration::from_secs(1)).await.expect("slot 2");
        let refused = slots.acquire(Duration::from_millis(300)).await;
        assert!(refused.is_err());
        assert!(slots.try_acquire().is_none(), "none free now");
        drop(first);
        assert!(slots.try_acquire().is_some());
        assert!(slots.acquire(Duration::from_millis(1)).await.is_ok());
        // other tenants have their own slots
        let other = TenantSlots::new(1);
        assert!(other.acquire(Duration::from_millis(1)).await.is_ok());
    }
}
