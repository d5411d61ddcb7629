"""A claim committed while its worker never heard the answer expires while that worker lives."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from adapters.postgres.pool import make_pool
from adapters.postgres.store import PostgresTaskStore
from adapters.postgres.uow import PostgresUnitOfWork
from adapters.system import EmulatedProcessor, SystemClock
from adapters.timeouts import OUTBOX_HOLD_SECONDS
from application.leases import RecoverExpiredLeases, RenewLeases
from application.process import Outcome, ProcessTask
from application.stops import StopRequests
from tests.support.proxy import Proxy
from tests.unit.fakes import CountingSignal

from .builders import new_task, store
from .waiting import eventually

LEASE = timedelta(seconds=2)
#: the end of the claim's statement (claim_tasks) on the wire, the first the worker sends here:
#: it commits on its own, as soon as the database has run it
CLAIM = b"id NOT IN (SELECT id FROM claimed)"


@contextlib.asynccontextmanager
async def repeating(step: Callable[[], Awaitable[object]], every: float) -> AsyncIterator[None]:
    """`step` every `every` seconds in the background, as the worker's loops run it."""
    async def loop() -> None:
        while True:
            await step()
            await asyncio.sleep(every)

    running = asyncio.create_task(loop())
    try:
        yield
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running


def row(database_url: str, task_id: object) -> dict[str, Any]:
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        found = conn.execute("SELECT status, attempts, lease_owner FROM tasks WHERE id = %s",
                             [task_id]).fetchone()
        assert found is not None
        return found


async def test_a_claim_whose_commit_the_worker_never_heard_expires_and_is_recovered(
    database_url: str, pool: Any,
) -> None:
    def uow() -> PostgresUnitOfWork:  # straight to the database, for the test's own steps
        return PostgresUnitOfWork(pool)

    task = new_task("claimed in the dark")
    await store(PostgresTaskStore(pool, hold=OUTBOX_HOLD_SECONDS), task)
    with Proxy.in_front_of(database_url) as proxy:
        proxied = make_pool(proxy.url_for(database_url), max_size=4)
        await proxied.open(wait=True, timeout=10)
        try:
            def worker_uow() -> PostgresUnitOfWork:
                return PostgresUnitOfWork(proxied)

            clock, stops = SystemClock(), StopRequests()
            process = ProcessTask(
                PostgresTaskStore(proxied, hold=OUTBOX_HOLD_SECONDS, patient=True),
                EmulatedProcessor(0.01, 0.02, 0.0, random.Random(7)), clock, "w1", LEASE, stops)
            renew = RenewLeases(worker_uow, clock, "w1", LEASE, stops)
            recover = RecoverExpiredLeases(worker_uow, clock, CountingSignal(), max_attempts=3)

            proxy.drop_replies_after(CLAIM)
            first = asyncio.create_task(process(task.id))
            await eventually(lambda: asyncio.to_thread(proxy.trap_fired.wait, 0.1),
                             "the claim to be sent")
            await eventually(lambda: asyncio.to_thread(
                lambda: row(database_url, task.id)["status"] == "in_progress"),
                "the claim to be committed")
            proxy.pass_through(reset_existing=True)  # the worker learns the connection died
            # it tries the claim again, finds the task taken, and does not run it
            assert await asyncio.wait_for(first, 15) is Outcome.SKIPPED
            assert row(database_url, task.id) == {
                "status": "in_progress", "attempts": 1, "lease_owner": "w1"}

            # the same worker lives on, renewing its leases: this claim is not among them
            async with repeating(renew, every=0.2):
                await eventually(recover, "the unheard claim's lease to expire", timeout=15)
            assert row(database_url, task.id)["status"] == "new"
            assert await process(task.id) is Outcome.FINISHED
        finally:
            await proxied.close()

    assert row(database_url, task.id) == {
        "status": "completed", "attempts": 2, "lease_owner": None}
    async with uow() as u:
        steps = [(h.from_status, h.to_status, h.attempt, h.reason)
                 for h in await u.tasks.history(task.id)]
    assert steps == [(None, "new", 0, None), ("new", "in_progress", 1, None),
                     ("in_progress", "new", 1, "lease expired"),
                     ("new", "in_progress", 2, None), ("in_progress", "completed", 2, None)]
