-- Named statements used by adapters/postgres. `{columns}` and `{filters}` are filled with
-- psycopg.sql identifiers and fragments, never with values.

-- name: insert_tasks
INSERT INTO tasks (id, title, description, payload, status, attempts, error, source,
                   idempotency_key, fingerprint, created_at, updated_at)
SELECT * FROM unnest(%(id)s::uuid[], %(title)s::text[], %(description)s::text[],
                     %(payload)s::jsonb[], %(status)s::text[], %(attempts)s::int[],
                     %(error)s::text[], %(source)s::text[], %(idempotency_key)s::text[],
                     %(fingerprint)s::text[], %(created_at)s::timestamptz[],
                     %(updated_at)s::timestamptz[])
ON CONFLICT (source, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
RETURNING id;

-- name: select_by_keys
SELECT {columns}, fingerprint, idempotency_key FROM tasks
WHERE idempotency_key IS NOT NULL
  AND (source, idempotency_key) IN (SELECT * FROM unnest(%(source)s::text[], %(key)s::text[]));

-- name: select_task
SELECT {columns} FROM tasks WHERE id = %(id)s;

-- name: list_tasks
SELECT {columns} FROM tasks
WHERE {filters}
ORDER BY created_at DESC, id DESC
LIMIT %(limit)s;

-- name: compare_and_set
UPDATE tasks
SET status = %(status)s, attempts = %(attempts)s, error = %(error)s,
    updated_at = %(updated_at)s, started_at = %(started_at)s, finished_at = %(finished_at)s,
    lease_owner = %(lease_owner)s, lease_expires_at = %(lease_expires_at)s
WHERE id = %(id)s
  AND status = %(old_status)s
  AND attempts = %(old_attempts)s
  AND lease_owner IS NOT DISTINCT FROM %(old_lease_owner)s;

-- name: select_expired
SELECT {columns} FROM tasks
WHERE status = 'in_progress' AND lease_expires_at < %(now)s
ORDER BY lease_expires_at
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED;

-- name: renew_leases
UPDATE tasks SET lease_expires_at = %(until)s
WHERE status = 'in_progress' AND lease_owner = %(worker)s;

-- name: insert_history
INSERT INTO task_history (task_id, from_status, to_status, at, attempt, worker, reason)
SELECT * FROM unnest(%(task_id)s::uuid[], %(from_status)s::text[], %(to_status)s::text[],
                     %(at)s::timestamptz[], %(attempt)s::int[], %(worker)s::text[],
                     %(reason)s::text[]);

-- name: select_history
SELECT task_id, from_status, to_status, at, attempt, worker, reason
FROM task_history WHERE task_id = %(task_id)s ORDER BY id;

-- name: outbox_put
INSERT INTO dispatch_outbox (task_id, attempt)
SELECT * FROM unnest(%(task_id)s::uuid[], %(attempt)s::int[]);

-- name: outbox_take
DELETE FROM dispatch_outbox
WHERE id IN (SELECT id FROM dispatch_outbox ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
RETURNING task_id, attempt;

-- name: ping
SELECT 1;
