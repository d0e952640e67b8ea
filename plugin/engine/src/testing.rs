//! An in-memory [`Capabilities`] for unit tests of the engine's pure logic (no I/O involved;
//! the real capabilities are tested end to end against Dovecot).

mod mailbox;

use crate::capabilities::{
    Capabilities, Level, StateCondition, StateError, StateResult, StateScope, StateWrite,
};
use crate::mailbox::SearchQuery;
use crate::mailbox::{
    Changes, Folder, FolderStatus, MailboxResult, Message, MessageSummary, SyncPoint, UidRange,
};
use crate::out_of_office::{OofError, OofSettings};
use crate::submission::{RefusedRecipient, SendClaim, SubmissionError};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

pub use mailbox::FakeMailbox;

#[derive(Default)]
pub struct FakeHost {
    state: RefCell<HashMap<(StateScope, String), Vec<u8>>>,
    counter: Cell<u64>,
    /// The user's mail; tests fill and change it between requests.
    pub mailbox: RefCell<FakeMailbox>,
    pub settings: RefCell<crate::settings::TenantSettings>,
    /// What the submission capability was asked to send: (message, envelope recipients).
    pub sent: RefCell<Vec<(Vec<u8>, Vec<String>)>>,
    /// When set, sending fails with this error and nothing is recorded as sent (the claim is
    /// made for a failure after which the message may have left, as the host makes it).
    pub submission_failure: RefCell<Option<SubmissionError>>,
    /// The vacation reply; `None`: the server offers none.
    pub out_of_office: RefCell<Option<OofSettings>>,
    /// The next compare-and-swap of a key starting with this prefix (or transaction with a
    /// condition on one) loses a race: another writer stores something else first.
    pub race_next_swap: RefCell<Option<String>>,
    /// The next compare-and-swap of a key starting with this prefix (or transaction with a
    /// condition on one) is committed, but its reply is lost: the caller sees the store as
    /// unavailable (a gateway killed after the commit, seen through Envoy's callout).
    pub lose_next_swap_reply: RefCell<Option<String>>,
    /// The clock (`now_ms`); tests move it forward.
    pub now_ms: Cell<u64>,
    /// While set, every state call fails as unavailable (the store is down for a moment).
    pub state_down: Cell<bool>,
    /// The keys `state_put` wrote, in order.
    pub put_keys: RefCell<Vec<String>>,
    /// The prefetch hints received: (folder, UIDs, prefix bytes).
    pub prefetched: RefCell<Vec<(String, Vec<u32>, u32)>>,
    /// When set, a prefetch hint with a render request has its messages rendered ahead at
    /// once, and `fetch_summaries` hands those renderings out as the host does.
    pub renders_ahead: Cell<bool>,
    /// Renderings made ahead, by folder and UID.
    rendered_ahead: RefCell<HashMap<(String, u32), RenderedAhead>>,
    /// How many renderings made ahead `fetch_summaries` handed out.
    pub rendered_ahead_used: Cell<usize>,
    /// When set, what `fetch_summaries` hands out as rendered ahead is not an encoded Add.
    pub rendered_ahead_broken: Cell<bool>,
    /// When set, the host goes away right after the next message leaves: every state and
    /// mailbox call after it fails as unavailable (a gateway killed behind Envoy, whose
    /// filter outlives it).
    pub dies_after_send: Cell<bool>,
}

impl FakeHost {
    pub fn stored(&self, scope: &StateScope, key: &str) -> Option<Vec<u8>> {
        self.state.borrow().get(&(scope.clone(), key.to_owned())).cloned()
    }

    pub fn store(&self, scope: &StateScope, key: &str, value: &[u8]) {
        self.state.borrow_mut().insert((scope.clone(), key.to_owned()), value.to_vec());
    }

    fn state_up(&self) -> StateResult<()> {
        if self.state_down.get() {
            return Err(StateError::Unavailable("the state store is down".to_owned()));
        }
        Ok(())
    }
}

/// A message rendered ahead, as the host keeps it.
struct RenderedAhead {
    request: Vec<u8>,
    /// The flags it was rendered with.
    flags: Vec<String>,
    add: Vec<u8>,
}

/// Whether a test's one-shot knob, set to a key prefix, applies to `key`; it is used up if so.
fn fires_once(knob: &RefCell<Option<String>>, key: &str) -> bool {
    let fires = knob.borrow().as_ref().is_some_and(|prefix| key.starts_with(prefix.as_str()));
    if fires {
        knob.borrow_mut().take();
    }
    fires
}

impl Capabilities for FakeHost {
    fn now_ms(&self) -> u64 {
        self.now_ms.get()
    }

