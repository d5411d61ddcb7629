"""RelayDispatches: committed dispatches to the broker, at once, with the outbox as the net."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Collection

import structlog

from application.messaging import DispatchPublisher
from application.model import Dispatch
from application.ports import TaskStore
from domain.errors import ServiceUnavailable

log = structlog.get_logger(__name__)


class RelayDispatches:
    """The process that commits a dispatch publishes it (`send`), as soon as it committed; its
    outbox entry, held for this process meanwhile, is removed once the broker has confirmed.
    The outbox is only the net: for entries put there without a sender (retries, recoveries,
    redispatches: `notify`), for publishes that failed, and for those of a process that died
    before the confirm, which any relay takes once their hold is over (every `every` seconds
    at most, see `run`). A crash between the confirm and the removal sends a dispatch twice:
    workers skip the duplicate.

    No transaction stays open while the broker confirms: an open writing transaction would
    hold back every event stream (see the EventLog port).
    """

    def __init__(self, store: TaskStore, publisher: DispatchPublisher, *,
                 hold: float, every: float = 0.5, batch: int = 500, chunk: int = 100) -> None:
        self._store = store
        self._chunk = chunk
        self._publisher = publisher
        self._hold = hold
        self._every = every
        self._batch = batch
        self._ready: dict[int, Dispatch] = {}
        self._outbox_due = True
        self._looked = 0.0  # when the outbox was last looked at (the loop's clock)
        self._wake = asyncio.Event()
        self._removing: set[asyncio.Task[None]] = set()

    def send(self, entry: int, dispatch: Dispatch) -> None:
        self._ready[entry] = dispatch
        self._wake.set()

    def notify(self) -> None:
        self._outbox_due = True
        self._wake.set()

    async def wait(self) -> None:
        """Until something is to be sent, or the outbox is due (every `every` seconds: what
        an outage handed back, a dead process's entries, scheduled tasks that came due)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self._every)
        self._wake.clear()

    async def __call__(self) -> int:
        """Publish what was sent, then, when due, what waits in the outbox; how many."""
        sent = 0
        if self._ready:  # oldest first, a chunk at a time: the loop serves others in between
            ready = {entry: self._ready.pop(entry)
                     for entry in list(itertools.islice(self._ready, self._chunk))}
            sent += await self._publish(ready)
        now = asyncio.get_running_loop().time()
        if self._outbox_due or now - self._looked >= self._every:
            self._outbox_due, self._looked = False, now
            while taken := await self._store.take(self._batch, self._hold):
                sent += await self._publish(taken)
        return sent

    async def _publish(self, held: dict[int, Dispatch]) -> int:
        try:
            await self._publisher.publish(list(held.values()))
        except Exception:
            await self._release(held.keys())
            raise
        for dispatch in held.values():
            # `trace` (opaque, None when tracing is off) lets the log name the task's trace
            log.info("task_dispatched", task_id=str(dispatch.task_id), attempt=dispatch.attempt,
                     trace=dispatch.trace)
        removal = asyncio.create_task(self._remove(held.keys()))  # not waited for: see below
        self._removing.add(removal)
        removal.add_done_callback(self._removing.discard)
        return len(held)

    async def _remove(self, entries: Collection[int]) -> None:
        """Confirmed: the entries leave the outbox (the store removes many together, so the
        next publish does not wait for it). Failing that, their hold runs out and they are
        sent again."""
        try:
            await self._store.remove(entries)
        except ServiceUnavailable as exc:
            log.warning("relay_remove_failed", entries=len(entries), error=str(exc))

    async def _release(self, entries: Collection[int]) -> None:
        """Not confirmed: handed back for the next try. If the database cannot be told
        either, the hold runs out on its own."""
        try:
            await self._store.release(entries)
        except ServiceUnavailable as exc:
            log.warning("relay_release_failed", entries=len(entries), error=str(exc))

    async def close(self) -> None:
        """Let the removals under way end (a second's grace)."""
        if self._removing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*self._removing), 1.0)
