"""A group of stories sharing one transaction: each step's calls are merged into one statement."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, Self

from application.merging import Call, merger_for
from application.model import Dispatch, NewTaskRequest, Stored
from application.ports import UnitOfWork, UnitOfWorkFactory
from domain.task import Task, Transition


class GroupFailed(Exception):
    """The shared transaction failed (rolled back) because of `cause`."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"shared transaction failed: {cause!r}")
        self.cause = cause


#: Calls that only read: a member that made nothing else may leave without committing.
READS = frozenset({"tasks.get", "tasks.get_many", "tasks.page", "tasks.history", "tasks.expired"})


class Group:
    """Members call the repositories as if alone; the group runs the calls waiting at each turn
    of the event loop together, merged by kind, in one transaction that it commits once every
    member still in the group has asked to commit. A member that wrote and left without
    committing, or any failing statement, fails the whole group (GroupFailed)."""

    def __init__(self, uow: UnitOfWorkFactory, slots: asyncio.Semaphore) -> None:
        self._uow_factory = uow
        self._slots = slots
        self._size = 0
        self._active = 0
        self._pending: list[Call] = []
        self._running: list[Call] = []
        self._commits: list[Call] = []
        self._wake = asyncio.Event()
        self._driver: asyncio.Task[None] | None = None
        self._failed: GroupFailed | None = None
        self._spoiled = False  # a member left with writes it did not commit
        self._committed = False
        self.started = False

    def __len__(self) -> int:
        return self._size

    def join(self) -> Member:
        self._size += 1
        self._active += 1
        return Member(self)

    async def call(self, member: Member, kind: str, *args: Any) -> Any:
        if self._failed is not None:
            raise self._failed
        if self._committed:
            raise RuntimeError("the shared transaction is already committed")
        call = Call(member, kind, args)
        (self._commits if kind == "commit" else self._pending).append(call)
        self._kick()
        return await call.future

    def leave(self, member: Member) -> None:
        self._active -= 1
        if member.wrote and not member.committed:
            self._spoiled = True
        self._kick()

    def _kick(self) -> None:
        if self._driver is None:
            self._driver = asyncio.create_task(self._drive())
        # set on the next turn: every member woken with this one gets to add its call first
        asyncio.get_running_loop().call_soon(self._wake.set)

    async def _drive(self) -> None:
        async with self._slots:
            self.started = True
            if self._active == 0 and not self._pending:
                return  # everybody left before asking for anything
            try:
                async with self._uow_factory() as uow:
                    while self._active > 0 and not self._committed:
                        await self._wake.wait()
                        self._wake.clear()
                        await self._turn(uow)
            except BaseException as exc:
                self._fail(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise

    async def _turn(self, uow: UnitOfWork) -> None:
        self._running, self._pending = self._pending, []
        kinds: dict[str, list[Call]] = {}
        for call in self._running:
            kinds.setdefault(call.kind, []).append(call)
        for kind, same in kinds.items():
            results = await merger_for(kind)(uow, same)
            for call, result in zip(same, results, strict=True):
                call.member.note(kind, call.args, result)
                if not call.future.done():
                    call.future.set_result(result)
        self._running = []
        if self._commits and len(self._commits) == self._active and not self._pending:
            if self._spoiled:
                raise RuntimeError("a member of the group left without committing its writes")
            await uow.commit()
            self._committed = True
            for call in self._commits:
                call.future.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        self._failed = GroupFailed(exc)
        for call in [*self._running, *self._pending, *self._commits]:
            if not call.future.done():
                call.future.set_exception(self._failed)
        self._running, self._pending, self._commits = [], [], []


class Member:
    """What one story sees as its unit of work."""

    def __init__(self, group: Group) -> None:
        self._group = group
        self.tasks = _Tasks(self)
        self.outbox = _Outbox(self)
        self.wrote = False
        self.committed = False
        self._left = False

    async def call(self, kind: str, *args: Any) -> Any:
        return await self._group.call(self, kind, *args)

    def note(self, kind: str, args: tuple[Any, ...], result: Any) -> None:
        if kind in READS:
            return
        if isinstance(result, Stored):
            self.wrote |= result.inserted
        elif isinstance(result, bool | set | list):
            self.wrote |= bool(result)
        else:
            self.wrote |= bool(args and args[-1])

    async def commit(self) -> None:
        await self.call("commit")
        self.committed = True

    def leave(self) -> None:
        if not self._left:
            self._left = True
            self._group.leave(self)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        self.leave()


class _Part:
    """Calls that have no merge rule run one by one, in the order they came."""

    _name = ""

    def __init__(self, member: Member) -> None:
        self._m = member

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        async def call(*args: Any) -> Any:
            return await self._m.call(f"{self._name}.{name}", *args)

        return call


class _Tasks(_Part):
    _name = "tasks"

    async def add(self, task: Task, request: NewTaskRequest) -> Stored:
        result: Stored = await self._m.call("tasks.add", task, request)
        return result

    async def get(self, task_id: uuid.UUID) -> Task | None:
        result: Task | None = await self._m.call("tasks.get", task_id)
        return result

    async def compare_and_set(self, old: Task, new: Task) -> bool:
        result: bool = await self._m.call("tasks.compare_and_set", old, new)
        return result

    async def record(self, transitions: Sequence[Transition]) -> None:
        await self._m.call("tasks.record", list(transitions))


class _Outbox(_Part):
    _name = "outbox"

    async def put(self, dispatches: Sequence[Dispatch]) -> None:
        await self._m.call("outbox.put", list(dispatches))
