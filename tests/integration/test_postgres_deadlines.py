"""A silent PostgreSQL costs a bounded wait: the deadlines on the pool's connections."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from adapters.postgres.pool import PostgresProbe, make_pool
from adapters.postgres.uow import PostgresUnitOfWork
from adapters.timeouts import PG_POOL_WAIT_SECONDS, PG_ROUND_TRIP_SECONDS
from domain.errors import ServiceUnavailable
from tests.support.proxy import Proxy

from .waiting import eventually

#: a unit of work waits for a connection, then for one round trip, at most
BOUND = PG_POOL_WAIT_SECONDS + PG_ROUND_TRIP_SECONDS + 1.0


async def read_one(pool: object) -> None:
    async with PostgresUnitOfWork(pool) as uow:  # type: ignore[arg-type]
        assert await uow.tasks.get(uuid.uuid4()) is None


async def test_a_blackholed_database_fails_units_of_work_in_bounded_time_and_heals(
    database_url: str,
) -> None:
    with Proxy.in_front_of(database_url) as proxy:
        pool = make_pool(proxy.url_for(database_url), max_size=4)
        await pool.open(wait=True, timeout=10)
        try:
            await read_one(pool)
            proxy.blackhole()

            began = time.monotonic()
            outcomes = await asyncio.gather(*(read_one(pool) for _ in range(6)),
                                            return_exceptions=True)
            took = time.monotonic() - began
            assert all(isinstance(o, ServiceUnavailable) for o in outcomes), outcomes
            assert took < BOUND

            began = time.monotonic()
            with pytest.raises(ServiceUnavailable):
                await PostgresProbe(pool).check()
            assert time.monotonic() - began < 2.0  # within what readiness gives a probe

            proxy.heal()  # the connections that lived through it stay silent: never reused

            async def works() -> bool:
                try:
                    await read_one(pool)
                except ServiceUnavailable:
                    return False
                return True

            await eventually(works, "the pool to serve again", timeout=30)
            began = time.monotonic()
            await asyncio.gather(*(read_one(pool) for _ in range(8)))
            assert time.monotonic() - began < 2.0, "a dead connection was handed out"
        finally:
            await pool.close()
