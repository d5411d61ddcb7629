"""One LISTEN connection per process, shared by every channel the process needs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import psycopg
import structlog
from psycopg import sql

from adapters.postgres.deadline import DeadlineConnection, connect_options
from adapters.postgres.errors import diagnose
from adapters.postgres.primary import read_only, server_of, wants_primary
from adapters.timeouts import PG_LISTENER_CHECK_SECONDS
from application.backoff import Backoff
from application.throttle import Throttle

log = structlog.get_logger(__name__)
#: the pool says each connect failure too: the listener repeats it at most once per interval
_said = Throttle(30.0)

#: Called with a notification's payload, or with None after a reconnect (while the connection
#: was down, notifications may have been missed).
Hearer = Callable[[str | None], None]


class PostgresListener:
    """Listens on the channels it was given (`on`) over a connection of its own, outside the
    pool; reconnects with the service's backoff. A silent server is noticed by a liveness query
    after `check_every` quiet seconds, under the round-trip deadline (deadline.py), not by the
    operating system. With several hosts it listens on the primary: after a failover or a
    switchover it reconnects (libpq finds the new primary), and leaves a server that turned
    read-only once the liveness query's answer says so (primary.py): NOTIFY is sent where
    the writes go."""

    def __init__(self, url: str, connect: dict[str, Any] | None = None,
                 check_every: float = PG_LISTENER_CHECK_SECONDS) -> None:
        self._url = url
        self._connect = {**connect_options(url), "application_name": "tasks listener",
                         **(connect or {})}
        self._check_every = check_every
        self._primary = wants_primary(url)
        self._hearers: dict[str, list[Hearer]] = {}
        self.connected = False

    def on(self, channel: str, hearer: Hearer) -> None:
        """Register before `run` starts."""
        self._hearers.setdefault(channel, []).append(hearer)

    async def run(self) -> None:
        if not self._hearers:
            return
        backoff = Backoff(first=0.5, cap=10.0)
        while True:
            try:
                await self._listen(backoff)
            except (psycopg.Error, OSError, TimeoutError) as exc:
                error = diagnose(exc).line(self._url)  # one line, the setting, no password
                if (extra := _said.check(error)) is not None:
                    log.warning("listener_disconnected", error=error, **extra)
            self.connected = False
            await asyncio.sleep(backoff.next_delay())

    async def _listen(self, backoff: Backoff) -> None:
        conn = await DeadlineConnection.connect(self._url, autocommit=True, **self._connect)
        try:
            for channel in self._hearers:
                await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
            self.connected = True
            log.info("listener_connected", server=server_of(conn))
            backoff.reset()
            self._tell_all(None)
            while True:
                async for note in conn.notifies(timeout=self._check_every):
                    for hearer in self._hearers.get(note.channel, ()):
                        hearer(note.payload)
                await conn.execute("SELECT 1")
                if self._primary and read_only(conn):
                    raise psycopg.OperationalError(
                        f"the server {server_of(conn)} takes no writes: not the primary (any "
                        "more)")
        finally:
            await conn.close()

    def _tell_all(self, payload: str | None) -> None:
        for hearers in self._hearers.values():
            for hearer in hearers:
                hearer(payload)
