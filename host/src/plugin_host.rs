//! The host side of the plugin world: bindings and the imports the host provides.

use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

wasmtime::component::bindgen!({
    path: "../wit",
    world: "eas-edge:gateway/plugin",
    // State calls go to the store's worker threads: the guest waits, the host thread does not.
    imports: { "eas-edge:gateway/state": async },
    exports: { default: async },
    with: {
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        "wasi:random": wasmtime_wasi::p2::bindings::random,
    },
});

use self::eas_edge::gateway::{clock, log, state};
use crate::state::{Condition, Namespace, StateError as StoreError, StateStore, Write};
use std::sync::Arc;

/// Per-request store data: one plugin instance serves exactly one request.
pub struct RequestState {
    pub tenant: Arc<str>,
    /// The authenticated login; state calls are refused without one.
    pub identity: Option<String>,
    store: Arc<dyn StateStore>,
    pub limits: StoreLimits,
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
}

impl RequestState {
    pub fn new(
        tenant: Arc<str>,
        identity: Option<String>,
        store: Arc<dyn StateStore>,
        memory_bytes: usize,
    ) -> Self {
        RequestState {
            tenant,
            identity,
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

impl RequestState {
    /// The namespace a plugin's scope maps to: always this request's tenant and user.
    fn namespace(&self, scope: state::Scope) -> Result<Namespace, state::Error> {
        let user = self.identity.as_deref().ok_or(state::Error::Unauthenticated)?;
        Ok(match scope {
            state::Scope::Account => Namespace::user(&*self.tenant, user),
            state::Scope::Device(device) => Namespace::device(&*self.tenant, user, device),
        })
    }
}

/// How a store failure looks to the plugin. Details stay in the host's log.
fn plugin_error(error: StoreError) -> state::Error {
    match error {
        StoreError::ValueTooLarge { .. }
        | StoreError::NameTooLong { .. }
        | StoreError::TransactionTooLarge { .. } => state::Error::TooLarge(error.to_string()),
        other => {
            tracing::error!("state store: {other}");
            state::Error::Unavailable("state store error".to_owned())
        }
    }
}

impl state::Host for RequestState {
    async fn get(
        &mut self,
        scope: state::Scope,
        key: String,
    ) -> Result<Option<Vec<u8>>, state::Error> {
        let ns = self.namespace(scope)?;
        self.store.get(&ns, &key).await.map_err(plugin_error)
    }

    async fn put(
        &mut self,
        scope: state::Scope,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), state::Error> {
        let ns = self.namespace(scope)?;
        self.store.put(&ns, &key, value).await.map_err(plugin_error)
    }

    async fn delete(&mut self, scope: state::Scope, key: String) -> Result<(), state::Error> {
        let ns = self.namespace(scope)?;
        self.store.delete(&ns, &key).await.map_err(plugin_error)
    }

    async fn compare_and_swap(
        &mut self,
        scope: state::Scope,
        key: String,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, state::Error> {
        let ns = self.namespace(scope)?;
        self.store.compare_and_swap(&ns, &key, expected.as_deref(), new).await.map_err(plugin_error)
    }

    async fn transact(
        &mut self,
        scope: state::Scope,
        conditions: Vec<state::Condition>,
        writes: Vec<state::Write>,
    ) -> Result<bool, state::Error> {
        let ns = self.namespace(scope)?;
        let conditions: Vec<Condition> = conditions
            .into_iter()
            .map(|c| match c.expected {
                Some(value) => Condition::equals(c.key, value),
                None => Condition::absent(c.key),
            })
            .collect();
        let writes: Vec<Write> = writes
            .into_iter()
            .map(|w| match w.value {
                Some(value) => Write::put(w.key, value),
                None => Write::delete(w.key),
            })
            .collect();
        self.store.transact(&ns, &conditions, writes).await.map_err(plugin_error)
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
