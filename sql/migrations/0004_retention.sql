-- Retention: finished tasks are pruned oldest first, found through this index.
CREATE INDEX tasks_finished_idx ON tasks (finished_at) WHERE status IN ('completed', 'error');
