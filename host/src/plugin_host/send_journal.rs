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
//! plugin read, if it still holds the claim), so the retry sends the message once; a claim
//! whose dot was written and that the plugin never settled (the process died before the
//! outcome was recorded) is set to the plugin's `presumed` form, so the retry is answered
//! "sent" at once (and the Sent copy made if it is missing) rather than "retry later" for ten
//! minutes. What is left is the few microseconds between writing the dot and its journal line
//! (the message then goes out twice) and a power loss, which can take the unsynced journal
//! (claims are then kept, as without a journal).
//!
//! With PostgreSQL each node keeps its own journal (on its own disk) of the claims it made:
//! another node that serves the phone's retry meanwhile sees the claim in flight and changes
//! nothing, and a record changed since (presumed sent after ten minutes, another send from the
//! same device) is left as it is. The journal is locked while its process runs, so two nodes
//! pointed at one file fail at start instead of withdrawing each other's live claims.

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
    /// Base64 of what the record becomes if the process dies after the dot; absent in the
    /// lines of earlier versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    presumed: Option<String>,
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
            presumed: None,
        }
    }

    /// With the record's form once its request is known to have died after the dot.
    pub fn presumed(mut self, presumed: &[u8]) -> Self {
        self.presumed = Some(BASE64.encode(presumed));
        self
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
    /// The claim is not to be withdrawn: it was not made (or, in earlier versions, its dot
    /// was written).
    Settled {
        id: u64,
    },
    /// The claim's dot was written: if the record still holds the claim at the next start,
    /// the request died before the plugin recorded the outcome.
    DotWritten {
        id: u64,
    },
}

/// What became of a claim, as far as the journal knows.
enum Progress {
    Claimed(JournalClaim),
    DotWritten(JournalClaim),
}

/// What the start did with the claims of the previous run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Recovered {
    /// Claims of messages that never left, withdrawn: the phone's retry sends them.
    pub withdrawn: usize,
    /// Claims of messages that left, presumed sent: the phone's retry is answered "sent".
    pub presumed: usize,
}

pub struct SendJournal {
    path: PathBuf,
    file: Mutex<File>,
    next_id: AtomicU64,
}

static INSTALLED: OnceLock<SendJournal> = OnceLock::new();

impl SendJournal {
    /// Opens the journal at `path` (and its moved-aside older part), withdraws in `store` the
    /// claims of submissions that never reached their final dot, presumes sent those that did
    /// and were never settled, and starts a new journal.
    pub async fn open(path: &Path, store: &dyn StateStore) -> anyhow::Result<(Self, Recovered)> {
        let file = OpenOptions::new().read(true).append(true).create(true).open(path)?;
        lock(&file, path)?;
        let older = older_path(path);
        let mut claims = BTreeMap::new();
        for part in [older.as_path(), path] {
            read_claims(part, &mut claims)?;
        }
        let (mut unfinished, mut dot_written) = (Vec::new(), Vec::new());
        for progress in claims.into_values() {
            match progress {
                Progress::Claimed(claim) => unfinished.push(claim),
                Progress::DotWritten(claim) => dot_written.push(claim),
            }
        }
        // Withdrawals first: of two claims with the same bytes (two requests for one message
        // in the same millisecond), one that never reached its dot must not be presumed sent
        // on the strength of the other's line.
        let mut recovered = Recovered::default();
        for claim in &unfinished {
            recovered.withdrawn += usize::from(withdraw(store, claim).await?);
        }
        for claim in &dot_written {
            recovered.presumed += usize::from(presume(store, claim).await?);
        }
        if recovered != Recovered::default() {
            // durable before the journal that called for them is gone
            store.flush().await?;
        }
        let _ = std::fs::remove_file(&older);
        file.set_len(0)?;
        let journal = SendJournal {
            path: path.to_owned(),
            file: Mutex::new(file),
            next_id: AtomicU64::new(1),
        };
        Ok((journal, recovered))
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

    /// Notes that claim `id` was not made (lost to another request, whose claim may be the
    /// same bytes): nothing to withdraw or presume.
    pub fn settled(&self, id: u64) {
        self.append(&Line::Settled { id });
    }

    /// Notes that the dot of claim `id` has been written to the connection.
    pub fn dot_written(&self, id: u64) {
        self.append(&Line::DotWritten { id });
    }

    /// One line, written at once (no buffering): in the page cache when this returns. A
    /// failure only costs the journal's protection, so it is logged, not passed on.
    fn append(&self, line: &Line) {
        let mut text = serde_json::to_vec(line).unwrap_or_default();
        text.push(b'\n');
        let mut file = crate::unpoisoned::lock(&self.file);
        if let Err(error) = file.write_all(&text) {
            tracing::warn!(path = %self.path.display(), "send journal: {error}");
            return;
        }
        if file.metadata().is_ok_and(|meta| meta.len() > ROTATE_AT_BYTES) {
            let rotated = std::fs::rename(&self.path, older_path(&self.path))
                .and_then(|()| File::create(&self.path))
                .and_then(|fresh| fresh.lock().map(|()| fresh));
            match rotated {
                Ok(fresh) => *file = fresh,
                Err(error) => tracing::warn!(path = %self.path.display(), "send journal: {error}"),
            }
        }
    }
}

/// Takes the journal for this process: a second gateway on the same file would withdraw the
/// claims of messages the first one is still sending. The lock goes with the process.
fn lock(file: &File, path: &Path) -> anyhow::Result<()> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "{} is in use by another eas-edge process: give each gateway its own [state] path",
            path.display()
        ),
        Err(std::fs::TryLockError::Error(error)) => Err(error.into()),
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

