"""In-memory store, unit of work and outbox, with real rollback (the repository: tasks.py)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from types import TracebackType
from typing import Self

from adapters.memory.tasks import InMemoryTasks
from application.model import Dispatch
from application.pause import DispatchState
from domain.task import Task, Transition


class InMemoryStore:
    """What a database would hold. One unit of work at a time, like a serializable database."""

    name = "database"  # as a health probe: always reachable

    def __init__(self) -> None:
        self.tasks: dict[uuid.UUID, Task] = {}
        self.keys: dict[tuple[str, str], tuple[uuid.UUID, str]] = {}
        self.history: list[Transition] = []
        #: the history as the event log reads it: (position, change), in commit order
        self.feed: list[tuple[int, Transition]] = []
        #: the outbox: entries waiting to be taken, and entries held by a relay (until when)
        self.outbox: list[Dispatch] = []
        self.held: dict[int, tuple[Dispatch, float]] = {}
        self.entries = 0  # the last entry number given out
        #: the sweep's redispatches of a task since its last change of status: (count, last)
        self.redispatched: dict[uuid.UUID, tuple[int, datetime]] = {}
        self.lock = asyncio.Lock()
        self.commits = 0
        #: dispatch paused or not, and an event set while it is not
        self.dispatch = DispatchState(paused=False)
        self.running = asyncio.Event()
        self.running.set()
        #: told after each commit that recorded history, and of each cancel asked for a claim
        self.on_history: list[Callable[[], None]] = []
        self.on_cancel: list[Callable[[tuple[uuid.UUID, int]], None]] = []

    def unit_of_work(self) -> InMemoryUnitOfWork:
        return InMemoryUnitOfWork(self)

    async def check(self) -> str | None:
        return None


class InMemoryOutbox:
    def __init__(self, store: InMemoryStore, undo: list[Callable[[], object]]) -> None:
        self._s = store
        self._undo = undo

    async def put(self, dispatches: Sequence[Dispatch]) -> None:
        size = len(self._s.outbox)
        self._s.outbox.extend(dispatches)
        self._undo.append(lambda: self._s.outbox.__delitem__(slice(size, None)))

    async def hold(self, dispatch: Dispatch, seconds: float) -> int:
        """Put `dispatch` in the outbox held for `seconds` already (see take); its entry."""
        self._s.entries += 1
        entry = self._s.entries
        self._s.held[entry] = (dispatch, time.monotonic() + seconds)
        self._undo.append(lambda: self._s.held.pop(entry))
        return entry

    async def take(self, limit: int, hold: float) -> dict[int, Dispatch]:
        now = time.monotonic()
        await self.release([entry for entry, (_, until) in self._s.held.items() if until <= now])
        taken = self._s.outbox[:limit]
        del self._s.outbox[:limit]
        entries = range(self._s.entries + 1, self._s.entries + 1 + len(taken))
        self._s.entries += len(taken)
        self._s.held.update((e, (d, now + hold)) for e, d in zip(entries, taken, strict=True))

        def undo() -> None:
            for entry in entries:
                del self._s.held[entry]
            self._s.outbox[0:0] = taken

        self._undo.append(undo)
        return dict(zip(entries, taken, strict=True))

    async def remove(self, entries: Collection[int]) -> None:
        gone = {e: self._s.held.pop(e) for e in entries if e in self._s.held}
        self._undo.append(lambda: self._s.held.update(gone))

    async def release(self, entries: Collection[int]) -> None:
        back = {e: self._s.held.pop(e) for e in sorted(entries) if e in self._s.held}
        self._s.outbox[0:0] = [d for d, _ in back.values()]

        def undo() -> None:
            del self._s.outbox[:len(back)]
            self._s.held.update(back)

        self._undo.append(undo)


class InMemoryUnitOfWork:
    """Holds the store's lock for its lifetime; undoes its writes unless committed."""

    def __init__(self, store: InMemoryStore) -> None:
        self._store = store
        self._undo: list[Callable[[], object]] = []
        self._after_commit: list[Callable[[], None]] = []
        self.tasks = InMemoryTasks(store, self._undo, self._after_commit)
        self.outbox = InMemoryOutbox(store, self._undo)
        self.committed = False

    async def __aenter__(self) -> Self:
        await self._store.lock.acquire()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if not self.committed:
                for undo in reversed(self._undo):
                    undo()
        finally:
            self._undo.clear()
            self._after_commit.clear()
            self._store.lock.release()

    async def commit(self) -> None:
        self.committed = True
        self._undo.clear()
        self._store.commits += 1
        told, self._after_commit[:] = list(self._after_commit), []
        for tell in dict.fromkeys(told):  # once each, like one NOTIFY per transaction
            tell()
