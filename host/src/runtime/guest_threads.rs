//! Where guest code runs: a tokio runtime of its own, apart from the one that accepts
//! connections, speaks HTTP and IMAP, and times parked requests.
//!
//! Why: wasm runs on whatever thread polls the call's future and gives that thread back only
//! when the guest awaits a host call or yields. On the serving runtime a guest that spins held
//! a worker for its whole CPU budget (300 ms in the abuse test); with two spinning calls on
//! two cores no worker was left to read sockets, and another tenant's OPTIONS p99 went from
//! 1 ms to 42 ms (docs/reliability.md, finding 7). Here, the serving runtime's workers never run
//! guest code, and the guests share more threads than there are cores, so the kernel
//! time-slices a spinning guest against the others instead of queueing them behind it; each
//! guest also yields at every epoch tick (`runtime.rs`), runs at a lower priority than the
//! serving threads ([`GUEST_NICE`]), and a tenant has at most
//! `limits.concurrent_calls` calls running (`tenant_slots.rs`), fewer than there are threads,
//! so one tenant cannot occupy them all; its long calls take turns while other tenants are
//! served (`hot_calls.rs`).
//!
//! Host work that a capability call starts in the background (the mailbox's prefetch) is
//! spawned on the serving runtime, not here: a task spawned by a busy guest thread waits in
//! that thread's next-task slot, which the other threads do not steal, until the guest next
//! awaits the host (docs/benchmarks.md, read path, eighth pass).

use std::sync::OnceLock;

/// Threads for guest code: four per core, at least four. Idle threads cost nothing; beyond
/// the cores they only matter under contention, where the kernel shares the CPU fairly among
/// them (a short call of one tenant is not queued behind another tenant's long one).
pub fn thread_count() -> usize {
    (cores() * 4).max(4)
}

/// The default of `limits.concurrent_calls`: two calls per core, at least two. A busy tenant
/// keeps every core busy (its calls also wait for IMAP part of the time), and half the guest
/// threads stay free for the other tenants.
pub fn default_concurrent_calls() -> u32 {
    u32::try_from(cores() * 2).unwrap_or(u32::MAX).max(2)
}

pub(super) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

static GUESTS: OnceLock<tokio::runtime::Runtime> = OnceLock::new();

/// Starts the guest runtime (once; kept for the life of the process: a runtime must not be
/// dropped from async code).
pub fn start() -> std::io::Result<()> {
    if GUESTS.get().is_some() {
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(thread_count())
        .thread_name("plugin-guest")
        // A guest yields every epoch tick (10 ms): check the queue of newly started calls
        // every few polls, not every 61, so a new call is not left waiting behind a busy
        // thread's own queue.
        .global_queue_interval(4)
        .on_thread_start(lower_priority)
        .enable_all()
        .build()?;
    // a concurrent start won the race: its runtime serves, this one is dropped unused (not
    // from async code: `PluginRuntime::new` runs before the serving runtime starts)
    let _ = GUESTS.set(runtime);
    Ok(())
}

/// The nice value of guest threads: under contention the threads that accept connections and
/// move bytes (for every tenant) run before guest code, so a spinning plugin delays the
/// others' requests mostly by their own (short) guest part. Without contention it changes
/// nothing: an idle core runs whatever is runnable.
const GUEST_NICE: libc::c_int = 10;

fn lower_priority() {
    // On Linux the nice value belongs to the thread: `who = 0` is the calling thread. Raising
    // it needs no privilege; a failure (e.g. a seccomp filter) only leaves the default.
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority reads no memory of ours; it only changes the caller's nice value.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, GUEST_NICE);
    }
}

/// Where to spawn guest code: the guest runtime once started, else (unit tests that build a
/// plugin without [`start`]) the caller's runtime.
pub fn handle() -> tokio::runtime::Handle {
    GUESTS.get().map_or_else(tokio::runtime::Handle::current, |runtime| runtime.handle().clone())
}
