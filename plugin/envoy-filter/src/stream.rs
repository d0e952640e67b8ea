//! One phone request in Envoy: buffer it, run the engine over callouts, and, when the engine
//! answers with a hold (a Ping or Sync-with-Wait with nothing to report), park the stream on
//! a long-poll to the host's watch API instead of holding anything in the VM but this record.
//!
//! States: collecting the request → running the engine (awaiting callouts) → parked on a
//! watch → answered. A wake-up (`changed`) runs the engine again with `x-eas-edge-wake`, as
//! the host does for its own parked requests; a timeout or a newer request of the device
//! answers with the hold's stored response.

use crate::callout::{Calls, ENTROPY_HEADER, IDENTITY_HEADER, TENANT_HEADER};
use crate::config::FilterConfig;
use crate::host::EnvoyHost;
use eas_engine::Engine;
use eas_engine::http::{Request, Response};
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, LogLevel};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

/// Marks the engine's second run after a wake-up (the engine's contract with every host).
const WAKE_HEADER: &str = "x-eas-edge-wake";
/// Wake-ups in a row after which the engine still holds: the two sides disagree on a folder
/// token, so answer with the timeout response rather than loop until the heartbeat.
const MAX_FRUITLESS_WAKES: u32 = 8;
/// Time for the watch answer to arrive after the hold's own deadline.
const WATCH_SLACK: Duration = Duration::from_secs(30);

type EngineRun = Pin<Box<dyn Future<Output = Response>>>;

pub struct EasStream {
    config: Rc<FilterConfig>,
    request: Request,
    calls: Option<Rc<Calls>>,
    running: Option<EngineRun>,
    parked: Option<Parked>,
    /// When the first hold of this request ends (ms since the epoch); later holds keep it.
    deadline_ms: Option<u64>,
    wakes: u32,
}

struct Parked {
    token: u32,
    on_timeout: Response,
}

impl EasStream {
    pub fn new(config: Rc<FilterConfig>) -> Self {
        EasStream {
            config,
            request: Request::default(),
            calls: None,
            running: None,
            parked: None,
            deadline_ms: None,
            wakes: 0,
        }
    }

    fn log(&self, level: LogLevel, message: &str) {
        let _ = proxy_wasm::hostcalls::log(level, message);
    }

