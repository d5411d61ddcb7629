-- Scheduled start, pausing dispatch, and the facts the diagnosis of a waiting task reads.

-- When a task may start at the earliest (null: at once). A scheduled task's dispatch waits in
-- the outbox until then (below), so that it costs no message in RabbitMQ while it waits.
ALTER TABLE tasks ADD COLUMN run_at timestamptz;

-- An outbox entry is taken no earlier than `held_until`: while its creator publishes it (the
-- hold of migration 0008), or until its task's `run_at`. Never null now ('-infinity': take it
-- at once), so that the relay finds what is due through one index, however many scheduled
-- entries wait behind it.
UPDATE dispatch_outbox SET held_until = '-infinity' WHERE held_until IS NULL;
ALTER TABLE dispatch_outbox ALTER COLUMN held_until SET DEFAULT '-infinity';
ALTER TABLE dispatch_outbox ALTER COLUMN held_until SET NOT NULL;
CREATE INDEX dispatch_outbox_due_idx ON dispatch_outbox (held_until);
-- "Has this task a dispatch on its way?" (the diagnosis, the redispatch sweep), by task.
CREATE INDEX dispatch_outbox_task_idx ON dispatch_outbox (task_id);

-- Dispatch paused or not, for every process: one row. `since`, `actor` and `reason` describe
-- the last pause or resume. A change notifies `dispatch_state`, so that waiting workers resume
-- at once.
CREATE TABLE dispatch_state (
    only_row boolean     PRIMARY KEY DEFAULT true CHECK (only_row),
    paused   boolean     NOT NULL,
    since    timestamptz,
    actor    text,
    reason   text
);
INSERT INTO dispatch_state (paused) VALUES (false);

CREATE FUNCTION dispatch_state_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('dispatch_state', CASE WHEN NEW.paused THEN 'paused' ELSE 'resumed' END);
    RETURN NULL;
END $$;
CREATE TRIGGER dispatch_state_notify AFTER UPDATE ON dispatch_state
    FOR EACH ROW EXECUTE FUNCTION dispatch_state_notify();

-- The event feed reads the history on a timer while somebody watches (adapters/postgres/
-- events.py), not on a notification: a NOTIFY per transaction that wrote history woke every
-- listening session of the database (each then spends a transaction reading the queue), for
-- every change of every task, watched or not.
DROP TRIGGER task_history_notify ON task_history;
DROP FUNCTION tasks_notify_history();
