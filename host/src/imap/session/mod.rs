//! An authenticated IMAP session that offers mail operations rather than commands: it chooses
//! pipelining and extensions (CONDSTORE, QRESYNC, LIST-EXTENDED, ESEARCH) by itself.
//!
//! Every operation runs under the endpoint's time limits. An error that leaves the stream in an
//! unknown place (timeout, protocol error, a cancelled operation) marks the session broken: later
//! calls fail at once with `Unavailable`, and a pool drops it.

mod fetch;
mod folders;
mod push;
mod search;
mod sync;
mod write;

use std::collections::VecDeque;

use tokio::time::Instant;

use super::capabilities::Capabilities;
use super::command::Command;
use super::connection::Connection;
use super::endpoint::{ChangeTracking, Endpoint, Timeouts};
use super::error::{ImapError, RefusalStatus};
use super::response::{Code, Response, Status, Tagged, Untagged};
use super::tls::TlsMode;

pub use fetch::{MAX_HEADER_BYTES, Message, Summary};
pub use folders::FolderStatus;
pub use push::{NotifyEvent, NotifyTarget, Unsolicited};
pub use sync::{ChangeMethod, Changes, MessageFlags, SyncPoint};
pub use write::{SearchCriteria, WriteResult};

/// Unsolicited responses kept for the caller; beyond this they are dropped and the caller is
/// told to resynchronise ([`Unsolicited::Overflow`]).
const MAX_QUEUED_UNSOLICITED: usize = 10_000;

/// The mailbox opened by the last SELECT/EXAMINE, as the server described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectInfo {
    pub raw_name: String,
    pub uid_validity: u32,
    pub uid_next: Option<u32>,
    pub exists: u32,
    /// `None` when the server has no mod-sequences for the mailbox or CONDSTORE is off.
    pub highest_modseq: Option<u64>,
    pub read_only: bool,
}

#[derive(Debug)]
pub struct Session {
    connection: Connection,
    timeouts: Timeouts,
    /// As announced after login, minus what the endpoint turned off.
    capabilities: Capabilities,
    /// QRESYNC was ENABLEd (RFC 7162 §3.2.3): EXPUNGE becomes VANISHED, SELECT takes QRESYNC.
    qresync_enabled: bool,
    next_tag: u32,
    selected: Option<SelectInfo>,
    /// The tag of a running IDLE.
    idle_tag: Option<String>,
    unsolicited: VecDeque<Unsolicited>,
    unsolicited_overflowed: bool,
    /// An operation started and has not finished: if a new one starts, the old one was
    /// cancelled midway and the stream position is unknown.
    busy: bool,
    /// Why the session cannot be used any more.
    broken: Option<String>,
    /// The text of a BYE, to explain the disconnect that follows.
    bye: Option<String>,
}

impl Session {
    /// Connects, starts TLS as configured, logs in, learns the capabilities and ENABLEs
    /// QRESYNC or CONDSTORE. The password is only ever written to the server.
    pub async fn connect(
        endpoint: &Endpoint,
        user: &str,
        password: &[u8],
    ) -> Result<Session, ImapError> {
        let deadline = Instant::now() + endpoint.timeouts.login;
        let login =
            tokio::time::timeout_at(deadline, Self::open(endpoint, user, password, deadline));
        login.await.map_err(|_| {
            ImapError::Unavailable(format!(
                "IMAP {}:{} did not complete the login within {:?}",
                endpoint.host, endpoint.port, endpoint.timeouts.login
            ))
        })?
    }

