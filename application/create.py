"""CreateTask: store a task and its dispatch in one transaction."""

from __future__ import annotations

import msgspec
import structlog

from application.model import Dispatch, NewTaskRequest
from application.ports import Clock, DispatchSignal, IdSource, UnitOfWorkFactory
from domain.errors import IdempotencyConflict
from domain.task import Task, Transition

log = structlog.get_logger(__name__)


class Created(msgspec.Struct, frozen=True):
    task: Task
    replayed: bool


class CreateTask:
    """The task, its `created` history entry and its outbox entry commit together or not at all.

    The same idempotency key with the same request returns the first task; with another
    request it is a conflict.
    """

    def __init__(
        self, uow: UnitOfWorkFactory, clock: Clock, ids: IdSource, signal: DispatchSignal
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._ids = ids
        self._signal = signal

    async def __call__(self, request: NewTaskRequest) -> Created:
        task = Task.create(
            id=self._ids.new_id(),
            title=request.title,
            description=request.description,
            payload=request.payload,
            source=request.source,
            now=self._clock.now(),
        )
        async with self._uow() as uow:
            stored = await uow.tasks.add(task, request)
            if stored.inserted:
                await uow.tasks.record([Transition.between(None, task)])
                await uow.outbox.put([Dispatch(task.id, 1)])
                await uow.commit()
        if not stored.inserted:
            if stored.fingerprint != request.fingerprint():
                raise IdempotencyConflict(request.idempotency_key or "")
            log.info("task_create_replayed", task_id=str(stored.task.id))
            return Created(stored.task, replayed=True)
        self._signal.notify()
        log.info("task_created", task_id=str(task.id), source=task.source)
        return Created(task, replayed=False)
