//! Throughput of the state stores: get / put / compare-and-swap per second, and whole plugin
//! requests per second (a deferred handle: one read, one SyncKey compare-and-swap, two puts,
//! then the request's flush), from one task and from 8 concurrent tasks. Backends: redb with
//! immediate and eventual durability, and PostgreSQL (a throwaway server from the Debian
//! package, started like the tests' `eas_edge_tests::postgres`; fsync on).
//!
//! `cargo bench -p eas-edge --bench state` (STATE_BENCH_SECONDS sets the time per case,
//! STATE_BENCH_BACKENDS=redb or =postgres runs one kind only).

use eas_edge::state::{
    Durability, Namespace, PostgresOptions, PostgresStore, RedbOptions, RedbStore, StateStore,
    Write,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

const VALUE_BYTES: usize = 256;
const KEYS_PER_TASK: usize = 1000;

#[derive(Clone, Copy)]
enum Operation {
    Get,
    Put,
    /// Each task increments its own counter: measures the CAS path without conflicts.
    Cas,
    /// What one plugin request typically does to the store (see the module docs).
    Request,
}

impl Operation {
    fn name(self) -> &'static str {
        match self {
            Operation::Get => "get",
            Operation::Put => "put",
            Operation::Cas => "cas",
            Operation::Request => "request",
        }
    }
}

type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn main() -> BenchResult<()> {
    let seconds = std::env::var("STATE_BENCH_SECONDS").ok().and_then(|s| s.parse().ok());
    let run_for = Duration::from_secs_f64(seconds.unwrap_or(2.0));
    let only = std::env::var("STATE_BENCH_BACKENDS").unwrap_or_default();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        println!("{:<16} {:<8} {:>5} {:>12}", "store", "op", "tasks", "ops/s");
        if only.is_empty() || only == "redb" {
            for durability in [Durability::Immediate, Durability::Eventual] {
                let dir = tempfile::tempdir()?;
                let options = RedbOptions { durability, ..RedbOptions::default() };
                let store: Arc<dyn StateStore> =
                    Arc::new(RedbStore::open(dir.path().join("state.redb"), options).await?);
                let name = format!("redb-{}", format!("{durability:?}").to_lowercase());
                run_cases(&name, &store, run_for).await?;
            }
        }
        if only.is_empty() || only == "postgres" {
            let postgres = tokio::task::spawn_blocking(eas_edge_tests::postgres::Postgres::start)
                .await?
                .map_err(|error| format!("{error:#}"))?;
            let store: Arc<dyn StateStore> =
                Arc::new(PostgresStore::open(PostgresOptions::new(postgres.url())).await?);
            run_cases("postgres", &store, run_for).await?;
            drop(store);
            tokio::task::spawn_blocking(move || drop(postgres)).await?;
        }
        Ok(())
    })
}

async fn run_cases(name: &str, store: &Arc<dyn StateStore>, run_for: Duration) -> BenchResult<()> {
    for tasks in [1, 8] {
        for operation in [Operation::Put, Operation::Get, Operation::Cas, Operation::Request] {
            let rate = measure(store, operation, tasks, run_for).await?;
            println!("{name:<16} {:<8} {tasks:>5} {rate:>12.0}", operation.name());
        }
    }
    Ok(())
}

/// Runs `operation` from `tasks` concurrent tasks for `run_for`; returns operations per second.
async fn measure(
    store: &Arc<dyn StateStore>,
    operation: Operation,
    tasks: usize,
    run_for: Duration,
) -> BenchResult<f64> {
    let started = Instant::now();
    let mut running = tokio::task::JoinSet::new();
    for task in 0..tasks {
        let store = store.clone();
        running.spawn(async move {
            let ns = Namespace::device("bench", format!("user{task}"), "device");
            let value = vec![0x5a; VALUE_BYTES];
            let mut done = 0u64;
            while started.elapsed() < run_for {
                let key = format!("key{}", done as usize % KEYS_PER_TASK);
                match operation {
                    Operation::Get => {
                        store.get(&ns, &key).await?;
                    }
                    Operation::Put => store.put(&ns, &key, value.clone()).await?,
                    Operation::Cas => increment(&*store, &ns).await?,
                    Operation::Request => {
                        let request = store.clone().deferred();
                        request.get(&ns, "folders").await?;
                        increment(&*request, &ns).await?;
                        let writes = vec![Write::put(key.clone(), value.clone())];
                        request.transact(&ns, &[], writes).await?;
                        request.put(&ns, "last-answer", value.clone()).await?;
                        request.flush().await?;
                    }
                }
                done += 1;
            }
            Ok::<u64, eas_edge::state::StateError>(done)
        });
    }
    let mut total = 0;
    while let Some(finished) = running.join_next().await {
        total += finished??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

/// The task's own counter, advanced with compare-and-swap (like a SyncKey).
async fn increment(
    store: &dyn StateStore,
    ns: &Namespace,
) -> Result<(), eas_edge::state::StateError> {
    let current = store.get(ns, "counter").await?;
    let next = current.as_deref().map_or(0, counter_value) + 1;
    let new = Some(next.to_le_bytes().to_vec());
    let swapped = store.compare_and_swap(ns, "counter", current.as_deref(), new).await?;
    assert!(swapped, "no other task writes this counter");
    Ok(())
}

fn counter_value(bytes: &[u8]) -> u64 {
    bytes.try_into().map(u64::from_le_bytes).unwrap_or(0)
}