    async fn open(
        endpoint: &Endpoint,
        user: &str,
        password: &[u8],
        deadline: Instant,
    ) -> Result<Session, ImapError> {
        let mut connection = Connection::connect(
            &endpoint.host,
            endpoint.port,
            endpoint.timeouts.connect,
            endpoint.timeouts.io,
            endpoint.limits.frame_limits(),
        )
        .await?;
        connection.set_deadline(deadline);
        let tls = || endpoint.tls.as_ref().ok_or_else(|| ImapError::Tls("no TLS client".into()));
        if endpoint.tls_mode == TlsMode::Implicit {
            connection = connection.start_tls(tls()?).await?;
        }
        let greeting = read_greeting(&mut connection).await?;
        if endpoint.tls_mode == TlsMode::StartTls {
            connection.write_all(b"s0 STARTTLS\r\n").await?;
            loop {
                match connection.read_response().await? {
                    Response::Tagged(tagged) if tagged.tag == "s0" => {
                        if tagged.status != Status::Ok {
                            return Err(ImapError::Tls(format!(
                                "STARTTLS refused: {}",
                                tagged.text
                            )));
                        }
                        break;
                    }
                    Response::Untagged(_) => {}
                    other => {
                        return Err(ImapError::Protocol(format!("answer to STARTTLS: {other:?}")));
                    }
                }
            }
            connection = connection.start_tls(tls()?).await?;
        }

        let mut session = Session {
            connection,
            timeouts: endpoint.timeouts,
            capabilities: greeting.capabilities.clone().unwrap_or_default(),
            qresync_enabled: false,
            next_tag: 1,
            selected: None,
            idle_tag: None,
            unsolicited: VecDeque::new(),
            unsolicited_overflowed: false,
            busy: false,
            broken: None,
            bye: None,
        };
        // capabilities before STARTTLS may have been forged; only trust them for LOGINDISABLED
        if endpoint.tls_mode == TlsMode::StartTls {
            session.capabilities = Capabilities::default();
        }
        if !greeting.preauthenticated {
            if session.capabilities.login_disabled {
                return Err(ImapError::Unsupported("LOGIN (the server announces LOGINDISABLED)"));
            }
            session.login(user, password).await?;
        }
        if session.capabilities.all.is_empty() || endpoint.tls_mode == TlsMode::StartTls {
            session.refresh_capabilities().await?;
        }
        session.capabilities = match endpoint.change_tracking {
            ChangeTracking::Best => session.capabilities,
            ChangeTracking::CondstoreOnly => session.capabilities.without_qresync(),
            ChangeTracking::Off => session.capabilities.without_change_tracking(),
        };
        session.enable_change_tracking().await?;
        Ok(session)
    }

    /// LOGIN (RFC 9051 §6.2.3); a NO is `AuthFailed`, anything else unexpected `Protocol`.
    async fn login(&mut self, user: &str, password: &[u8]) -> Result<(), ImapError> {
        let command = self.command("LOGIN").string(user.as_bytes()).string(password).end();
        let done = self.execute(&[command], &mut Some).await?;
        let tagged = single(done)?;
        match tagged.status {
            Status::Ok => {
                // Dovecot and others put the post-login list in the OK: one round trip less
                if let Some(Code::Capability(capabilities)) = tagged.code {
                    self.capabilities = capabilities;
                } else {
                    self.capabilities = Capabilities::default();
                }
                Ok(())
            }
            Status::No => Err(ImapError::AuthFailed(tagged.text)),
            _ => Err(ImapError::Protocol(format!(
                "LOGIN answered {:?} {}",
                tagged.status, tagged.text
            ))),
        }
    }

    async fn refresh_capabilities(&mut self) -> Result<(), ImapError> {
        let mut announced = None;
        let command = self.command("CAPABILITY").end();
        let done = self
            .execute(&[command], &mut |data| match data {
                Untagged::Capability(capabilities) => {
                    announced = Some(capabilities);
                    None
                }
                other => Some(other),
            })
            .await?;
        ensure_ok(&single(done)?, "CAPABILITY")?;
        self.capabilities = announced
            .ok_or_else(|| ImapError::Protocol("CAPABILITY without a CAPABILITY line".into()))?;
        Ok(())
    }

    /// ENABLE QRESYNC, or CONDSTORE (RFC 5161, RFC 7162 §3.1.8 and §3.2.3).
    async fn enable_change_tracking(&mut self) -> Result<(), ImapError> {
        let wanted = if self.capabilities.qresync {
            "QRESYNC"
        } else if self.capabilities.condstore {
            "CONDSTORE"
        } else {
            return Ok(());
        };
        if !self.capabilities.enable {
            // CONDSTORE also starts with the first command that uses it; QRESYNC cannot
            self.capabilities.qresync = false;
            return Ok(());
        }
        let mut enabled = Vec::new();
        let command = self.command("ENABLE").raw(" ").raw(wanted).end();
        let done = self
            .execute(&[command], &mut |data| match data {
                Untagged::Enabled(names) => {
                    enabled.extend(names);
                    None
                }
                other => Some(other),
            })
            .await?;
        ensure_ok(&single(done)?, "ENABLE")?;
        self.qresync_enabled = enabled.iter().any(|name| name == "QRESYNC");
        if !self.qresync_enabled {
            self.capabilities.qresync = false;
        }
        Ok(())
    }

