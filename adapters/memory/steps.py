"""TaskStore over the in-memory store: each call is a unit of work of its own."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Sequence
from datetime import datetime

import msgspec

from adapters.memory.store import InMemoryStore, InMemoryUnitOfWork
from application.model import Change, Claimed, Dispatch, NewTask, Stored
from application.pause import DispatchPaused, DispatchState
from domain.status import TaskStatus
from domain.task import Task, Transition


class InMemoryTaskStore:
    """What PostgresTaskStore does, one call at a time (the store's lock makes each atomic)."""

    def __init__(self, store: InMemoryStore, *, hold: float,
                 units: Callable[[], InMemoryUnitOfWork] | None = None) -> None:
        self._s = store
        self._hold = hold
        self._units = units or store.unit_of_work

    async def create(self, new: NewTask) -> Stored:
        async with self._units() as uow:
            stored = await self._add(uow, new)
            await uow.commit()
        return stored

    async def create_many(self, news: Sequence[NewTask]) -> list[Stored | None]:
        async with self._units() as uow:
            stored = [await self._add(uow, new) for new in news]
            if not all(s.inserted for s in stored):
                return [None if s.inserted else s for s in stored]  # left: rolled back
            await uow.commit()
        return list(stored)

    async def _add(self, uow: InMemoryUnitOfWork, new: NewTask) -> Stored:
        stored = await uow.tasks.add(new.task, new.request, new.digest())
        if stored.inserted:
            await uow.tasks.record([Transition.between(None, new.task)])
            task = new.task
            due = task.due(task.created_at)
            later = 0.0 if due or task.run_at is None else (
                task.run_at - task.created_at).total_seconds()
            entry = await uow.outbox.hold(Dispatch(task.id, 1, new.trace),
                                          self._hold if due else later)
            stored = msgspec.structs.replace(stored, entry=entry if due else None)
        return stored

    async def claim(self, task_id: uuid.UUID, *, worker: str, now: datetime,
                    lease_until: datetime) -> Claimed | TaskStatus | None:
        async with self._units() as uow:
            task = await uow.tasks.get(task_id)
            if task is None or task.status is not TaskStatus.NEW or not task.due(now):
                return task.status if task is not None else None
            if self._s.dispatch.paused:
                raise DispatchPaused()
            claimed = task.claim(now=now, worker=worker, lease_until=lease_until)
            await uow.tasks.compare_and_set_many([(task, claimed)])
            await uow.tasks.record([Transition.between(task, claimed, worker=worker)])
            await uow.commit()
        return Claimed(claimed, waited_since=task.updated_at)

    async def apply(self, change: Change) -> bool:
        async with self._units() as uow:
            if not await uow.tasks.compare_and_set_many([(change.old, change.new)]):
                return False
            await uow.tasks.record([change.step])
            if change.dispatch is not None:
                await uow.outbox.put([change.dispatch])
            await uow.commit()
        return True

    async def get(self, task_id: uuid.UUID) -> Task | None:
        return self._s.tasks.get(task_id)

    async def pending_since(self, task_id: uuid.UUID) -> datetime | None:
        """The in-memory outbox keeps no times: the task's creation stands in."""
        pending = [d for d in self._s.outbox] + [d for d, _ in self._s.held.values()]
        task = self._s.tasks.get(task_id)
        return task.updated_at if task and any(d.task_id == task_id for d in pending) else None

    async def take(self, limit: int, hold: float) -> dict[int, Dispatch]:
        async with self._units() as uow:
            taken = await uow.outbox.take(limit, hold)
            await uow.commit()
        return taken

    async def remove(self, entries: Collection[int]) -> None:
        async with self._units() as uow:
            await uow.outbox.remove(entries)
            await uow.commit()

    async def release(self, entries: Collection[int]) -> None:
        async with self._units() as uow:
            await uow.outbox.release(entries)
            await uow.commit()


class InMemoryPauseSwitch:
    """The PauseSwitch of the in-memory store."""

    def __init__(self, store: InMemoryStore) -> None:
        self._s = store

    async def state(self) -> DispatchState:
        return self._s.dispatch

    async def switch(self, state: DispatchState) -> DispatchState:
        self._s.dispatch = state
        if state.paused:
            self._s.running.clear()
        else:
            self._s.running.set()
        return state

    async def resumed(self) -> None:
        await self._s.running.wait()
