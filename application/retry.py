"""Waiting out outages of a backing service instead of failing the work in hand."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog

from domain.errors import ServiceUnavailable

log = structlog.get_logger(__name__)
T = TypeVar("T")


async def retrying(step: Callable[[], Awaitable[T]], what: str, first: float = 0.2,
                   cap: float = 5.0) -> T:
    """Run `step` until it stops raising ServiceUnavailable, backing off up to `cap` seconds.

    Cancellation (shutdown) ends the wait; any other error propagates at once.
    """
    delay = first
    while True:
        try:
            return await step()
        except ServiceUnavailable as exc:
            log.warning("waiting_for_service", step=what, error=str(exc), retry_in=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, cap)
