//! The device commands against the state store: the same code runs inside the server (behind
//! the admin API) and in `eas-edge devices` when no server runs. Records are read and written
//! with the engine's own types and keys (`eas_engine::device_records`), so what an
//! administrator sets is exactly what the plugin acts on at the device's next request.

use super::activity::{LAST_SEEN_KEY, LastSeen};
use crate::state::{ListScope, Namespace, PageRequest, StateError, StateStore};
use eas_engine::device_records::{
    DEVICE_INFORMATION_KEY, DeviceInformation, KEPT_BY_RESET, POLICY_KEY, PolicyRecord, Wipe,
};
use serde::{Deserialize, Serialize};

/// What `devices list` and `devices show` print about one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceSummary {
    pub tenant: String,
    pub user: String,
    pub device: String,
    /// `DeviceType` of its last request (what the host saw), if known.
    pub device_type: Option<String>,
    /// From the device's DeviceInformation (Settings or Provision).
    pub model: Option<String>,
    pub friendly_name: Option<String>,
    pub os: Option<String>,
    pub user_agent: Option<String>,
    /// Seconds since the Unix epoch.
    pub last_seen: Option<u64>,
    pub last_command: Option<String>,
    /// `none`, `pending` (phase one done, not acknowledged) or `provisioned`.
    pub policy: String,
    /// `none`, `full` or `account`, with `, acknowledged (STATUS)` once the device answered.
    pub wipe: String,
    pub blocked: bool,
    /// Keys in the device's scope (only filled by `show`).
    #[serde(default)]
    pub keys: Vec<String>,
}

/// What an administrator can do to a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Wipe the whole device at its next Provision.
    Wipe,
    /// 16.1: remove only this account from the device (older devices get a full wipe).
    AccountWipe,
    /// Lift a pending wipe (the device can provision again).
    CancelWipe,
    /// Forget its sync state: it synchronises from scratch.
    Reset,
    /// Refuse every command with status 129.
    Block,
    Allow,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Wipe => "wipe",
            Action::AccountWipe => "account-wipe",
            Action::CancelWipe => "cancel-wipe",
            Action::Reset => "reset",
            Action::Block => "block",
            Action::Allow => "allow",
        }
    }

    pub fn from_name(name: &str) -> Option<Action> {
        [
            Action::Wipe,
            Action::AccountWipe,
            Action::CancelWipe,
            Action::Reset,
            Action::Block,
            Action::Allow,
        ]
        .into_iter()
        .find(|action| action.name() == name)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("no device {device:?} of {user:?} in tenant {tenant:?}")]
    NotFound { tenant: String, user: String, device: String },
    #[error("the device's record kept changing; try again")]
    Contended,
    #[error("state store: {0}")]
    Store(#[from] StateError),
}

const PAGE: usize = 500;

/// Every device of `tenants` (of `user` only, when given), ordered by tenant, user, device.
pub async fn list(
    store: &dyn StateStore,
    tenants: &[String],
    user: Option<&str>,
) -> Result<Vec<DeviceSummary>, DeviceError> {
    let mut devices = Vec::new();
    for tenant in tenants {
        let users = match user {
            Some(user) => vec![user.to_owned()],
            None => all(store, ListScope::Users { tenant: tenant.clone() }).await?,
        };
        for user in users {
            let scope = ListScope::Devices { tenant: tenant.clone(), user: user.clone() };
            for device in all(store, scope).await? {
                let ns = Namespace::device(tenant.as_str(), user.as_str(), device);
                devices.push(summary(store, &ns).await?);
            }
        }
    }
    Ok(devices)
}

/// One device, with the keys of its scope.
pub async fn show(store: &dyn StateStore, ns: &Namespace) -> Result<DeviceSummary, DeviceError> {
    let keys = all(store, ListScope::Keys(ns.clone())).await?;
    if keys.is_empty() {
        return Err(not_found(ns));
    }
    Ok(DeviceSummary { keys, ..summary(store, ns).await? })
}

/// Applies `action` and returns the device as it is afterwards.
pub async fn apply(
    store: &dyn StateStore,
    ns: &Namespace,
    action: Action,
) -> Result<DeviceSummary, DeviceError> {
    // acting on a device that never talked to us is almost certainly a typo
    show(store, ns).await?;
    match action {
        Action::Reset => reset(store, ns).await?,
        Action::Wipe => update_policy(store, ns, |r| set_wipe(r, Wipe::Full)).await?,
        Action::AccountWipe => update_policy(store, ns, |r| set_wipe(r, Wipe::AccountOnly)).await?,
        Action::CancelWipe => update_policy(store, ns, |r| set_wipe(r, Wipe::None)).await?,
        Action::Block => update_policy(store, ns, |r| r.blocked = true).await?,
        Action::Allow => update_policy(store, ns, |r| r.blocked = false).await?,
    }
    show(store, ns).await
}

fn set_wipe(record: &mut PolicyRecord, wipe: Wipe) {
    record.wipe = wipe;
    // a new wipe (or none) has not been acknowledged yet
    record.wiped = None;
}

/// Read-modify-write of the provisioning record with compare-and-swap, so that a Provision
/// running at the same moment is never overwritten (one of the two retries).
async fn update_policy(
    store: &dyn StateStore,
    ns: &Namespace,
    change: impl Fn(&mut PolicyRecord),
) -> Result<(), DeviceError> {
    for _ in 0..8 {
        let raw = store.get(ns, POLICY_KEY).await?;
        let mut record =
            raw.as_deref().and_then(PolicyRecord::decode).unwrap_or(PolicyRecord::EMPTY);
        change(&mut record);
        if store.compare_and_swap(ns, POLICY_KEY, raw.as_deref(), Some(record.encode())).await? {
            return Ok(());
        }
    }
    Err(DeviceError::Contended)
}

