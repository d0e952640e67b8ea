//! The `mailbox` import: the authenticated user's mail, each call on one of the account's
//! pooled IMAP sessions. The plugin names folders, never accounts: the account is the one
//! the request authenticated as.

use super::eas_edge::gateway::mailbox::{self as wit, Error};
use super::mailbox_convert as convert;
use crate::accounts::Account;
use crate::accounts::prefetched::{FetchedUnder, Held, MAX_BYTES_PER_ACCOUNT, RenderedAhead};
use crate::imap::{ImapError, Session, Summary};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// STATUS commands per round trip. All of a batch is written before its answers are read,
/// so it must fit the socket buffers both ways (about 60 bytes out and 120 back each).
const STATUS_BATCH: usize = 200;

/// What a summary costs besides its prefix (flags, date, flattened BODYSTRUCTURE), roughly,
/// for the size check of an answer.
const SUMMARY_OVERHEAD_BYTES: usize = 1024;

/// UIDs one prefetch may name: two pages of a Sync (the engine's window is at most 512).
const MAX_PREFETCH_UIDS: usize = 1024;

/// How long a prefetch may take, its wait for the account's turn included, before it is
/// dropped (a `fetch-summaries` that wants its UIDs waits for it).
const PREFETCH_TIME: std::time::Duration = std::time::Duration::from_secs(10);

pub struct MailboxCapability {
    tenant: Arc<str>,
    account: Option<Arc<Account>>,
    /// The most one answer may carry: half the plugin's memory, which also has to hold the
    /// plugin's own copy of it.
    answer_limit: u32,
    /// When reads stop waiting for IMAP (the request's backend deadline, `plugin_host`).
    read_deadline: Instant,
    /// Flags of summaries fetched ahead that this request's last `changes` answer vouched for.
    vouched: Option<VouchedFlags>,
    /// The runtime the request came in on, which serves connections and IMAP: where a
    /// prefetch runs. Spawned from guest code it would land in the busy guest thread's
    /// next-task slot, which other threads do not steal, and start only once the guest next
    /// awaits the host (measured: 2.6 ms after the hint, half of a page's conversion).
    io_runtime: Option<tokio::runtime::Handle>,
    /// The tenant's plugin, which renders pages ahead (`render-ahead`) when a prefetch hint
    /// asks for it; none where the gateway runs no plugin (Envoy's capability calls).
    renderer: Option<crate::runtime::Plugin>,
}

/// A summary for the plugin, with what it made of the message ahead if that still holds.
struct Answered {
    summary: Summary,
    rendered: Option<Vec<u8>>,
}

/// Flags of summaries fetched ahead as of a `changes` answer, by UID, for one folder
/// ([`Account::prefetched_flags_as_of`]).
struct VouchedFlags {
    folder: String,
    flags: HashMap<u32, Vec<String>>,
}

impl MailboxCapability {
    /// Made on the runtime that serves the request (see `io_runtime`).
    pub fn new(
        tenant: Arc<str>,
        account: Option<Arc<Account>>,
        memory_bytes: usize,
        read_deadline: Instant,
        renderer: Option<crate::runtime::Plugin>,
    ) -> Self {
        let answer_limit = u32::try_from(memory_bytes / 2).unwrap_or(u32::MAX);
        MailboxCapability {
            tenant,
            account,
            answer_limit,
            read_deadline,
            vouched: None,
            io_runtime: tokio::runtime::Handle::try_current().ok(),
            renderer,
        }
    }

    /// What the plugin made of `held` ahead, if it answers `render` and still holds with the
    /// message's `flags` now: made by this very plugin, from the summary as it is sent, with
    /// these flags.
    fn rendered_for(
        &self,
        held: &mut Held,
        render: Option<&[u8]>,
        flags: &[String],
    ) -> Option<Vec<u8>> {
        let plugin = self.renderer.as_ref()?.id;
        let rendered = held.rendered.take()?;
        (rendered.plugin == plugin
            && Some(&*rendered.request) == render
            && held.summary.flags == flags)
            .then_some(rendered.rendering)
    }

    /// Runs a read on one of the account's sessions, until the read deadline. A read cut there
    /// drops its session (never returned to the pool mid-command) and is `Unavailable`; writes
    /// (`mailbox_write`) are not cut, since a change may already have been made.
    async fn read<T, F>(&self, account: &Account, op: F) -> Result<T, ImapError>
    where
        F: AsyncFnMut(&mut Session) -> Result<T, ImapError>,
    {
        let deadline = tokio::time::Instant::from_std(self.read_deadline);
        match tokio::time::timeout_at(deadline, account.run(op)).await {
            Ok(result) => result,
            Err(_) => Err(ImapError::Unavailable(
                "the IMAP server did not answer within the request's time".to_string(),
            )),
        }
    }

