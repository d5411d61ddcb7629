"""PruneTasks: delete finished tasks older than a cutoff, with their history."""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec
import structlog

from application.ports import Clock, UnitOfWorkFactory

log = structlog.get_logger(__name__)


class Pruned(msgspec.Struct, frozen=True, kw_only=True):
    cutoff: datetime
    dry_run: bool
    matched: int  # finished before the cutoff when the call began
    deleted: int
    more: bool  # call again: the time budget ran out, or another pruner holds the lock


class PruneTasks:
    """Deletes in batches of at most `batch` tasks, one short transaction each, so that
    creates and workers never wait behind it; rows in use are skipped. Only one pruner works
    at a time. A call stops after `budget` seconds and says whether there is more."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, batch: int = 2000,
                 budget: float = 3.0) -> None:
        self._uow = uow
        self._clock = clock
        self._batch = batch
        self._budget = timedelta(seconds=budget)

    async def __call__(self, older_than: timedelta, dry_run: bool = False) -> Pruned:
        started = self._clock.now()
        cutoff = started - older_than
        async with self._uow() as uow:
            matched = await uow.tasks.count_prunable(cutoff)
        deleted, more = 0, False
        while not dry_run and matched:
            async with self._uow() as uow:
                batch = await uow.tasks.prune(cutoff, self._batch)
                await uow.commit()
            deleted += batch or 0
            if batch is None or self._clock.now() - started >= self._budget:
                more = True  # another pruner is at work, or our time is up
                break
            if batch < self._batch:
                break
        if deleted:
            log.info("tasks_pruned", deleted=deleted, cutoff=cutoff.isoformat(), more=more)
        return Pruned(cutoff=cutoff, dry_run=dry_run, matched=matched, deleted=deleted,
                      more=more)

    async def until_done(self, older_than: timedelta) -> int:
        """What the workers run periodically: prune until nothing is left or another pruner
        has the lock; returns how many were deleted."""
        total = 0
        while True:
            pruned = await self(older_than)
            total += pruned.deleted
            if not pruned.more or not pruned.deleted:
                return total
