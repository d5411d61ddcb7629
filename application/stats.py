"""How many tasks are where, and how fast they come and go."""

from __future__ import annotations

from collections import deque
from datetime import datetime

import msgspec

from application.ports import Clock, UnitOfWorkFactory
from domain.status import TaskStatus


class Counts(msgspec.Struct, frozen=True, kw_only=True):
    """Now: tasks in each status, the oldest wait in `new`, and the dispatches committed but
    not yet confirmed by the broker. So far: created, finished."""

    by_status: dict[TaskStatus, int]
    oldest_new_at: datetime | None
    created: int
    finished: dict[TaskStatus, int]
    outbox_pending: int = 0


class Rate(msgspec.Struct, frozen=True, kw_only=True):
    """Created and finished per second over the interval that ends at `at`."""

    at: datetime
    created_per_second: float
    finished_per_second: float


class GetCounts:
    """Read from counters the changes keep themselves: cheap however many tasks exist."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self.clock = clock

    async def __call__(self) -> Counts:
        async with self._uow() as uow:
            return await uow.tasks.counts()

    def waited(self, counts: Counts) -> float | None:
        """How long the oldest task in `new` has waited, in seconds; None when none waits."""
        if counts.oldest_new_at is None:
            return None
        return max(0.0, (self.clock.now() - counts.oldest_new_at).total_seconds())


class Throughput:
    """Samples the totals every few seconds (a loop calls `sample`) and keeps the rates of
    the last `keep` intervals, so that a dashboard opened now shows the last minutes at once."""

    def __init__(self, counts: GetCounts, clock: Clock, keep: int = 180) -> None:
        self._counts = counts
        self._clock = clock
        self._last: tuple[datetime, int, int] | None = None
        self.rates: deque[Rate] = deque(maxlen=keep)

    async def sample(self) -> int:
        counts = await self._counts()
        now, created, finished = self._clock.now(), counts.created, sum(counts.finished.values())
        if self._last is not None:
            at, was_created, was_finished = self._last
            seconds = max((now - at).total_seconds(), 1e-6)
            self.rates.append(Rate(at=now, created_per_second=(created - was_created) / seconds,
                                   finished_per_second=(finished - was_finished) / seconds))
        self._last = (now, created, finished)
        return 0
