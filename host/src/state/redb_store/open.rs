//! Opening the file, what it must contain, and how failures are reported.
//!
//! Besides the entries, the file holds a small `meta` table:
//! - `format`: the version of our key encoding. A file from an incompatible version is refused
//!   rather than misread; a redb file of some other program is refused rather than written to.
//! - `shutdown`: `running` while a process has it open, `clean` after `RedbStore::close`. Finding
//!   `running` at open means the last run crashed or was killed; redb has then rolled the file
//!   back to its last committed transaction, and we say so in the log.

use crate::state::error::{StateError, StateResult};
use redb::{Database, DatabaseError, ReadableTable, TableDefinition};
use std::path::Path;
use std::time::Instant;

pub(super) const ENTRIES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("entries");
const META: TableDefinition<&str, &str> = TableDefinition::new("meta");

const FORMAT_KEY: &str = "format";
const FORMAT_VERSION: u32 = 1;
const SHUTDOWN_KEY: &str = "shutdown";
const SHUTDOWN_RUNNING: &str = "running";
const SHUTDOWN_CLEAN: &str = "clean";

/// Opens or creates the file; blocking (it may read the whole file to verify it).
pub(super) fn open_database(
    path: &Path,
    cache_bytes: usize,
    verify: bool,
) -> StateResult<Database> {
    let started = Instant::now();
    let shown = path.display().to_string();
    let mut builder = Database::builder();
    builder.set_cache_size(cache_bytes).set_check_integrity_on_open(verify).set_repair_callback(
        move |session| {
            tracing::info!(
                path = %shown,
                progress = format!("{:.0}%", session.progress() * 100.0),
                "checking the state file (after an unclean shutdown, or as configured)"
            );
        },
    );
    let db = match builder.create(path) {
        Ok(db) => db,
        // A process killed while it created the file leaves it without redb's magic number,
        // which redb writes last, once the rest of the new file is on disk: a file of zeros
        // (killed before the header), or a header without its magic number (killed between
        // the two). Either never held an entry, so it is started afresh instead of refused; a
        // file with anything else in it is moved aside rather than deleted, in case the path
        // points at something that is not ours.
        Err(error) if magic_number_missing(path) => {
            tracing::warn!(
                path = %path.display(),
                "the state file was left incomplete by a crash while it was created; creating it again ({error})"
            );
            let cleared = if holds_only_zeros(path) {
                std::fs::remove_file(path)
            } else {
                std::fs::rename(path, super::recover::aside_path(path, "incomplete"))
            };
            cleared.map_err(|io| open_error(path, DatabaseError::Storage(io.into())))?;
            builder.create(path).map_err(|error| open_error(path, error))?
        }
        Err(error) => return Err(open_error(path, error)),
    };
    let previous_shutdown = start_session(&db, path)?;
    match previous_shutdown.as_deref() {
        // Expected on first start only: elsewhere it means the state was lost or moved.
        None => tracing::warn!(path = %path.display(), "created a new, empty state store"),
        Some(SHUTDOWN_RUNNING) => tracing::warn!(
            path = %path.display(),
            "the state store was not shut down cleanly (crash, kill or power loss); \
             recovered to its last committed transaction"
        ),
        Some(_) => {}
    }
    tracing::info!(
        path = %path.display(),
        verified = verify,
        elapsed_ms = started.elapsed().as_millis(),
        "state store open"
    );
    Ok(db)
}

/// Length of redb's magic number, at the start of its files.
const MAGIC_NUMBER_LEN: usize = 9;

/// Whether the file exists and its first bytes, where redb's magic number goes, are zeros.
fn magic_number_missing(path: &Path) -> bool {
    use std::io::Read;
    let Ok(file) = std::fs::File::open(path) else { return false };
    let mut start = Vec::with_capacity(MAGIC_NUMBER_LEN);
    file.take(MAGIC_NUMBER_LEN as u64).read_to_end(&mut start).is_ok()
        && start.iter().all(|&byte| byte == 0)
}

