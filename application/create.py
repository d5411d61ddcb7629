"""CreateTask: store a task with its history and its dispatch in one step, then publish it."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime

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


class _Creating:
    """What both ways of creating need: the store, the clock and ids, the dispatcher."""

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

    def _task(self, request: NewTaskRequest, now: datetime) -> Task:
        return Task.create(id=self._ids.new_id(), title=request.title,
                           description=request.description, payload=request.payload,
                           source=request.source, now=now, run_at=request.start(now))


class CreateTask(_Creating):
    """A task, its `created` history entry and its dispatch commit together or not at all; the
    dispatch is published as soon as that commit is done, by this process (the outbox holds it
    until the broker confirms).

    The same idempotency key with the same request returns the first task; with another
    request it is a conflict.
    """

    async def __call__(self, request: NewTaskRequest) -> Created:
        task = self._task(request, self._clock.now())
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


class CreateTasks(_Creating):
    """Many tasks in one transaction, all or none, each with its history entry and dispatch
    (published at once, as CreateTask does). An idempotency key covers the whole batch: item
    `i` is stored under `key#i` with the digest of the whole batch, so the same key with the
    same batch returns the same tasks, and with any other batch is a conflict."""

    async def __call__(self, requests: Sequence[NewTaskRequest],
                       key: str | None) -> CreatedMany:
        now, trace = self._clock.now(), self._tracer.current()
        digest = _digest(requests) if key is not None else None
        news = [NewTask(self._task(r, now), msgspec.structs.replace(
                    r, idempotency_key=f"{key}#{i}" if key is not None else None), trace, digest)
                for i, r in enumerate(requests)]
        stored = await self._tasks.create_many(news)
        if all(s is not None and s.inserted for s in stored):
            for s in stored:
                assert s is not None
                if s.entry is not None:
                    self._dispatcher.send(s.entry, Dispatch(s.task.id, 1, trace))
                self._metrics.created(s.task.source)
            log.info("tasks_created", count=len(news), first=str(news[0].task.id))
            return CreatedMany([s.task for s in stored if s is not None], replayed=False)
        if not all(s is not None and s.fingerprint == digest for s in stored):
            log.info("tasks_create_conflict", key=key)
            raise IdempotencyConflict(key or "")
        log.info("tasks_create_replayed", count=len(news), key=key)
        return CreatedMany([s.task for s in stored if s is not None], replayed=True)


class CreatedMany(msgspec.Struct, frozen=True):
    tasks: list[Task]
    replayed: bool


def _digest(requests: Sequence[NewTaskRequest]) -> str:
    """Of the whole batch, in its order: one item more, less or changed is another batch."""
    return hashlib.sha256("".join(r.fingerprint() for r in requests).encode()).hexdigest()
