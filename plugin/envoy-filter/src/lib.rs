//! The engine as a proxy-wasm (ABI 0.2.1) HTTP filter for Envoy.
//!
//! The filter buffers the request, runs the engine and answers with a local reply; nothing is
//! forwarded upstream. Authentication happens before the filter, in Envoy's ext_authz filter
//! backed by the eas-edge host, which strips `Authorization` and sets the identity header: the
//! password never reaches this VM.

use eas_engine::http::{Request, Response};
use eas_engine::mailbox::{
    Changes, Folder, FolderStatus, MailboxError, MailboxResult, Message, MessageSummary,
    SearchQuery, SyncPoint, UidRange,
};
use eas_engine::out_of_office::{OofError, OofSettings};
use eas_engine::settings::TenantSettings;
use eas_engine::submission::{RefusedRecipient, SubmissionError};
use eas_engine::{Capabilities, Engine, Level, StateError, StateResult, StateScope};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};
use std::time::UNIX_EPOCH;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(FilterRoot) });
}}

struct FilterRoot;

impl Context for FilterRoot {}

impl RootContext for FilterRoot {
    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(EasStream::default()))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// One client request while its body is being buffered.
#[derive(Default)]
struct EasStream {
    request: Request,
}

/// Envoy's host calls, seen by the engine.
struct EnvoyHost;

