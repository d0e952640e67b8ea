//! Crash safety of the redb state store: a child process writes in a loop and prints an ack
//! after each write's future completes; the test `kill -9`s it at a random point, reopens the
//! file and checks that every acknowledged write is there and no transaction is half-applied.
//!
//! The child is this test binary itself, re-run with `CHILD_ENV` set on the ignored test
//! `crash_writer_child`.

use eas_edge::state::{
    Condition, Durability, Namespace, RedbOptions, RedbStore, StateError, StateStore, Write,
};
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

const CHILD_ENV: &str = "EAS_STATE_CRASH_CHILD_FILE";
const DURABILITY_ENV: &str = "EAS_STATE_CRASH_CHILD_DURABILITY";
/// Concurrent writer tasks in the child, so kills also land in the middle of commit groups.
const WRITERS: u64 = 4;
/// Each writer cycles through this many log keys, written in the same transaction as its counter.
const LOG_SLOTS: u64 = 8;

fn namespace() -> Namespace {
    Namespace::device("crash", "alice", "phone")
}

fn options(durability: Durability) -> RedbOptions {
    RedbOptions { durability, flush_interval_ms: 5, ..RedbOptions::default() }
}

fn decode(bytes: &[u8]) -> u64 {
    bytes.try_into().map(u64::from_le_bytes).unwrap_or(u64::MAX)
}

async fn read_counter(store: &RedbStore, key: &str) -> Result<Option<u64>, StateError> {
    Ok(store.get(&namespace(), key).await?.map(|bytes| decode(&bytes)))
}

/// The child: every writer advances its counter, its mirror and one log slot in one
/// transaction, then prints `ack <writer> <value>`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by the crash tests as a child process"]
async fn crash_writer_child() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        eprintln!("only meaningful as the crash tests' child process");
        return;
    };
    let durability = match std::env::var(DURABILITY_ENV).as_deref() {
        Ok("eventual") => Durability::Eventual,
        _ => Durability::Immediate,
    };
    let store = std::sync::Arc::new(
        RedbStore::open(Path::new(&path), options(durability)).await.expect("child open"),
    );
    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..WRITERS {
        let store = store.clone();
        writers.spawn(async move {
            let counter = format!("counter{writer}");
            let mut current = read_counter(&store, &counter).await.expect("read counter");
            loop {
                let next = current.map_or(1, |n| n + 1);
                let expected = current.map(|n| n.to_le_bytes().to_vec());
                let condition = Condition { key: counter.clone(), expected };
                let writes = vec![
                    Write::put(counter.as_str(), next.to_le_bytes()),
                    Write::put(format!("mirror{writer}"), next.to_le_bytes()),
                    Write::put(format!("log{writer}-{}", next % LOG_SLOTS), next.to_le_bytes()),
                ];
                let applied = store.transact(&namespace(), &[condition], writes).await;
                assert!(applied.expect("transact"), "only this task writes {counter}");
                println!("ack {writer} {next}");
                current = Some(next);
            }
        });
    }
    writers.join_next().await;
}

fn random_below(bound: u64) -> u64 {
    RandomState::new().hash_one(std::time::SystemTime::now()) % bound
}

/// Runs the child on `path`, kills it with SIGKILL after `kill_after_acks` acks, and returns the
/// last value each writer acknowledged.
fn run_child_and_kill(path: &Path, durability: &str, kill_after_acks: u64) -> HashMap<u64, u64> {
    let mut child = Command::new(std::env::current_exe().expect("test binary path"))
        .args(["crash_writer_child", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, path)
        .env(DURABILITY_ENV, durability)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let mut output = BufReader::new(child.stdout.take().expect("child stdout"));
    let mut acked = HashMap::new();
    let mut acks = 0;
    let mut killed = false;
    let mut line = String::new();
    loop {
        if acks >= kill_after_acks && !killed {
            child.kill().expect("kill -9 the child");
            killed = true;
        }
        line.clear();
        if output.read_line(&mut line).expect("read child output") == 0 {
            break;
        }
        // A line cut by the kill is not an ack.
        let Some(ack) = line.strip_prefix("ack ").and_then(|rest| rest.strip_suffix('\n')) else {
            continue;
        };
        let (writer, value) = ack.split_once(' ').expect("ack <writer> <value>");
        acked.insert(writer.parse().expect("writer"), value.parse().expect("value"));
        acks += 1;
    }
    let status = child.wait().expect("wait for child");
    assert!(killed, "the child stopped on its own: {status}");
    acked
}

/// Reopens the file and checks every writer's entries. Returns the counters found.
async fn check_store(path: &Path, acked: &HashMap<u64, u64>, lossless: bool) -> HashMap<u64, u64> {
    let store = RedbStore::open(path, options(Durability::Immediate)).await.expect("reopen");
    let mut counters = HashMap::new();
    for writer in 0..WRITERS {
        let counter = read_counter(&store, &format!("counter{writer}")).await.expect("get");
        let mirror = read_counter(&store, &format!("mirror{writer}")).await.expect("get");
        assert_eq!(counter, mirror, "writer {writer}: a transaction was applied in part");
        let Some(counter) = counter else { continue };
        let log = read_counter(&store, &format!("log{writer}-{}", counter % LOG_SLOTS)).await;
        assert_eq!(log.expect("get"), Some(counter), "writer {writer}: log slot missing");
        if lossless && let Some(&last_ack) = acked.get(&writer) {
            assert!(counter >= last_ack, "writer {writer}: acked {last_ack}, found {counter}");
            // At most the one write that was in flight when the kill came.
            assert!(counter <= last_ack + 1, "writer {writer}: acked {last_ack}, found {counter}");
        }
        counters.insert(writer, counter);
    }
    store.close().await.expect("close");
    counters
}

async fn kill_repeatedly(durability: &str, rounds: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("state.redb");
    let lossless = durability == "immediate";
    let mut previous: HashMap<u64, u64> = HashMap::new();
    for round in 0..rounds {
        // Sometimes right at start (during the open, or the repair after the last kill).
        let kill_after_acks = if round % 3 == 0 { 0 } else { random_below(400) };
        let acked = run_child_and_kill(&path, durability, kill_after_acks);
        let counters = check_store(&path, &acked, lossless).await;
        if lossless {
            for (writer, before) in &previous {
                let now = counters.get(writer).copied().unwrap_or(0);
                assert!(now >= *before, "round {round}: writer {writer} went back to {now}");
            }
        }
        previous = counters;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9() {
    kill_repeatedly("immediate", 12).await;
}

/// Eventual durability may lose the last acknowledged writes, but never half of a transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eventual_durability_stays_consistent_across_kill_9() {
    kill_repeatedly("eventual", 6).await;
}
