//! Running plugin components: one wasmtime engine, pre-instantiated components per tenant, a
//! fresh instance per request under memory and CPU limits.
//!
//! Guest code runs on threads of its own (`guest_threads`), yields to them at every epoch tick,
//! a tenant runs at most `limits.concurrent_calls` calls at once (`tenant_slots`), and fewer of
//! its long ones while another tenant is served (`hot_calls`), and all of them are slowed once
//! its plugin keeps failing (`probation`): a spinning plugin costs its tenant its CPU budget,
//! and other tenants little latency.

mod guest_threads;
mod hot_calls;
mod probation;
mod tenant_slots;

pub use guest_threads::default_concurrent_calls;

use crate::accounts::Account;
use crate::config::plugin_path::PluginSource;
use crate::plugin_host::{
    MailboxCapability, OutOfOfficeCapability, PluginPre, RequestState, SubmissionCapability,
    TenantServices,
};
use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, UpdateDeadline,
};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};

/// How often the epoch advances; CPU deadlines are multiples of it.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Core instances a component made by wit-component needs (the main module plus its shims).
const CORE_INSTANCES_PER_COMPONENT: u32 = 4;

/// The whole index range of a 32-bit linear memory: reserved per slot (see `new`).
const WASM32_ADDRESS_SPACE: u64 = 1 << 32;

/// Guard pages after each reservation: static offsets of loads and stores up to this size
/// need no bounds check either (wasmtime's default on 64-bit hosts).
const MEMORY_GUARD_BYTES: u64 = 32 << 20;

/// How many plugin instances may run at once across all tenants; beyond it requests get 503.
const MAX_CONCURRENT_INSTANCES: u32 = 512;

/// Numbers the loaded plugins ([`Plugin::id`]).
static NEXT_PLUGIN_ID: AtomicU64 = AtomicU64::new(1);

/// The shared wasmtime engine plus the epoch ticker that enforces CPU deadlines.
pub struct PluginRuntime {
    engine: Engine,
}

