"""Dispatch paused or not, in the one row of `dispatch_state` (migration 0010)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import msgspec
import psycopg_pool

from adapters.postgres.listener import PostgresListener
from adapters.postgres.repository import query
from adapters.postgres.uow import translated
from adapters.timeouts import PG_POOL_WAIT_SECONDS
from application.pause import DispatchState
from domain.errors import ServiceUnavailable

#: notified on every change of the state: by the trigger `dispatch_state_notify` (migration 0010)
CHANNEL = "dispatch_state"


class PostgresPauseSwitch:
    """A resume is heard through the process's LISTEN connection; every `check_every` seconds
    the state is read too, should a notification be lost. However many claims wait for the
    resume, the process waits once."""

    def __init__(self, pool: psycopg_pool.AsyncConnectionPool[Any],
                 listener: PostgresListener | None, check_every: float = 1.0) -> None:
        self._pool = pool
        self._check_every = check_every
        self._changed = asyncio.Event()
        self._waiting: asyncio.Future[None] | None = None
        if listener is not None:
            listener.on(CHANNEL, lambda _: self._changed.set())

    async def state(self) -> DispatchState:
        return await self._one("dispatch_state", {})

    async def switch(self, state: DispatchState) -> DispatchState:
        return await self._one("dispatch_switch", msgspec.structs.asdict(state))

    async def resumed(self) -> None:
        if self._waiting is None or self._waiting.done():
            self._waiting = asyncio.ensure_future(self._until_resumed())
        await asyncio.shield(self._waiting)

    async def _until_resumed(self) -> None:
        while True:
            self._changed.clear()
            with contextlib.suppress(ServiceUnavailable):  # an outage: look again later
                if not (await self.state()).paused:
                    return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), self._check_every)

    async def _one(self, name: str, params: dict[str, Any]) -> DispatchState:
        async with translated(), self._pool.connection(timeout=PG_POOL_WAIT_SECONDS) as conn:
            row = await (await conn.execute(query(name), params)).fetchone()
        return msgspec.convert(row, DispatchState, strict=False)
