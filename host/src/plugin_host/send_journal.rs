//! Which submissions reached DATA's final dot, kept where a `kill -9` cannot take it back.
//!
//! A send's claim (the plugin's resend ledger, WIT `submission.claim`) is made durable just
//! before the final dot, so a crash after the dot leaves it and the phone's retry is not sent
//! twice. But making it durable takes a commit with its fsync, and a crash during that commit
//! or right after it, before the dot was written, left a claim for a message that never left:
//! the retry was told "sent" and the message was lost (1 kill in 30 with an 8 ms SendMail).
//!
//! So the host also keeps this journal, a plain file written without fsync: a line with the
//! claim before it is made, and a line when the dot has been written to the socket. Both are
//! in the kernel's page cache when the write returns, which a killed process cannot undo. At
//! startup, a claim whose dot was never written is withdrawn (its record set back to what the
//! plugin read, if it still holds the claim), so the retry sends the message once. What is left
//! is the few microseconds between writing the dot and its journal line (the message then goes
//! out twice) and a power loss, which can take the unsynced journal (claims are then kept, as
//! without a journal). Only the embedded store has a journal: with PostgreSQL another gateway
//! may already have served the device's retry.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

use crate::state::{Namespace, StateStore};

/// Past this size the journal is moved aside (one older file is kept, and read at startup).
const ROTATE_AT_BYTES: u64 = 1 << 20;

/// A claim about to be made: where, and the record's value before and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalClaim {
    pub tenant: String,
    pub user: String,
    pub device: Option<String>,
    pub key: String,
    /// Base64 (a ledger is a few kilobytes).
    expected: Option<String>,
    value: String,
}

impl JournalClaim {
    pub fn new(ns: &Namespace, key: &str, expected: Option<&[u8]>, value: &[u8]) -> Self {
        JournalClaim {
            tenant: ns.tenant.clone(),
            user: ns.user.clone(),
            device: ns.device.clone(),
            key: key.to_owned(),
            expected: expected.map(|bytes| BASE64.encode(bytes)),
            value: BASE64.encode(value),
        }
    }

    fn namespace(&self) -> Namespace {
        match &self.device {
            Some(device) => Namespace::device(&*self.tenant, &*self.user, &**device),
            None => Namespace::user(&*self.tenant, &*self.user),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
enum Line {
    Claim {
        id: u64,
        claim: JournalClaim,
    },
    /// The claim is not to be withdrawn: its dot was written, or it was not made.
    Settled {
        id: u64,
    },
}

pub struct SendJournal {
    path: PathBuf,
    file: Mutex<File>,
    next_id: AtomicU64,
}

static INSTALLED: OnceLock<SendJournal> = OnceLock::new();

impl SendJournal {
    /// Opens the journal at `path` (and its moved-aside older part), withdraws in `store` the
    /// claims of submissions that never reached their final dot, and starts a new journal;
    /// returns how many claims were withdrawn.
    pub async fn open(path: &Path, store: &dyn StateStore) -> anyhow::Result<(Self, usize)> {
        let older = older_path(path);
        let mut unfinished = BTreeMap::new();
        for part in [older.as_path(), path] {
            read_unfinished(part, &mut unfinished)?;
        }
        let mut withdrawn = 0;
        for claim in unfinished.into_values() {
            if withdraw(store, &claim).await? {
                withdrawn += 1;
            }
        }
        let _ = std::fs::remove_file(&older);
        let file = File::create(path)?;
        let journal = SendJournal {
            path: path.to_owned(),
            file: Mutex::new(file),
            next_id: AtomicU64::new(1),
        };
        Ok((journal, withdrawn))
    }

    /// Where the journal of the state file `state_file` lives: beside it, `<file>.sending`.
    pub fn path_beside(state_file: &Path) -> PathBuf {
        with_suffix(state_file, ".sending")
    }

    /// Makes `journal` the one the submission capability writes to (once per process).
    pub fn install(journal: SendJournal) {
        let _ = INSTALLED.set(journal);
    }

    pub fn installed() -> Option<&'static SendJournal> {
        INSTALLED.get()
    }

    /// Notes a claim about to be made; the id names its dot.
    pub fn claiming(&self, claim: JournalClaim) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.append(&Line::Claim { id, claim });
        id
    }

    /// Notes that claim `id` is not to be withdrawn: its dot has been written to the
    /// connection, or the claim was not made (lost to another request, whose claim may be the
    /// same bytes).
    pub fn settled(&self, id: u64) {
        self.append(&Line::Settled { id });
    }

    /// One line, written at once (no buffering): in the page cache when this returns. A
    /// failure only costs the journal's protection, so it is logged, not passed on.
    fn append(&self, line: &Line) {
        let mut text = serde_json::to_vec(line).unwrap_or_default();
        text.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Err(error) = file.write_all(&text) {
            tracing::warn!(path = %self.path.display(), "send journal: {error}");
            return;
        }
        if file.metadata().is_ok_and(|meta| meta.len() > ROTATE_AT_BYTES) {
            let rotated = std::fs::rename(&self.path, older_path(&self.path))
                .and_then(|()| File::create(&self.path));
            match rotated {
                Ok(fresh) => *file = fresh,
                Err(error) => tracing::warn!(path = %self.path.display(), "send journal: {error}"),
            }
        }
    }
}

fn older_path(path: &Path) -> PathBuf {
    with_suffix(path, ".old")
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}

/// Claims in `path` whose dot was not written, by id. A line torn by the kill is skipped: a
/// torn claim line is a claim not yet made; a torn dot line is the few-microsecond window of
/// the module docs.
fn read_unfinished(
    path: &Path,
    unfinished: &mut BTreeMap<u64, JournalClaim>,
) -> anyhow::Result<()> {
    let file = match OpenOptions::new().read(true).open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(error.into()),
    };
    for line in BufReader::new(file).lines() {
        match serde_json::from_str(&line?) {
            Ok(Line::Claim { id, claim }) => {
                unfinished.insert(id, claim);
            }
            Ok(Line::Settled { id }) => {
                unfinished.remove(&id);
            }
            Err(_) => {}
        }
    }
    Ok(())
}