impl PluginRuntime {
    /// `max_memory_bytes` is the largest memory cap of any tenant (the pool's slot size).
    /// Of each slot, `kept_resident_bytes` stay mapped when its instance ends: the pages the
    /// instance wrote are zeroed in place (only those, found with `PAGEMAP_SCAN` on Linux
    /// 6.7+) instead of given back to the kernel. With every page given back, the next
    /// instance faulted in again each one the last wrote, ~10 % of the gateway's CPU in an
    /// initial sync (docs/benchmarks.md, "Ninth pass"). The cost is resident memory: after N
    /// calls ran at once, up to N slots keep that much (`[plugin_memory]`).
    pub fn new(max_memory_bytes: usize, kept_resident_bytes: usize) -> anyhow::Result<Self> {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(MAX_CONCURRENT_INSTANCES)
            .total_core_instances(MAX_CONCURRENT_INSTANCES * CORE_INSTANCES_PER_COMPONENT)
            .total_memories(MAX_CONCURRENT_INSTANCES * CORE_INSTANCES_PER_COMPONENT)
            .total_tables(MAX_CONCURRENT_INSTANCES * CORE_INSTANCES_PER_COMPONENT)
            .max_memory_size(max_memory_bytes)
            .linear_memory_keep_resident(kept_resident_bytes.min(max_memory_bytes))
            .pagemap_scan(wasmtime::Enabled::Auto);
        let mut config = Config::new();
        config
            .epoch_interruption(true)
            // Every linear memory slot reserves the whole 32-bit range plus a guard region, so
            // compiled plugin code needs no explicit bounds checks: any address past the
            // memory's current size faults in the reservation or the guard (docs/benchmarks.md,
            // "Read path", has what the checks cost).
            // This is address space only (PROT_NONE, nothing committed): 4 GiB + 32 MiB per
            // slot, ~8 TiB for the pool's 2,048 slots of the 128 TiB a 64-bit process has.
            // Memory itself stays bounded by `max_memory_size` (the pool) and each tenant's
            // store limiter (`memory_mib`).
            .memory_reservation(WASM32_ADDRESS_SPACE)
            .memory_guard_size(MEMORY_GUARD_BYTES)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        // `perf` cannot name JIT-compiled plugin functions on its own; with this set, wasmtime
        // writes /tmp/perf-<pid>.map (docs/benchmarks.md, "Read path", shows its use).
        if std::env::var_os("EAS_EDGE_PERF_MAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
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
        guest_threads::start().context("starting the plugin guest threads")?;
        Ok(PluginRuntime { engine })
    }

    /// Compiles a tenant's plugin (its file, or the one built into this binary) and links it
    /// against the host's imports.
    pub fn load(&self, source: &PluginSource) -> anyhow::Result<PluginPre<RequestState>> {
        let component = match source {
            PluginSource::File(path) => Component::from_file(&self.engine, path),
            PluginSource::BuiltIn(bytes) => Component::new(&self.engine, bytes),
        }
        .map_err(anyhow::Error::from)
        .with_context(|| format!("loading plugin {source}"))?;
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
            .with_context(|| format!("linking plugin {source}"))?;
        PluginPre::new(pre)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("plugin {source} exports"))
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
    /// Tells this load of the tenant's plugin from any other (a reload gets a new one): what
    /// one rendered ahead is only handed to requests of the same.
    pub id: u64,
    pub tenant: Arc<str>,
    pub store: Arc<dyn crate::state::StateStore>,
    pub pre: PluginPre<RequestState>,
    pub memory_bytes: usize,
    /// Wall-clock budget of one call (`limits.cpu_ms`).
    pub cpu_budget: Duration,
    /// Whether pages fetched ahead are rendered ahead too (`limits.render_ahead`).
    renders_ahead: bool,
    /// At most `limits.concurrent_calls` calls at once; a call waits for a slot at most its
    /// CPU budget, then fails as busy (503).
    slots: tenant_slots::TenantSlots,
    /// How many of its long calls run while other tenants are served.
    hot_calls: hot_calls::HotCalls,
    /// Whether its plugin failed often enough lately to have its calls slowed.
    probation: probation::Probation,
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
            id: NEXT_PLUGIN_ID.fetch_add(1, Ordering::Relaxed),
            tenant: tenant.into(),
            store,
            services,
            pre,
            memory_bytes: limits.memory_mib as usize * 1024 * 1024,
            cpu_budget: Duration::from_millis(limits.cpu_ms).max(EPOCH_TICK),
            renders_ahead: limits.render_ahead,
            slots: tenant_slots::TenantSlots::new(limits.concurrent_calls),
            hot_calls: hot_calls::HotCalls::new(
                hot_calls::TenantMix::global(),
                guest_threads::cores(),
            ),
            probation: probation::Probation::default(),
        }
    }

    /// Whether the tenant's plugin failed often enough lately to have its calls slowed.
    pub fn on_probation(&self) -> bool {
        self.probation.active(std::time::Instant::now())
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
        let slot = self
            .slots
            .acquire(self.cpu_budget)
            .await
            .map_err(|no_slot| PluginFault::Busy(no_slot.into()))?;
        let state_store = self.store.clone().deferred();
        let mut store = self.new_store(account, state_store.clone());
        let guest_ticks = self.limit_cpu(&mut store);

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
        let (tenant, probation) = (self.tenant.clone(), self.probation.clone());
        // The guest keeps running after it hands over the response head: it writes the body
        // while we read it, so it runs in its own task, on the guest threads; it holds the
        // tenant's slot until it ends (also when the client is gone), and a while longer if
        // it failed on probation.
        let guest = guest_threads::handle().spawn(async move {
            let outcome = async {
                instantiate(&pre, &mut store)
                    .await?
                    .wasi_http_incoming_handler()
                    .call_handle(&mut store, incoming, outparam)
                    .await
                    .map_err(classify_trap)
            }
            .await;
            if let Err(fault) = &outcome {
                call_failed(&tenant, &probation, fault, &guest_ticks, slot);
            }
            outcome
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

impl Plugin {
    /// A store for one instance, with the tenant's memory cap; it renders pages ahead with
    /// this plugin.
    fn new_store(
        &self,
        account: Option<Arc<Account>>,
        state_store: Arc<dyn crate::state::StateStore>,
    ) -> Store<RequestState> {
        let mut store = Store::new(
            self.pre.engine(),
            RequestState::new(
                self.tenant.clone(),
                account,
                state_store,
                self.memory_bytes,
                self.services.clone(),
                Some(self.clone()),
            ),
        );
        store.limiter(|state| &mut state.limits);
        store
    }

    /// Puts the instance's guest code under the call's CPU rules; returns the count of ticks
    /// it runs through (whether a spent budget was the plugin's doing).
    ///
    /// The budget is wall-clock time from the start of the call (as the epoch deadline alone
    /// enforced it), checked at every tick the guest runs through; until it is spent the guest
    /// yields at each tick, so a spinning guest gives its thread to the other calls queued on
    /// it every 10 ms instead of holding it for the whole budget (and a long call may wait for
    /// its turn, see `hot_calls`). While its tenant is on probation the call sleeps at each
    /// tick instead (`probation`).
    fn limit_cpu(&self, store: &mut Store<RequestState>) -> Arc<AtomicU32> {
        let budget_end = std::time::Instant::now() + self.cpu_budget;
        let mut hot_call = self.hot_calls.call_started();
        let probation = self.probation.clone();
        let guest_ticks = Arc::new(AtomicU32::new(0));
        let ticks = guest_ticks.clone();
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            ticks.fetch_add(1, Ordering::Relaxed);
            let now = std::time::Instant::now();
            Ok(if now >= budget_end {
                UpdateDeadline::Interrupt
            } else if probation.active(now) {
                // (not past the budget: the next tick ends the call)
                let until = tokio::time::Instant::from_std(budget_end.min(now + probation::PAUSE));
                UpdateDeadline::YieldCustom(1, Box::pin(tokio::time::sleep_until(until)))
            } else {
                hot_call.at_tick(budget_end)
            })
        });
        guest_ticks
    }

    /// Has the plugin render `summaries` ahead for `request` (its `render-ahead` export), in
    /// an instance of its own on the guest threads, under the tenant's limits: with no user
    /// (its imports refuse), in one of the tenant's call slots if one is free now. `None`
    /// when it is not to be done (`limits.render_ahead` off), cannot be done now (no free
    /// slot, the plugin on probation) or failed; a trap or a spent budget counts against the
    /// plugin as a failed call does.
    pub async fn render_ahead(
        &self,
        request: &[u8],
        summaries: Vec<crate::plugin_host::eas_edge::gateway::mailbox::MessageSummary>,
    ) -> Option<Vec<Option<Vec<u8>>>> {
        if !self.renders_ahead || self.on_probation() {
            return None;
        }
        let slot = self.slots.try_acquire()?;
        let mut store = self.new_store(None, self.store.clone());
        let guest_ticks = self.limit_cpu(&mut store);
        let expected = summaries.len();
        let (pre, request) = (self.pre.clone(), request.to_vec());
        let guest = guest_threads::handle().spawn(async move {
            instantiate(&pre, &mut store)
                .await?
                .eas_edge_gateway_render_ahead()
                .call_render(&mut store, &request, &summaries)
                .await
                .map_err(classify_trap)
        });
        let tenant = &*self.tenant;
        match guest.await {
            Ok(Ok(rendered)) if rendered.len() == expected => Some(rendered),
            Ok(Ok(rendered)) => {
                tracing::warn!(
                    tenant,
                    "plugin rendered {} messages ahead for {expected}; nothing of it is used",
                    rendered.len()
                );
                None
            }
            Ok(Err(fault)) => {
                tracing::warn!(tenant, "rendering ahead failed: {fault}");
                call_failed(tenant, &self.probation, &fault, &guest_ticks, slot);
                None
            }
            Err(join) => {
                tracing::warn!(tenant, "rendering ahead failed: {join}");
                None
            }
        }
    }
}

/// A call of `tenant` (or a rendering ahead) ended in `fault` after running guest code through
/// `guest_ticks` ticks: if that was the plugin's doing (a trap, its budget spent in its own
/// code) it counts against the plugin, and on probation its `slot` stays taken for
/// [`probation::PENALTY`] more, so that a plugin failing in a loop runs fewer calls.
fn call_failed(
    tenant: &str,
    probation: &probation::Probation,
    fault: &PluginFault,
    guest_ticks: &AtomicU32,
    slot: tokio::sync::OwnedSemaphorePermit,
) {
    if !probation::is_the_plugins(fault, guest_ticks.load(Ordering::Relaxed)) {
        return;
    }
    let verdict = probation.fault(std::time::Instant::now());
    if verdict == probation::Verdict::Began {
        tracing::warn!(
            tenant,
            "plugin on probation: {} faulty calls within {:?}; its calls pause {:?} per {:?} \
             they run, and keep their slot {:?} after failing, until {:?} pass without a fault",
            probation::FAULTS_FOR_PROBATION,
            probation::FAULT_WINDOW,
            probation::PAUSE,
            EPOCH_TICK,
            probation::PENALTY,
            probation::PROBATION,
        );
    }
    if verdict != probation::Verdict::Clear {
        tokio::spawn(async move {
            tokio::time::sleep(probation::PENALTY).await;
            drop(slot);
        });
    }
}

/// A fresh instance of the plugin in `store`; failing to get one (the instance pool is full)
/// is `Busy`, not the plugin's fault.
async fn instantiate(
    pre: &PluginPre<RequestState>,
    store: &mut Store<RequestState>,
) -> Result<crate::plugin_host::Plugin, PluginFault> {
    pre.instantiate_async(store).await.map_err(|error| PluginFault::Busy(error.into()))
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
