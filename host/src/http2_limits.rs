//! Time limits for phones' HTTP/2 connections.
//!
//! hyper's HTTP/2 server has no header or idle timeout: a client that opens a connection and
//! never completes a request (the HTTP/2 slowloris: the preface, then a HEADERS frame trickled
//! a byte at a time) would hold its connection for ever. The host's HTTP/1.1 rules apply here
//! too, counted in requests since frames are not visible: a connection must begin its first
//! request within [`FIRST_REQUEST`] and may then sit without one in progress for [`IDLE`].
//! A request in progress, such as a parked Ping, keeps its connection open; its body has its
//! own deadline (`request_body`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// From the connection's start to its first request (the HTTP/1.1 head timeout).
pub const FIRST_REQUEST: Duration = Duration::from_secs(30);
/// Between requests (the HTTP/1.1 idle timeout).
pub const IDLE: Duration = Duration::from_secs(120);

/// What the requests of one connection are doing.
#[derive(Debug)]
pub struct Activity {
    started: Instant,
    in_flight: AtomicUsize,
    /// When the last request ended, in milliseconds after `started`.
    idle_since_ms: AtomicU64,
    seen_request: AtomicBool,
}

/// A request in progress; dropping it ends the request.
#[derive(Debug)]
pub struct InFlight(Arc<Activity>);

impl Activity {
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity {
            started: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
            seen_request: AtomicBool::new(false),
        })
    }

    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.seen_request.store(true, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(Arc::clone(self))
    }

    /// Resolves once the connection broke a limit: no first request in time, or idle too long.
    pub async fn expired(&self) {
        loop {
            let deadline = self.deadline();
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }

    /// The next moment to check: the deadline when no request is in progress, else one idle
    /// period ahead (the request may end in between; the check then comes at most that late).
    fn deadline(&self) -> Instant {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return Instant::now() + IDLE;
        }
        let limit = if self.seen_request.load(Ordering::Relaxed) { IDLE } else { FIRST_REQUEST };
        let idle_since = Duration::from_millis(self.idle_since_ms.load(Ordering::Relaxed));
        self.started + idle_since + limit
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let since_start = u64::try_from(self.0.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.0.idle_since_ms.store(since_start, Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn expires_within(activity: &Activity, limit: Duration) -> bool {
        tokio::time::timeout(limit, activity.expired()).await.is_ok()
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_without_a_request_expires_after_the_first_request_limit() {
        let activity = Activity::new();
        assert!(!expires_within(&activity, FIRST_REQUEST - Duration::from_secs(1)).await);
        assert!(expires_within(&activity, Duration::from_secs(2)).await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_in_progress_keeps_the_connection() {
        let activity = Activity::new();
        let request = activity.begin();
        assert!(!expires_within(&activity, IDLE * 5).await, "a parked request must stay");
        drop(request);
        assert!(!expires_within(&activity, IDLE - Duration::from_secs(1)).await);
        assert!(expires_within(&activity, IDLE + Duration::from_secs(2)).await);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_time_counts_from_the_last_request() {
        let activity = Activity::new();
        drop(activity.begin());
        tokio::time::sleep(IDLE - Duration::from_secs(10)).await;
        drop(activity.begin());
        // the first request's idle period would have ended here
        assert!(!expires_within(&activity, Duration::from_secs(20)).await);
        assert!(expires_within(&activity, IDLE).await);
    }
}
