//! The engine as a WASI component: `wasi:http/incoming-handler` in, engine out.
//!
//! Everything here is transport glue: turn the incoming request into an
//! [`eas_engine::http::Request`], run the engine with the host's imports as its
//! [`Capabilities`], and write the [`Response`] back. No protocol logic lives here.

mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "eas-edge:gateway/plugin",
        generate_all,
    });
}

#[cfg(feature = "fault-injection")]
mod fault;
mod mailbox_types;
mod wasi_http;

use bindings::eas_edge::gateway::{
    clock, config, log, mailbox, mailbox_write, out_of_office, state, submission,
};
use bindings::exports::wasi::http::incoming_handler::Guest;
use bindings::wasi::http::types::{IncomingRequest, ResponseOutparam};
use eas_engine::http::Response;
use eas_engine::mailbox::{
    Changes, Folder, FolderStatus, MailboxResult, Message, MessageSummary, SearchQuery, SyncPoint,
    UidRange,
};
use eas_engine::out_of_office::{OofError, OofSettings};
use eas_engine::settings::TenantSettings;
use eas_engine::submission::{RefusedRecipient, SendClaim, SubmissionError};
use eas_engine::{
    Capabilities, Engine, Level, StateCondition, StateError, StateResult, StateScope, StateWrite,
};

/// The host's imports, seen by the engine.
struct HostImports;

impl Capabilities for HostImports {
    fn now_ms(&self) -> u64 {
        clock::now_ms()
    }

    fn log(&self, level: Level, message: &str) {
        let level = match level {
            Level::Trace => log::Level::Trace,
            Level::Debug => log::Level::Debug,
            Level::Info => log::Level::Info,
            Level::Warn => log::Level::Warn,
            Level::Error => log::Level::Error,
        };
        log::log(level, message);
    }

    fn random_u64(&self) -> Option<u64> {
        Some(bindings::wasi::random::random::get_random_u64())
    }

    fn settings(&self) -> TenantSettings {
        let settings = config::current();
        TenantSettings {
            heartbeat_min_seconds: settings.heartbeat_min_seconds,
            heartbeat_max_seconds: settings.heartbeat_max_seconds,
            max_ping_folders: settings.max_ping_folders,
            policy: settings.policy,
        }
    }

    async fn state_get(&self, scope: &StateScope, key: &str) -> StateResult<Option<Vec<u8>>> {
        state::get(&wit_scope(scope), key).map_err(engine_error)
    }

    async fn state_put(&self, scope: &StateScope, key: &str, value: Vec<u8>) -> StateResult<()> {
        state::put(&wit_scope(scope), key, &value).map_err(engine_error)
    }

    async fn state_compare_and_swap(
        &self,
        scope: &StateScope,
        key: &str,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
    ) -> StateResult<bool> {
        state::compare_and_swap(&wit_scope(scope), key, expected.as_deref(), new.as_deref())
            .map_err(engine_error)
    }

    async fn state_transact(
        &self,
        scope: &StateScope,
        conditions: Vec<StateCondition>,
        writes: Vec<StateWrite>,
    ) -> StateResult<bool> {
        let conditions: Vec<state::Condition> = conditions
            .into_iter()
            .map(|c| state::Condition { key: c.key, expected: c.expected })
            .collect();
        let writes: Vec<state::Write> =
            writes.into_iter().map(|w| state::Write { key: w.key, value: w.value }).collect();
        state::transact(&wit_scope(scope), &conditions, &writes).map_err(engine_error)
    }

    async fn list_folders(&self) -> MailboxResult<Vec<Folder>> {
        let folders = mailbox::list_folders().map_err(mailbox_types::error)?;
        Ok(folders.into_iter().map(mailbox_types::folder).collect())
    }

    async fn folder_status(
        &self,
        folders: &[String],
    ) -> MailboxResult<Vec<MailboxResult<FolderStatus>>> {
        let answers = mailbox::status(folders).map_err(mailbox_types::error)?;
        Ok(answers
            .into_iter()
            .map(|answer| answer.map(mailbox_types::status).map_err(mailbox_types::error))
            .collect())
    }

