//! The host side of the plugin world: bindings and the imports the host provides.

use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

mod config;
mod mailbox;
mod mailbox_convert;
mod mailbox_write;
mod out_of_office;
mod send_journal;
mod state;
mod submission;

pub use config::TenantServices;
pub use mailbox::MailboxCapability;
pub use out_of_office::OutOfOfficeCapability;
pub use send_journal::SendJournal;
pub use submission::SubmissionCapability;

wasmtime::component::bindgen!({
    path: "../wit",
    world: "eas-edge:gateway/plugin",
    // State calls go to the store's worker threads, mailbox calls to IMAP, submission to SMTP,
    // out-of-office to ManageSieve: the guest waits, the host thread does not.
    imports: {
        "eas-edge:gateway/state": async,
        "eas-edge:gateway/mailbox": async,
        "eas-edge:gateway/mailbox-write": async,
        "eas-edge:gateway/submission": async,
        "eas-edge:gateway/out-of-office": async,
    },
    exports: { default: async },
    // The capability endpoint for the Envoy filter speaks these types as JSON (serde's form),
    // so that its calls run through the very code of the plugin's imports.
    additional_derives: [serde::Serialize, serde::Deserialize],
    with: {
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        "wasi:random": wasmtime_wasi::p2::bindings::random,
    },
});

use self::eas_edge::gateway::{clock, log};
use crate::accounts::Account;
use crate::state::StateStore;
use std::sync::Arc;
use std::time::Instant;

/// The share of a plugin call's budget (`limits.cpu_ms`, wall time) that the host's work for it
/// may use, mailbox reads and a submission alike: a backend still not answering then fails as
/// `unavailable`, and the plugin answers with its transient-error status (111) before the call
/// is cut (an empty HTTP 503). Mailbox writes are not cut (a change may already be made).
const BACKEND_SHARE_OF_BUDGET: f64 = 0.8;

/// Per-request store data: one plugin instance serves exactly one request.
pub struct RequestState {
    pub tenant: Arc<str>,
    /// The authenticated login; state calls are refused without one.
    pub identity: Option<String>,
    store: Arc<dyn StateStore>,
    /// The `mailbox` and `mailbox-write` imports, on the authenticated user's account.
    pub mailbox: MailboxCapability,
    /// The `submission` import, as the authenticated user.
    pub submission: SubmissionCapability,
    /// The `out-of-office` import, as the authenticated user.
    pub out_of_office: OutOfOfficeCapability,
    /// The tenant's settings (the `config` import) and servers.
    services: Arc<TenantServices>,
    pub limits: StoreLimits,
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
}

impl RequestState {
    /// `account`: the authenticated user's, if any; it is the identity for state, mailbox,
    /// submission and out-of-office. `renderer`: the plugin that renders pages fetched ahead
    /// (`render-ahead`), where the gateway runs it.
    pub fn new(
        tenant: Arc<str>,
        account: Option<Arc<Account>>,
        store: Arc<dyn StateStore>,
        memory_bytes: usize,
        services: Arc<TenantServices>,
        renderer: Option<crate::runtime::Plugin>,
    ) -> Self {
        let backend_deadline =
            Instant::now() + services.call_budget.mul_f64(BACKEND_SHARE_OF_BUDGET);
        RequestState {
            identity: account.as_ref().map(|account| account.login().to_string()),
            submission: SubmissionCapability::new(
                tenant.clone(),
                account.clone(),
                services.submitter.clone(),
                store.clone(),
                backend_deadline,
            ),
            out_of_office: OutOfOfficeCapability::new(
                tenant.clone(),
                account.clone(),
                services.sieve.clone(),
            ),
            mailbox: MailboxCapability::new(
                tenant.clone(),
                account,
                memory_bytes,
                backend_deadline,
                renderer,
            ),
            services,
            tenant,
            store,
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

#[cfg(test)]
mod tests {
    /// `wit/deps` must be the WASI definitions of the wasmtime-wasi-http we link, byte for
    /// byte: a mismatch makes plugins fail to link, or worse, link against another ABI.
    #[test]
    fn wit_deps_match_wasmtime() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
        let metadata = std::process::Command::new(cargo)
            .args(["metadata", "--format-version", "1", "--manifest-path", manifest])
            .output()
            .expect("cargo metadata");
        let metadata: serde_json::Value =
            serde_json::from_slice(&metadata.stdout).expect("cargo metadata JSON");
        let packages = metadata["packages"].as_array().expect("packages");
        let wasi_http = packages
            .iter()
            .find(|package| package["name"] == "wasmtime-wasi-http")
            .expect("wasmtime-wasi-http in the dependency graph");
        let crate_dir = std::path::Path::new(wasi_http["manifest_path"].as_str().expect("path"))
            .parent()
            .expect("crate dir")
            .join("wit/deps");
        let ours = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit/deps");
        let mut compared = 0;
        for entry in std::fs::read_dir(&crate_dir).expect("crate wit/deps") {
            let path = entry.expect("entry").path();
            let name = path.file_name().expect("file name");
            let theirs = std::fs::read(&path).expect("crate wit file");
            let mine = std::fs::read(ours.join(name))
                .unwrap_or_else(|_| panic!("wit/deps lacks {}", name.to_string_lossy()));
            assert!(theirs == mine, "wit/deps/{} differs from wasmtime's", name.to_string_lossy());
            compared += 1;
        }
        assert!(compared > 0, "no WIT files found in {}", crate_dir.display());
    }
}