    fn log(&self, _: Level, _: &str) {}

    /// Distinct, predictable values: tests can tell keys apart.
    fn random_u64(&self) -> Option<u64> {
        self.counter.set(self.counter.get() + 1);
        Some(self.counter.get().wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    fn settings(&self) -> crate::settings::TenantSettings {
        self.settings.borrow().clone()
    }

    async fn state_get(&self, scope: &StateScope, key: &str) -> StateResult<Option<Vec<u8>>> {
        self.state_up()?;
        Ok(self.stored(scope, key))
    }

    async fn state_put(&self, scope: &StateScope, key: &str, value: Vec<u8>) -> StateResult<()> {
        self.state_up()?;
        self.put_keys.borrow_mut().push(key.to_owned());
        self.store(scope, key, &value);
        Ok(())
    }

    async fn state_compare_and_swap(
        &self,
        scope: &StateScope,
        key: &str,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
    ) -> StateResult<bool> {
        let condition = StateCondition { key: key.to_owned(), expected };
        let write = StateWrite { key: key.to_owned(), value: new };
        self.state_transact(scope, vec![condition], vec![write]).await
    }

    /// The race knobs apply to the conditions' keys.
    async fn state_transact(
        &self,
        scope: &StateScope,
        conditions: Vec<StateCondition>,
        writes: Vec<StateWrite>,
    ) -> StateResult<bool> {
        self.state_up()?;
        for condition in &conditions {
            if fires_once(&self.race_next_swap, &condition.key) {
                let ours = writes.iter().find(|write| write.key == condition.key);
                let mut theirs = ours.and_then(|write| write.value.clone()).unwrap_or_default();
                theirs.push(0);
                self.store(scope, &condition.key, &theirs);
            }
        }
        let mut state = self.state.borrow_mut();
        let holds = |condition: &StateCondition| {
            state.get(&(scope.clone(), condition.key.clone())) == condition.expected.as_ref()
        };
        if !conditions.iter().all(holds) {
            return Ok(false);
        }
        for write in writes {
            let slot = (scope.clone(), write.key);
            match write.value {
                Some(value) => state.insert(slot, value),
                None => state.remove(&slot),
            };
        }
        drop(state);
        if conditions.iter().any(|condition| fires_once(&self.lose_next_swap_reply, &condition.key))
        {
            return Err(StateError::Unavailable("the reply was lost".to_owned()));
        }
        Ok(true)
    }

    async fn list_folders(&self) -> MailboxResult<Vec<Folder>> {
        self.mailbox.borrow().check_available()?;
        Ok(self.mailbox.borrow().folders())
    }

    async fn folder_status(
        &self,
        folders: &[String],
    ) -> MailboxResult<Vec<MailboxResult<FolderStatus>>> {
        let mailbox = self.mailbox.borrow();
        mailbox.check_available()?;
        Ok(folders.iter().map(|name| mailbox.status(name)).collect())
    }

    async fn changes(&self, folder: &str, since: Option<SyncPoint>) -> MailboxResult<Changes> {
        self.mailbox.borrow().changes(folder, since)
    }

    async fn uids_since(&self, folder: &str, since: i64) -> MailboxResult<Vec<UidRange>> {
        self.mailbox.borrow().uids_since(folder, since)
    }

    async fn fetch_summaries(
        &self,
        folder: &str,
        uids: &[u32],
        prefix_bytes: u32,
        render: Option<&[u8]>,
    ) -> MailboxResult<Vec<MessageSummary>> {
        let mut summaries = self.mailbox.borrow().summaries(folder, uids, prefix_bytes)?;
        let Some(render) = render else { return Ok(summaries) };
        // as the host does: taken once, for the same request and flags
        for summary in &mut summaries {
            let key = (folder.to_owned(), summary.uid);
            let Some(RenderedAhead { request, flags, add }) =
                self.rendered_ahead.borrow_mut().remove(&key)
            else {
                continue;
            };
            if request == render && flags == summary.flags {
                let broken = self.rendered_ahead_broken.get();
                summary.rendered = Some(if broken { add[..add.len() / 2].to_vec() } else { add });
                summary.prefix.clear();
                summary.body_structure.clear();
                self.rendered_ahead_used.set(self.rendered_ahead_used.get() + 1);
            }
        }
        Ok(summaries)
    }

    async fn prefetch_summaries(
        &self,
        folder: &str,
        uids: &[u32],
        prefix_bytes: u32,
        render: Option<&[u8]>,
    ) {
        self.prefetched.borrow_mut().push((folder.to_owned(), uids.to_vec(), prefix_bytes));
        let Some(render) = render.filter(|_| self.renders_ahead.get()) else { return };
        let Ok(summaries) = self.mailbox.borrow().summaries(folder, uids, prefix_bytes) else {
            return;
        };
        let adds = crate::sync::render_ahead::render(render, &summaries);
        for (summary, add) in summaries.into_iter().zip(adds) {
            if let Some(add) = add {
                let entry = RenderedAhead { request: render.to_vec(), flags: summary.flags, add };
                self.rendered_ahead.borrow_mut().insert((folder.to_owned(), summary.uid), entry);
            }
        }
    }

    async fn fetch_message(
        &self,
        folder: &str,
        uid: u32,
        max_bytes: u32,
    ) -> MailboxResult<Option<Message>> {
        self.mailbox.borrow().check_available()?;
        self.mailbox.borrow().message(folder, uid, max_bytes)
    }

    async fn fetch_part(
        &self,
        folder: &str,
        uid: u32,
        section: &str,
        max_bytes: u32,
    ) -> MailboxResult<Option<Vec<u8>>> {
        self.mailbox.borrow().part(folder, uid, section, max_bytes)
    }

    async fn store_flags(
        &self,
        folder: &str,
        uids: &[u32],
        add: &[String],
        remove: &[String],
    ) -> MailboxResult<()> {
        self.mailbox.borrow_mut().store_flags(folder, uids, add, remove)
    }

    async fn move_messages(
        &self,
        source: &str,
        uids: &[u32],
        destination: &str,
    ) -> MailboxResult<Vec<(u32, u32)>> {
        self.mailbox.borrow_mut().move_messages(source, uids, destination)
    }

    async fn expunge(&self, folder: &str, uids: &[u32]) -> MailboxResult<()> {
        self.mailbox.borrow_mut().expunge_uids(folder, uids)
    }

    async fn append(
        &self,
        folder: &str,
        message: &[u8],
        flags: &[String],
        internal_date: Option<i64>,
    ) -> MailboxResult<Option<u32>> {
        self.mailbox.borrow_mut().append_message(folder, message, flags, internal_date)
    }

    async fn search(&self, folder: &str, query: &SearchQuery) -> MailboxResult<Vec<u32>> {
        self.mailbox.borrow().search(folder, query)
    }

    async fn create_folder(&self, parent: Option<&str>, name: &str) -> MailboxResult<Folder> {
        self.mailbox.borrow_mut().create(parent, name)
    }

    async fn rename_folder(
        &self,
        folder: &str,
        new_parent: Option<&str>,
        new_name: &str,
    ) -> MailboxResult<Folder> {
        self.mailbox.borrow_mut().rename(folder, new_parent, new_name)
    }

    async fn delete_folder(&self, folder: &str) -> MailboxResult<()> {
        self.mailbox.borrow_mut().remove_folder(folder)
    }

    async fn empty_folder(&self, folder: &str) -> MailboxResult<()> {
        self.mailbox.borrow_mut().empty(folder)
    }

    async fn send_mail(
        &self,
        message: &[u8],
        recipients: &[String],
        claim: Option<&SendClaim>,
    ) -> Result<Vec<RefusedRecipient>, SubmissionError> {
        // as the host: a failure before the message's end leaves no claim, one after it does
        let failure = self.submission_failure.borrow().clone();
        if let Some(failure) = failure.as_ref().filter(|failure| !failure.maybe_sent()) {
            return Err(failure.clone());
        }
        if let Some(claim) = claim {
            let swap = self.state_compare_and_swap(
                &claim.scope,
                &claim.key,
                claim.expected.clone(),
                Some(claim.value.clone()),
            );
            match swap.await {
                Ok(true) => {}
                Ok(false) => return Err(SubmissionError::ClaimLost),
                Err(error) => return Err(SubmissionError::Unavailable(error.to_string())),
            }
        }
        if let Some(failure) = failure {
            return Err(failure);
        }
        self.sent.borrow_mut().push((message.to_vec(), recipients.to_vec()));
        if self.dies_after_send.take() {
            self.state_down.set(true);
            self.mailbox.borrow_mut().unavailable = true;
        }
        Ok(Vec::new())
    }

    async fn out_of_office(&self) -> Result<OofSettings, OofError> {
        self.out_of_office.borrow().clone().ok_or(OofError::NotAvailable)
    }

    async fn set_out_of_office(&self, settings: &OofSettings) -> Result<(), OofError> {
        let mut current = self.out_of_office.borrow_mut();
        match current.as_mut() {
            Some(current) => {
                *current = settings.clone();
                Ok(())
            }
            None => Err(OofError::NotAvailable),
        }
    }
}
