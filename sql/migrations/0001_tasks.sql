-- Tasks, their status history and the dispatch outbox.

CREATE TABLE tasks (
    id               uuid        PRIMARY KEY,
    title            text        NOT NULL CHECK (char_length(title) BETWEEN 1 AND 255),
    description      text        CHECK (char_length(description) <= 10000),
    payload          jsonb       NOT NULL DEFAULT '{}'::jsonb,
    status           text        NOT NULL CHECK (status IN ('new', 'in_progress', 'completed', 'error')),
    attempts         integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    error            text,
    source           text        NOT NULL CHECK (source IN ('api', 'amqp')),
    idempotency_key  text,
    fingerprint      text,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    started_at       timestamptz,
    finished_at      timestamptz,
    lease_owner      text,
    lease_expires_at timestamptz,
    CHECK ((status = 'error') = (error IS NOT NULL))
);

-- GET /tasks: newest first, with or without a status filter (keyset on created_at, id).
CREATE INDEX tasks_created_idx ON tasks (created_at DESC, id DESC);
CREATE INDEX tasks_status_created_idx ON tasks (status, created_at DESC, id DESC);
-- Idempotency-Key / AMQP message_id: one task per key and source.
CREATE UNIQUE INDEX tasks_idempotency_key_idx ON tasks (source, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
-- Recovery sweep and lease renewal only look at tasks in progress.
CREATE INDEX tasks_lease_idx ON tasks (lease_expires_at) WHERE status = 'in_progress';
CREATE INDEX tasks_lease_owner_idx ON tasks (lease_owner) WHERE status = 'in_progress';

CREATE TABLE task_history (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id     uuid        NOT NULL REFERENCES tasks (id),
    from_status text,
    to_status   text        NOT NULL,
    at          timestamptz NOT NULL,
    attempt     integer     NOT NULL,
    worker      text,
    reason      text
);
CREATE INDEX task_history_task_idx ON task_history (task_id, id);

CREATE TABLE dispatch_outbox (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id    uuid        NOT NULL,
    attempt    integer     NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
