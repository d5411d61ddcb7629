"""Listing tasks from PostgreSQL: newest first, filtered by status, in keyset pages."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from adapters.postgres.store import PostgresTaskStore
from application.model import Cursor, ListQuery
from domain.status import TaskStatus
from domain.task import Task

from .builders import NOW, claimed, new_task, store, store_as, tasks_one_second_apart
from .conftest import UowFactory


async def page(uow: UowFactory, query: ListQuery) -> list[Task]:
    async with uow() as u:
        return await u.tasks.page(query)


async def walk(
    uow: UowFactory,
    limit: int,
    statuses: frozenset[TaskStatus] = frozenset(),
    between_pages: Callable[[], Awaitable[None]] | None = None,
) -> list[Task]:
    """Follow the cursor the way ListTasks does until a page says there is no more."""
    seen: list[Task] = []
    after: Cursor | None = None
    while True:
        rows = await page(uow, ListQuery(statuses=statuses, limit=limit, after=after))
        assert len(rows) <= limit + 1
        seen.extend(rows[:limit])
        if len(rows) <= limit:
            return seen
        after = Cursor.decode(Cursor.after(rows[limit - 1]).encode())
        if between_pages is not None:
            await between_pages()


def ids(tasks: list[Task]) -> list[object]:
    return [t.id for t in tasks]


async def test_tasks_are_listed_newest_first(uow: UowFactory, steps: PostgresTaskStore) -> None:
    tasks = tasks_one_second_apart(5)
    await store(steps, *reversed(tasks[2:]), *tasks[:2])  # insertion order must not matter

    assert ids(await page(uow, ListQuery())) == ids(tasks[::-1])


async def test_a_page_holds_one_row_more_than_the_limit_to_tell_that_more_follow(
    uow: UowFactory, steps: PostgresTaskStore,
) -> None:
    tasks = tasks_one_second_apart(5)
    await store(steps, *tasks)

    assert ids(await page(uow, ListQuery(limit=2))) == ids(tasks[:-4:-1])
    assert len(await page(uow, ListQuery(limit=5))) == 5


async def test_a_status_filter_keeps_only_that_status(
    uow: UowFactory, steps: PostgresTaskStore,
) -> None:
    fresh, working = tasks_one_second_apart(2)
    await store(steps, fresh)
    await store_as(steps, claimed(working))

    listed = await page(uow, ListQuery(statuses=frozenset({TaskStatus.IN_PROGRESS})))

    assert ids(listed) == [working.id]


async def test_several_statuses_mean_any_of_them(uow: UowFactory, steps: PostgresTaskStore) -> None:
    fresh, working, done, failed = tasks_one_second_apart(4)
    later = NOW + timedelta(minutes=1)
    await store(steps, fresh)
    await store_as(steps, claimed(working), claimed(done).complete(now=later),
                   claimed(failed).fail(now=later, reason="nope"))

    listed = await page(uow, ListQuery(statuses=frozenset({TaskStatus.NEW, TaskStatus.ERROR})))
    nothing = await page(uow, ListQuery(statuses=frozenset({TaskStatus.COMPLETED,
                                                             TaskStatus.IN_PROGRESS})))

    assert ids(listed) == [failed.id, fresh.id]
    assert ids(nothing) == [done.id, working.id]


async def test_walking_the_pages_returns_every_row_exactly_once(
    uow: UowFactory, steps: PostgresTaskStore,
) -> None:
    tasks = tasks_one_second_apart(11)
    await store(steps, *tasks)

    assert ids(await walk(uow, limit=3)) == ids(tasks[::-1])


async def test_tasks_created_in_the_same_microsecond_are_paged_by_id(
    uow: UowFactory, steps: PostgresTaskStore,
) -> None:
    twins = [new_task(f"twin {i}", at=NOW) for i in range(7)]
    await store(steps, *twins)

    walked = await walk(uow, limit=2)

    assert ids(walked) == sorted(ids(twins), reverse=True)  # type: ignore[type-var]


async def test_a_filtered_walk_returns_every_matching_row_exactly_once(
    uow: UowFactory, steps: PostgresTaskStore,
) -> None:
    tasks = tasks_one_second_apart(9)
    working = [claimed(t) for t in tasks[::2]]
    await store(steps, *tasks[1::2])
    await store_as(steps, *working)

    walked = await walk(uow, limit=2, statuses=frozenset({TaskStatus.IN_PROGRESS}))

    assert ids(walked) == ids(working[::-1])


async def test_rows_inserted_between_pages_do_not_disturb_the_walk(
    uow: UowFactory, steps: PostgresTaskStore,
) -> None:
    tasks = tasks_one_second_apart(10)
    await store(steps, *tasks)
    arrivals = iter(tasks_one_second_apart(20, start=NOW + timedelta(hours=1)))

    async def two_more_arrive() -> None:
        await store(steps, next(arrivals), next(arrivals))

    walked = await walk(uow, limit=3, between_pages=two_more_arrive)

    assert ids(walked) == ids(tasks[::-1])
    assert len(await page(uow, ListQuery(limit=500))) == 10 + 2 * 3
