"""ReadGauges: the service as a whole, now, for a metrics scrape."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

import msgspec
import structlog

from application.deadletters import DeadLetterQueues
from application.messaging import DispatchQueue, QueueLook
from application.stats import Counts, GetCounts

log = structlog.get_logger(__name__)
T = TypeVar("T")


class Gauges(msgspec.Struct, frozen=True, kw_only=True):
    """What the database's own counters and the broker's queues say; a part whose source did
    not answer in time is None (a scrape then reports the rest)."""

    counts: Counts | None
    oldest_new_age_seconds: float | None
    dead_letters: dict[str, int] | None
    dispatch_queues: dict[str, QueueLook] | None = None


class ReadGauges:
    """Reads counters kept by the changes themselves and the broker's queue lengths: a few rows
    and a queue declaration for each dead-letter and dispatch queue, however many tasks exist.
    Each source gets `timeout` seconds, all at once, so that a scrape stays fast and answers
    even while one of them is down."""

    def __init__(self, counts: GetCounts, dead_letters: DeadLetterQueues,
                 dispatch: DispatchQueue | None = None, timeout: float = 2.0) -> None:
        self._counts = counts
        self._dead_letters = dead_letters
        self._dispatch = dispatch
        self._timeout = timeout

    async def __call__(self) -> Gauges:
        counts, letters, queues = await asyncio.gather(
            self._bounded("database", self._counts()),
            self._bounded("broker", self._dead_letters.counts()),
            self._bounded("broker", self._dispatch.looks()) if self._dispatch else _none())
        return Gauges(counts=counts,
                      oldest_new_age_seconds=self._counts.waited(counts) if counts else None,
                      dead_letters=letters, dispatch_queues=queues)

    async def _bounded(self, source: str, read: Awaitable[T]) -> T | None:
        try:
            return await asyncio.wait_for(read, self._timeout)
        except Exception as exc:  # noqa: BLE001 - a gauge left out beats a failed scrape
            log.warning("gauges_unavailable", source=source,
                        error=f"{type(exc).__name__}: {exc}")
            return None


async def _none() -> None:
    return None
