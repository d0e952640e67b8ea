//! Throughput of the redb state store: get / put / compare-and-swap per second, from one task
//! and from 8 concurrent tasks, with immediate (fsync per commit group) and eventual durability.
//!
//! `cargo bench -p eas-edge --bench state` (set STATE_BENCH_SECONDS to change the time per case).

use eas_edge::state::{Durability, Namespace, RedbOptions, RedbStore, StateStore};
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
}

impl Operation {
    fn name(self) -> &'static str {
        match self {
            Operation::Get => "get",
            Operation::Put => "put",
            Operation::Cas => "cas",
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seconds = std::env::var("STATE_BENCH_SECONDS").ok().and_then(|s| s.parse().ok());
    let run_for = Duration::from_secs_f64(seconds.unwrap_or(2.0));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        println!("{:<10} {:<5} {:>5} {:>12}", "durability", "op", "tasks", "ops/s");
        for durability in [Durability::Immediate, Durability::Eventual] {
            let dir = tempfile::tempdir()?;
            let options = RedbOptions { durability, ..RedbOptions::default() };
            let store = Arc::new(RedbStore::open(dir.path().join("state.redb"), options).await?);
            for tasks in [1, 8] {
                for operation in [Operation::Put, Operation::Get, Operation::Cas] {
                    let rate = measure(&store, operation, tasks, run_for).await?;
                    println!(
                        "{:<10} {:<5} {:>5} {:>12.0}",
                        format!("{durability:?}").to_lowercase(),
                        operation.name(),
                        tasks,
                        rate
                    );
                }
            }
        }
        Ok(())
    })
}

/// Runs `operation` from `tasks` concurrent tasks for `run_for`; returns operations per second.
async fn measure(
    store: &Arc<RedbStore>,
    operation: Operation,
    tasks: usize,
    run_for: Duration,
) -> Result<f64, Box<dyn std::error::Error>> {
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
                    Operation::Cas => {
                        let current = store.get(&ns, "counter").await?;
                        let next = current.as_deref().map_or(0, counter_value) + 1;
                        let swapped = store
                            .compare_and_swap(
                                &ns,
                                "counter",
                                current.as_deref(),
                                Some(next.to_le_bytes().to_vec()),
                            )
                            .await?;
                        assert!(swapped, "no other task writes this counter");
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

fn counter_value(bytes: &[u8]) -> u64 {
    bytes.try_into().map(u64::from_le_bytes).unwrap_or(0)
}
