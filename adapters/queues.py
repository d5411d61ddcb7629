"""The queue names every broker adapter uses (RabbitMQ's topology and the in-memory one)."""

import uuid

#: Intake: tasks created by message (a contract: clients publish here).
CREATE = "tasks.create"
CREATE_DLQ = "tasks.create.dlq"
#: Dispatch: what workers consume (internal).
DISPATCH = "tasks.dispatch"
DISPATCH_DLQ = "tasks.dispatch.dlq"



def dispatch_queues(count: int) -> tuple[str, ...]:
    """The names of `count` dispatch queues. The first keeps the name of the single queue, so
    that splitting a running system strands nothing: its queue is still consumed."""
    return (DISPATCH, *(f"{DISPATCH}.{i}" for i in range(1, count)))


def queue_of(task_id: uuid.UUID, queues: tuple[str, ...]) -> str:
    """The queue a task's dispatches go to: from the random low bits of its id (UUIDv7), so
    tasks spread evenly and every dispatch of one task takes the same queue."""
    return queues[task_id.int % len(queues)]


#: Each queue's dead-letter queue.
DEAD_LETTERS = {CREATE: CREATE_DLQ, DISPATCH: DISPATCH_DLQ}

#: Header naming why the service dead-lettered a message.
REASON_HEADER = "x-tasks-reject-reason"
#: Header saying when (ISO 8601, UTC) the service dead-lettered a message.
DEAD_LETTERED_AT = "x-tasks-dead-lettered-at"
#: Where a dead letter goes back to when replayed.
ORIGINS = {CREATE_DLQ: CREATE, DISPATCH_DLQ: DISPATCH}

#: Header carrying the W3C trace context of the span that sent a message.
TRACE_HEADER = "traceparent"