    /// The capabilities in effect (announced after login, minus what the endpoint turned off).
    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// Whether the session can still be used (no broken stream, no cancelled operation).
    pub fn is_usable(&self) -> bool {
        self.broken.is_none() && !self.busy
    }

    /// The mailbox currently selected, if any.
    pub fn selected(&self) -> Option<&SelectInfo> {
        self.selected.as_ref()
    }

    /// Drops the unsolicited data queued so far: for sessions that nobody watches (a pool's),
    /// whose queue would otherwise only grow.
    pub fn discard_unsolicited(&mut self) {
        self.unsolicited.clear();
        self.unsolicited_overflowed = false;
    }

    /// For a session about to wait unused (pooled): see [`Connection::release_buffer`].
    pub fn release_buffer(&mut self) {
        self.connection.release_buffer();
    }

    /// NOOP: lets the server report pending changes (queued as unsolicited data) and checks
    /// that the session is alive.
    pub async fn noop(&mut self) -> Result<(), ImapError> {
        let result = async {
            self.begin().await?;
            let command = self.command("NOOP").end();
            let done = self.execute(&[command], &mut Some).await?;
            ensure_ok(&single(done)?, "NOOP")
        }
        .await;
        self.end(result)
    }

    /// LOGOUT, best effort: the session is gone either way.
    pub async fn logout(mut self) {
        let result = async {
            self.begin().await?;
            let command = self.command("LOGOUT").end();
            self.execute(&[command], &mut Some).await.map(drop)
        }
        .await;
        if let Err(error) = result {
            tracing::debug!(%error, "IMAP LOGOUT");
        }
    }

    /// EXAMINE (read-only SELECT, RFC 9051 §6.3.3): opens `raw_name` for the fetch operations.
    pub async fn examine(&mut self, raw_name: &str) -> Result<SelectInfo, ImapError> {
        let result = async {
            self.begin().await?;
            let opened = self.open_mailbox(raw_name).await;
            self.explain_refusal(raw_name, opened).await
        }
        .await;
        self.end(result)
    }

    async fn open_mailbox(&mut self, raw_name: &str) -> Result<SelectInfo, ImapError> {
        let command = self.examine_command(raw_name, None);
        let mut opening = MailboxOpening::new(raw_name);
        let done = self.execute(&[command], &mut |data| opening.take(data)).await?;
        let tagged = single(done)?;
        self.finish_open(opening, &tagged)
    }

    /// `EXAMINE mailbox [(QRESYNC (uidvalidity modseq))]` (RFC 7162 §3.2.5).
    fn examine_command(&mut self, raw_name: &str, qresync: Option<SyncPoint>) -> Command {
        let command = self.command("EXAMINE").string(raw_name.as_bytes());
        match qresync {
            Some(since) => command
                .raw(&format!(
                    " (QRESYNC ({} {}))",
                    since.uid_validity,
                    since.highest_modseq.max(1)
                ))
                .end(),
            None => command.end(),
        }
    }

    /// Records the outcome of an EXAMINE: a failed one leaves no mailbox selected (RFC 9051
    /// §6.3.2).
    fn finish_open(
        &mut self,
        opening: MailboxOpening,
        tagged: &Tagged,
    ) -> Result<SelectInfo, ImapError> {
        self.selected = None;
        ensure_ok(tagged, "EXAMINE")?;
        let info = opening.into_info(tagged, self.capabilities.condstore)?;
        self.selected = Some(info.clone());
        Ok(info)
    }

    fn command(&mut self, name: &'static str) -> Command {
        let tag = format!("e{}", self.next_tag);
        self.next_tag = self.next_tag.wrapping_add(1);
        Command::new(tag, name, &self.capabilities)
    }

    /// Starts an operation: refuses a broken session, sets the deadline, ends a running IDLE.
    async fn begin(&mut self) -> Result<(), ImapError> {
        if let Some(reason) = &self.broken {
            return Err(ImapError::Unavailable(format!("session unusable: {reason}")));
        }
        if self.busy {
            let reason = "an earlier operation was cancelled midway".to_string();
            self.broken = Some(reason.clone());
            return Err(ImapError::Unavailable(format!("session unusable: {reason}")));
        }
        self.busy = true;
        self.connection.set_deadline(Instant::now() + self.timeouts.operation);
        if self.idle_tag.is_some() {
            self.finish_idle().await?;
        }
        Ok(())
    }

