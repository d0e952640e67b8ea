//! Pages an account is fetching (and having rendered) ahead right now, by folder and UID.
//!
//! A Sync hints the next two pages, so one page's fetch and rendering overlap the requests
//! before it. A request then waits only for the work that holds UIDs it wants (not for
//! whatever else is under way), and a hint's UIDs already on their way are not fetched twice.

use std::sync::atomic::{AtomicU64, Ordering};
// nothing panics while holding the jobs' lock; if something did, the list is still whole
use crate::unpoisoned::lock;
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

/// Pages one account has on their way at most; a hint beyond it is dropped (a plugin's bug or
/// a hostile one must not make the host queue work without end).
pub const MAX_JOBS: usize = 2;

#[derive(Debug, Default)]
pub struct InFlight {
    jobs: Arc<Mutex<Vec<Job>>>,
    next_id: AtomicU64,
}

#[derive(Debug)]
struct Job {
    id: u64,
    folder: String,
    /// Ascending.
    uids: Vec<u32>,
    /// Closed when the job ends: waiters then return at once.
    done: Arc<Semaphore>,
}

/// A page on its way; the page counts as such until this is dropped.
#[derive(Debug)]
pub struct JobGuard {
    id: u64,
    jobs: Arc<Mutex<Vec<Job>>>,
    done: Arc<Semaphore>,
}

impl Drop for JobGuard {
    fn drop(&mut self) {
        lock(&self.jobs).retain(|job| job.id != self.id);
        self.done.close();
    }
}

/// Something to wait for: the end of a job.
pub struct Ending(Arc<Semaphore>);

impl Ending {
    pub async fn wait(self) {
        // (no permit is ever added: this returns when the semaphore is closed)
        drop(self.0.acquire().await);
    }
}

impl InFlight {
    /// Registers a job for the UIDs of `folder` that are neither `held` already nor on their
    /// way; returns it with those UIDs (ascending), or `None` when there are none or the
    /// account has [`MAX_JOBS`] under way.
    pub fn begin(
        &self,
        folder: &str,
        mut uids: Vec<u32>,
        held: impl Fn(u32) -> bool,
    ) -> Option<(JobGuard, Vec<u32>)> {
        let mut jobs = lock(&self.jobs);
        if jobs.len() >= MAX_JOBS {
            return None;
        }
        uids.sort_unstable();
        uids.dedup();
        uids.retain(|&uid| {
            !held(uid)
                && !jobs
                    .iter()
                    .any(|job| job.folder == folder && job.uids.binary_search(&uid).is_ok())
        });
        if uids.is_empty() {
            return None;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let done = Arc::new(Semaphore::new(0));
        jobs.push(Job { id, folder: folder.to_owned(), uids: uids.clone(), done: done.clone() });
        Some((JobGuard { id, jobs: self.jobs.clone(), done }, uids))
    }

    /// The jobs under way that hold any of `uids` of `folder`.
    pub fn holding(&self, folder: &str, uids: &[u32]) -> Vec<Ending> {
        lock(&self.jobs)
            .iter()
            .filter(|job| job.folder == folder)
            .filter(|job| uids.iter().any(|uid| job.uids.binary_search(uid).is_ok()))
            .map(|job| Ending(job.done.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_hint_fetches_only_what_is_neither_held_nor_on_its_way() {
        let in_flight = InFlight::default();
        let (first, uids) = in_flight.begin("INBOX", vec![5, 3, 4, 3], |_| false).expect("job");
        assert_eq!(uids, [3, 4, 5]);
        let (_second, uids) =
            in_flight.begin("INBOX", vec![1, 2, 3, 4, 6], |uid| uid == 6).expect("job");
        assert_eq!(uids, [1, 2], "3 and 4 are on their way, 6 is held");
        assert!(in_flight.begin("Sent", vec![9], |_| false).is_none(), "two jobs at most");
        drop(first);
        assert!(in_flight.begin("INBOX", vec![3], |_| true).is_none(), "nothing left to fetch");
        let (_third, uids) = in_flight.begin("Sent", vec![3], |_| false).expect("another folder");
        assert_eq!(uids, [3]);
    }

    #[tokio::test]
    async fn a_request_waits_only_for_the_jobs_holding_its_uids() {
        let in_flight = InFlight::default();
        let (near, _) = in_flight.begin("INBOX", vec![10, 11], |_| false).expect("job");
        let (far, _) = in_flight.begin("INBOX", vec![1, 2], |_| false).expect("job");
        assert_eq!(in_flight.holding("INBOX", &[11, 12]).len(), 1);
        assert!(in_flight.holding("Sent", &[11]).is_empty());
        let waits = in_flight.holding("INBOX", &[11]);
        let waiting = tokio::spawn(async move {
            for ending in waits {
                ending.wait().await;
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "the job holding UID 11 is still under way");
        drop(near);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("ends with its job")
            .expect("joins");
        assert_eq!(in_flight.holding("INBOX", &[1, 10]).len(), 1, "only the other job is left");
        drop(far);
        assert!(in_flight.holding("INBOX", &[1]).is_empty());
    }
}
