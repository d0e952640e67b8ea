//! Gateway nodes sharing one PostgreSQL database (`[state] backend = "postgres"`) are a
//! cluster: this module connects the node's push hub to the others (docs/cluster.md).
//!
//! One dedicated connection per node (`link.rs`) carries everything:
//! - `LISTEN eas_edge_push` / `pg_notify`: supersedes, folder interest and checked tokens
//!   (`push::ClusterEvent`, encoded by `wire.rs`); a node ignores its own messages;
//! - the watcher leases: a session-level advisory lock per account, so exactly one node
//!   watches an account's mailbox, and the lock is gone the moment the holder's connection is
//!   (a crashed node's socket is closed by its kernel; a vanished host is found by TCP
//!   keepalives within about 30 s).

mod link;
mod wire;

pub use link::PgLink;

use crate::push::PushHub;
use crate::state::PostgresOptions;
use std::sync::Arc;

/// Connects this node to the cluster and makes `hub` use it. The connection is kept up (and
/// re-established) by a background task for as long as the hub lives.
pub async fn join(
    options: &PostgresOptions,
    hub: &PushHub,
) -> crate::state::StateResult<Arc<PgLink>> {
    let config = options.connection_config()?;
    let link = PgLink::start(config, hub.downgrade(), options.watcher_takeover()).await;
    hub.join_cluster(link.clone());
    Ok(link)
}
