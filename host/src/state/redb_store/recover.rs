//! What the server does with a state file found damaged at open.
//!
//! redb verifies every page's checksum at open (`verify_on_open`, the default) and after an
//! unclean shutdown, so damage on disk (a bad sector, a stray write, a torn copy) is found
//! before anything is read from the file: the open fails with [`StateError::Corrupt`]. The
//! state only caches what the phones and the IMAP server already have (SyncKeys, item ids,
//! the resend ledger), so a mail admin is better served by a gateway that comes back on its
//! own than by one that stays down until someone restores a backup: by default the damaged
//! file is moved aside (kept for inspection, never deleted) and a new, empty store is
//! created; every phone is then told to sync again from scratch (its SyncKeys are unknown),
//! which is what it would need after a restore from an older backup as well. `refuse` keeps
//! the gateway down instead, with the file and the remedy in the error.
//!
//! Only a damaged file is moved: one that is not a redb file at all, another program's redb
//! file, a file of another format version or one in use is refused as before (a wrong `path`
//! must not rename someone else's file).

use super::{RedbOptions, RedbStore};
use crate::state::error::{StateError, StateResult};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// `[state.redb] on_corruption`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnCorruption {
    /// Move the damaged file aside (`<file>.corrupt-<unix seconds>`) and start with an empty
    /// store; phones re-sync.
    #[default]
    StartFresh,
    /// Do not start: the operator restores the file from a backup or moves it away.
    Refuse,
}

/// Where a damaged store was moved to, when it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovedAside(pub PathBuf);

impl RedbStore {
    /// [`RedbStore::open`], and if the file turns out to be damaged, what `on_corruption`
    /// says: with `start_fresh` the file is moved aside and a new store opened in its place
    /// (the new path is returned, and logged as an error); with `refuse` the error.
    pub async fn open_or_recover(
        path: impl AsRef<Path>,
        options: RedbOptions,
    ) -> StateResult<(RedbStore, Option<MovedAside>)> {
        let path = path.as_ref();
        let damage = match RedbStore::open(path, options.clone()).await {
            Ok(store) => return Ok((store, None)),
            Err(StateError::Corrupt(damage)) => damage,
            Err(other) => return Err(other),
        };
        if options.on_corruption == OnCorruption::Refuse {
            return Err(StateError::Corrupt(damage));
        }
        let aside = aside_path(path, "corrupt");
        std::fs::rename(path, &aside).map_err(|error| {
            StateError::Corrupt(format!(
                "{damage}; moving it aside to {} failed: {error}",
                aside.display()
            ))
        })?;
        tracing::error!(
            path = %path.display(),
            moved_to = %aside.display(),
            "THE STATE STORE WAS DAMAGED ({damage}); it was moved aside and a new, empty store \
             created: every phone will sync again from scratch. Keep the damaged file for \
             inspection or delete it; set [state.redb] on_corruption = \"refuse\" to stop \
             instead"
        );
        let store = RedbStore::open(path, options).await?;
        Ok((store, Some(MovedAside(aside))))
    }
}

/// `<path>.<why>-<unix seconds>`, with a counter if that exists already.
pub(super) fn aside_path(path: &Path, why: &str) -> PathBuf {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{why}-{seconds}"));
    let mut candidate = PathBuf::from(&name);
    let mut n = 1;
    while candidate.exists() {
        let mut numbered = name.clone();
        numbered.push(format!(".{n}"));
        candidate = PathBuf::from(numbered);
        n += 1;
    }
    candidate
}
