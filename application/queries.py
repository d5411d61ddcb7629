"""Read-side use cases: one task, its history, a page of tasks."""

from __future__ import annotations

import uuid

from application.model import Cursor, ListQuery, Page
from application.ports import UnitOfWorkFactory
from domain.errors import TaskNotFound
from domain.task import Task, Transition


class GetTask:
    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def __call__(self, task_id: uuid.UUID) -> Task:
        async with self._uow() as uow:
            task = await uow.tasks.get(task_id)
        if task is None:
            raise TaskNotFound(task_id)
        return task


class GetHistory:
    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def __call__(self, task_id: uuid.UUID) -> list[Transition]:
        async with self._uow() as uow:
            history = await uow.tasks.history(task_id)
            if not history and await uow.tasks.get(task_id) is None:
                raise TaskNotFound(task_id)
        return history


class ListTasks:
    """Keyset pages, newest first: a walk never repeats a task, even while tasks arrive."""

    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def __call__(self, query: ListQuery) -> Page:
        async with self._uow() as uow:
            rows = await uow.tasks.page(query)
        items = rows[: query.limit]
        more = len(rows) > query.limit
        return Page(items, Cursor.after(items[-1]).encode() if more else None)
