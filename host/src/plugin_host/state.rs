//! The `state` import: the plugin's key-value store, scoped to the request's tenant and user.

use super::RequestState;
use super::eas_edge::gateway::state;
use crate::state::{Condition, Namespace, StateError as StoreError, Write};

impl RequestState {
    /// The namespace a plugin's scope maps to: always this request's tenant and user.
    fn namespace(&self, scope: state::Scope) -> Result<Namespace, state::Error> {
        namespace(&self.tenant, self.identity.as_deref(), scope)
    }
}

/// The namespace a plugin's scope maps to for `tenant` and the authenticated `user`.
pub(super) fn namespace(
    tenant: &str,
    user: Option<&str>,
    scope: state::Scope,
) -> Result<Namespace, state::Error> {
    let user = user.ok_or(state::Error::Unauthenticated)?;
    Ok(match scope {
        state::Scope::Account => Namespace::user(tenant, user),
        state::Scope::Device(device) => Namespace::device(tenant, user, device),
    })
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
