"""DiagnoseTask: why a task is where it is, in one sentence, with the facts behind it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec

from application.messaging import DispatchQueue
from application.pause import PauseSwitch
from application.ports import Clock, HealthProbe, TaskStore
from application.stats import Throughput
from domain.errors import ServiceUnavailable, TaskNotFound
from domain.status import TaskStatus
from domain.task import Task

#: How many of the latest throughput samples the estimate of a start averages.
RATE_SAMPLES = 12


class Diagnosis(msgspec.Struct, frozen=True):
    task_id: uuid.UUID
    status: TaskStatus
    state: str
    since: datetime | None
    detail: str
    facts: dict[str, Any]


class DiagnoseTask:
    """The first state that applies, from the task's own row outwards: finished, cancel
    requested, lease expired, running, scheduled, paused, dispatch pending, no workers,
    queued. Each fact is cheap to read: the task's row, its outbox entry, the pause row, one
    passive declare of the dispatch queue, and the throughput the process already samples."""

    def __init__(self, tasks: TaskStore, pause: PauseSwitch, queue: DispatchQueue,
                 broker: HealthProbe, throughput: Throughput, clock: Clock) -> None:
        self._tasks = tasks
        self._pause = pause
        self._queue = queue
        self._broker = broker
        self._throughput = throughput
        self._clock = clock

    async def __call__(self, task_id: uuid.UUID) -> Diagnosis:
        task = await self._tasks.get(task_id)
        if task is None:
            raise TaskNotFound(task_id)
        now = self._clock.now()
        if task.status is TaskStatus.NEW:
            return await self._waiting(task, now)
        return _claimed_or_finished(task, now)

    async def _waiting(self, task: Task, now: datetime) -> Diagnosis:
        def said(state: str, at: datetime | None, detail: str, **facts: Any) -> Diagnosis:
            return Diagnosis(task.id, task.status, state, at, detail, facts)

        if not task.due(now):
            return said("scheduled", task.created_at, f"It is scheduled to start at "
                        f"{task.run_at:%Y-%m-%d %H:%M:%S %Z}.", run_at=task.run_at)
        pause = await self._pause.state()
        if pause.paused:
            by = f" by {pause.actor}" if pause.actor else ""
            return said("paused", pause.since, f"Dispatch is paused{by}: no worker takes a "
                        "task until it is resumed.", since=pause.since, actor=pause.actor,
                        reason=pause.reason)
        pending = await self._tasks.pending_since(task.id)
        if pending is not None:
            broker = await self._broker_problem()
            why = f": {broker}" if broker else ""
            return said("dispatch_pending", pending, "Its dispatch is not confirmed by "
                        f"RabbitMQ yet{why}.", since=pending, broker=broker)
        look = await self._queue.look(task.id)
        if look.consumers == 0:
            return said("no_workers", task.updated_at, "No worker consumes the dispatch "
                        "queue: start one (tasks worker).", consumers=0)
        rate = self._rate()
        eta = round(look.ready / rate, 1) if rate else None
        return said("queued", task.updated_at, f"It waits in the dispatch queue, with at most "
                    f"{look.ready:,} ahead of it and {look.consumers} worker(s) consuming"
                    + (f": about {eta:g} s to go." if eta is not None else "."),
                    consumers=look.consumers, ahead=look.ready, estimated_start_seconds=eta)

    async def _broker_problem(self) -> str | None:
        try:
            await self._broker.check()
        except ServiceUnavailable as exc:
            return str(exc) or "unavailable"
        return None

    def _rate(self) -> float | None:
        """Finished per second over the last samples: how fast waiting tasks are taken."""
        recent = list(self._throughput.rates)[-RATE_SAMPLES:]
        if not recent:
            return None
        rate = sum(r.finished_per_second for r in recent) / len(recent)
        return rate if rate > 0 else None


def _claimed_or_finished(task: Task, now: datetime) -> Diagnosis:
    def said(state: str, at: datetime | None, detail: str, **facts: Any) -> Diagnosis:
        return Diagnosis(task.id, task.status, state, at, detail, facts)

    if task.status.is_final:
        return said("finished", task.finished_at, f"It finished: {task.status}"
                    + (f" ({task.error})." if task.error else "."),
                    finished_at=task.finished_at, error=task.error)
    if task.cancel_request is not None:
        request = task.cancel_request
        return said("cancel_requested", request.at, "A cancel was asked for; its worker "
                    "stops it shortly.", actor=request.actor, reason=request.reason)
    lease = task.lease_expires_at
    if lease is not None and lease < now:
        return said("lease_expired", lease, f"Its worker {task.lease_owner} stopped renewing "
                    "its lease: the recovery sweep takes it back shortly.",
                    worker=task.lease_owner, lease_expires_at=lease)
    return said("running", task.started_at, f"Worker {task.lease_owner} runs it (attempt "
                f"{task.attempts}).", worker=task.lease_owner, attempt=task.attempts,
                lease_expires_at=lease)
