"""Operator actions: retry a failed task, cancel one that has not finished."""

from __future__ import annotations

import uuid

import msgspec
import structlog

from application.messaging import Dispatcher
from application.model import Change, Dispatch
from application.ports import Clock, TaskStore
from application.telemetry import NO_METRICS, NO_TRACING, Metrics, Tracer
from domain.errors import InvalidTransition, TaskNotFound
from domain.status import TaskStatus
from domain.task import Task, Transition

log = structlog.get_logger(__name__)


class Cancelled(msgspec.Struct, frozen=True):
    task: Task
    stopped: bool  # False: still running, its worker has been asked to stop it


async def _current(tasks: TaskStore, task_id: uuid.UUID) -> Task:
    task = await tasks.get(task_id)
    if task is None:
        raise TaskNotFound(task_id)
    return task


async def _change(tasks: TaskStore, change: Change) -> None:
    """Compare-and-set, or tell the caller the task moved meanwhile (it may try again)."""
    if not await tasks.apply(change):
        current = await _current(tasks, change.old.id)
        raise InvalidTransition(change.old.id, current.status, change.new.status)


class RetryTask:
    """A task in `error` goes back to `new` and is dispatched again; `error` is cleared and
    `attempts` keeps counting. Anything else is a conflict (a retry that arrives twice finds
    the task `new` the second time)."""

    def __init__(self, tasks: TaskStore, clock: Clock, dispatcher: Dispatcher,
                 *, tracer: Tracer = NO_TRACING) -> None:
        self._tasks = tasks
        self._clock = clock
        self._dispatcher = dispatcher
        self._tracer = tracer

    async def __call__(self, task_id: uuid.UUID, actor: str | None, reason: str | None) -> Task:
        task = await _current(self._tasks, task_id)
        again = task.retry(now=self._clock.now())
        await _change(self._tasks, Change(
            task, again, Transition.between(task, again, actor=actor, reason=reason),
            Dispatch(task.id, again.attempts + 1, self._tracer.current())))
        self._dispatcher.notify()
        log.info("task_retried", task_id=str(task_id), actor=actor, reason=reason)
        return again


class CancelTask:
    """A `new` task ends in `error` at once. A running one gets a cancel request, recorded in
    its history; its worker stops the work and ends it in `error` (or the recovery sweep does,
    if that worker is gone). Either way the error text starts with `cancelled`. A finished task
    is a conflict; a second cancel of a running task changes nothing."""

    def __init__(self, tasks: TaskStore, clock: Clock, *, metrics: Metrics = NO_METRICS) -> None:
        self._tasks = tasks
        self._clock = clock
        self._metrics = metrics

    async def __call__(self, task_id: uuid.UUID, actor: str | None,
                       reason: str | None) -> Cancelled:
        cancelled = await self._cancel(task_id, actor, reason)
        if cancelled.stopped:
            self._metrics.finished(cancelled.task.status, None)
        log.info("task_cancelled" if cancelled.stopped else "task_cancel_requested",
                 task_id=str(task_id), actor=actor, reason=reason)
        return cancelled

    async def _cancel(self, task_id: uuid.UUID, actor: str | None,
                      reason: str | None) -> Cancelled:
        task = await _current(self._tasks, task_id)
        if task.status is TaskStatus.IN_PROGRESS and task.cancel_request is not None:
            return Cancelled(task, stopped=False)
        if task.status.is_final:
            raise InvalidTransition(task.id, task.status, TaskStatus.ERROR)
        after = task.cancel(now=self._clock.now(), actor=actor, reason=reason)
        note = reason if after.status.is_final else "cancel requested" + (
            f": {reason}" if reason else "")
        await _change(self._tasks, Change(
            task, after, Transition.between(task, after, actor=actor, reason=note)))
        return Cancelled(after, stopped=after.status.is_final)
