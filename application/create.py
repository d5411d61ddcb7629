"""CreateTask: store tasks and their dispatches, many concurrent requests per transaction."""

from __future__ import annotations

import msgspec
import structlog

from application.batching import MicroBatcher, alone_on_error
from application.model import Dispatch, NewTaskRequest, Stored
from application.ports import Clock, DispatchSignal, IdSource, UnitOfWorkFactory
from domain.errors import IdempotencyConflict
from domain.task import Task, Transition

log = structlog.get_logger(__name__)


class Created(msgspec.Struct, frozen=True):
    task: Task
    replayed: bool


class CreateTask:
    """A task, its `created` history entry and its outbox entry commit together or not at all.

    The same idempotency key with the same request returns the first task; with another
    request it is a conflict. Concurrent calls are grouped into one transaction (one INSERT
    per table) — a row that the database refuses fails alone, not its whole batch.
    """

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        ids: IdSource,
        signal: DispatchSignal,
        max_batch: int = 256,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._ids = ids
        self._signal = signal
        self._batcher: MicroBatcher[NewTaskRequest, Created] = MicroBatcher(
            lambda requests: alone_on_error(self._store, requests), max_batch=max_batch
        )

    async def __call__(self, request: NewTaskRequest) -> Created:
        return await self._batcher.submit(request)

    async def _store(self, requests: list[NewTaskRequest]) -> list[Created | BaseException]:
        now = self._clock.now()
        tasks = [
            Task.create(id=self._ids.new_id(), title=r.title, description=r.description,
                        payload=r.payload, source=r.source, now=now)
            for r in requests
        ]
        async with self._uow() as uow:
            stored = await uow.tasks.add_many(tasks, requests)
            fresh = [s.task for s in stored if s.inserted]
            if fresh:
                await uow.tasks.record([Transition.between(None, t) for t in fresh])
                await uow.outbox.put([Dispatch(t.id, 1) for t in fresh])
                await uow.commit()
        if fresh:
            self._signal.notify()
        return [self._answer(r, s) for r, s in zip(requests, stored, strict=True)]

    @staticmethod
    def _answer(request: NewTaskRequest, stored: Stored) -> Created | BaseException:
        task_id = str(stored.task.id)
        if stored.inserted:
            log.info("task_created", task_id=task_id, source=stored.task.source)
            return Created(stored.task, replayed=False)
        if stored.fingerprint != request.fingerprint():
            log.info("task_create_conflict", task_id=task_id, key=request.idempotency_key)
            return IdempotencyConflict(request.idempotency_key or "")
        log.info("task_create_replayed", task_id=task_id)
        return Created(stored.task, replayed=True)