    fn now_ms(&self) -> u64 {
        proxy_wasm::hostcalls::get_current_time()
            .ok()
            .and_then(|now| now.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
    }

    /// The request is complete: set up its calls and run the engine.
    fn start(&mut self) {
        let header = |name: &str| self.request.header_str(name).map(str::to_owned);
        let (tenant, identity) = (header(TENANT_HEADER), header(IDENTITY_HEADER));
        let device = eas_engine::ashttp::parse_query(&self.request.query)
            .ok()
            .map(|query| query.device_id.as_str().to_owned())
            .filter(|device| !device.is_empty());
        let calls = Rc::new(Calls::new(self.config.clone(), tenant, identity, device));
        if let Some(entropy) = self.request.header(ENTROPY_HEADER) {
            calls.add_entropy(entropy);
        }
        // the engine needs neither: the host's bookkeeping
        self.request.headers.retain(|(name, _)| name != TENANT_HEADER && name != ENTROPY_HEADER);
        self.calls = Some(calls);
        self.run_engine();
    }

    fn run_engine(&mut self) {
        let Some(calls) = self.calls.clone() else { return };
        let host =
            EnvoyHost { settings: self.config.settings_for(calls.identity.as_deref()), calls };
        let request = self.request.clone();
        self.running = Some(Box::pin(async move { Engine::new().handle(&host, &request).await }));
        self.poll_engine();
    }

    /// Polls the engine; answers or parks when it is done.
    fn poll_engine(&mut self) {
        let Some(running) = self.running.as_mut() else { return };
        if let Some(response) = eas_engine::drive::poll_once(running.as_mut()) {
            self.running = None;
            self.finish(response);
        }
    }

    fn finish(&mut self, response: Response) {
        if response.header("Grip-Hold").is_some() {
            self.park(response);
        } else {
            self.respond(response);
        }
    }

    fn park(&mut self, hold: Response) {
        let now = self.now_ms();
        let timeout_s = hold
            .header("Grip-Timeout")
            .and_then(|value| value.trim().parse::<u64>().ok())
            .unwrap_or(0);
        let deadline = *self.deadline_ms.get_or_insert(now + timeout_s * 1000);
        let (grip, kept): (Vec<_>, Vec<_>) = hold
            .headers
            .into_iter()
            .partition(|(name, _)| name.to_ascii_lowercase().starts_with("grip-"));
        let on_timeout = Response { status: hold.status, headers: kept, body: hold.body };
        let left_s = deadline.saturating_sub(now).div_ceil(1000);
        if left_s == 0 || self.wakes >= MAX_FRUITLESS_WAKES {
            self.respond(on_timeout);
            return;
        }
        let left = left_s.to_string();
        // HTTP/2 header names are lower case
        let grip: Vec<(String, String)> = grip
            .into_iter()
            .filter(|(name, _)| !name.eq_ignore_ascii_case("Grip-Timeout"))
            .map(|(name, value)| (name.to_ascii_lowercase(), value))
            .collect();
        let mut headers: Vec<(&str, &str)> =
            grip.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect();
        headers.push(("grip-timeout", &left));
        let device = eas_engine::ashttp::parse_query(&self.request.query)
            .ok()
            .map(|query| query.device_id.as_str().to_owned())
            .unwrap_or_default();
        headers.push((crate::callout::DEVICE_HEADER, &device));
        let Some(calls) = self.calls.clone() else { return self.respond(on_timeout) };
        let timeout = Duration::from_secs(left_s) + WATCH_SLACK;
        match calls.dispatch("/v1/watch", &headers, b"", timeout) {
            Ok(token) => self.parked = Some(Parked { token, on_timeout }),
            Err(failure) => {
                self.log(LogLevel::Warn, &format!("cannot park: {failure}"));
                self.respond(on_timeout);
            }
        }
    }

    /// The watch answered: run again on a change, else send the stored answer.
    fn woken(&mut self, parked: Parked, reply: crate::callout::Reply) {
        let reason = match &reply {
            Some((200, _)) => self.get_http_call_response_header(WAKE_HEADER),
            _ => None,
        };
        match reason.as_deref() {
            Some("changed") => {
                self.wakes += 1;
                if !self.request.headers.iter().any(|(name, _)| name == WAKE_HEADER) {
                    self.request.headers.push((WAKE_HEADER.to_owned(), b"changed".to_vec()));
                }
                self.run_engine();
            }
            Some(_) => self.respond(parked.on_timeout),
            None => {
                // the host is gone or refused the watch: the heartbeat answer is still right
                // (nothing changed that we know of), and the phone pings again
                self.log(LogLevel::Warn, &format!("watch failed: {:?}", reply.map(|(s, _)| s)));
                self.respond(parked.on_timeout);
            }
        }
    }

    fn respond(&mut self, response: Response) {
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

impl Context for EasStream {
    fn on_http_call_response(
        &mut self,
        token: u32,
        _num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        let status = self
            .get_http_call_response_header(":status")
            .and_then(|status| status.parse::<u16>().ok());
        let reply = status.map(|status| {
            let body = self.get_http_call_response_body(0, body_size).unwrap_or_default();
            (status, body)
        });
        let Some(calls) = self.calls.clone() else { return };
        if let Some(entropy) = self.get_http_call_response_header_bytes(ENTROPY_HEADER) {
            calls.add_entropy(&entropy);
        }
        if self.parked.as_ref().is_some_and(|parked| parked.token == token) {
            if let Some(parked) = self.parked.take() {
                self.woken(parked, reply);
            }
            return;
        }
        calls.deliver(token, reply);
        self.poll_engine();
    }
}

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
            self.start();
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
            self.start();
        }
        Action::Pause
    }
}