/// Sets the claim's record back to what the plugin read, if it still holds the claim (it
/// does not if the claim was never made, or lost to another request).
async fn withdraw(store: &dyn StateStore, claim: &JournalClaim) -> anyhow::Result<bool> {
    let (Ok(value), Ok(expected)) = (
        BASE64.decode(&claim.value),
        claim.expected.as_deref().map(|text| BASE64.decode(text)).transpose(),
    ) else {
        return Ok(false);
    };
    let ns = claim.namespace();
    let withdrawn = store.compare_and_swap(&ns, &claim.key, Some(&value), expected).await?;
    if withdrawn {
        tracing::warn!(
            tenant = %claim.tenant, user = %claim.user, device = ?claim.device,
            "a message had not left when the gateway stopped: its send claim is withdrawn, so \
             the phone's retry sends it"
        );
    }
    Ok(withdrawn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{RedbOptions, RedbStore};
    use std::sync::Arc;

    async fn store(dir: &Path) -> Arc<dyn StateStore> {
        Arc::new(RedbStore::open(dir.join("s.redb"), RedbOptions::default()).await.expect("store"))
    }

    #[tokio::test]
    async fn a_claim_whose_dot_was_not_written_is_withdrawn_and_no_other() {
        let dir = tempfile::tempdir().expect("dir");
        let store = store(dir.path()).await;
        let path = dir.path().join("s.sending");
        let ns = Namespace::device("t", "u@example.test", "PHONE");
        let (journal, withdrawn) = SendJournal::open(&path, store.as_ref()).await.expect("opens");
        assert_eq!(withdrawn, 0);

        // sent: claimed, dot written
        let sent = journal.claiming(JournalClaim::new(&ns, "sent", None, b"claim"));
        store.put(&ns, "sent", b"claim".to_vec()).await.expect("claim made");
        journal.settled(sent);
        // killed between the claim and the dot
        journal.claiming(JournalClaim::new(&ns, "stuck", Some(b"before"), b"claim"));
        store.put(&ns, "stuck", b"claim".to_vec()).await.expect("claim made");
        // killed before the claim was made: nothing to withdraw
        journal.claiming(JournalClaim::new(&ns, "unmade", None, b"claim"));
        store.put(&ns, "unmade", b"someone else's".to_vec()).await.expect("stored");
        drop(journal);
        // a line torn by the kill
        let mut file = OpenOptions::new().append(true).open(&path).expect("journal");
        file.write_all(b"{\"Settl").expect("written");

        let (journal, withdrawn) = SendJournal::open(&path, store.as_ref()).await.expect("reopens");
        assert_eq!(withdrawn, 1);
        assert_eq!(store.get(&ns, "sent").await.expect("read"), Some(b"claim".to_vec()));
        assert_eq!(store.get(&ns, "stuck").await.expect("read"), Some(b"before".to_vec()));
        assert_eq!(store.get(&ns, "unmade").await.expect("read"), Some(b"someone else's".to_vec()));
        // the new journal starts empty
        drop(journal);
        assert_eq!(std::fs::read(&path).expect("journal").len(), 0);
    }

    #[tokio::test]
    async fn the_moved_aside_part_is_read_too() {
        let dir = tempfile::tempdir().expect("dir");
        let store = store(dir.path()).await;
        let path = dir.path().join("s.sending");
        let ns = Namespace::user("t", "u@example.test");
        let (journal, _) = SendJournal::open(&path, store.as_ref()).await.expect("opens");
        let id = journal.claiming(JournalClaim::new(&ns, "k", None, b"claim"));
        store.put(&ns, "k", b"claim".to_vec()).await.expect("claim made");
        // the journal grows past its size and is moved aside before the dot is noted
        let filler = JournalClaim::new(&ns, "filler", None, &vec![0; 64 << 10]);
        for _ in 0..20 {
            journal.claiming(filler.clone());
        }
        assert!(older_path(&path).exists());
        journal.settled(id);
        drop(journal);
        let (_, withdrawn) = SendJournal::open(&path, store.as_ref()).await.expect("reopens");
        assert_eq!(withdrawn, 0);
        assert_eq!(store.get(&ns, "k").await.expect("read"), Some(b"claim".to_vec()));
        assert!(!older_path(&path).exists());
    }
}
