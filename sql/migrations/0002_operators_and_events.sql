-- Operator actions (retry, cancel) and the live event feed.

-- A cancel asked for while the task runs: {"at", "actor", "reason"}; the worker running it
-- (or the recovery sweep, if that worker died) ends the task in `error`.
ALTER TABLE tasks ADD COLUMN cancel_request jsonb;

-- Every history row says who acted (an API key's name) and the task's state after the change,
-- so that an event can carry "the task after the change" without a copy of the payload.
ALTER TABLE task_history ADD COLUMN actor text;
ALTER TABLE task_history ADD COLUMN error text;
ALTER TABLE task_history ADD COLUMN started_at timestamptz;

-- The transaction that wrote the row. Identity values are handed out in insert order, not in
-- commit order; the feed reads rows ordered by (tx, id) and only once every transaction older
-- than `tx` has ended, so that it never skips a row that commits late (see queries.sql).
ALTER TABLE task_history ADD COLUMN tx xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX task_history_tx_idx ON task_history (tx, id);

-- One notification per transaction that recorded history (NOTIFY folds identical payloads of
-- one transaction into one), and one per cancel asked for a running task.
CREATE FUNCTION tasks_notify_history() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('task_events', pg_current_xact_id()::text);
    RETURN NULL;
END $$;
CREATE TRIGGER task_history_notify AFTER INSERT ON task_history
    FOR EACH STATEMENT EXECUTE FUNCTION tasks_notify_history();

CREATE FUNCTION tasks_notify_cancel() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('task_cancels', NEW.id::text || ' ' || NEW.attempts::text);
    RETURN NULL;
END $$;
CREATE TRIGGER tasks_cancel_notify AFTER UPDATE OF cancel_request ON tasks
    FOR EACH ROW WHEN (OLD.cancel_request IS NULL AND NEW.cancel_request IS NOT NULL)
    EXECUTE FUNCTION tasks_notify_cancel();
