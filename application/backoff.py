"""The one backoff of the service: how long to wait before trying a backing service again."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog

from application.throttle import Throttle
from domain.errors import ServiceUnavailable

log = structlog.get_logger(__name__)
T = TypeVar("T")
#: every caller waiting out the same outage (each intake message, each worker story) would say
#: so on each attempt: the reason is said once per interval instead
_waiting = Throttle(30.0)


def say_waiting(step: str, error: str, retry_in: float) -> None:
    """Log that `step` waits for a backing service, at most once per interval per reason."""
    if (extra := _waiting.check(error)) is not None:
        log.warning("waiting_for_service", step=step, error=error, retry_in=round(retry_in, 2),
                    **extra)


class Backoff:
    """Capped exponential delays with jitter: about `first`, then doubling up to `cap`.

    Every loop that waits for PostgreSQL or RabbitMQ uses one of these, so that they all back off
    alike; `reset()` after a success starts the next outage from `first` again.
    """

    def __init__(self, first: float = 0.2, cap: float = 10.0) -> None:
        self.first = first
        self.cap = cap
        self.attempt = 0

    def next_delay(self) -> float:
        """The delay before the next attempt (and count this one)."""
        base = min(self.cap, self.first * 2.0 ** min(self.attempt, 60))
        self.attempt += 1
        return base * random.uniform(0.8, 1.0)

    def reset(self) -> None:
        self.attempt = 0

    async def wait(self, stop: asyncio.Event | None = None) -> bool:
        """Sleep the next delay; True if `stop` was set meanwhile (then stop trying)."""
        delay = self.next_delay()
        if stop is None:
            await asyncio.sleep(delay)
            return False
        try:
            await asyncio.wait_for(stop.wait(), delay)
        except TimeoutError:
            return False
        return True


async def retrying(step: Callable[[], Awaitable[T]], what: str, backoff: Backoff | None = None
                   ) -> T:
    """Run `step` until it stops raising ServiceUnavailable, backing off between attempts.

    Cancellation (shutdown) ends the wait; any other error propagates at once.
    """
    backoff = backoff or Backoff()
    while True:
        try:
            return await step()
        except ServiceUnavailable as exc:
            delay = backoff.next_delay()
            say_waiting(what, str(exc), delay)
            await asyncio.sleep(delay)
