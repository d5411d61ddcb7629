"""CreateTask: store a task with its history and its dispatch in one step, then publish it."""

from __future__ import annotations

import msgspec
import structlog

from application.messaging import Dispatcher
from application.model import Dispatch, NewTask, NewTaskRequest
from application.ports import Clock, IdSource, TaskStore
from application.telemetry import NO_METRICS, NO_TRACING, Metrics, Tracer
from domain.errors import IdempotencyConflict
from domain.task import Task

log = structlog.get_logger(__name__)


class Created(msgspec.Struct, frozen=True):
    task: Task
    replayed: bool


class CreateTask:
    """A task, its `created` history entry and its dispatch commit together or not at all; the
    dispatch is published as soon as that commit is done, by this process (the outbox holds it
    until the broker confirms).

    The same idempotency key with the same request returns the first task; with another
    request it is a conflict.
    """

    def __init__(
        self, tasks: TaskStore, clock: Clock, ids: IdSource, dispatcher: Dispatcher,
        *, metrics: Metrics = NO_METRICS, tracer: Tracer = NO_TRACING,
    ) -> None:
        self._tasks = tasks
        self._clock = clock
        self._ids = ids
        self._dispatcher = dispatcher
        self._metrics = metrics
        self._tracer = tracer

    async def __call__(self, request: NewTaskRequest) -> Created:
        now = self._clock.now()
        task = Task.create(id=self._ids.new_id(), title=request.title,
                           description=request.description, payload=request.payload,
                           source=request.source, now=now, run_at=request.start(now))
        trace = self._tracer.current()
        stored = await self._tasks.create(NewTask(task, request, trace))
        task_id = str(stored.task.id)
        if stored.inserted:
            if stored.entry is not None:
                self._dispatcher.send(stored.entry, Dispatch(task.id, 1, trace))
            self._metrics.created(task.source)
            log.info("task_created", task_id=task_id, source=task.source,
                     **({"run_at": task.run_at.isoformat()} if task.run_at else {}))
            return Created(stored.task, replayed=False)
        if stored.fingerprint != request.fingerprint():
            log.info("task_create_conflict", task_id=task_id, key=request.idempotency_key)
            raise IdempotencyConflict(request.idempotency_key or "")
        log.info("task_create_replayed", task_id=task_id)
        return Created(stored.task, replayed=True)