impl Capabilities for EnvoyHost {
    fn now_ms(&self) -> u64 {
        proxy_wasm::hostcalls::get_current_time()
            .ok()
            .and_then(|now| now.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
    }

    fn log(&self, level: Level, message: &str) {
        let level = match level {
            Level::Trace => LogLevel::Trace,
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        };
        // Logging failures cannot be reported anywhere else.
        let _ = proxy_wasm::hostcalls::log(level, message);
    }

    /// Envoy offers no randomness to filters; it will come from the host's capability
    /// endpoint together with state.
    fn random_u64(&self) -> Option<u64> {
        None
    }

    /// Per-domain settings come with the filter's plugin configuration (#7).
    fn settings(&self) -> TenantSettings {
        TenantSettings::default()
    }

    async fn state_get(&self, _: &StateScope, _: &str) -> StateResult<Option<Vec<u8>>> {
        Err(no_state_yet())
    }

    async fn state_put(&self, _: &StateScope, _: &str, _: Vec<u8>) -> StateResult<()> {
        Err(no_state_yet())
    }

    async fn state_compare_and_swap(
        &self,
        _: &StateScope,
        _: &str,
        _: Option<Vec<u8>>,
        _: Option<Vec<u8>>,
    ) -> StateResult<bool> {
        Err(no_state_yet())
    }

    async fn list_folders(&self) -> MailboxResult<Vec<Folder>> {
        Err(no_mailbox_yet())
    }

    async fn folder_status(&self, _: &[String]) -> MailboxResult<Vec<MailboxResult<FolderStatus>>> {
        Err(no_mailbox_yet())
    }

    async fn changes(&self, _: &str, _: Option<SyncPoint>) -> MailboxResult<Changes> {
        Err(no_mailbox_yet())
    }

    async fn uids_since(&self, _: &str, _: i64) -> MailboxResult<Vec<UidRange>> {
        Err(no_mailbox_yet())
    }

    async fn fetch_summaries(
        &self,
        _: &str,
        _: &[u32],
        _: u32,
    ) -> MailboxResult<Vec<MessageSummary>> {
        Err(no_mailbox_yet())
    }

    async fn fetch_message(&self, _: &str, _: u32, _: u32) -> MailboxResult<Option<Message>> {
        Err(no_mailbox_yet())
    }

    async fn fetch_part(&self, _: &str, _: u32, _: &str, _: u32) -> MailboxResult<Option<Vec<u8>>> {
        Err(no_mailbox_yet())
    }

    async fn store_flags(
        &self,
        _: &str,
        _: &[u32],
        _: &[String],
        _: &[String],
    ) -> MailboxResult<()> {
        Err(no_mailbox_yet())
    }

    async fn move_messages(&self, _: &str, _: &[u32], _: &str) -> MailboxResult<Vec<(u32, u32)>> {
        Err(no_mailbox_yet())
    }

    async fn expunge(&self, _: &str, _: &[u32]) -> MailboxResult<()> {
        Err(no_mailbox_yet())
    }

    async fn append(
        &self,
        _: &str,
        _: &[u8],
        _: &[String],
        _: Option<i64>,
    ) -> MailboxResult<Option<u32>> {
        Err(no_mailbox_yet())
    }

    async fn search(&self, _: &str, _: &SearchQuery) -> MailboxResult<Vec<u32>> {
        Err(no_mailbox_yet())
    }

    async fn create_folder(&self, _: Option<&str>, _: &str) -> MailboxResult<Folder> {
        Err(no_mailbox_yet())
    }

    async fn rename_folder(&self, _: &str, _: Option<&str>, _: &str) -> MailboxResult<Folder> {
        Err(no_mailbox_yet())
    }

    async fn delete_folder(&self, _: &str) -> MailboxResult<()> {
        Err(no_mailbox_yet())
    }

    async fn empty_folder(&self, _: &str) -> MailboxResult<()> {
        Err(no_mailbox_yet())
    }

    async fn send_mail(
        &self,
        _: &[u8],
        _: &[String],
    ) -> Result<Vec<RefusedRecipient>, SubmissionError> {
        Err(SubmissionError::Unavailable(
            "the Envoy filter has no submission capability yet".to_owned(),
        ))
    }

    async fn out_of_office(&self) -> Result<OofSettings, OofError> {
        Err(OofError::NotAvailable)
    }

    async fn set_out_of_office(&self, _: &OofSettings) -> Result<(), OofError> {
        Err(OofError::NotAvailable)
    }
}

/// The filter reaches state through the host's capability endpoint, which is not there yet:
/// every command that needs state answers with a server error until it is.
fn no_state_yet() -> StateError {
    StateError::Unavailable("the Envoy filter has no state capability yet".to_owned())
}

/// Like state, the mailbox comes with the capability endpoint (#7).
fn no_mailbox_yet() -> MailboxError {
    MailboxError::Unavailable("the Envoy filter has no mailbox capability yet".to_owned())
}

impl Context for EasStream {}

impl HttpContext for EasStream {
    fn on_http_request_headers(&mut self, _headers: usize, end_of_stream: bool) -> Action {
        for (name, value) in self.get_http_request_headers_bytes() {
            match name.as_str() {
                ":method" => self.request.method = String::from_utf8_lossy(&value).into_owned(),
                ":path" => {
                    let path = String::from_utf8_lossy(&value);
                    let (path, query) = path.split_once('?').unwrap_or((&path, ""));
                    self.request.path = path.to_owned();
                    self.request.query = query.to_owned();
                }
                // HTTP/2's Host (Envoy normalises HTTP/1.1's Host to it too); the engine
                // builds absolute URLs from it (Autodiscover)
                ":authority" => self.request.headers.push(("host".to_owned(), value)),
                _ if name.starts_with(':') => {}
                _ => self.request.headers.push((name.to_ascii_lowercase(), value)),
            }
        }
        if end_of_stream {
            self.answer();
        }
        if end_of_stream {
            Action::Pause
        } else {
            // Envoy treats a paused header callback as "stop all": the body would then never
            // reach on_http_request_body. So the headers continue, into the buffer filter that
            // envoy/ places after this one, which holds them back from the router; the body is
            // paused here until it is complete and then answered locally. Nothing reaches an
            // upstream (measured with Envoy 1.40).
            Action::Continue
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if end_of_stream {
            if let Some(body) = self.get_http_request_body(0, body_size) {
                self.request.body = body;
            }
            self.answer();
        }
        Action::Pause
    }
}

impl EasStream {
    fn answer(&mut self) {
        let response =
            eas_engine::drive::run_to_completion(Engine::new().handle(&EnvoyHost, &self.request))
                .unwrap_or_else(|| Response::new(500));
        // Envoy frames the local reply itself; a second Content-Length would corrupt it.
        let headers: Vec<(&str, &str)> = response
            .headers
            .iter()
            .filter(|(name, _)| !name.eq_ignore_ascii_case("content-length"))
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let body = (!response.body.is_empty()).then_some(response.body.as_slice());
        self.send_http_response(u32::from(response.status), headers, body);
    }
}