/// Deletes every key of the device's scope but the ones that say who it is and what an
/// administrator decided (policy record, device information, last seen).
async fn reset(store: &dyn StateStore, ns: &Namespace) -> Result<(), DeviceError> {
    for key in all(store, ListScope::Keys(ns.clone())).await? {
        if !KEPT_BY_RESET.contains(&key.as_str()) && key != LAST_SEEN_KEY {
            store.delete(ns, &key).await?;
        }
    }
    Ok(())
}

async fn summary(store: &dyn StateStore, ns: &Namespace) -> Result<DeviceSummary, DeviceError> {
    let policy = store.get(ns, POLICY_KEY).await?;
    let record = policy.as_deref().and_then(PolicyRecord::decode).unwrap_or(PolicyRecord::EMPTY);
    let information = store
        .get(ns, DEVICE_INFORMATION_KEY)
        .await?
        .as_deref()
        .and_then(DeviceInformation::decode)
        .unwrap_or_default();
    let key = super::activity::DeviceKey {
        tenant: ns.tenant.clone(),
        user: ns.user.clone(),
        device: ns.device.clone().unwrap_or_default(),
    };
    // this process's own observation is newer than the stored one when there is one
    let seen = match super::activity::seen(&key) {
        Some(seen) => Some(seen),
        None => store.get(ns, LAST_SEEN_KEY).await?.as_deref().and_then(LastSeen::decode),
    };
    let wipe = match record.wipe {
        Wipe::None => "none",
        Wipe::Full => "full",
        Wipe::AccountOnly => "account",
    };
    let wipe = match record.wiped {
        Some(status) if record.wipe != Wipe::None => format!("{wipe}, acknowledged ({status})"),
        _ => wipe.to_owned(),
    };
    let policy = match (record.permanent, record.temporary) {
        (Some(_), _) => "provisioned",
        (None, Some(_)) => "pending",
        (None, None) => "none",
    };
    Ok(DeviceSummary {
        tenant: key.tenant,
        user: key.user,
        device: key.device,
        device_type: seen.as_ref().map(|seen| seen.device_type.clone()),
        model: information.model,
        friendly_name: information.friendly_name,
        os: information.os,
        user_agent: information.user_agent,
        last_seen: seen.as_ref().map(|seen| seen.at),
        last_command: seen.map(|seen| seen.command),
        policy: policy.to_owned(),
        wipe,
        blocked: record.blocked,
        keys: Vec::new(),
    })
}

/// Every item of a listing, page by page.
async fn all(store: &dyn StateStore, scope: ListScope) -> Result<Vec<String>, DeviceError> {
    let mut items = Vec::new();
    let mut page = PageRequest::first(PAGE);
    loop {
        let listed = store.list(&scope, &page).await?;
        items.extend(listed.items);
        match listed.next {
            Some(next) => page = PageRequest::after(next, PAGE),
            None => return Ok(items),
        }
    }
}

fn not_found(ns: &Namespace) -> DeviceError {
    DeviceError::NotFound {
        tenant: ns.tenant.clone(),
        user: ns.user.clone(),
        device: ns.device.clone().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{RedbOptions, RedbStore};

    async fn store() -> (tempfile::TempDir, RedbStore) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = RedbStore::open(dir.path().join("s.redb"), RedbOptions::default())
            .await
            .expect("store");
        (dir, store)
    }

    #[tokio::test]
    async fn actions_change_exactly_the_engine_record_and_reset_keeps_identity() {
        let (_dir, store) = store().await;
        let ns = Namespace::device("t", "u@example.test", "DEV1");
        let record = PolicyRecord { permanent: Some(42), ..PolicyRecord::EMPTY };
        store.put(&ns, POLICY_KEY, record.encode()).await.expect("put");
        store.put(&ns, "sync/1", b"x".to_vec()).await.expect("put");
        store.put(&ns, "hierarchy", b"x".to_vec()).await.expect("put");

        let listed = list(&store, &["t".into()], None).await.expect("list");
        assert_eq!(listed.len(), 1);
        assert_eq!((listed[0].policy.as_str(), listed[0].wipe.as_str()), ("provisioned", "none"));

        let blocked = apply(&store, &ns, Action::Block).await.expect("block");
        assert!(blocked.blocked);
        let wiped = apply(&store, &ns, Action::AccountWipe).await.expect("wipe");
        assert_eq!(wiped.wipe, "account");
        let raw = store.get(&ns, POLICY_KEY).await.expect("get").expect("record");
        let stored = PolicyRecord::decode(&raw).expect("engine reads it");
        assert_eq!(
            (stored.permanent, stored.wipe, stored.blocked),
            (Some(42), Wipe::AccountOnly, true)
        );

        let reset = apply(&store, &ns, Action::Reset).await.expect("reset");
        assert_eq!(reset.keys, vec![POLICY_KEY.to_owned()]);
        let missing = Namespace::device("t", "u@example.test", "NOPE");
        assert!(matches!(
            apply(&store, &missing, Action::Wipe).await,
            Err(DeviceError::NotFound { .. })
        ));
    }
}
