"""How the calls of one kind, made by the members of a group at one turn, become one statement."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from application.model import Stored
from application.ports import UnitOfWork
from domain.task import Task

if TYPE_CHECKING:
    from application.group import Member


class Call:
    """One repository call of one member, waiting for the turn that runs it."""

    __slots__ = ("args", "future", "kind", "member")

    def __init__(self, member: Member, kind: str, args: tuple[Any, ...]) -> None:
        self.member, self.kind, self.args = member, kind, args
        self.future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()


Merger = Callable[[UnitOfWork, list[Call]], Awaitable[Sequence[Any]]]


async def _one_by_one(uow: UnitOfWork, calls: list[Call]) -> list[Any]:
    results = []
    for call in calls:
        part, name = call.kind.split(".")
        results.append(await getattr(getattr(uow, part), name)(*call.args))
    return results


async def _get(uow: UnitOfWork, calls: list[Call]) -> list[Task | None]:
    found = {t.id: t for t in await uow.tasks.get_many(list(dict.fromkeys(c.args[0]
                                                                           for c in calls)))}
    return [found.get(c.args[0]) for c in calls]


async def _add(uow: UnitOfWork, calls: list[Call]) -> list[Stored]:
    return await uow.tasks.add_many([c.args[0] for c in calls], [c.args[1] for c in calls])


async def _compare_and_set(uow: UnitOfWork, calls: list[Call]) -> list[bool]:
    """One statement per round: a task id repeated in the group goes to a later round, as if its
    stories ran one after the other in the same transaction. Once a round has written a task, a
    later change of it can only match if it expects what was written: the others fail without
    a statement."""
    written = [False] * len(calls)
    now: dict[uuid.UUID, tuple[object, ...]] = {}  # what this transaction wrote, by task
    todo = list(range(len(calls)))
    while todo:
        olds = {i: calls[i].args[0] for i in todo}
        todo = [i for i in todo if now.get(olds[i].id, _compared(olds[i])) == _compared(olds[i])]
        first: dict[uuid.UUID, int] = {}
        for i in todo:
            first.setdefault(olds[i].id, i)
        if not first:
            break
        done = await uow.tasks.compare_and_set_many([calls[i].args for i in first.values()])
        for task_id, i in first.items():
            if task_id in done:
                written[i] = True
                now[task_id] = _compared(calls[i].args[1])
        taken = set(first.values())
        todo = [i for i in todo if i not in taken]
    return written


def _compared(task: Task) -> tuple[object, ...]:
    """What a compare-and-set compares (see TaskRepository.compare_and_set)."""
    return task.status, task.attempts, task.lease_owner


async def _record(uow: UnitOfWork, calls: list[Call]) -> list[None]:
    await uow.tasks.record([t for c in calls for t in c.args[0]])
    return [None] * len(calls)


async def _put(uow: UnitOfWork, calls: list[Call]) -> list[None]:
    await uow.outbox.put([d for c in calls for d in c.args[0]])
    return [None] * len(calls)


MERGERS: dict[str, Merger] = {
    "tasks.get": _get,
    "tasks.add": _add,
    "tasks.compare_and_set": _compare_and_set,
    "tasks.record": _record,
    "outbox.put": _put,
}


def merger_for(kind: str) -> Merger:
    """The merge rule of a kind of call; calls without one run one by one, in order."""
    return MERGERS.get(kind, _one_by_one)
