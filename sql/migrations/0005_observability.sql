-- What operators watch: the dispatches still waiting in the outbox, counted by the changes
-- themselves (as 0003 does for tasks, so that a scrape reads a few rows however long the outbox
-- grows during an outage), and the trace context that each dispatch carries to the workers.

-- The W3C `traceparent` of the span that queued the dispatch (a request, an intake message);
-- null when tracing was off. ADD COLUMN locks the table until this migration commits, so the
-- count below cannot miss a row written meanwhile.
ALTER TABLE dispatch_outbox ADD COLUMN trace_context text;

-- name: `outbox:pending` in task_counts: dispatches committed and not yet confirmed by RabbitMQ
-- (the relay deletes a row in the transaction that saw the confirm).
INSERT INTO task_counts (name, shard, n)
SELECT 'outbox:pending', 0, count(*) FROM dispatch_outbox;

CREATE FUNCTION outbox_counts_on_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM task_counts_add(jsonb_build_object('outbox:pending', (SELECT count(*) FROM new_rows)));
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_counts_insert AFTER INSERT ON dispatch_outbox
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION outbox_counts_on_insert();

CREATE FUNCTION outbox_counts_on_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM task_counts_add(jsonb_build_object('outbox:pending', -(SELECT count(*) FROM old_rows)));
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_counts_delete AFTER DELETE ON dispatch_outbox
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION outbox_counts_on_delete();
