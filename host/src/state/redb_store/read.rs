//! Reads, each in its own snapshot (redb read transaction). Blocking: run on the blocking pool.

use super::open::{ENTRIES, storage_error};
use crate::state::error::{StateError, StateResult};
use crate::state::listing::ListPage;
use crate::state::namespace::{child_prefix, prefix_end, split_component};
use redb::{Database, ReadOnlyTable, ReadableDatabase};
use std::ops::Bound;

pub(super) type EntriesTable = ReadOnlyTable<&'static [u8], &'static [u8]>;

pub(super) fn in_snapshot<T>(
    db: &Database,
    read: impl FnOnce(&EntriesTable) -> StateResult<T>,
) -> StateResult<T> {
    let transaction = db.begin_read().map_err(storage_error)?;
    let table = transaction.open_table(ENTRIES).map_err(storage_error)?;
    read(&table)
}

pub(super) fn get(table: &EntriesTable, storage_key: &[u8]) -> StateResult<Option<Vec<u8>>> {
    Ok(table.get(storage_key).map_err(storage_error)?.map(|value| value.value().to_vec()))
}

/// The distinct first components after `prefix`, in order, starting after `after`.
///
/// Each step seeks to the first key past everything under the previous child, so listing the
/// users of a tenant costs one B-tree seek per user, not a scan of all their entries.
pub(super) fn list_children(
    table: &EntriesTable,
    prefix: &[u8],
    after: Option<&str>,
    limit: usize,
) -> StateResult<ListPage> {
    let end = prefix_end(prefix);
    let mut from = match after {
        Some(item) => match prefix_end(&child_prefix(prefix, item)) {
            Some(past_item) => past_item,
            None => return Ok(ListPage::default()),
        },
        None => prefix.to_vec(),
    };
    let mut items: Vec<String> = Vec::new();
    while let Some(key) = first_key(table, &from, end.as_deref())? {
        let (child, _) = key
            .strip_prefix(prefix)
            .and_then(split_component)
            .ok_or_else(|| StateError::Corrupt(format!("malformed storage key {key:02x?}")))?;
        if items.len() == limit {
            // One more exists: the page is full and not the last.
            let next = items.last().cloned();
            return Ok(ListPage { items, next });
        }
        let Some(past_child) = prefix_end(&child_prefix(prefix, &child)) else {
            items.push(child);
            break;
        };
        from = past_child;
        items.push(child);
    }
    Ok(ListPage { items, next: None })
}

fn first_key(
    table: &EntriesTable,
    from: &[u8],
    end: Option<&[u8]>,
) -> StateResult<Option<Vec<u8>>> {
    let end = match end {
        Some(end) => Bound::Excluded(end),
        None => Bound::Unbounded,
    };
    let mut range = table.range::<&[u8]>((Bound::Included(from), end)).map_err(storage_error)?;
    match range.next() {
        Some(entry) => Ok(Some(entry.map_err(storage_error)?.0.value().to_vec())),
        None => Ok(None),
    }
}
