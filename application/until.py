"""Racing a piece of work against a stop signal."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
S = TypeVar("S")


async def until_set(work: Coroutine[Any, Any, T], stop: asyncio.Event, stopped: S) -> T | S:
    """`work`'s result, or `stopped` once `stop` is set first (the work is then cancelled and
    awaited). Cancelling the caller cancels the work too."""
    doing = asyncio.ensure_future(work)
    if stop.is_set():
        doing.cancel()
    waiting = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([doing, waiting], return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        doing.cancel()
        raise
    finally:
        waiting.cancel()
    if doing.done() and not doing.cancelled():
        return doing.result()
    doing.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await doing
    return stopped
