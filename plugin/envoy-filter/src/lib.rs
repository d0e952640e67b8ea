//! The engine as a proxy-wasm (ABI 0.2.1) HTTP filter for Envoy (envoy/README.md).
//!
//! The filter buffers the request, runs the engine and answers with a local reply; nothing is
//! forwarded upstream. Authentication happens before the filter, in Envoy's ext_authz filter
//! backed by the eas-edge host, which strips `Authorization` and sets the identity header: the
//! password never reaches this VM. Every capability (state, mailbox, submission, watching
//! folders for a parked Ping) is a callout to the host's capability endpoint.

mod callout;
mod config;
mod host;
mod stream;

use config::FilterConfig;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel};
use std::rc::Rc;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(FilterRoot { config: None }) });
}}

/// One per worker VM: the parsed plugin configuration, shared by its streams.
struct FilterRoot {
    config: Option<Rc<FilterConfig>>,
}

impl Context for FilterRoot {}

impl RootContext for FilterRoot {
    /// A configuration that does not parse is refused: Envoy then rejects the listener
    /// rather than run a filter that can reach nothing.
    fn on_configure(&mut self, _size: usize) -> bool {
        let json = self.get_plugin_configuration().unwrap_or_default();
        match FilterConfig::parse(&json) {
            Ok(config) => {
                self.config = Some(Rc::new(config));
                true
            }
            Err(error) => {
                let _ = proxy_wasm::hostcalls::log(
                    LogLevel::Critical,
                    &format!("eas-edge filter configuration: {error}"),
                );
                false
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let config = self.config.clone()?;
        Some(Box::new(stream::EasStream::new(config)))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
