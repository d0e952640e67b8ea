//! The schema, versioned: each migration is an SQL file shipped in `migrations/` and applied
//! once, in order, at start. Applied versions are recorded in `eas_edge_schema`. Nodes starting
//! together serialise on an advisory lock, so exactly one applies each migration.

use super::backend;
use crate::state::error::{StateError, StateResult};

/// `(version, SQL)`, in order; a new schema change is a new file appended here, never an edit
/// of an applied one.
const MIGRATIONS: &[(i32, &str)] = &[(1, include_str!("migrations/0001_state.sql"))];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i32 = 1;

/// An arbitrary constant: the advisory lock id that serialises migrations across nodes.
const MIGRATION_LOCK: i64 = 0x6561_735f_6564_6765; // "eas_edge"

pub(super) async fn apply(client: &mut deadpool_postgres::Object) -> StateResult<()> {
    let transaction = client.transaction().await.map_err(backend)?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(backend)?;
    transaction
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS eas_edge_schema (
                 version integer PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )
        .await
        .map_err(backend)?;
    let row = transaction
        .query_one("SELECT coalesce(max(version), 0) FROM eas_edge_schema", &[])
        .await
        .map_err(backend)?;
    let current: i32 = row.try_get(0).map_err(backend)?;
    if current > SCHEMA_VERSION {
        return Err(StateError::Backend(
            format!(
                "the database has state schema version {current}; this build knows versions up \
                 to {SCHEMA_VERSION} only (a newer eas-edge migrated it)"
            )
            .into(),
        ));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(version, _)| *version > current) {
        transaction.batch_execute(sql).await.map_err(|error| {
            StateError::Backend(format!("state schema migration {version}: {error}").into())
        })?;
        transaction
            .execute("INSERT INTO eas_edge_schema (version) VALUES ($1)", &[version])
            .await
            .map_err(backend)?;
    }
    transaction.commit().await.map_err(backend)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order_up_to_the_schema_version() {
        let versions: Vec<i32> = MIGRATIONS.iter().map(|(version, _)| *version).collect();
        let expected: Vec<i32> = (1..=SCHEMA_VERSION).collect();
        assert_eq!(versions, expected);
    }
}
