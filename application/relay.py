"""RelayDispatches: move committed outbox entries to the broker."""

from __future__ import annotations

from collections.abc import Collection

import structlog

from application.messaging import DispatchPublisher
from application.ports import UnitOfWorkFactory
from domain.errors import ServiceUnavailable

log = structlog.get_logger(__name__)


class RelayDispatches:
    """Take a batch of entries (held for `hold` seconds, in a transaction of its own), publish
    it, and remove the entries once the broker has confirmed them.

    No transaction stays open while the broker confirms: an open writing transaction would
    hold back every event stream (an event is readable only once no older one can still
    commit: see the EventLog port). A crash after the confirm and before the removal sends
    the batch again once the hold is over: workers ignore the duplicate. Concurrent relays
    take disjoint entries, so they do not double-publish normally.
    """

    def __init__(self, uow: UnitOfWorkFactory, publisher: DispatchPublisher, *,
                 hold: float, batch: int = 500) -> None:
        self._uow = uow
        self._publisher = publisher
        self._batch = batch
        self._hold = hold

    async def __call__(self) -> int:
        async with self._uow() as uow:
            held = await uow.outbox.take(self._batch, self._hold)
            if not held:
                return 0  # nothing taken: nothing to commit
            await uow.commit()
        try:
            await self._publisher.publish(list(held.values()))
        except Exception:
            await self._release(held.keys())
            raise
        async with self._uow() as uow:  # confirmed: the entries leave the outbox
            await uow.outbox.remove(held.keys())
            await uow.commit()
        for dispatch in held.values():
            # `trace` (opaque, None when tracing is off) lets the log name the task's trace
            log.info("task_dispatched", task_id=str(dispatch.task_id), attempt=dispatch.attempt,
                     trace=dispatch.trace)
        return len(held)

    async def _release(self, held: Collection[int]) -> None:
        """Not confirmed: handed back for the next try. If the database cannot be told
        either, the hold runs out on its own."""
        try:
            async with self._uow() as uow:
                await uow.outbox.release(held)
                await uow.commit()
        except ServiceUnavailable as exc:
            log.warning("relay_release_failed", entries=len(held), error=str(exc))