    pub(super) fn account(&self) -> Result<Arc<Account>, Error> {
        self.account.clone().ok_or(Error::Unauthenticated)
    }

    /// How an IMAP failure looks to the plugin; server and network trouble is logged here.
    pub(super) fn error(&self, folder: Option<&str>, error: ImapError) -> Error {
        let login = self.account.as_ref().map_or("-", |account| account.login());
        match error {
            ImapError::NoSuchMailbox(text) => {
                Error::NoSuchFolder(folder.map_or(text, str::to_string))
            }
            ImapError::TooLarge { size, limit } => Error::TooLarge(format!(
                "an item of {size} bytes or more, over the limit of {limit} bytes"
            )),
            ImapError::Refused { .. } | ImapError::Unsupported(_) => {
                Error::Refused(error.to_string())
            }
            ImapError::AuthFailed(reason) => {
                tracing::warn!(tenant = %self.tenant, %login, "IMAP no longer accepts the account's password: {reason}");
                Error::Unavailable("the IMAP server no longer accepts the password".to_string())
            }
            ImapError::Unavailable(_) | ImapError::Protocol(_) | ImapError::Tls(_) => {
                tracing::warn!(tenant = %self.tenant, %login, "mailbox call failed: {error}");
                Error::Unavailable(error.to_string())
            }
        }
    }

    /// The plugin's limit, or the host's when that is lower.
    fn answer_bytes(&self, asked: u32) -> u32 {
        asked.min(self.answer_limit)
    }

    /// A change made through this request: flags vouched for earlier no longer show it.
    pub(super) fn forget_vouched_flags(&mut self) {
        self.vouched = None;
    }

    /// Summaries of `uids`. Those fetched ahead (`prefetch-summaries`) take the flags this
    /// request's `changes` answer vouched for; the others of them get their flags from the
    /// server, in the same round trip as the full summaries of the rest; one the server no
    /// longer lists is gone. If the folder's UIDVALIDITY changed since they were fetched
    /// ahead, they are fetched again in full. With every UID vouched for, no round trip.
    async fn summaries_with_prefetched(
        &self,
        account: &Account,
        folder: &str,
        uids: Vec<u32>,
        prefix_bytes: u32,
        render: Option<&[u8]>,
    ) -> Result<Vec<Answered>, ImapError> {
        // A page still being fetched or rendered ahead holds what this request is about to ask
        // for (and when it is late, the request goes ahead and does it all itself).
        let deadline = tokio::time::Instant::from_std(self.read_deadline);
        account.wait_ahead(folder, &uids, deadline).await;
        let mut held = account.take_prefetched(folder, &uids, prefix_bytes);
        let vouched = self.vouched.as_ref().filter(|vouched| vouched.folder == folder);
        let mut summaries = Vec::with_capacity(uids.len());
        let (mut flags_only, mut full) = (Vec::new(), Vec::new());
        for &uid in &uids {
            if !held.contains_key(&uid) {
                full.push(uid);
            } else if let Some(flags) = vouched.and_then(|vouched| vouched.flags.get(&uid))
                && let Some(mut ahead) = held.remove(&uid)
            {
                let rendered = self.rendered_for(&mut ahead, render, flags);
                let summary = Summary { flags: flags.clone(), ..ahead.summary };
                summaries.push(Answered { summary, rendered });
            } else {
                flags_only.push(uid);
            }
        }
        account.count_flags_vouched(summaries.len());
        if flags_only.is_empty() && full.is_empty() {
            summaries.sort_unstable_by_key(|answered| answered.summary.uid);
            return Ok(summaries);
        }
        let name = folder.to_owned();
        let (fetched, uid_validity) = self
            .read(account, async move |session: &mut Session| {
                let fetched = session
                    .fetch_summaries_and_flags(&name, &full, prefix_bytes, &flags_only)
                    .await?;
                Ok((fetched, session.selected().map(|selected| selected.uid_validity)))
            })
            .await?;
        let mut stale = Vec::new();
        for summary in fetched {
            match held.remove(&summary.uid) {
                Some(mut ahead) if Some(ahead.uid_validity) == uid_validity => {
                    let rendered = self.rendered_for(&mut ahead, render, &summary.flags);
                    let summary = Summary { flags: summary.flags, ..ahead.summary };
                    summaries.push(Answered { summary, rendered });
                }
                Some(_) => stale.push(summary.uid),
                None => summaries.push(Answered { summary, rendered: None }),
            }
        }
        if !stale.is_empty() {
            let name = folder.to_owned();
            let again = self
                .read(account, async move |session: &mut Session| {
                    session.fetch_summaries(&name, &stale, prefix_bytes).await
                })
                .await?;
            summaries.extend(again.into_iter().map(|summary| Answered { summary, rendered: None }));
        }
        summaries.sort_unstable_by_key(|answered| answered.summary.uid);
        Ok(summaries)
    }
}

