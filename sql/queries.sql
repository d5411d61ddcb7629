-- Named statements used by adapters/postgres. `{columns}` and `{filters}` are filled with
-- psycopg.sql identifiers and fragments, never with values.

-- name: create_tasks
-- Batched statements take their rows as one JSON array of objects (encoded by msgspec in C):
-- psycopg would dump list parameters element by element in Python. `{inserted}`,
-- `{insert_values}` (each field cast to its column's type where they differ: the payload comes
-- as JSON text) and `{insert_shape}` come from the one column table in adapters/postgres/rows.py.
-- A task's creation in one statement: the task, its `created` history row and its first
-- dispatch, for every row given (all or none). Rows whose idempotency key is taken are not
-- inserted, and get no history or dispatch (select_by_keys finds the stored task). A task due
-- now has its dispatch entry held by its creator for `hold` seconds (it publishes it at once,
-- see outbox_take) and returned as `entry`; a scheduled one's waits in the outbox until its
-- `run_at` (`entry` null: nobody sends it before).
WITH r AS MATERIALIZED (
    SELECT *, run_at IS NULL OR run_at <= now() AS due
    FROM json_to_recordset(%(rows)s::json) AS r ({insert_shape}, trace text)
), task AS (
    INSERT INTO tasks ({inserted})
    SELECT {insert_values} FROM r
    ON CONFLICT (source, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING id, status, created_at
), history AS (
    INSERT INTO task_history (task_id, from_status, to_status, at, attempt)
    SELECT id, NULL, status, created_at, 0 FROM task
), entry AS (
    INSERT INTO dispatch_outbox (task_id, attempt, trace_context, held_until)
    SELECT task.id, 1, r.trace,
           CASE WHEN r.due THEN now() + make_interval(secs => %(hold)s) ELSE r.run_at END
    FROM task JOIN r USING (id)
    RETURNING task_id, id
)
SELECT entry.task_id AS id, CASE WHEN r.due THEN entry.id END AS entry
FROM entry JOIN r ON r.id = entry.task_id;

-- name: select_by_keys
SELECT {columns}, fingerprint, idempotency_key FROM tasks
WHERE idempotency_key IS NOT NULL
  AND (source, idempotency_key) IN (SELECT * FROM unnest(%(source)s::text[], %(key)s::text[]));

-- name: select_tasks
SELECT {columns} FROM tasks WHERE id = ANY(%(ids)s::uuid[]);

-- name: list_tasks
SELECT {columns} FROM tasks
WHERE {filters}
ORDER BY created_at DESC, id DESC
LIMIT %(limit)s;

-- name: claim_tasks
-- `new -> in_progress` for every task of `ids` still `new` and due (`run_at` passed, by the
-- database's clock, as the relay's), with its history row, in one statement: one more attempt,
-- leased to `worker` until `lease_until` (the domain's Task.claim). Nothing while dispatch is
-- paused. Rows are locked in id order (as apply_changes does). Each claimed task comes
-- back with `waited_since`, when it became `new`; the tasks of `ids` that were not claimed
-- come back too, unchanged, with `waited_since` null, as the statement's snapshot has them,
-- and `lost` when they looked claimable: another statement claimed such a task while this one
-- waited for its lock (the caller asks again). Every row says whether dispatch is paused.
WITH state AS MATERIALIZED (
    SELECT paused FROM dispatch_state
), locked AS MATERIALIZED (
    SELECT id, updated_at AS waited_since FROM tasks
    WHERE id = ANY(%(ids)s::uuid[]) AND status = 'new'
      AND (run_at IS NULL OR run_at <= now()) AND NOT (SELECT paused FROM state)
    ORDER BY id FOR NO KEY UPDATE
), claimed AS (
    UPDATE tasks t
    SET status = 'in_progress', attempts = t.attempts + 1, started_at = %(now)s,
        updated_at = %(now)s, lease_owner = %(worker)s, lease_expires_at = %(lease_until)s
    WHERE t.id = ANY(ARRAY(SELECT id FROM locked)) AND t.status = 'new'
    RETURNING {task_columns}
), history AS (
    INSERT INTO task_history (task_id, from_status, to_status, at, attempt, worker, started_at)
    SELECT id, 'new', 'in_progress', %(now)s, attempts, %(worker)s, %(now)s FROM claimed
)
SELECT {columns}, waited_since, (SELECT paused FROM state) AS paused, false AS lost
FROM claimed JOIN locked USING (id)
UNION ALL
SELECT {columns}, NULL, (SELECT paused FROM state),
       status = 'new' AND (run_at IS NULL OR run_at <= now()) AND NOT (SELECT paused FROM state)
FROM tasks
WHERE id = ANY(%(ids)s::uuid[]) AND id NOT IN (SELECT id FROM claimed);

-- name: apply_changes
-- Each row n is written only if the task is still as the caller read it (status, attempts,
-- lease owner). `locked` takes the row locks in id order first (the UPDATE only touches rows it
-- has locked), so concurrent batches over overlapping ids queue instead of deadlocking. Ids must
-- be distinct. `= ANY(ARRAY(...))` keeps both scans on the primary key: the planner guesses 100
-- rows for json_to_recordset and would otherwise join small tables by sequential scans.
-- The history row of every change written and the dispatch it sends (if any) go in the same
-- statement, only for the rows it wrote (a bare compare-and-set gives none of either).
WITH n AS MATERIALIZED (
    SELECT * FROM json_to_recordset(%(rows)s::json) AS n ({cas_shape})
), locked AS MATERIALIZED (
    SELECT id FROM tasks WHERE id = ANY(ARRAY(SELECT id FROM n)) ORDER BY id FOR NO KEY UPDATE
), changed AS (
    UPDATE tasks t
    SET {assignments}
    FROM n
    WHERE t.id = ANY(ARRAY(SELECT id FROM locked))
      AND t.id = n.id
      AND t.status = n.old_status
      AND t.attempts = n.old_attempts
      AND t.lease_owner IS NOT DISTINCT FROM n.old_lease_owner
    RETURNING t.id
), history AS (
    INSERT INTO task_history (task_id, from_status, to_status, at, attempt, worker, reason,
                              actor, error, started_at)
    SELECT h.* FROM json_to_recordset(%(steps)s::json)
        AS h (task_id uuid, from_status text, to_status text, at timestamptz, attempt int,
              worker text, reason text, actor text, error text, started_at timestamptz)
    WHERE h.task_id IN (SELECT id FROM changed)
), dispatch AS (
    INSERT INTO dispatch_outbox (task_id, attempt, trace_context)
    SELECT d.task_id, d.attempt, d.trace
    FROM json_to_recordset(%(dispatches)s::json) AS d (task_id uuid, attempt int, trace text)
    WHERE d.task_id IN (SELECT id FROM changed)
)
SELECT id FROM changed;

-- name: select_expired
SELECT {columns} FROM tasks
WHERE status = 'in_progress' AND lease_expires_at < %(now)s
ORDER BY lease_expires_at
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED;

-- name: renew_leases
-- Only the claims (task id, attempt) the worker says it runs: a claim committed while the worker
-- never heard of it is not renewed, and expires. Locks in id order, like apply_changes,
-- so renewal never deadlocks with a batch. Returns the renewed tasks whose cancel was asked for
-- (the worker may have missed the call).
UPDATE tasks SET lease_expires_at = %(until)s
WHERE id IN (SELECT id FROM tasks
             WHERE (id, attempts) IN (SELECT * FROM unnest(%(ids)s::uuid[], %(attempts)s::int[]))
               AND status = 'in_progress' AND lease_owner = %(worker)s
             ORDER BY id FOR NO KEY UPDATE)
  AND status = 'in_progress' AND lease_owner = %(worker)s
RETURNING id, attempts, cancel_request IS NOT NULL AS cancel_requested;

-- name: select_undispatched
-- The redispatch sweep's search: tasks in `new` that became `new` (updated_at) and were last
-- dispatched again (redispatched_at) before `quiet_since`, with no dispatch still waiting in the
-- outbox. Found through tasks_new_since_idx; rows another transaction holds (a claim under way,
-- another sweep) are skipped, never waited for, so sweeps in every worker take disjoint rows.
SELECT {columns}, redispatches FROM tasks t
WHERE status = 'new' AND updated_at < %(quiet_since)s
  AND (redispatched_at IS NULL OR redispatched_at < %(quiet_since)s)
  AND NOT EXISTS (SELECT FROM dispatch_outbox o WHERE o.task_id = t.id)
ORDER BY updated_at
LIMIT %(limit)s
FOR NO KEY UPDATE SKIP LOCKED;

-- name: mark_redispatched
UPDATE tasks SET redispatches = redispatches + 1, redispatched_at = %(at)s
WHERE id = ANY(%(ids)s::uuid[]) AND status = 'new';

-- name: insert_history
INSERT INTO task_history (task_id, from_status, to_status, at, attempt, worker, reason, actor,
                          error, started_at)
SELECT * FROM json_to_recordset(%(rows)s::json)
    AS r (task_id uuid, from_status text, to_status text, at timestamptz, attempt int,
          worker text, reason text, actor text, error text, started_at timestamptz);

-- name: select_history
SELECT task_id, from_status, to_status, at, attempt, worker, reason, actor, error, started_at
FROM task_history WHERE task_id = %(task_id)s ORDER BY id;

-- name: events_after
-- The feed's read: history rows after position (tx, id), oldest first, each with its task.
-- Only rows whose transaction is below the horizon are returned (taken just before, by
-- events_horizon: older than every transaction of this database still running then):
-- no row can commit later with a smaller (tx, id), so a reader that moves its position
-- forward never skips one.
SELECT h.tx::text::bigint AS tx, h.id AS seq, h.task_id, h.from_status, h.to_status, h.at,
       h.attempt, h.worker, h.reason, h.actor, h.error, h.started_at, {task_columns}
FROM task_history h JOIN tasks t ON t.id = h.task_id
WHERE (h.tx, h.id) > (%(tx)s::text::xid8, %(seq)s)
  AND (h.tx, h.id) <= (%(until_tx)s::text::xid8, %(until_seq)s)
  AND h.tx < %(horizon)s::text::xid8
  AND {filters}
ORDER BY h.tx, h.id
LIMIT %(limit)s;

-- name: events_latest
-- The position of the newest row the feed may read (see events_after).
SELECT tx::text::bigint AS tx, id AS seq FROM task_history
WHERE tx < %(horizon)s::text::xid8
ORDER BY tx DESC, id DESC LIMIT 1;

-- name: events_horizon
-- Every transaction below `horizon` has ended: the feed may read their rows. Cheap; held back
-- by the oldest open writer of any database on the server (`oldest`).
SELECT x AS oldest, x AS horizon
FROM (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS x) AS s;

-- name: events_horizon_exact
-- Every transaction below `horizon` that could write here has ended (migration 0009): not held
-- back by other databases' transactions, at the price of reading pg_stat_activity.
SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS oldest,
       task_events_horizon()::text::bigint AS horizon;

-- name: outbox_put
INSERT INTO dispatch_outbox (task_id, attempt, trace_context)
SELECT * FROM json_to_recordset(%(rows)s::json) AS r (task_id uuid, attempt int, trace text);

-- name: outbox_take
-- Held, not locked: the statement commits on its own, and no other relay takes these entries
-- until `held_until` has passed (see migration 0008). outbox_remove deletes them once RabbitMQ
-- has confirmed; outbox_release hands them back at once when it did not.
UPDATE dispatch_outbox o SET held_until = now() + make_interval(secs => %(hold)s)
FROM (SELECT id FROM dispatch_outbox WHERE held_until < now()
      ORDER BY held_until, id LIMIT %(limit)s FOR UPDATE SKIP LOCKED) AS free
WHERE o.id = free.id
RETURNING o.id, o.task_id, o.attempt, o.trace_context;

-- name: outbox_remove
DELETE FROM dispatch_outbox WHERE id = ANY(%(ids)s);

-- name: outbox_release
UPDATE dispatch_outbox SET held_until = '-infinity' WHERE id = ANY(%(ids)s);

-- name: ping
SELECT 1;

-- name: events_last
-- One task's newest readable event (see events_after).
SELECT h.tx::text::bigint AS tx, h.id AS seq, h.task_id, h.from_status, h.to_status, h.at,
       h.attempt, h.worker, h.reason, h.actor, h.error, h.started_at, {task_columns}
FROM task_history h JOIN tasks t ON t.id = h.task_id
WHERE h.task_id = %(task_id)s AND h.tx < %(horizon)s::text::xid8
ORDER BY h.tx DESC, h.id DESC
LIMIT 1;

-- name: select_counts
-- Counters summed over their shards (see migration 0003), and the oldest wait in `new` (a
-- scheduled task waits for its time, not for a worker: it counts once due).
SELECT (SELECT coalesce(jsonb_object_agg(name, total), jsonb_build_object()) FROM
            (SELECT name, sum(n) AS total FROM task_counts GROUP BY name) s) AS counts,
       (SELECT min(updated_at) FROM tasks
        WHERE status = 'new' AND (run_at IS NULL OR run_at <= now())) AS oldest_new_at;

-- name: prune_batch
-- Deletes up to `limit` finished tasks that finished before `cutoff`, oldest first, with their
-- history, in one short transaction. Rows another transaction holds are skipped, never waited
-- for; and only one pruner works at a time (the transaction-scoped advisory lock: a second
-- one finds it taken and deletes nothing).
WITH lock AS (SELECT pg_try_advisory_xact_lock(%(lock)s) AS mine),
doomed AS (
    SELECT id FROM tasks
    WHERE status IN ('completed', 'error') AND finished_at < %(cutoff)s
      AND (SELECT mine FROM lock)
    ORDER BY finished_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), history AS (
    DELETE FROM task_history WHERE task_id IN (SELECT id FROM doomed)
), gone AS (
    DELETE FROM tasks WHERE id IN (SELECT id FROM doomed) RETURNING id
)
SELECT (SELECT mine FROM lock) AS locked, (SELECT count(*) FROM gone) AS deleted;

-- name: prune_count
SELECT count(*) AS matched FROM tasks
WHERE status IN ('completed', 'error') AND finished_at < %(cutoff)s;

-- name: schema_versions
-- The migrations applied to this database (adapters/postgres/migrate.py writes the ledger).
SELECT version FROM schema_migrations;

-- name: dispatch_state
SELECT paused, since, actor, reason FROM dispatch_state;

-- name: dispatch_switch
-- Pause or resume dispatch for every process (the trigger dispatch_state_notify tells them).
UPDATE dispatch_state SET paused = %(paused)s, since = %(since)s, actor = %(actor)s,
                          reason = %(reason)s
RETURNING paused, since, actor, reason;

-- name: outbox_of_task
-- The task's oldest dispatch not confirmed yet (dispatch_outbox_task_idx, migration 0010).
SELECT created_at FROM dispatch_outbox WHERE task_id = %(task_id)s ORDER BY id LIMIT 1;