/// Whether the file exists and every byte of it is zero (a creation cut short).
fn holds_only_zeros(path: &Path) -> bool {
    use std::io::Read;
    let Ok(mut file) = std::fs::File::open(path) else { return false };
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        match file.read(&mut buffer) {
            Ok(0) => return true,
            Ok(read) if buffer[..read].iter().all(|&byte| byte == 0) => {}
            Ok(_) | Err(_) => return false,
        }
    }
}

/// Checks the format, marks the file `running` and makes sure the entries table exists.
/// Returns the shutdown marker the previous run left (`None` for a new file).
fn start_session(db: &Database, path: &Path) -> StateResult<Option<String>> {
    let transaction = db.begin_write().map_err(storage_error)?;
    let other_tables = transaction.list_tables().map_err(storage_error)?.count();
    let previous_shutdown = {
        let mut meta = transaction.open_table(META).map_err(storage_error)?;
        let format = meta.get(FORMAT_KEY).map_err(storage_error)?.map(|v| v.value().to_owned());
        match format {
            // Only a new file may lack the marker; anything else was written by another program.
            None if other_tables > 0 => {
                return Err(StateError::Open {
                    path: path.to_path_buf(),
                    reason: "it is a redb file, but not an eas-edge state store".into(),
                });
            }
            None => {
                meta.insert(FORMAT_KEY, FORMAT_VERSION.to_string().as_str())
                    .map_err(storage_error)?;
            }
            Some(found) if found == FORMAT_VERSION.to_string() => {}
            Some(found) => {
                return Err(StateError::UnsupportedFormat {
                    path: path.to_path_buf(),
                    found,
                    supported: FORMAT_VERSION,
                });
            }
        }
        meta.insert(SHUTDOWN_KEY, SHUTDOWN_RUNNING)
            .map_err(storage_error)?
            .map(|previous| previous.value().to_owned())
    };
    transaction.open_table(ENTRIES).map_err(storage_error)?;
    transaction.commit().map_err(storage_error)?;
    Ok(previous_shutdown)
}

/// Marks the file cleanly shut down; a durable commit, so it also syncs any earlier commit.
pub(super) fn mark_clean_shutdown(db: &Database) -> StateResult<()> {
    let transaction = db.begin_write().map_err(storage_error)?;
    transaction
        .open_table(META)
        .map_err(storage_error)?
        .insert(SHUTDOWN_KEY, SHUTDOWN_CLEAN)
        .map_err(storage_error)?;
    transaction.commit().map_err(storage_error)
}

/// Makes every commit so far durable: an empty durable commit syncs the ones before it.
pub(super) fn sync(db: &Database) -> StateResult<()> {
    db.begin_write().map_err(storage_error)?.commit().map_err(storage_error)
}

/// Any redb failure after the open, as a state error.
pub(super) fn storage_error(error: impl Into<redb::Error>) -> StateError {
    match error.into() {
        redb::Error::Corrupted(detail) => StateError::Corrupt(detail),
        other => StateError::Backend(other.into()),
    }
}

fn open_error(path: &Path, error: DatabaseError) -> StateError {
    let reason = match error {
        DatabaseError::DatabaseAlreadyOpen => {
            "it is already open (another eas-edge process, or this one)".to_owned()
        }
        DatabaseError::Storage(redb::StorageError::Corrupted(detail)) => {
            return StateError::Corrupt(format!(
                "{}: {detail}; restore it from a backup or move it away",
                path.display()
            ));
        }
        other => other.to_string(),
    };
    StateError::Open { path: path.to_path_buf(), reason }
}

/// The open ran on the blocking pool and did not return: redb may panic on a file damaged
/// outside of it (when `verify_on_open` is off), so that is what a panic is reported as.
pub(super) fn open_task_failed(path: &Path, failure: tokio::task::JoinError) -> StateError {
    if failure.is_panic() {
        StateError::Corrupt(format!(
            "{}: opening it panicked, the file is probably damaged; enable verify_on_open, \
             restore it from a backup or move it away",
            path.display()
        ))
    } else {
        StateError::Open { path: path.to_path_buf(), reason: failure.to_string() }
    }
}
