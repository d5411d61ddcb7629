"""The dispatch outbox in PostgreSQL: taken entries leave on commit only, once per taker."""

from __future__ import annotations

import uuid

from application.model import Dispatch

from .conftest import UowFactory


def dispatches(count: int) -> list[Dispatch]:
    return [Dispatch(uuid.uuid4(), attempt) for attempt in range(1, count + 1)]


def by_attempt(entries: list[Dispatch]) -> list[Dispatch]:
    """The order in which take() returns its rows is not promised (DELETE ... RETURNING)."""
    return sorted(entries, key=lambda d: d.attempt)


async def put(uow: UowFactory, entries: list[Dispatch]) -> None:
    async with uow() as u:
        await u.outbox.put(entries)
        await u.outbox.put([])
        await u.commit()


async def take_and_commit(uow: UowFactory, limit: int = 100) -> list[Dispatch]:
    async with uow() as u:
        taken = await u.outbox.take(limit)
        await u.commit()
    return taken


async def test_taken_entries_come_out_in_order_and_are_gone_after_commit(uow: UowFactory) -> None:
    entries = dispatches(3)
    await put(uow, entries)

    assert by_attempt(await take_and_commit(uow)) == entries
    assert await take_and_commit(uow) == []


async def test_take_returns_at_most_the_limit_taking_the_oldest(uow: UowFactory) -> None:
    entries = dispatches(5)
    await put(uow, entries)

    assert by_attempt(await take_and_commit(uow, limit=2)) == entries[:2]
    assert by_attempt(await take_and_commit(uow)) == entries[2:]


async def test_taken_entries_come_back_when_the_taker_does_not_commit(uow: UowFactory) -> None:
    entries = dispatches(2)
    await put(uow, entries)

    async with uow() as u:
        assert by_attempt(await u.outbox.take(100)) == entries

    assert by_attempt(await take_and_commit(uow)) == entries


async def test_put_without_commit_leaves_nothing_to_take(uow: UowFactory) -> None:
    async with uow() as u:
        await u.outbox.put(dispatches(2))

    assert await take_and_commit(uow) == []


async def test_two_concurrent_takers_get_disjoint_entries(uow: UowFactory) -> None:
    entries = dispatches(6)
    await put(uow, entries)

    async with uow() as first, uow() as second:
        mine = await first.outbox.take(4)
        theirs = await second.outbox.take(100)  # the first has not committed yet
        await first.commit()
        await second.commit()

    assert by_attempt(mine) == entries[:4]  # the oldest ones go to whoever asks first
    assert by_attempt(theirs) == entries[4:]
    assert await take_and_commit(uow) == []