/// Has `plugin` render a page fetched ahead for `request` (while the page's job is still
/// under way: the request that wants the page waits for it rather than converting the
/// messages alongside), and keeps what it made with the page.
async fn render_ahead(
    account: &Account,
    folder: &str,
    plugin: &crate::runtime::Plugin,
    request: Vec<u8>,
    summaries: Vec<wit::MessageSummary>,
) {
    let uids: Vec<u32> = summaries.iter().map(|summary| summary.uid).collect();
    let Some(renderings) = plugin.render_ahead(&request, summaries).await else { return };
    let request: Arc<[u8]> = Arc::from(request);
    let rendered = uids
        .into_iter()
        .zip(renderings)
        .filter_map(|(uid, rendering)| {
            let rendering = rendering?;
            Some((uid, RenderedAhead { plugin: plugin.id, request: request.clone(), rendering }))
        })
        .collect();
    account.attach_rendered(folder, rendered);
}

impl wit::Host for MailboxCapability {
    async fn list_folders(&mut self) -> Result<Vec<wit::Folder>, Error> {
        let account = self.account()?;
        let folders = self
            .read(&account, async |session: &mut Session| session.list_folders().await)
            .await
            .map_err(|error| self.error(None, error))?;
        Ok(folders.into_iter().map(convert::folder).collect())
    }

    async fn status(
        &mut self,
        folders: Vec<String>,
    ) -> Result<Vec<Result<wit::FolderStatus, Error>>, Error> {
        let account = self.account()?;
        let mut answers = Vec::with_capacity(folders.len());
        for batch in folders.chunks(STATUS_BATCH) {
            let names = batch.to_vec();
            let results = self
                .read(&account, async move |session: &mut Session| {
                    let names: Vec<&str> = names.iter().map(String::as_str).collect();
                    session.status_many_current(&names).await
                })
                .await
                .map_err(|error| self.error(None, error))?;
            for (name, result) in batch.iter().zip(results) {
                answers.push(result.map(convert::status).map_err(|e| self.error(Some(name), e)));
            }
        }
        Ok(answers)
    }

    async fn changes(
        &mut self,
        folder: String,
        since: Option<wit::SyncPoint>,
    ) -> Result<wit::FolderChanges, Error> {
        let account = self.account()?;
        let since = since.map(convert::sync_point);
        let name = folder.clone();
        self.vouched = None;
        let changes = self
            .read(&account, async move |session: &mut Session| session.changes(&name, since).await)
            .await
            .map_err(|error| self.error(Some(&folder), error))?;
        let flags = account.prefetched_flags_as_of(&folder, since, &changes);
        if !flags.is_empty() {
            self.vouched = Some(VouchedFlags { folder, flags });
        }
        Ok(convert::changes(changes))
    }

    async fn uids_since(
        &mut self,
        folder: String,
        since: i64,
    ) -> Result<Vec<wit::UidRange>, Error> {
        let account = self.account()?;
        let name = folder.clone();
        let ranges = self
            .read(&account, async move |session: &mut Session| {
                session.uids_since(&name, since).await
            })
            .await
            .map_err(|error| self.error(Some(&folder), error))?;
        Ok(ranges.into_iter().map(convert::range).collect())
    }

    async fn fetch_summaries(
        &mut self,
        folder: String,
        uids: Vec<u32>,
        prefix_bytes: u32,
        render: Option<Vec<u8>>,
    ) -> Result<Vec<wit::MessageSummary>, Error> {
        let account = self.account()?;
        let summaries = self
            .summaries_with_prefetched(&account, &folder, uids, prefix_bytes, render.as_deref())
            .await
            .map_err(|error| self.error(Some(&folder), error))?;
        // checked on what came, not on the worst case asked for: most messages are shorter
        // than the prefix; an answer over the limit would only make the plugin trap
        let bytes: usize = summaries
            .iter()
            .map(|answered| {
                let carried = answered.rendered.as_ref().unwrap_or(&answered.summary.prefix);
                carried.len() + SUMMARY_OVERHEAD_BYTES
            })
            .sum();
        if bytes > usize::try_from(self.answer_limit).unwrap_or(usize::MAX) {
            return Err(Error::TooLarge(format!(
                "{} summaries come to about {bytes} bytes, over the host's limit of {} bytes \
                 per answer; ask for fewer or shorter prefixes",
                summaries.len(),
                self.answer_limit
            )));
        }
        let used = summaries.iter().filter(|answered| answered.rendered.is_some()).count();
        if used > 0 {
            account.count_rendered_used(used);
        }
        Ok(summaries
            .into_iter()
            .map(|answered| match answered.rendered {
                Some(rendered) => convert::rendered_summary(answered.summary, rendered),
                None => convert::summary(answered.summary),
            })
            .collect())
    }

