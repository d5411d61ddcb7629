"""Group commit: calls that arrive together share one statement, with no engine above the port."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from domain.errors import ServiceUnavailable

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    """Runs `flush(items)` (one statement for many items, one result per item, in order) for
    the items submitted meanwhile. A call that finds no flush under way starts one on the next
    turn of the event loop, so a call alone waits for nothing but its own statement; calls
    that arrive while a flush runs (or within `linger` seconds of the first) go together in
    the next. At most one flush runs at a time.

    When a shared flush fails for any other reason than an outage, each of its items is flushed
    again alone: a row that the database refuses fails only its own call. A caller that is
    cancelled does not take its item back: it may still be written (and the caller's result
    is dropped), which every caller of a compare-and-set already allows for.
    """

    def __init__(self, flush: Callable[[Sequence[T]], Awaitable[Sequence[R]]], *,
                 linger: float = 0.0, max_size: int = 500) -> None:
        self._flush = flush
        self._linger = linger
        self._max = max_size
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._runner: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._runner is None:
            self._runner = asyncio.create_task(self._run(), name="batch")
        return await future

    async def _run(self) -> None:
        try:
            while self._waiting:
                if self._linger:
                    await asyncio.sleep(self._linger)
                batch, self._waiting = self._waiting[:self._max], self._waiting[self._max:]
                await self._settle(batch)
        except asyncio.CancelledError:  # the loop is closing: nobody waits in vain
            for _, future in self._waiting:
                future.cancel()
            self._waiting.clear()
            raise
        finally:
            self._runner = None

    async def _settle(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self._flush([item for item, _ in batch])
        except Exception as exc:  # noqa: BLE001 - each failure is handed to its callers
            if len(batch) == 1 or isinstance(exc, ServiceUnavailable):
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                return
            for one in batch:  # somebody's row broke the shared statement: each alone
                await self._settle([one])
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
