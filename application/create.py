"""CreateTask: store a task with its history and its dispatch, in one transaction."""

from __future__ import annotations

import msgspec
import structlog

from application.messaging import DispatchSignal
from application.model import Dispatch, NewTaskRequest, Stored
from application.ports import Clock, IdSource, UnitOfWork
from application.telemetry import NO_METRICS, NO_TRACING, Metrics, Tracer
from application.transactions import Transactions
from domain.errors import IdempotencyConflict
from domain.task import Task, Transition

log = structlog.get_logger(__name__)


class Created(msgspec.Struct, frozen=True):
    task: Task
    replayed: bool


class CreateTask:
    """A task, its `created` history entry and its outbox entry commit together or not at all.

    The same idempotency key with the same request returns the first task; with another
    request it is a conflict.
    """

    def __init__(
        self, transactions: Transactions, clock: Clock, ids: IdSource, signal: DispatchSignal,
        *, metrics: Metrics = NO_METRICS, tracer: Tracer = NO_TRACING,
    ) -> None:
        self._transactions = transactions
        self._clock = clock
        self._ids = ids
        self._signal = signal
        self._metrics = metrics
        self._tracer = tracer

    async def __call__(self, request: NewTaskRequest) -> Created:
        task = Task.create(id=self._ids.new_id(), title=request.title,
                           description=request.description, payload=request.payload,
                           source=request.source, now=self._clock.now())
        dispatch = Dispatch(task.id, 1, self._tracer.current())
        stored = await self._transactions.run(self._store, task, request, dispatch)
        task_id = str(stored.task.id)
        if stored.inserted:
            self._signal.notify()
            self._metrics.created(task.source)
            log.info("task_created", task_id=task_id, source=task.source)
            return Created(stored.task, replayed=False)
        if stored.fingerprint != request.fingerprint():
            log.info("task_create_conflict", task_id=task_id, key=request.idempotency_key)
            raise IdempotencyConflict(request.idempotency_key or "")
        log.info("task_create_replayed", task_id=task_id)
        return Created(stored.task, replayed=True)

    async def _store(self, uow: UnitOfWork, task: Task, request: NewTaskRequest,
                     dispatch: Dispatch) -> Stored:
        async with uow:
            stored = await uow.tasks.add(task, request)
            if stored.inserted:
                await uow.tasks.record([Transition.between(None, task)])
                await uow.outbox.put([dispatch])
                await uow.commit()
        return stored
