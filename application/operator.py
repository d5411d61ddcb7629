"""Operator actions: retry a failed task, cancel one that has not finished."""

from __future__ import annotations

import uuid

import msgspec
import structlog

from application.messaging import DispatchSignal
from application.model import Dispatch
from application.ports import Clock, UnitOfWork
from application.telemetry import NO_METRICS, NO_TRACING, Metrics, Tracer
from application.transactions import Transactions
from domain.errors import InvalidTransition, TaskNotFound
from domain.status import TaskStatus
from domain.task import Task, Transition

log = structlog.get_logger(__name__)


class Cancelled(msgspec.Struct, frozen=True):
    task: Task
    stopped: bool  # False: still running, its worker has been asked to stop it


async def _current(uow: UnitOfWork, task_id: uuid.UUID) -> Task:
    task = await uow.tasks.get(task_id)
    if task is None:
        raise TaskNotFound(task_id)
    return task


async def _changed(uow: UnitOfWork, old: Task, new: Task) -> None:
    """Compare-and-set, or tell the caller the task moved meanwhile (it may try again)."""
    if not await uow.tasks.compare_and_set(old, new):
        current = await _current(uow, old.id)
        raise InvalidTransition(old.id, current.status, new.status)


class RetryTask:
    """A task in `error` goes back to `new` and is dispatched again; `error` is cleared and
    `attempts` keeps counting. Anything else is a conflict (a retry that arrives twice finds
    the task `new` the second time)."""

    def __init__(self, transactions: Transactions, clock: Clock, signal: DispatchSignal,
                 *, tracer: Tracer = NO_TRACING) -> None:
        self._transactions = transactions
        self._clock = clock
        self._signal = signal
        self._tracer = tracer

    async def __call__(self, task_id: uuid.UUID, actor: str | None, reason: str | None) -> Task:
        trace = self._tracer.current()
        retried = await self._transactions.run(self._retry, task_id, actor, reason, trace)
        self._signal.notify()
        log.info("task_retried", task_id=str(task_id), actor=actor, reason=reason)
        return retried

    async def _retry(self, uow: UnitOfWork, task_id: uuid.UUID, actor: str | None,
                     reason: str | None, trace: str | None) -> Task:
        async with uow:
            task = await _current(uow, task_id)
            again = task.retry(now=self._clock.now())
            await _changed(uow, task, again)
            await uow.tasks.record([Transition.between(task, again, actor=actor, reason=reason)])
            await uow.outbox.put([Dispatch(task.id, again.attempts + 1, trace)])
            await uow.commit()
        return again


class CancelTask:
    """A `new` task ends in `error` at once. A running one gets a cancel request, recorded in
    its history; its worker stops the work and ends it in `error` (or the recovery sweep does,
    if that worker is gone). Either way the error text starts with `cancelled`. A finished task
    is a conflict; a second cancel of a running task changes nothing."""

    def __init__(self, transactions: Transactions, clock: Clock,
                 *, metrics: Metrics = NO_METRICS) -> None:
        self._transactions = transactions
        self._clock = clock
        self._metrics = metrics

    async def __call__(self, task_id: uuid.UUID, actor: str | None,
                       reason: str | None) -> Cancelled:
        cancelled = await self._transactions.run(self._cancel, task_id, actor, reason)
        if cancelled.stopped:
            self._metrics.finished(cancelled.task.status, None)
        log.info("task_cancelled" if cancelled.stopped else "task_cancel_requested",
                 task_id=str(task_id), actor=actor, reason=reason)
        return cancelled

    async def _cancel(self, uow: UnitOfWork, task_id: uuid.UUID, actor: str | None,
                      reason: str | None) -> Cancelled:
        async with uow:
            task = await _current(uow, task_id)
            if task.status is TaskStatus.IN_PROGRESS and task.cancel_request is not None:
                return Cancelled(task, stopped=False)
            if task.status.is_final:
                raise InvalidTransition(task.id, task.status, TaskStatus.ERROR)
            after = task.cancel(now=self._clock.now(), actor=actor, reason=reason)
            await _changed(uow, task, after)
            note = reason if after.status.is_final else "cancel requested" + (
                f": {reason}" if reason else "")
            await uow.tasks.record([Transition.between(task, after, actor=actor, reason=note)])
            await uow.commit()
        return Cancelled(after, stopped=after.status.is_final)