    /// Ends an operation, marking the session broken when the error left the stream unknown.
    fn end<T>(&mut self, result: Result<T, ImapError>) -> Result<T, ImapError> {
        self.busy = false;
        if let Err(error) = &result
            && error.breaks_session()
        {
            self.broken = Some(error.to_string());
        }
        result
    }

    /// Sends the commands back to back (pipelining, RFC 9051 §5.5), then reads until every one
    /// has completed. Untagged data goes to `on_data`; what it hands back is queued as
    /// unsolicited. Completions are returned in command order.
    ///
    /// The commands are small (the callers cap UID sets), so writing all of them before
    /// reading cannot fill both directions' buffers and deadlock.
    async fn execute<F>(
        &mut self,
        commands: &[Command],
        on_data: &mut F,
    ) -> Result<Vec<Tagged>, ImapError>
    where
        F: FnMut(Untagged) -> Option<Untagged>,
    {
        let mut done: Vec<Option<Tagged>> = vec![None; commands.len()];
        let mut pending: Vec<u8> = Vec::new();
        for (index, command) in commands.iter().enumerate() {
            let pieces = command.pieces();
            let last = pieces.len() - 1;
            for (number, piece) in pieces.into_iter().enumerate() {
                pending.extend_from_slice(piece);
                if number == last {
                    break;
                }
                // a synchronising literal: the server must say `+` before its bytes
                self.connection.write_all(&pending).await?;
                pending.clear();
                if !self.await_continuation(commands, index, &mut done, on_data).await? {
                    // refused before the literal: the rest of the command must not be sent
                    break;
                }
            }
        }
        if !pending.is_empty() {
            self.connection.write_all(&pending).await?;
        }
        while done.iter().any(Option::is_none) {
            match self.read().await? {
                Response::Continuation(text) => {
                    return Err(ImapError::Protocol(format!("unexpected continuation: {text}")));
                }
                other => self.dispatch(other, commands, &mut done, on_data)?,
            }
        }
        Ok(done.into_iter().flatten().collect())
    }

    /// Reads until the `+` for the command at `index` (true) or its completion (false).
    async fn await_continuation<F>(
        &mut self,
        commands: &[Command],
        index: usize,
        done: &mut [Option<Tagged>],
        on_data: &mut F,
    ) -> Result<bool, ImapError>
    where
        F: FnMut(Untagged) -> Option<Untagged>,
    {
        loop {
            match self.read().await? {
                Response::Continuation(_) => return Ok(true),
                other => self.dispatch(other, commands, done, on_data)?,
            }
            if done.get(index).is_some_and(Option::is_some) {
                return Ok(false);
            }
        }
    }

    fn dispatch<F>(
        &mut self,
        response: Response,
        commands: &[Command],
        done: &mut [Option<Tagged>],
        on_data: &mut F,
    ) -> Result<(), ImapError>
    where
        F: FnMut(Untagged) -> Option<Untagged>,
    {
        match response {
            Response::Tagged(tagged) => {
                let slot = commands.iter().position(|command| command.tag == tagged.tag);
                match slot.and_then(|index| done.get_mut(index)) {
                    Some(slot) => *slot = Some(tagged),
                    None => {
                        return Err(ImapError::Protocol(format!(
                            "completion for unknown tag {}",
                            tagged.tag
                        )));
                    }
                }
            }
            Response::Untagged(Untagged::Condition { status: Status::Bye, text, .. }) => {
                self.bye = Some(text);
            }
            Response::Untagged(data) => {
                if let Some(rest) = on_data(data) {
                    self.queue_unsolicited(rest);
                }
            }
            Response::Continuation(text) => {
                return Err(ImapError::Protocol(format!("unexpected continuation: {text}")));
            }
        }
        Ok(())
    }

    async fn read(&mut self) -> Result<Response, ImapError> {
        let response = self.connection.read_response().await;
        response.map_err(|error| match (&self.bye, error) {
            (Some(text), ImapError::Unavailable(_)) => {
                ImapError::Unavailable(format!("the server ended the session: {text}"))
            }
            (_, error) => error,
        })
    }

