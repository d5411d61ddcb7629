"""In-memory store, unit of work and outbox, with real rollback (the repository: tasks.py)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from types import TracebackType
from typing import Self

from adapters.memory.tasks import InMemoryTasks
from application.model import Dispatch
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
        self.outbox: list[Dispatch] = []
        #: the sweep's redispatches of a task since its last change of status: (count, last)
        self.redispatched: dict[uuid.UUID, tuple[int, datetime]] = {}
        self.lock = asyncio.Lock()
        self.commits = 0
        #: told after each commit that recorded history, and of each cancel asked for a claim
        self.on_history: list[Callable[[], None]] = []
        self.on_cancel: list[Callable[[tuple[uuid.UUID, int]], None]] = []

    def unit_of_work(self) -> InMemoryUnitOfWork:
        return InMemoryUnitOfWork(self)

    async def check(self) -> None:
        return None


class InMemoryOutbox:
    def __init__(self, store: InMemoryStore, undo: list[Callable[[], object]]) -> None:
        self._s = store
        self._undo = undo

    async def put(self, dispatches: Sequence[Dispatch]) -> None:
        size = len(self._s.outbox)
        self._s.outbox.extend(dispatches)
        self._undo.append(lambda: self._s.outbox.__delitem__(slice(size, None)))

    async def take(self, limit: int) -> list[Dispatch]:
        taken = self._s.outbox[:limit]
        del self._s.outbox[:limit]
        self._undo.append(lambda: self._s.outbox.__setitem__(slice(0, 0), taken))
        return taken


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