    async fn changes(&self, folder: &str, since: Option<SyncPoint>) -> MailboxResult<Changes> {
        let since = since.map(|point| mailbox::SyncPoint {
            uid_validity: point.uid_validity,
            highest_modseq: point.highest_modseq,
        });
        mailbox::changes(folder, since).map(mailbox_types::changes).map_err(mailbox_types::error)
    }

    async fn uids_since(&self, folder: &str, since: i64) -> MailboxResult<Vec<UidRange>> {
        let ranges = mailbox::uids_since(folder, since).map_err(mailbox_types::error)?;
        Ok(ranges.into_iter().map(mailbox_types::range).collect())
    }

    async fn fetch_summaries(
        &self,
        folder: &str,
        uids: &[u32],
        prefix_bytes: u32,
        render: Option<&[u8]>,
    ) -> MailboxResult<Vec<MessageSummary>> {
        let summaries = mailbox::fetch_summaries(folder, uids, prefix_bytes, render)
            .map_err(mailbox_types::error)?;
        Ok(summaries.into_iter().map(mailbox_types::summary).collect())
    }

    async fn prefetch_summaries(
        &self,
        folder: &str,
        uids: &[u32],
        prefix_bytes: u32,
        render: Option<&[u8]>,
    ) {
        mailbox::prefetch_summaries(folder, uids, prefix_bytes, render);
    }

    async fn fetch_message(
        &self,
        folder: &str,
        uid: u32,
        max_bytes: u32,
    ) -> MailboxResult<Option<Message>> {
        let message =
            mailbox::fetch_message(folder, uid, max_bytes).map_err(mailbox_types::error)?;
        Ok(message.map(mailbox_types::message))
    }

    async fn fetch_part(
        &self,
        folder: &str,
        uid: u32,
        section: &str,
        max_bytes: u32,
    ) -> MailboxResult<Option<Vec<u8>>> {
        mailbox::fetch_part(folder, uid, section, max_bytes).map_err(mailbox_types::error)
    }

    async fn store_flags(
        &self,
        folder: &str,
        uids: &[u32],
        add: &[String],
        remove: &[String],
    ) -> MailboxResult<()> {
        mailbox_write::store_flags(folder, uids, add, remove).map_err(mailbox_types::error)
    }

    async fn move_messages(
        &self,
        source: &str,
        uids: &[u32],
        destination: &str,
    ) -> MailboxResult<Vec<(u32, u32)>> {
        mailbox_write::move_messages(source, uids, destination).map_err(mailbox_types::error)
    }

    async fn expunge(&self, folder: &str, uids: &[u32]) -> MailboxResult<()> {
        mailbox_write::expunge(folder, uids).map_err(mailbox_types::error)
    }

    async fn append(
        &self,
        folder: &str,
        message: &[u8],
        flags: &[String],
        internal_date: Option<i64>,
    ) -> MailboxResult<Option<u32>> {
        mailbox_write::append(folder, message, flags, internal_date).map_err(mailbox_types::error)
    }

    async fn search(&self, folder: &str, query: &SearchQuery) -> MailboxResult<Vec<u32>> {
        let query = mailbox_write::SearchQuery {
            text: query.text.clone(),
            since: query.since,
            before: query.before,
            header: query.header.clone(),
        };
        mailbox_write::search(folder, &query).map_err(mailbox_types::error)
    }

    async fn create_folder(&self, parent: Option<&str>, name: &str) -> MailboxResult<Folder> {
        mailbox_write::create_folder(parent, name)
            .map(mailbox_types::folder)
            .map_err(mailbox_types::error)
    }

    async fn rename_folder(
        &self,
        folder: &str,
        new_parent: Option<&str>,
        new_name: &str,
    ) -> MailboxResult<Folder> {
        mailbox_write::rename_folder(folder, new_parent, new_name)
            .map(mailbox_types::folder)
            .map_err(mailbox_types::error)
    }

    async fn delete_folder(&self, folder: &str) -> MailboxResult<()> {
        mailbox_write::delete_folder(folder).map_err(mailbox_types::error)
    }

    async fn empty_folder(&self, folder: &str) -> MailboxResult<()> {
        mailbox_write::empty_folder(folder).map_err(mailbox_types::error)
    }

