"""Clock, id source and the emulated processor: the ports that touch time and chance."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from datetime import UTC, datetime

from domain.task import Task


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class Uuid7Source:
    """Time-ordered UUIDv7 ids (RFC 9562): new rows land at the right edge of the index. The
    random bits come from the `random` module's generator (seeded from the system's source,
    and again in a forked child): ids need to be unique, not secret, and a system call per
    id was a tenth of a bulk create's time."""

    def new_id(self) -> uuid.UUID:
        ms = time.time_ns() // 1_000_000
        rand = random.getrandbits(80)
        value = (ms & ((1 << 48) - 1)) << 80
        value |= 0x7 << 76
        value |= (rand >> 68) << 64  # 12 bits rand_a
        value |= 0b10 << 62
        value |= rand & ((1 << 62) - 1)
        return uuid.UUID(int=value)


class EmulatedProcessor:
    """Waits a uniform random time, then fails with probability `failure_rate`."""

    def __init__(
        self, min_seconds: float, max_seconds: float, failure_rate: float, rng: random.Random
    ) -> None:
        self._min = min_seconds
        self._max = max_seconds
        self._failure_rate = failure_rate
        self._rng = rng

    async def process(self, task: Task) -> str | None:
        await asyncio.sleep(self._rng.uniform(self._min, self._max))
        if self._rng.random() < self._failure_rate:
            return "emulated failure"
        return None