/// The claims in `path` by id, with whether their dot was written; claims that were not made
/// are left out. A line torn by the kill is skipped: a torn claim line is a claim not yet
/// made; a torn dot line is the few-microsecond window of the module docs.
fn read_claims(path: &Path, claims: &mut BTreeMap<u64, Progress>) -> anyhow::Result<()> {
    let file = match OpenOptions::new().read(true).open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(error.into()),
    };
    for line in BufReader::new(file).lines() {
        match serde_json::from_str(&line?) {
            Ok(Line::Claim { id, claim }) => {
                claims.insert(id, Progress::Claimed(claim));
            }
            Ok(Line::Settled { id }) => {
                claims.remove(&id);
            }
            Ok(Line::DotWritten { id }) => {
                if let Some(Progress::Claimed(claim)) = claims.remove(&id) {
                    claims.insert(id, Progress::DotWritten(claim));
                }
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

/// Sets the claim's record to its presumed form, if it still holds the claim: the message
/// left, and the request that sent it died before the plugin recorded the outcome. Most
/// claims in the journal were settled long ago, so the record is read first and only a
/// match costs a write.
async fn presume(store: &dyn StateStore, claim: &JournalClaim) -> anyhow::Result<bool> {
    let (Ok(value), Some(Ok(presumed))) =
        (BASE64.decode(&claim.value), claim.presumed.as_deref().map(|text| BASE64.decode(text)))
    else {
        return Ok(false);
    };
    let ns = claim.namespace();
    if store.get(&ns, &claim.key).await?.as_deref() != Some(value.as_slice()) {
        return Ok(false);
    }
    let presumed = store.compare_and_swap(&ns, &claim.key, Some(&value), Some(presumed)).await?;
    if presumed {
        tracing::warn!(
            tenant = %claim.tenant, user = %claim.user, device = ?claim.device,
            "a message had left when the gateway stopped, before its outcome was recorded: \
             its send claim is presumed sent, so the phone's retry is answered \"sent\""
        );
    }
    Ok(presumed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{RedbOptions, RedbStore};
    use std::sync::Arc;

    async fn store(dir: &Path) -> Arc<dyn StateStore> {
        Arc::new(RedbStore::open(dir.join("s.redb"), RedbOptions::default()).await.expect("store"))
    }

    /// Opens the journal after the test dropped its last one. The lock is the open file's,
    /// and a process that another test of this binary spawns at that moment holds a copy of
    /// every descriptor between its fork and its exec (which closes them): the lock can
    /// outlive the drop for that long. Seen once in CI; a gateway spawns no processes.
    async fn reopen(path: &Path, store: &dyn StateStore) -> (SendJournal, Recovered) {
        let mut tries = 0;
        loop {
            match SendJournal::open(path, store).await {
                Ok(opened) => return opened,
                Err(error) if tries < 100 && error.to_string().contains("in use") => {
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
                Err(error) => panic!("reopens: {error}"),
            }
        }
    }

    #[tokio::test]
    async fn a_claim_whose_dot_was_not_written_is_withdrawn_one_left_unsettled_after_it_presumed() {
        let dir = tempfile::tempdir().expect("dir");
        let store = store(dir.path()).await;
        let path = dir.path().join("s.sending");
        let ns = Namespace::device("t", "u@example.test", "PHONE");
        let (journal, recovered) = SendJournal::open(&path, store.as_ref()).await.expect("opens");
        assert_eq!(recovered, Recovered::default());
        let claim = |key: &str, expected: Option<&[u8]>| {
            JournalClaim::new(&ns, key, expected, b"claim").presumed(b"presumed")
        };

        // sent, and the plugin recorded it
        let sent = journal.claiming(claim("sent", None));
        store.put(&ns, "sent", b"claim".to_vec()).await.expect("claim made");
        journal.dot_written(sent);
        store.put(&ns, "sent", b"marked sent".to_vec()).await.expect("settled");
        // killed after the dot, before the plugin recorded the outcome
        let left = journal.claiming(claim("left", None));
        store.put(&ns, "left", b"claim".to_vec()).await.expect("claim made");
        journal.dot_written(left);
        // killed between the claim and the dot
        journal.claiming(claim("stuck", Some(b"before")));
        store.put(&ns, "stuck", b"claim".to_vec()).await.expect("claim made");
        // killed before the claim was made: nothing to withdraw
        journal.claiming(claim("unmade", None));
        store.put(&ns, "unmade", b"someone else's".to_vec()).await.expect("stored");
        // lost to another request with the same bytes, which never reached its dot: withdrawn,
        // not presumed on the strength of the loser's line
        let lost = journal.claiming(claim("twice", Some(b"before")));
        journal.settled(lost);
        journal.claiming(claim("twice", Some(b"before")));
        store.put(&ns, "twice", b"claim".to_vec()).await.expect("claim made");
        // an earlier version's line: no presumed form, and its dot noted as settled
        let old = journal.claiming(JournalClaim::new(&ns, "old", None, b"claim"));
        store.put(&ns, "old", b"claim".to_vec()).await.expect("claim made");
        journal.settled(old);
        drop(journal);
        // a line torn by the kill
        let mut file = OpenOptions::new().append(true).open(&path).expect("journal");
        file.write_all(b"{\"Settl").expect("written");

        let (journal, recovered) = reopen(&path, store.as_ref()).await;
        assert_eq!(recovered, Recovered { withdrawn: 2, presumed: 1 });
        let read = |key: &'static str| {
            let (store, ns) = (store.clone(), ns.clone());
            async move { store.get(&ns, key).await.expect("read") }
        };
        assert_eq!(read("sent").await, Some(b"marked sent".to_vec()));
        assert_eq!(read("left").await, Some(b"presumed".to_vec()));
        assert_eq!(read("stuck").await, Some(b"before".to_vec()));
        assert_eq!(read("unmade").await, Some(b"someone else's".to_vec()));
        assert_eq!(read("twice").await, Some(b"before".to_vec()));
        assert_eq!(read("old").await, Some(b"claim".to_vec()));
        // the new journal starts empty
        drop(journal);
        assert_eq!(std::fs::read(&path).expect("journal").len(), 0);
    }

    #[tokio::test]
    async fn a_journal_in_use_is_refused_and_free_again_when_its_owner_is_gone() {
        let dir = tempfile::tempdir().expect("dir");
        let store = store(dir.path()).await;
        let path = dir.path().join("s.sending");
        let (journal, _) = SendJournal::open(&path, store.as_ref()).await.expect("opens");
        let ns = Namespace::user("t", "u@example.test");
        journal.claiming(JournalClaim::new(&ns, "k", None, b"claim"));
        let error = SendJournal::open(&path, store.as_ref()).await.err().expect("refused");
        assert!(error.to_string().contains("in use by another eas-edge process"), "{error}");
        // the refused start neither read nor emptied the owner's journal
        assert_ne!(std::fs::metadata(&path).expect("journal").len(), 0);
        drop(journal);
        reopen(&path, store.as_ref()).await;
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
        journal.dot_written(id);
        drop(journal);
        let (_, recovered) = reopen(&path, store.as_ref()).await;
        assert_eq!(recovered, Recovered::default());
        assert_eq!(store.get(&ns, "k").await.expect("read"), Some(b"claim".to_vec()));
        assert!(!older_path(&path).exists());
    }
}
