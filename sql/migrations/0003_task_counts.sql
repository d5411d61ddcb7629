-- Counts kept by the changes themselves, so that "how many in each status" and "how many
-- created / finished so far" cost a few rows to read however large `tasks` grows.

-- name: `status:<status>` (tasks now in it), `created:<source>` and `finished:<status>` (totals
-- so far). A transaction adds to the row of its own shard (its backend pid modulo 16), so that
-- concurrent writers rarely wait for each other on one counter row; readers sum the shards.
CREATE TABLE task_counts (
    name  text   NOT NULL,
    shard int    NOT NULL,
    n     bigint NOT NULL,
    PRIMARY KEY (name, shard)
);

INSERT INTO task_counts (name, shard, n)
SELECT 'status:' || status, 0, count(*) FROM tasks GROUP BY status
UNION ALL SELECT 'created:' || source, 0, count(*) FROM tasks GROUP BY source
UNION ALL SELECT 'finished:' || status, 0, count(*) FROM tasks
          WHERE status IN ('completed', 'error') GROUP BY status;

CREATE FUNCTION task_counts_add(changes jsonb) RETURNS void LANGUAGE sql AS $$
    INSERT INTO task_counts (name, shard, n)
    SELECT key, pg_backend_pid() % 16, value::bigint FROM jsonb_each_text(changes)
    WHERE value::bigint <> 0
    ON CONFLICT (name, shard) DO UPDATE SET n = task_counts.n + EXCLUDED.n
$$;

CREATE FUNCTION task_counts_on_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM task_counts_add(coalesce((SELECT jsonb_object_agg(k, d) FROM (
        SELECT k, count(*) AS d FROM (
            SELECT 'status:' || status AS k FROM new_rows
            UNION ALL SELECT 'created:' || source FROM new_rows) c GROUP BY k) s), '{}'));
    RETURN NULL;
END $$;
CREATE TRIGGER task_counts_insert AFTER INSERT ON tasks
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION task_counts_on_insert();

CREATE FUNCTION task_counts_on_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM task_counts_add(coalesce((SELECT jsonb_object_agg(k, d) FROM (
        SELECT k, sum(d) AS d FROM (
            SELECT 'status:' || o.status AS k, -1 AS d
            FROM old_rows o JOIN new_rows n USING (id) WHERE o.status <> n.status
            UNION ALL SELECT 'status:' || n.status, 1
            FROM old_rows o JOIN new_rows n USING (id) WHERE o.status <> n.status
            UNION ALL SELECT 'finished:' || n.status, 1
            FROM old_rows o JOIN new_rows n USING (id)
            WHERE o.status <> n.status AND n.status IN ('completed', 'error')) c
        GROUP BY k) s), '{}'));
    RETURN NULL;
END $$;
CREATE TRIGGER task_counts_update AFTER UPDATE ON tasks
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION task_counts_on_update();

CREATE FUNCTION task_counts_on_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM task_counts_add(coalesce((SELECT jsonb_object_agg('status:' || status, -d) FROM (
        SELECT status, count(*) AS d FROM old_rows GROUP BY status) s), '{}'));
    RETURN NULL;
END $$;
CREATE TRIGGER task_counts_delete AFTER DELETE ON tasks
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION task_counts_on_delete();

-- The age of the oldest task waiting in `new` (it became new at updated_at: created, retried
-- or recovered), and the redispatch sweep's search, both read this index.
CREATE INDEX tasks_new_since_idx ON tasks (updated_at) WHERE status = 'new';
