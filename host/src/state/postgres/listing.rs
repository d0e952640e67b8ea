//! Paged listing in PostgreSQL, with the same results as the embedded store's
//! (`redb_store/read.rs`): the distinct names one level below a scope, in storage-key order.

use super::backend;
use crate::state::error::{StateError, StateResult};
use crate::state::listing::{ListPage, ListScope, PageRequest};
use crate::state::namespace::{self, child_prefix, prefix_end, split_component};

/// Keys of a range, in order, at most `$3` of them (`$2` NULL: no upper bound).
const KEYS_FROM: &str = "SELECT k FROM eas_edge_state \
     WHERE k >= $1 AND ($2::bytea IS NULL OR k < $2) ORDER BY k LIMIT $3";

pub(super) async fn list(
    client: &deadpool_postgres::Object,
    scope: &ListScope,
    page: &PageRequest,
) -> StateResult<ListPage> {
    let prefix = match scope {
        ListScope::Users { tenant } => namespace::tenant_prefix(tenant),
        ListScope::Devices { tenant, user } => namespace::devices_prefix(tenant, user),
        ListScope::Keys(ns) => namespace::namespace_prefix(ns),
    };
    let end = prefix_end(&prefix);
    let mut from = match &page.after {
        Some(item) => match prefix_end(&child_prefix(&prefix, item)) {
            Some(past_item) => past_item,
            None => return Ok(ListPage::default()),
        },
        None => prefix.clone(),
    };
    let limit = page.effective_limit();
    let statement = client.prepare_cached(KEYS_FROM).await.map_err(backend)?;
    // Under a namespace every key is one item, so one query fetches the page (and one more
    // item, to know whether a next page exists). Under a tenant or a user, one item (a user, a
    // device) has many keys: seek past each item's range instead of reading all its keys.
    let batch = if matches!(scope, ListScope::Keys(_)) { limit + 1 } else { 1 };
    let batch = i64::try_from(batch).unwrap_or(i64::MAX);
    let mut items: Vec<String> = Vec::new();
    loop {
        let rows = client.query(&statement, &[&from, &end, &batch]).await.map_err(backend)?;
        if rows.is_empty() {
            return Ok(ListPage { items, next: None });
        }
        for row in &rows {
            let key: Vec<u8> = row.try_get(0).map_err(backend)?;
            let (child, _) = key
                .strip_prefix(prefix.as_slice())
                .and_then(split_component)
                .ok_or_else(|| StateError::Corrupt(format!("malformed storage key {key:02x?}")))?;
            if items.len() == limit {
                // One more exists: the page is full and not the last.
                let next = items.last().cloned();
                return Ok(ListPage { items, next });
            }
            match prefix_end(&child_prefix(&prefix, &child)) {
                Some(past_child) => from = past_child,
                None => {
                    items.push(child);
                    return Ok(ListPage { items, next: None });
                }
            }
            items.push(child);
        }
        if rows.len() < usize::try_from(batch).unwrap_or(usize::MAX) {
            return Ok(ListPage { items, next: None });
        }
    }
}
