"""What operators see of the outbox: the pending count kept by the changes, the trace carried."""

from __future__ import annotations

import uuid

from adapters.postgres.store import PostgresTaskStore
from application.model import Dispatch

from .conftest import UowFactory

TRACE = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


async def pending(uow: UowFactory) -> int:
    async with uow() as u:
        return (await u.tasks.counts()).outbox_pending


async def test_a_dispatch_keeps_its_trace_context_through_the_outbox(
    uow: UowFactory, steps: PostgresTaskStore,
) -> None:
    traced, untraced = Dispatch(uuid.uuid4(), 1, TRACE), Dispatch(uuid.uuid4(), 1)
    async with uow() as u:
        await u.outbox.put([traced, untraced])
        await u.commit()
    taken = await steps.take(10, hold=30.0)
    assert sorted(taken.values(), key=lambda d: d.trace or "") == [untraced, traced]


async def test_pending_counts_committed_puts_less_removed_entries(
    uow: UowFactory, steps: PostgresTaskStore,
) -> None:
    assert await pending(uow) == 0
    async with uow() as u:
        await u.outbox.put([Dispatch(uuid.uuid4(), 1) for _ in range(5)])
        await u.commit()
    async with uow() as u:
        await u.outbox.put([Dispatch(uuid.uuid4(), 1)])  # rolled back: never counted
    assert await pending(uow) == 5
    held = await steps.take(2, hold=30.0)
    assert await pending(uow) == 5  # held while the broker confirms: still pending
    await steps.release(held)  # the broker did not confirm
    await steps.remove((await steps.take(3, hold=30.0)).keys())
    assert await pending(uow) == 2
