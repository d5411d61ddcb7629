"""RedispatchLost: a task waiting in `new` with nothing on its way to a worker is sent again."""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog

from application.messaging import Dispatcher, DispatchQueue
from application.model import Dispatch, Waiting
from application.ports import Clock, UnitOfWorkFactory
from application.telemetry import NO_METRICS, Metrics
from domain.status import TaskStatus
from domain.task import Transition

log = structlog.get_logger(__name__)
#: the history's `actor` of what the sweep does
SWEEP = "sweep"


class RedispatchLost:
    """A task still `new` `quiet` after it became `new` (or was last sent again), with no
    dispatch waiting in the outbox, has lost its dispatch: dead-lettered, purged, or published
    to a queue that was gone. It gets a new outbox row, so the relay sends it like any other;
    once it has been dispatched `max_dispatches` times it ends in `error` saying so.

    A dispatch may also just be waiting behind a backlog, and its task look the same: so the
    sweep does nothing while the dispatch queue holds messages ready for a worker. Those it
    cannot tell apart; a duplicate would be harmless (a claim is a compare-and-set), but a
    backlog would grow. A lost dispatch is found once the queue has drained. Safe to run from
    every worker at once: rows are locked and skipped.
    """

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        queue: DispatchQueue,
        dispatcher: Dispatcher,
        worker_id: str,
        quiet: timedelta,
        max_dispatches: int,
        batch: int = 500,
        *,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._queue = queue
        self._dispatcher = dispatcher
        self._worker = worker_id
        self._quiet = quiet
        self._max = max_dispatches
        self._batch = batch
        self._metrics = metrics

    async def __call__(self) -> int:
        ready = await self._queue.ready()
        if ready:
            log.debug("redispatch_deferred", ready=ready)
            return 0
        now = self._clock.now()
        async with self._uow() as uow:
            waiting = await uow.tasks.undispatched(now - self._quiet, self._batch)
            if not waiting:
                return 0
            again = [w for w in waiting if self._sent(w) < self._max]
            ending = {w.task.id: (w, w.task.never_claimed(now=now, dispatches=self._sent(w)))
                      for w in waiting if self._sent(w) >= self._max}
            ended = await uow.tasks.compare_and_set_many(
                [(w.task, after) for w, after in ending.values()])
            await uow.tasks.mark_redispatched([w.task.id for w in again], now)
            await uow.tasks.record(
                [self._again(w, now) for w in again]
                + [Transition.between(w.task, after, worker=self._worker, actor=SWEEP)
                   for w, after in ending.values() if w.task.id in ended])
            await uow.outbox.put([Dispatch(w.task.id, w.task.attempts + 1) for w in again])
            await uow.commit()
        for w in again:
            log.warning("task_redispatched", task_id=str(w.task.id), dispatch=self._sent(w) + 1,
                        of=self._max, waited_s=round((now - w.task.updated_at).total_seconds()))
        for task_id in ended:
            log.warning("task_never_claimed", task_id=str(task_id), dispatches=self._max)
            self._metrics.finished(TaskStatus.ERROR, None)
        if again:
            self._dispatcher.notify()
        return len(again) + len(ended)

    @staticmethod
    def _sent(waiting: Waiting) -> int:
        """How often the task was dispatched since it became `new`: once, plus the sweep's."""
        return 1 + waiting.redispatches

    def _again(self, waiting: Waiting, now: datetime) -> Transition:
        """The history row of a redispatch: the status stays `new`."""
        task = waiting.task
        return Transition(
            task_id=task.id, from_status=TaskStatus.NEW, to_status=TaskStatus.NEW, at=now,
            attempt=task.attempts, worker=self._worker, actor=SWEEP,
            reason=f"dispatched again ({self._sent(waiting) + 1} of {self._max}): no worker "
                   f"took it within {self._quiet.total_seconds():g}s and none was on its way")
