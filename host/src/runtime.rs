//! Running plugin components: one wasmtime engine, pre-instantiated components per tenant, a
//! fresh instance per request under memory and CPU limits.

use crate::accounts::Account;
use crate::plugin_host::{
    MailboxCapability, OutOfOfficeCapability, PluginPre, RequestState, SubmissionCapability,
    TenantServices,
};
use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};

/// How often the epoch advances; CPU deadlines are multiples of it.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Core instances a component made by wit-component needs (the main module plus its shims).
const CORE_INSTANCES_PER_COMPONENT: u32 = 4;

/// How many plugin instances may run at once across all tenants; beyond it requests get 503.
const MAX_CONCURRENT_INSTANCES: u32 = 512;

/// The shared wasmtime engine plus the epoch ticker that enforces CPU deadlines.
pub struct PluginRuntime {
    engine: Engine,
}

impl PluginRuntime {
    /// `max_memory_bytes` is the largest memory cap of any tenant (the pool's slot size).
    pub fn new(max_memory_bytes: usize) -> anyhow::Result<Self> {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(MAX_CONCURRENT_INSTANCES)
            .total_core_instances(MAX_CONCURRENT_INSTANCES * CORE_INSTANCES_PER_COMPONENT)
            .total_memories(MAX_CONCURRENT_INSTANCES * CORE_INSTANCES_PER_COMPONENT)
            .total_tables(MAX_CONCURRENT_INSTANCES * CORE_INSTANCES_PER_COMPONENT)
            .max_memory_size(max_memory_bytes);
        let mut config = Config::new();
        config
            .epoch_interruption(true)
            // Reserve only what the cap allows instead of 4 GiB per slot: thousands of slots
            // stay cheap in address space; bounds checks are the (small) price.
            .memory_reservation(max_memory_bytes as u64)
            .memory_guard_size(64 * 1024)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config)
            .map_err(anyhow::Error::from)
            .context("creating the wasmtime engine")?;
        let ticker = engine.weak();
        std::thread::Builder::new()
            .name("epoch-ticker".into())
            .spawn(move || {
                while let Some(engine) = ticker.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .context("starting the epoch ticker")?;
        Ok(PluginRuntime { engine })
    }

    /// Compiles a plugin and links it against the host's imports.
    pub fn load(&self, path: &Path) -> anyhow::Result<PluginPre<RequestState>> {
        let component = Component::from_file(&self.engine, path)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("loading plugin {}", path.display()))?;
        let mut linker = Linker::<RequestState>::new(&self.engine);
        wasmtime_wasi::p2::add_to_linker_proxy_interfaces_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        crate::plugin_host::eas_edge::gateway::clock::add_to_linker::<_, HasSelf<RequestState>>(
            &mut linker,
            |state| state,
        )?;
        crate::plugin_host::eas_edge::gateway::log::add_to_linker::<_, HasSelf<RequestState>>(
            &mut linker,
            |state| state,
        )?;
        crate::plugin_host::eas_edge::gateway::state::add_to_linker::<_, HasSelf<RequestState>>(
            &mut linker,
            |state| state,
        )?;
        crate::plugin_host::eas_edge::gateway::mailbox::add_to_linker::<
            _,
            HasSelf<MailboxCapability>,
        >(&mut linker, |state| &mut state.mailbox)?;
        crate::plugin_host::eas_edge::gateway::config::add_to_linker::<_, HasSelf<RequestState>>(
            &mut linker,
            |state| state,
        )?;
        crate::plugin_host::eas_edge::gateway::mailbox_write::add_to_linker::<
            _,
            HasSelf<MailboxCapability>,
        >(&mut linker, |state| &mut state.mailbox)?;
        crate::plugin_host::eas_edge::gateway::submission::add_to_linker::<
            _,
            HasSelf<SubmissionCapability>,
        >(&mut linker, |state| &mut state.submission)?;
        crate::plugin_host::eas_edge::gateway::out_of_office::add_to_linker::<
            _,
            HasSelf<OutOfOfficeCapability>,
        >(&mut linker, |state| &mut state.out_of_office)?;
        let pre = linker
            .instantiate_pre(&component)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("linking plugin {}", path.display()))?;
        PluginPre::new(pre)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("plugin {} exports", path.display()))
    }
}

/// Why a plugin call produced no response.
#[derive(Debug, thiserror::Error)]
pub enum PluginFault {
    #[error("no free plugin instance: {0:#}")]
    Busy(anyhow::Error),
    #[error("plugin ran out of CPU time")]
    Deadline,
    #[error("plugin trapped: {0:#}")]
    Trap(anyhow::Error),
    #[error("the plugin's state writes could not be made durable: {0}")]
    State(crate::state::StateError),
}

