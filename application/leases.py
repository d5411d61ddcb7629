"""Lease upkeep: a worker renews what it holds; any worker reclaims what dead ones held."""

from __future__ import annotations

from datetime import timedelta

import structlog

from application.messaging import Dispatcher
from application.model import Dispatch
from application.ports import Clock, UnitOfWorkFactory
from application.stops import StopRequests
from application.telemetry import NO_METRICS, Metrics
from domain.status import TaskStatus
from domain.task import Transition

log = structlog.get_logger(__name__)


class RenewLeases:
    """One statement renews the lease of every claim this worker is running, however many are
    in flight: only those, so that a claim committed while the worker never heard of it (the
    connection died before the answer came) expires and is recovered like a dead worker's.
    A cancel asked for one of them reaches its worker here too, should the notification have
    been missed."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, worker_id: str, lease: timedelta,
                 stops: StopRequests) -> None:
        self._uow = uow
        self._clock = clock
        self._worker = worker_id
        self._lease = lease
        self._stops = stops

    async def __call__(self) -> int:
        running = self._stops.running()
        if not running:
            return 0
        async with self._uow() as uow:
            renewed = await uow.tasks.renew_leases(self._worker, running,
                                                   self._clock.now() + self._lease)
            await uow.commit()
        for claim in renewed.cancelled:
            self._stops.request(claim)
        return renewed.count


class RecoverExpiredLeases:
    """Tasks whose lease ran out go back to `new` and are dispatched again, or end in `error`
    after `max_attempts`, or end cancelled if an operator had asked for it. Safe to run from
    every worker at once: rows are locked and skipped.
    """

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        dispatcher: Dispatcher,
        max_attempts: int,
        batch: int = 500,
        *,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._dispatcher = dispatcher
        self._max_attempts = max_attempts
        self._batch = batch
        self._metrics = metrics

    async def __call__(self) -> int:
        now = self._clock.now()
        async with self._uow() as uow:
            expired = await uow.tasks.expired(now, self._batch)
            if not expired:
                return 0  # nothing changed: no commit to send
            pairs = [(t, t.expire(now=now, max_attempts=self._max_attempts)) for t in expired]
            written = await uow.tasks.compare_and_set_many(pairs)
            transitions, dispatches, ended = [], [], []
            for task, after in pairs:
                if task.id not in written:
                    continue
                cancel = task.cancel_request
                transitions.append(
                    Transition.between(task, after, worker=task.lease_owner,
                                       reason=cancel.reason if cancel else
                                       after.error or "lease expired",
                                       actor=cancel.actor if cancel else None)
                )
                if after.status is TaskStatus.NEW:
                    dispatches.append(Dispatch(after.id, after.attempts + 1))
                else:
                    ended.append(after.status)
                log.warning("lease_expired", task_id=str(task.id), worker=task.lease_owner,
                            attempt=task.attempts, now_status=after.status)
            await uow.tasks.record(transitions)
            await uow.outbox.put(dispatches)
            await uow.commit()
        if transitions:
            self._metrics.recovered(len(transitions))
        for status in ended:
            self._metrics.finished(status, None)
        if dispatches:
            self._dispatcher.notify()
        return len(transitions)
