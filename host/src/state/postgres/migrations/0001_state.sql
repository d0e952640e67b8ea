-- eas-edge state store, schema version 1.
--
-- One row per (namespace, key). `k` is the same self-delimiting storage key the embedded store
-- uses (host/src/state/namespace.rs): bytea compares bytewise, so a namespace, a user or a
-- tenant is one contiguous index range and pages come out in the same order as with redb.
CREATE TABLE eas_edge_state (
    k bytea PRIMARY KEY,
    v bytea NOT NULL
);

-- Every write to a namespace holds this transaction-scoped advisory lock: a transaction's
-- conditions (including "key is absent", which no row lock can cover) stay true until it
-- commits. The id is the first 64 bits of the MD5 of the namespace prefix, as two int4 keys: a
-- collision only serialises two namespaces' writes, and the two-key space never meets the
-- one-bigint-key space of the cluster's watcher leases (host/src/cluster).
CREATE FUNCTION eas_edge_lock_namespace(ns bytea) RETURNS void
LANGUAGE sql AS $$
    SELECT pg_advisory_xact_lock(
        ('x' || substr(md5(ns), 1, 8))::bit(32)::integer,
        ('x' || substr(md5(ns), 9, 8))::bit(32)::integer
    )
$$;

-- One atomic transaction of one namespace: if every condition holds (NULL expected value:
-- the key is absent), apply the writes in order (NULL value: delete) and return true.
-- `durable = false` commits asynchronously: the write is visible at once and becomes durable
-- with the next synchronous commit of any session (see eas_edge_flush).
CREATE FUNCTION eas_edge_transact(
    ns bytea,
    durable boolean,
    condition_keys bytea[],
    condition_values bytea[],
    write_keys bytea[],
    write_values bytea[]
) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    i integer;
BEGIN
    IF NOT durable THEN
        PERFORM set_config('synchronous_commit', 'off', true);
    END IF;
    PERFORM eas_edge_lock_namespace(ns);
    IF EXISTS (
        SELECT 1
        FROM unnest(condition_keys, condition_values) AS c(k, v)
        LEFT JOIN eas_edge_state s ON s.k = c.k
        WHERE s.v IS DISTINCT FROM c.v
    ) THEN
        RETURN false;
    END IF;
    FOR i IN 1 .. coalesce(array_length(write_keys, 1), 0) LOOP
        IF write_values[i] IS NULL THEN
            DELETE FROM eas_edge_state WHERE k = write_keys[i];
        ELSE
            INSERT INTO eas_edge_state (k, v) VALUES (write_keys[i], write_values[i])
            ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v;
        END IF;
    END LOOP;
    RETURN true;
END
$$;

-- Deletes every key in [low, high) (high NULL: no upper bound) of one namespace.
CREATE FUNCTION eas_edge_delete_range(ns bytea, durable boolean, low bytea, high bytea)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    deleted bigint;
BEGIN
    IF NOT durable THEN
        PERFORM set_config('synchronous_commit', 'off', true);
    END IF;
    PERFORM eas_edge_lock_namespace(ns);
    DELETE FROM eas_edge_state WHERE k >= low AND (high IS NULL OR k < high);
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN deleted;
END
$$;

-- A synchronous commit that writes WAL (a transaction that writes none commits without a
-- flush, so a bare SELECT would not do): the WAL is flushed up to here, which makes every
-- asynchronous commit before it durable. One row per server process, so concurrent flushes do
-- not queue on one row lock and PostgreSQL's group commit can merge them.
CREATE TABLE eas_edge_flush (
    backend integer PRIMARY KEY,
    flushes bigint NOT NULL
);

CREATE FUNCTION eas_edge_flush() RETURNS void
LANGUAGE sql AS $$
    INSERT INTO eas_edge_flush (backend, flushes) VALUES (pg_backend_pid(), 1)
    ON CONFLICT (backend) DO UPDATE SET flushes = eas_edge_flush.flushes + 1
$$;