    async fn send_mail(
        &self,
        message: &[u8],
        recipients: &[String],
        claim: Option<&SendClaim>,
    ) -> Result<Vec<RefusedRecipient>, SubmissionError> {
        let claim = claim.map(|claim| submission::Claim {
            scope: wit_scope(&claim.scope),
            key: claim.key.clone(),
            expected: claim.expected.clone(),
            value: claim.value.clone(),
            presumed: claim.presumed.clone(),
        });
        match submission::send(message, recipients, claim.as_ref()) {
            Ok(refused) => Ok(refused
                .into_iter()
                .map(|r| RefusedRecipient { address: r.address, reply: r.reply })
                .collect()),
            Err(submission::Error::Unauthenticated) => Err(SubmissionError::Unauthenticated),
            Err(submission::Error::Unavailable(why)) => Err(SubmissionError::Unavailable(why)),
            Err(submission::Error::Rejected(why)) => Err(SubmissionError::Rejected(why)),
            Err(submission::Error::TooLarge(why)) => Err(SubmissionError::TooLarge(why)),
            Err(submission::Error::OutcomeUnknown(why)) => {
                Err(SubmissionError::OutcomeUnknown(why))
            }
            Err(submission::Error::ClaimLost) => Err(SubmissionError::ClaimLost),
        }
    }

    async fn out_of_office(&self) -> Result<OofSettings, OofError> {
        out_of_office::get()
            .map(|s| OofSettings {
                enabled: s.enabled,
                start: s.start,
                end: s.end,
                subject: s.subject,
                message: s.message,
            })
            .map_err(oof_error)
    }

    async fn set_out_of_office(&self, settings: &OofSettings) -> Result<(), OofError> {
        out_of_office::set(&out_of_office::Settings {
            enabled: settings.enabled,
            start: settings.start,
            end: settings.end,
            subject: settings.subject.clone(),
            message: settings.message.clone(),
        })
        .map_err(oof_error)
    }
}

fn oof_error(error: out_of_office::Error) -> OofError {
    match error {
        out_of_office::Error::Unauthenticated => OofError::Unauthenticated,
        out_of_office::Error::NotAvailable => OofError::NotAvailable,
        out_of_office::Error::Unavailable(why) => OofError::Unavailable(why),
        out_of_office::Error::Refused(why) => OofError::Refused(why),
    }
}

fn wit_scope(scope: &StateScope) -> state::Scope {
    match scope {
        StateScope::Account => state::Scope::Account,
        StateScope::Device(id) => state::Scope::Device(id.clone()),
    }
}

fn engine_error(error: state::Error) -> StateError {
    match error {
        state::Error::Unauthenticated => StateError::Unauthenticated,
        state::Error::TooLarge(what) => StateError::TooLarge(what),
        state::Error::Unavailable(why) => StateError::Unavailable(why),
    }
}

struct Plugin;

impl Guest for Plugin {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        install_panic_hook();
        let response = match wasi_http::read_request(request) {
            Ok(request) => {
                #[cfg(feature = "fault-injection")]
                fault::inject(&request);
                eas_engine::drive::run_to_completion(Engine::new().handle(&HostImports, &request))
                    .unwrap_or_else(|| {
                        HostImports.log(Level::Error, "engine waited on a synchronous import");
                        Response::new(500)
                    })
            }
            Err(error) => {
                HostImports.log(Level::Warn, &format!("unreadable request: {error}"));
                Response::new(400)
            }
        };
        wasi_http::write_response(response, response_out);
    }
}

impl bindings::exports::eas_edge::gateway::render_ahead::Guest for Plugin {
    fn render(request: Vec<u8>, summaries: Vec<mailbox::MessageSummary>) -> Vec<Option<Vec<u8>>> {
        install_panic_hook();
        let summaries: Vec<MessageSummary> =
            summaries.into_iter().map(mailbox_types::summary).collect();
        eas_engine::sync::render_ahead::render(&request, &summaries)
    }
}

/// A panic is a bug: log it through the host before the abort turns it into a trap (which
/// the host answers with 500).
fn install_panic_hook() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            HostImports.log(Level::Error, &format!("plugin panicked: {info}"));
        }));
    });
}

bindings::export!(Plugin with_types_in bindings);
