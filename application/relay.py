"""RelayDispatches: move committed outbox entries to the broker."""

from __future__ import annotations

import structlog

from application.messaging import DispatchPublisher
from application.ports import UnitOfWorkFactory

log = structlog.get_logger(__name__)


class RelayDispatches:
    """An entry leaves the outbox only in the transaction that saw the broker confirm it.

    A crash between confirm and commit sends it again: workers ignore the duplicate.
    Concurrent relays lock disjoint entries, so they do not double-publish normally.
    """

    def __init__(
        self, uow: UnitOfWorkFactory, publisher: DispatchPublisher, batch: int = 500
    ) -> None:
        self._uow = uow
        self._publisher = publisher
        self._batch = batch

    async def __call__(self) -> int:
        async with self._uow() as uow:
            pending = await uow.outbox.take(self._batch)
            if not pending:
                return 0
            await self._publisher.publish(pending)
            await uow.commit()
        for dispatch in pending:
            # `trace` (opaque, None when tracing is off) lets the log name the task's trace
            log.info("task_dispatched", task_id=str(dispatch.task_id), attempt=dispatch.attempt,
                     trace=dispatch.trace)
        return len(pending)
