use super::*;
use crate::state::conformance::run_conformance;
use std::io::{Read, Seek, SeekFrom, Write as _};

fn immediate() -> RedbOptions {
    RedbOptions::default()
}

fn eventual() -> RedbOptions {
    RedbOptions {
        durability: Durability::Eventual,
        flush_interval_ms: 50,
        ..RedbOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_with_immediate_durability() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = RedbStore::open(dir.path().join("state.redb"), immediate()).await.expect("open");
    run_conformance(&store).await;
    store.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_with_eventual_durability() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = RedbStore::open(dir.path().join("state.redb"), eventual()).await.expect("open");
    run_conformance(&store).await;
    store.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usable_as_dyn_state_store() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn StateStore> =
        Arc::new(RedbStore::open(dir.path().join("state.redb"), immediate()).await.expect("open"));
    let ns = Namespace::device("dyn", "alice", "phone");
    store.put(&ns, "k", b"v".to_vec()).await.expect("put");
    assert_eq!(store.get(&ns, "k").await.expect("get"), Some(b"v".to_vec()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_survive_close_and_reopen() {
    for options in [immediate(), eventual()] {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("state.redb");
        let ns = Namespace::device("persist", "alice", "phone");
        let store = RedbStore::open(&path, options.clone()).await.expect("open");
        store.put(&ns, "synckey", b"7".to_vec()).await.expect("put");
        store.put(&ns, "gone", b"x".to_vec()).await.expect("put");
        store.delete(&ns, "gone").await.expect("delete");
        store.close().await.expect("close");

        let store = RedbStore::open(&path, options).await.expect("reopen");
        assert_eq!(store.get(&ns, "synckey").await.expect("get"), Some(b"7".to_vec()));
        assert_eq!(store.get(&ns, "gone").await.expect("get"), None);
        let keys = store.list(&ListScope::Keys(ns), &PageRequest::first(10)).await.expect("list");
        assert_eq!(keys.items, ["synckey"]);
        store.close().await.expect("close");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eventual_writes_are_synced_within_the_interval() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("state.redb");
    let store = RedbStore::open(&path, eventual()).await.expect("open");
    let ns = Namespace::device("eventual", "alice", "phone");
    store.put(&ns, "k", b"v".to_vec()).await.expect("put");
    // The writer syncs on its own after the interval, with no further write to trigger it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    store.close().await.expect("close");
    let store = RedbStore::open(&path, eventual()).await.expect("reopen");
    assert_eq!(store.get(&ns, "k").await.expect("get"), Some(b"v".to_vec()));
    store.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_open_of_the_same_file_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("state.redb");
    let store = RedbStore::open(&path, immediate()).await.expect("open");
    let error = RedbStore::open(&path, immediate()).await.err().expect("second open refused");
    assert!(matches!(error, StateError::Open { .. }), "{error:?}");
    assert!(error.to_string().contains("already open"), "{error}");
    store.close().await.expect("close");
    RedbStore::open(&path, immediate())
        .await
        .expect("open after close")
        .close()
        .await
        .expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_is_not_redb_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("state.redb");
    std::fs::write(&path, vec![0x42; 64 * 1024]).expect("write garbage");
    let error = RedbStore::open(&path, immediate()).await.err().expect("garbage refused");
    assert!(matches!(error, StateError::Open { .. } | StateError::Corrupt(_)), "{error:?}");
    assert_eq!(std::fs::read(&path).expect("read"), vec![0x42; 64 * 1024], "left untouched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_left_as_zeros_by_a_creation_cut_short_is_created_again() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("state.redb");
    std::fs::write(&path, vec![0; 64 * 1024]).expect("write zeros");
    let store = RedbStore::open(&path, immediate()).await.expect("opened afresh");
    let namespace = Namespace::device("t", "u", "d");
    store.put(&namespace, "k", b"v".to_vec()).await.expect("put");
    assert_eq!(store.get(&namespace, "k").await.expect("get"), Some(b"v".to_vec()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_left_without_its_magic_number_is_moved_aside_and_created_again() {
    // redb writes a new file's header first and its magic number last: a kill between the two
    // leaves a file that is not all zeros, but was never a database
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("state.redb");
    drop(redb::Database::create(&path).expect("create"));
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[..9].fill(0);
    std::fs::write(&path, &bytes).expect("write");
    let store = RedbStore::open(&path, immediate()).await.expect("opened afresh");
    let namespace = Namespace::device("t", "u", "d");
    store.put(&namespace, "k", b"v".to_vec()).await.expect("put");
    let moved: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().starts_with("state.redb.incomplete-"))
        .collect();
    assert_eq!(moved.len(), 1, "the incomplete file is kept aside");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_programs_redb_file_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("other.redb");
    {
        let db = redb::Database::create(&path).expect("create");
        let transaction = db.begin_write().expect("begin");
        let definition: redb::TableDefinition<u64, u64> = redb::TableDefinition::new("theirs");
        transaction.open_table(definition).expect("table").insert(1, 2).expect("insert");
        transaction.commit().expect("commit");
    }
    let error = RedbStore::open(&path, immediate()).await.err().expect("foreign file refused");
    assert!(error.to_string().contains("not an eas-edge state store"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_of_another_format_version_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("state.redb");
    RedbStore::open(&path, immediate()).await.expect("create").close().await.expect("close");
    {
        let db = redb::Database::open(&path).expect("open");
        let transaction = db.begin_write().expect("begin");
        let meta: redb::TableDefinition<&str, &str> = redb::TableDefinition::new("meta");
        transaction.open_table(meta).expect("meta").insert("format", "99").expect("insert");
        transaction.commit().expect("commit");
    }
    let error = RedbStore::open(&path, immediate()).await.err().expect("newer format refused");
    assert!(
        matches!(&error, StateError::UnsupportedFormat { found, .. } if found == "99"),
        "{error:?}"
    );
}

/// Overwrites part of every stored value with zeros, as a bad disk or a stray write would, and expects the open to refuse the file rather than serve it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_file_is_refused_at_open() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("state.redb");
    let ns = Namespace::device("damage", "alice", "phone");
    let marker = b"needle-needle-needle-needle";
    let store = RedbStore::open(&path, immediate()).await.expect("open");
    for i in 0..50 {
        store.put(&ns, &format!("k{i}"), marker.repeat(20)).await.expect("put");
    }
    store.close().await.expect("close");

    let mut file = std::fs::OpenOptions::new().read(true).write(true).open(&path).expect("open");
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).expect("read");
    // Every copy: pages freed by later commits may still hold old copies of the values.
    let copies: Vec<usize> =
        (0..bytes.len() - marker.len()).filter(|&at| bytes[at..].starts_with(marker)).collect();
    assert!(!copies.is_empty(), "the values are on disk");
    for at in copies {
        file.seek(SeekFrom::Start(at as u64)).expect("seek");
        file.write_all(&[0u8; 8]).expect("damage");
    }
    file.sync_all().expect("sync");
    drop(file);

    let error = RedbStore::open(&path, immediate()).await.err().expect("damaged file refused");
    assert!(matches!(error, StateError::Corrupt(_)), "{error:?}");
    assert!(error.to_string().contains("state.redb"), "names the file: {error}");
}

/// A file cut short (a torn copy, a full disk during a backup restore) is refused, whatever the
/// cut, and never panics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_file_is_refused_at_open() {
    let dir = tempfile::tempdir().expect("temp dir");
    let original = dir.path().join("original.redb");
    let ns = Namespace::device("torn", "alice", "phone");
    let store = RedbStore::open(&original, immediate()).await.expect("open");
    for i in 0..200 {
        store.put(&ns, &format!("k{i}"), vec![i as u8; 2000]).await.expect("put");
    }
    store.close().await.expect("close");
    let bytes = std::fs::read(&original).expect("read");
    for percent in [1, 10, 50, 90, 99] {
        let torn = dir.path().join(format!("torn{percent}.redb"));
        std::fs::write(&torn, &bytes[..bytes.len() * percent / 100]).expect("write torn copy");
        let result = RedbStore::open(&torn, immediate()).await;
        let error = result.err().unwrap_or_else(|| panic!("{percent}% of the file was accepted"));
        assert!(matches!(error, StateError::Corrupt(_) | StateError::Open { .. }), "{error:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deferred_writes_behave_the_same_and_flush() {
    for options in [immediate(), eventual()] {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("state.redb");
        let store = Arc::new(RedbStore::open(&path, options.clone()).await.expect("open"));
        let deferred = store.clone().deferred();
        run_conformance(&*deferred).await;
        // Visible through the plain handle before any flush, durable after it.
        let ns = Namespace::device("deferred", "alice", "phone");
        deferred.put(&ns, "state", b"1".to_vec()).await.expect("put");
        let swapped = deferred.compare_and_swap(&ns, "state", Some(b"1"), Some(b"2".to_vec()));
        assert!(swapped.await.expect("cas"));
        assert_eq!(store.get(&ns, "state").await.expect("get"), Some(b"2".to_vec()));
        deferred.flush().await.expect("flush");
        deferred.flush().await.expect("a flush with nothing to sync");
        store.flush().await.expect("flush of the plain handle");
        drop(deferred);
        Arc::into_inner(store).expect("last handle").close().await.expect("close");
        let store = RedbStore::open(&path, options).await.expect("reopen");
        assert_eq!(store.get(&ns, "state").await.expect("get"), Some(b"2".to_vec()));
        store.close().await.expect("close");
    }
}

/// A damaged file: moved aside and replaced by an empty store by default (the damaged bytes
/// are never read as state), refused with `on_corruption = "refuse"`, and a file that is not
/// a redb file at all is refused and left in place either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_file_is_moved_aside_or_refused_as_configured() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("state.redb");
    let ns = Namespace::device("recover", "alice", "phone");
    let marker = b"recover-recover-recover";
    let store = RedbStore::open(&path, immediate()).await.expect("open");
    for i in 0..50 {
        store.put(&ns, &format!("k{i}"), marker.repeat(20)).await.expect("put");
    }
    store.close().await.expect("close");
    let mut bytes = std::fs::read(&path).expect("read");
    let copies: Vec<usize> =
        (0..bytes.len() - marker.len()).filter(|&at| bytes[at..].starts_with(marker)).collect();
    for at in copies {
        bytes[at..at + 8].fill(0);
    }
    std::fs::write(&path, &bytes).expect("damage");

    let refuse = RedbOptions { on_corruption: OnCorruption::Refuse, ..immediate() };
    let error = RedbStore::open_or_recover(&path, refuse).await.err().expect("refused");
    assert!(matches!(error, StateError::Corrupt(_)), "{error:?}");
    assert_eq!(std::fs::read(&path).expect("read"), bytes, "left in place");

    let (store, moved) = RedbStore::open_or_recover(&path, immediate()).await.expect("recovered");
    let moved = moved.expect("moved aside").0;
    assert_eq!(std::fs::read(&moved).expect("read moved"), bytes, "kept as it was");
    assert!(moved.to_string_lossy().contains("state.redb.corrupt-"), "{}", moved.display());
    assert_eq!(store.get(&ns, "k1").await.expect("get"), None, "a new, empty store");
    store.close().await.expect("close");

    let garbage = dir.path().join("garbage.redb");
    std::fs::write(&garbage, vec![0x42; 64 * 1024]).expect("write garbage");
    assert!(RedbStore::open_or_recover(&garbage, immediate()).await.is_err());
    assert_eq!(std::fs::read(&garbage).expect("read"), vec![0x42; 64 * 1024], "untouched");
}