    async fn prefetch_summaries(
        &mut self,
        folder: String,
        mut uids: Vec<u32>,
        prefix_bytes: u32,
        render: Option<Vec<u8>>,
    ) {
        let Ok(account) = self.account() else { return };
        if uids.is_empty() || uids.len() > MAX_PREFETCH_UIDS || !account.prefetch_has_room() {
            return;
        }
        // No more than the account can keep (a plugin's bug or a hostile one must not make the
        // host fetch more): the newest, which a Sync sends first.
        let fits =
            MAX_BYTES_PER_ACCOUNT / usize::try_from(prefix_bytes.max(1)).unwrap_or(usize::MAX);
        if uids.len() > fits {
            uids.sort_unstable_by(|a, b| b.cmp(a));
            uids.truncate(fits);
        }
        if uids.is_empty() {
            return;
        }
        // Only what is not held or on its way already; a hint beyond the account's jobs
        // under way is dropped.
        let Some((job, uids)) = account.begin_ahead(&folder, uids, prefix_bytes) else { return };
        let login = account.login().to_owned();
        let runtime = self.io_runtime.clone().unwrap_or_else(tokio::runtime::Handle::current);
        let render = render.zip(self.renderer.clone());
        runtime.spawn(async move {
            // a request for these UIDs waits until the job ends, rendering included
            let _job = job;
            let name = folder.clone();
            let fetch = async {
                // one FETCH ahead at a time per account; the next page's FETCH may run while
                // this one is rendered
                let _turn = account.prefetch_turn().await;
                account
                    .run(async move |session: &mut Session| {
                        let summaries = session.fetch_summaries(&name, &uids, prefix_bytes).await?;
                        // the EXAMINE that came before the FETCH in the same round trip
                        let under = session.selected().map(|selected| FetchedUnder {
                            uid_validity: selected.uid_validity,
                            highest_modseq: selected.highest_modseq,
                        });
                        Ok((summaries, under))
                    })
                    .await
            };
            match tokio::time::timeout(PREFETCH_TIME, fetch).await {
                Ok(Ok((summaries, Some(under)))) => {
                    // (the plugin gets its own copy: a request that stopped waiting may take
                    // the page meanwhile)
                    let to_render = render.map(|(request, plugin)| {
                        (request, plugin, summaries.iter().cloned().map(convert::summary).collect())
                    });
                    account.store_prefetched(&folder, under, prefix_bytes, summaries);
                    if let Some((request, plugin, summaries)) = to_render {
                        render_ahead(&account, &folder, &plugin, request, summaries).await;
                    }
                }
                // only a hint: the request that wants them fetches them itself
                Ok(Ok((_, None))) => {}
                Ok(Err(error)) => tracing::debug!(%login, "prefetch of summaries failed: {error}"),
                Err(_) => tracing::debug!(%login, "prefetch of summaries took too long"),
            }
        });
    }

    async fn fetch_message(
        &mut self,
        folder: String,
        uid: u32,
        max_bytes: u32,
    ) -> Result<Option<wit::Message>, Error> {
        let account = self.account()?;
        let max_bytes = self.answer_bytes(max_bytes);
        let name = folder.clone();
        let message = self
            .read(&account, async move |session: &mut Session| {
                session.fetch_message(&name, uid, max_bytes).await
            })
            .await
            .map_err(|error| self.error(Some(&folder), error))?;
        Ok(message.map(convert::message))
    }

    async fn fetch_part(
        &mut self,
        folder: String,
        uid: u32,
        section: String,
        max_bytes: u32,
    ) -> Result<Option<Vec<u8>>, Error> {
        let account = self.account()?;
        let max_bytes = self.answer_bytes(max_bytes);
        let name = folder.clone();
        self.read(&account, async move |session: &mut Session| {
            session.fetch_part(&name, uid, &section, max_bytes).await
        })
        .await
        .map_err(|error| self.error(Some(&folder), error))
    }
}
