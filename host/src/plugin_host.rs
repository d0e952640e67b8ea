//! The host side of the plugin world: bindings and the imports the host provides.

use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

wasmtime::component::bindgen!({
    path: "../wit",
    world: "eas-edge:gateway/plugin",
    exports: { default: async },
    with: {
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
    },
});

use eas_edge::gateway::{clock, log};

/// Per-request store data: one plugin instance serves exactly one request.
pub struct RequestState {
    pub tenant: std::sync::Arc<str>,
    pub limits: StoreLimits,
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
}

impl RequestState {
    pub fn new(tenant: std::sync::Arc<str>, memory_bytes: usize) -> Self {
        RequestState {
            tenant,
            limits: StoreLimitsBuilder::new()
                .memory_size(memory_bytes)
                .instances(8)
                .tables(8)
                .memories(8)
                .trap_on_grow_failure(true)
                .build(),
            table: ResourceTable::new(),
            // No environment, no arguments, no stdio, no preopens: the plugin sees nothing of
            // the host through WASI.
            wasi: WasiCtx::builder().build(),
            http: WasiHttpCtx::new(),
        }
    }
}

impl WasiView for RequestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for RequestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: Default::default() }
    }
}

impl clock::Host for RequestState {
    fn now_ms(&mut self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
    }
}

impl log::Host for RequestState {
    fn log(&mut self, level: log::Level, message: String) {
        let tenant = &*self.tenant;
        match level {
            log::Level::Trace => tracing::trace!(tenant, "plugin: {message}"),
            log::Level::Debug => tracing::debug!(tenant, "plugin: {message}"),
            log::Level::Info => tracing::info!(tenant, "plugin: {message}"),
            log::Level::Warn => tracing::warn!(tenant, "plugin: {message}"),
            log::Level::Error => tracing::error!(tenant, "plugin: {message}"),
        }
    }
}
