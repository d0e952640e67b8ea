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
mod wasi_http;

use bindings::eas_edge::gateway::{clock, log, state};
use bindings::exports::wasi::http::incoming_handler::Guest;
use bindings::wasi::http::types::{IncomingRequest, ResponseOutparam};
use eas_engine::http::Response;
use eas_engine::{Capabilities, Engine, Level, StateError, StateResult, StateScope};

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
