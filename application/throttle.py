"""Saying a repeated thing once per interval: outage and misconfiguration logs that never flood."""

from __future__ import annotations

import time
from collections.abc import Callable


class Throttle:
    """`check(key)` lets the first occurrence of a key through at once, then at most one per
    `interval` seconds; what it held back in between is counted and reported with the next one.

    Keys are what is said (an error's text), so a new reason is always said at once.
    """

    def __init__(self, interval: float = 30.0, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = 256) -> None:
        self.interval = interval
        self._clock = clock
        self._max_keys = max_keys
        self._said: dict[str, tuple[float, int]] = {}  # key -> (when last said, held back since)

    def check(self, key: str) -> dict[str, int] | None:
        """None: stay quiet. Otherwise say it, with these extra log fields (`repeated=N` when
        N occurrences were held back since it was last said)."""
        now = self._clock()
        last = self._said.get(key)
        if last is not None and now - last[0] < self.interval:
            self._said[key] = (last[0], last[1] + 1)
            return None
        if len(self._said) >= self._max_keys:
            self._forget(now)
        self._said[key] = (now, 0)
        return {"repeated": last[1]} if last is not None and last[1] else {}

    def _forget(self, now: float) -> None:
        """Drop the keys whose interval is over; if none is, the oldest half."""
        stale = [k for k, (at, _) in self._said.items() if now - at >= self.interval]
        oldest = sorted(self._said, key=lambda k: self._said[k][0])[: self._max_keys // 2]
        for key in stale or oldest:
            del self._said[key]
