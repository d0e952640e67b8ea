//! The PostgreSQL backend against a real server (started per test from the Debian package by
//! `eas_edge_tests::postgres`): the shared conformance suite, and what only a shared database
//! has — several stores ("nodes") on one database, and schema migrations.

use super::*;
use crate::state::conformance::run_conformance;
use eas_edge_tests::postgres::Postgres;
use futures_util::future::join_all;

fn server() -> Postgres {
    Postgres::start().expect("start PostgreSQL (Debian package `postgresql`)")
}

async fn open(url: &str) -> PostgresStore {
    PostgresStore::open(PostgresOptions::new(url)).await.expect("open the PostgreSQL store")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    let postgres = server();
    let store = open(&postgres.url()).await;
    run_conformance(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_of_the_deferred_handle() {
    let postgres = server();
    let store = Arc::new(open(&postgres.url()).await);
    let deferred = store.clone().deferred();
    run_conformance(&*deferred).await;
    deferred.flush().await.expect("flush");
    // a second flush with nothing written since is free and fine
    deferred.flush().await.expect("flush again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_database_see_one_state() {
    let postgres = server();
    let url = postgres.url();
    let (a, b) = (open(&url).await, open(&url).await);
    let ns = Namespace::device("cluster", "alice", "phone");
    a.put(&ns, "synckey", b"1".to_vec()).await.expect("put on a");
    assert_eq!(b.get(&ns, "synckey").await.expect("get on b"), Some(b"1".to_vec()));

    // The same SyncKey advance tried on both nodes at once: exactly one wins.
    for round in 1..=10u32 {
        let current = round.to_string().into_bytes();
        let next = (round + 1).to_string();
        let attempt = |store, node| advance(store, &ns, current.clone(), next.clone(), node);
        let results = join_all([attempt(&a, "a"), attempt(&b, "b"), attempt(&a, "a2")]).await;
        assert_eq!(results.iter().filter(|won| **won).count(), 1, "round {round}: {results:?}");
        assert_eq!(b.get(&ns, "synckey").await.expect("get"), Some(next.into_bytes()));
    }

    // A deferred write on one node is visible on the other before it is flushed.
    let deferred = Arc::new(a).deferred();
    deferred.put(&ns, "deferred", b"x".to_vec()).await.expect("deferred put");
    assert_eq!(b.get(&ns, "deferred").await.expect("get"), Some(b"x".to_vec()));
    deferred.flush().await.expect("flush");
}

/// One SyncKey advance from `current` to `next`, recording which node made it.
async fn advance(
    store: &PostgresStore,
    ns: &Namespace,
    current: Vec<u8>,
    next: String,
    node: &str,
) -> bool {
    let conditions = [Condition::equals("synckey", current)];
    let writes = vec![Write::put("synckey", next), Write::put("winner", node)];
    store.transact(ns, &conditions, writes).await.expect("transact")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_run_once_even_when_nodes_start_together() {
    let postgres = server();
    let url = postgres.url();
    let stores = join_all((0..4).map(|_| PostgresStore::open(PostgresOptions::new(&url)))).await;
    for store in stores {
        store.expect("every node opens the store");
    }
    let versions = postgres.psql("SELECT version FROM eas_edge_schema ORDER BY version");
    assert_eq!(versions.expect("psql").trim(), SCHEMA_VERSION.to_string());
    // reopening an up-to-date database changes nothing and keeps the data
    let store = open(&url).await;
    let ns = Namespace::user("t", "u");
    store.put(&ns, "k", b"v".to_vec()).await.expect("put");
    let reopened = open(&url).await;
    assert_eq!(reopened.get(&ns, "k").await.expect("get"), Some(b"v".to_vec()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_schema_is_refused() {
    let postgres = server();
    let url = postgres.url();
    drop(open(&url).await);
    let newer = SCHEMA_VERSION + 1;
    postgres
        .psql(&format!("INSERT INTO eas_edge_schema (version) VALUES ({newer})"))
        .expect("psql");
    let error = PostgresStore::open(PostgresOptions::new(&url)).await.err().expect("refused");
    assert!(error.to_string().contains(&format!("version {newer}")), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_fails_to_open_with_the_reason() {
    let port = eas_edge_tests::process::free_port().expect("free port");
    let mut options = PostgresOptions::new(format!("postgresql://eas@127.0.0.1:{port}/eas"));
    options.connect_timeout_seconds = 2;
    let error = PostgresStore::open(options).await.err().expect("nothing listens there");
    assert!(matches!(error, StateError::Backend(_)), "{error:?}");
}
