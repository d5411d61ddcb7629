-- The redispatch sweep: a task waiting in `new` whose dispatch was lost (dead-lettered, purged,
-- sent to a queue that was gone) is dispatched again, and the sweep counts how often.

-- How often the sweep dispatched the task again since it last changed status, and when it last
-- did. Only the sweep writes them; any change of status starts the count again (trigger below),
-- so a task retried or recovered gets its full number of dispatches again.
ALTER TABLE tasks ADD COLUMN redispatches integer NOT NULL DEFAULT 0 CHECK (redispatches >= 0);
ALTER TABLE tasks ADD COLUMN redispatched_at timestamptz;

CREATE FUNCTION tasks_redispatch_reset() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.redispatches := 0;
    NEW.redispatched_at := NULL;
    RETURN NEW;
END $$;
-- The WHEN clause is evaluated without calling the function: claims and finishes of tasks the
-- sweep never touched cost nothing more.
CREATE TRIGGER tasks_redispatch_reset BEFORE UPDATE OF status ON tasks
    FOR EACH ROW WHEN (OLD.redispatches > 0 AND NEW.status IS DISTINCT FROM OLD.status)
    EXECUTE FUNCTION tasks_redispatch_reset();