impl PluginFault {
    pub fn http_status(&self) -> u16 {
        match self {
            PluginFault::Busy(_) | PluginFault::Deadline | PluginFault::State(_) => 503,
            PluginFault::Trap(_) => 500,
        }
    }
}

/// A tenant's loaded plugin with its limits.
#[derive(Clone)]
pub struct Plugin {
    pub tenant: Arc<str>,
    pub store: Arc<dyn crate::state::StateStore>,
    pub pre: PluginPre<RequestState>,
    pub memory_bytes: usize,
    pub cpu_ticks: u64,
    /// The tenant's settings and servers, shared by its requests.
    pub services: Arc<TenantServices>,
}

/// The plugin's answer, fully buffered (EAS needs Content-Length; holds are inspected).
pub struct PluginResponse {
    pub status: http::StatusCode,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Plugin {
    pub fn new(
        tenant: &str,
        pre: PluginPre<RequestState>,
        limits: &crate::config::Limits,
        store: Arc<dyn crate::state::StateStore>,
        services: Arc<TenantServices>,
    ) -> Self {
        Plugin {
            tenant: tenant.into(),
            store,
            services,
            pre,
            memory_bytes: limits.memory_mib as usize * 1024 * 1024,
            cpu_ticks: (limits.cpu_ms / EPOCH_TICK.as_millis() as u64).max(1),
        }
    }

    /// Runs one request through a fresh instance; the authenticated `account` scopes its
    /// state and mailbox. The instance's state writes are synced once, after it finished and
    /// before its response is handed out (`StateStore::deferred`): a response never promises
    /// state that a crash could still take back.
    pub async fn call(
        &self,
        request: http::Request<Full<Bytes>>,
        account: Option<Arc<Account>>,
    ) -> Result<PluginResponse, PluginFault> {
        let state_store = self.store.clone().deferred();
        let mut store = Store::new(
            self.pre.engine(),
            RequestState::new(
                self.tenant.clone(),
                account,
                state_store.clone(),
                self.memory_bytes,
                self.services.clone(),
            ),
        );
        store.limiter(|state| &mut state.limits);
        store.set_epoch_deadline(self.cpu_ticks);
        store.epoch_deadline_trap();

        let (sender, receiver) = tokio::sync::oneshot::channel();
        let request = request.map(|body| body.map_err(|never| -> ErrorCode { match never {} }));
        let incoming = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, request)
            .map_err(|error| PluginFault::Trap(error.into()))?;
        let outparam = store
            .data_mut()
            .http()
            .new_response_outparam(sender)
            .map_err(|error| PluginFault::Trap(error.into()))?;
        let pre = self.pre.clone();
        // The guest keeps running after it hands over the response head: it writes the body
        // while we read it, so it runs in its own task.
        let guest = tokio::spawn(async move {
            let plugin = pre
                .instantiate_async(&mut store)
                .await
                .map_err(|error| PluginFault::Busy(error.into()))?;
            plugin
                .wasi_http_incoming_handler()
                .call_handle(&mut store, incoming, outparam)
                .await
                .map_err(classify_trap)
        });

        let head = match receiver.await {
            Ok(Ok(response)) => response,
            Ok(Err(code)) => return Err(PluginFault::Trap(anyhow::anyhow!("error code {code:?}"))),
            Err(_) => return Err(guest_failure(guest).await),
        };
        let (parts, body) = head.into_parts();
        let body = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => return Err(guest_failure(guest).await),
        };
        match guest.await {
            Ok(Ok(())) => {}
            Ok(Err(fault)) => return Err(fault),
            Err(join) => return Err(PluginFault::Trap(join.into())),
        }
        state_store.flush().await.map_err(PluginFault::State)?;
        Ok(PluginResponse { status: parts.status, headers: parts.headers, body })
    }
}

/// What went wrong when the guest produced no (complete) response.
async fn guest_failure(guest: tokio::task::JoinHandle<Result<(), PluginFault>>) -> PluginFault {
    match guest.await {
        Ok(Err(fault)) => fault,
        Ok(Ok(())) => PluginFault::Trap(anyhow::anyhow!("plugin returned without a response")),
        Err(join) => PluginFault::Trap(join.into()),
    }
}

fn classify_trap(error: wasmtime::Error) -> PluginFault {
    match error.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => PluginFault::Deadline,
        _ => PluginFault::Trap(error.into()),
    }
}