    /// Runs the commands with the literal limit raised to `max_literal` (for message and part
    /// fetches bigger than the general limit), restoring it afterwards.
    async fn execute_with_literal_limit<F>(
        &mut self,
        max_literal: usize,
        commands: &[Command],
        on_data: &mut F,
    ) -> Result<Vec<Tagged>, ImapError>
    where
        F: FnMut(Untagged) -> Option<Untagged>,
    {
        let normal = self.connection.limits();
        let mut raised = normal;
        raised.max_literal = normal.max_literal.max(max_literal);
        raised.max_response = normal.max_response.max(max_literal.saturating_add(normal.max_line));
        self.connection.set_limits(raised);
        let result = self.execute(commands, on_data).await;
        self.connection.set_limits(normal);
        result
    }
}

/// What the untagged data of one EXAMINE said.
struct MailboxOpening {
    raw_name: String,
    exists: Option<u32>,
    uid_validity: Option<u32>,
    uid_next: Option<u32>,
    highest_modseq: Option<u64>,
    no_modseq: bool,
}

impl MailboxOpening {
    fn new(raw_name: &str) -> Self {
        Self {
            raw_name: raw_name.to_string(),
            exists: None,
            uid_validity: None,
            uid_next: None,
            highest_modseq: None,
            no_modseq: false,
        }
    }

    /// Takes the data that describes the mailbox; hands back the rest.
    fn take(&mut self, data: Untagged) -> Option<Untagged> {
        match data {
            Untagged::Exists(count) => self.exists = Some(count),
            Untagged::Recent(_) | Untagged::Flags(_) => {}
            Untagged::Condition { status: Status::Ok, code: Some(code), .. } => match code {
                Code::UidValidity(value) => self.uid_validity = Some(value),
                Code::UidNext(value) => self.uid_next = Some(value),
                Code::HighestModSeq(value) => self.highest_modseq = Some(value),
                Code::NoModSeq => self.no_modseq = true,
                _ => {}
            },
            other => return Some(other),
        }
        None
    }

    fn into_info(self, tagged: &Tagged, condstore: bool) -> Result<SelectInfo, ImapError> {
        let uid_validity = self.uid_validity.ok_or_else(|| {
            ImapError::Protocol(format!("EXAMINE {}: no UIDVALIDITY", self.raw_name))
        })?;
        Ok(SelectInfo {
            raw_name: self.raw_name,
            uid_validity,
            uid_next: self.uid_next,
            exists: self.exists.unwrap_or(0),
            highest_modseq: if condstore && !self.no_modseq { self.highest_modseq } else { None },
            read_only: !matches!(tagged.code, Some(Code::ReadWrite)),
        })
    }
}

struct Greeting {
    capabilities: Option<Capabilities>,
    preauthenticated: bool,
}

/// `* OK`, `* PREAUTH` or `* BYE` (RFC 9051 §7.1.1, §7.1.4, §7.1.5).
async fn read_greeting(connection: &mut Connection) -> Result<Greeting, ImapError> {
    match connection.read_response().await? {
        Response::Untagged(Untagged::Condition { status, code, text }) => {
            let capabilities = match code {
                Some(Code::Capability(capabilities)) => Some(capabilities),
                _ => None,
            };
            match status {
                Status::Ok => Ok(Greeting { capabilities, preauthenticated: false }),
                Status::PreAuth => Ok(Greeting { capabilities, preauthenticated: true }),
                Status::Bye => {
                    Err(ImapError::Unavailable(format!("the server refused us: {text}")))
                }
                _ => Err(ImapError::Protocol(format!("greeting {status:?} {text}"))),
            }
        }
        other => Err(ImapError::Protocol(format!("unexpected greeting {other:?}"))),
    }
}

/// The completion of a single command.
fn single(done: Vec<Tagged>) -> Result<Tagged, ImapError> {
    done.into_iter().next().ok_or_else(|| ImapError::Protocol("no completion".to_string()))
}

/// NO and BAD as `Refused`; a NO with `[NONEXISTENT]` (RFC 5530 §3) as `NoSuchMailbox`.
fn ensure_ok(tagged: &Tagged, command: &'static str) -> Result<(), ImapError> {
    let status = match tagged.status {
        Status::Ok => return Ok(()),
        Status::No if tagged.code == Some(Code::NonExistent) => {
            return Err(ImapError::NoSuchMailbox(tagged.text.clone()));
        }
        Status::No => RefusalStatus::No,
        _ => RefusalStatus::Bad,
    };
    Err(ImapError::Refused { command, status, text: tagged.text.clone() })
}
