"""Micro-batching: concurrent calls share one transaction instead of queueing for the pool."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

import structlog

from domain.errors import ServiceUnavailable

log = structlog.get_logger(__name__)
In = TypeVar("In")
Out = TypeVar("Out")

Runner = Callable[[list[In]], Awaitable[Sequence[Out | BaseException]]]


class MicroBatcher(Generic[In, Out]):
    """Items submitted while a batch is in flight form the next batch.

    At low load every item is its own batch, so nothing waits for a timer; under load the
    batches grow by themselves. `run` returns one result or exception per item, in order.
    """

    def __init__(self, run: Runner[In, Out], max_batch: int = 256, max_inflight: int = 2) -> None:
        self._run = run
        self._max_batch = max_batch
        self._max_inflight = max_inflight
        self._pending: list[tuple[In, asyncio.Future[Out]]] = []
        self._flushers: set[asyncio.Task[None]] = set()

    async def submit(self, item: In) -> Out:
        future: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if len(self._flushers) < self._max_inflight:
            flusher = asyncio.create_task(self._flush())
            self._flushers.add(flusher)
        return await future

    async def _flush(self) -> None:
        try:
            await self._drain()
        finally:
            # leave the set in the same step that saw nothing pending: an item submitted
            # after this point starts a new flusher instead of waiting for a finished one
            current = asyncio.current_task()
            if current is not None:
                self._flushers.discard(current)

    async def _drain(self) -> None:
        while self._pending:
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            try:
                results = await self._run([item for item, _ in batch])
            except Exception as exc:  # noqa: BLE001 - the whole batch failed: every caller gets it
                results = [exc] * len(batch)
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():  # the caller went away (request cancelled)
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)


async def alone_on_error(
    run: Callable[[list[In]], Awaitable[list[Out]]], items: list[In]
) -> list[Out | BaseException]:
    """Runs the batch. An outage fails it whole (every member retries); any other error reruns
    each item in its own transaction, so that a row the database refuses fails only its call."""
    try:
        return list(await run(items))
    except ServiceUnavailable:
        raise
    except Exception:  # unknown which item is to blame: find out one by one
        if len(items) == 1:
            raise
        log.warning("batch_split", size=len(items), exc_info=True)
    results: list[Out | BaseException] = []
    for item in items:
        try:
            results.extend(await run([item]))
        except ServiceUnavailable as exc:  # the database went away: the rest retry as well
            results.extend([exc] * (len(items) - len(results)))
            break
        except Exception as exc:  # noqa: BLE001 - handed to that item's caller
            results.append(exc)
    return results
