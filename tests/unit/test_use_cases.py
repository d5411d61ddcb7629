"""CreateTask, GetTask, GetHistory and ListTasks against the in-memory adapters."""

from __future__ import annotations

import uuid

import pytest

from adapters.memory.steps import InMemoryTaskStore
from application.create import CreateTask
from application.model import Cursor, Dispatch, ListQuery, NewTaskRequest
from domain.errors import IdempotencyConflict, InvalidInput, ServiceUnavailable, TaskNotFound
from domain.status import TaskSource, TaskStatus
from tests.unit.fakes import T0, ExplodingUnitOfWork, FixedProcessor
from tests.unit.world import World


async def test_creating_a_task_stores_it_with_history_and_a_held_dispatch_it_sends_at_once(
    world: World,
) -> None:
    request = NewTaskRequest(title="resize", description="d", payload={"w": 640},
                             source=TaskSource.AMQP)
    created = await world.create()(request)
    task = created.task
    assert created.replayed is False
    assert world.task(task.id) == task
    assert (task.title, task.description, task.payload, task.source) == (
        "resize", "d", {"w": 640}, TaskSource.AMQP)
    assert (task.status, task.attempts, task.created_at) == (TaskStatus.NEW, 0, T0)
    assert [(h.from_status, h.to_status) for h in world.store.history] == [(None, TaskStatus.NEW)]
    assert world.store.outbox == []  # held for this process: no other relay takes it
    assert [d for d, _ in world.store.held.values()] == [Dispatch(task.id, 1)]
    assert world.signal.sent == {entry: Dispatch(task.id, 1) for entry in world.store.held}


async def test_replaying_an_idempotency_key_returns_the_same_task_without_a_second_dispatch(
    world: World,
) -> None:
    create = world.create()
    first = await create(NewTaskRequest(title="t", payload={"a": 1, "b": 2}, idempotency_key="k"))
    world.clock.advance(5)
    again = await create(NewTaskRequest(title="t", payload={"b": 2, "a": 1}, idempotency_key="k"))
    assert again.replayed is True
    assert again.task == first.task
    assert len(world.store.tasks) == 1
    assert [d for d, _ in world.store.held.values()] == [Dispatch(first.task.id, 1)]
    assert list(world.signal.sent.values()) == [Dispatch(first.task.id, 1)]
    assert len(world.store.history) == 1


@pytest.mark.parametrize(
    "changed",
    [{"title": "other"}, {"description": "now described"}, {"payload": {"a": 2}}],
)
async def test_the_same_idempotency_key_with_another_body_is_a_conflict(
    world: World, changed: dict[str, object]
) -> None:
    create = world.create()
    base: dict[str, object] = {"title": "t", "payload": {"a": 1}, "idempotency_key": "k"}
    await create(NewTaskRequest(**base))  # type: ignore[arg-type]
    before = world.snapshot()
    with pytest.raises(IdempotencyConflict, match="'k'"):
        await create(NewTaskRequest(**(base | changed)))  # type: ignore[arg-type]
    assert world.snapshot() == before


@pytest.mark.parametrize("fail_at", ["record", "hold", "commit"])
async def test_a_failing_write_rolls_back_the_task_its_key_history_and_dispatch(
    world: World, fail_at: str
) -> None:
    await world.new_task("already there")
    before, notified, sent = world.snapshot(), world.signal.count, dict(world.signal.sent)
    steps = InMemoryTaskStore(world.store, hold=12.0,
                              units=lambda: ExplodingUnitOfWork(world.store, fail_at))
    broken = CreateTask(steps, world.clock, world.ids, world.signal)
    with pytest.raises(ServiceUnavailable, match=fail_at):
        await broken(NewTaskRequest(title="lost", idempotency_key="k"))
    assert world.snapshot() == before
    assert (world.signal.count, world.signal.sent) == (notified, sent)
    assert not world.store.lock.locked()
    retried = await world.create()(NewTaskRequest(title="lost", idempotency_key="k"))
    assert retried.replayed is False


async def test_get_task_returns_the_stored_task(world: World) -> None:
    task = await world.new_task()
    assert await world.get()(task.id) == task


async def test_get_task_and_get_history_of_an_unknown_id_raise_task_not_found(
    world: World,
) -> None:
    await world.new_task()
    unknown = uuid.UUID(int=999)
    with pytest.raises(TaskNotFound, match=str(unknown)):
        await world.get()(unknown)
    with pytest.raises(TaskNotFound, match=str(unknown)):
        await world.history()(unknown)


async def test_history_lists_every_status_change_oldest_first(world: World) -> None:
    task = await world.new_task()
    world.clock.advance(1)
    await world.process(FixedProcessor("bad input"))(task.id)
    history = await world.history()(task.id)
    assert [(h.from_status, h.to_status) for h in history] == [
        (None, TaskStatus.NEW),
        (TaskStatus.NEW, TaskStatus.IN_PROGRESS),
        (TaskStatus.IN_PROGRESS, TaskStatus.ERROR),
    ]
    assert history[-1].reason == "bad input"
    assert [h.attempt for h in history] == [0, 1, 1]


async def make_tasks(world: World, count: int) -> list[uuid.UUID]:
    """Two tasks per clock tick, so that ties on created_at are broken by id."""
    made = []
    for n in range(count):
        if n % 2 == 0:
            world.clock.advance(1)
        made.append((await world.new_task(f"task {n}")).id)
    return made


async def test_listing_pages_newest_first_and_follows_the_cursor_to_the_end(
    world: World,
) -> None:
    made = await make_tasks(world, 7)
    first = await world.list()(ListQuery(limit=3))
    assert [t.id for t in first.items] == made[::-1][:3]
    assert first.next_cursor is not None
    second = await world.list()(ListQuery(limit=3, after=Cursor.decode(first.next_cursor)))
    assert [t.id for t in second.items] == made[::-1][3:6]
    assert second.next_cursor is not None
    last = await world.list()(ListQuery(limit=3, after=Cursor.decode(second.next_cursor)))
    assert [t.id for t in last.items] == made[:1]
    assert last.next_cursor is None


async def test_a_walk_sees_every_task_exactly_once_while_new_tasks_arrive(world: World) -> None:
    made = await make_tasks(world, 11)
    seen: list[uuid.UUID] = []
    cursor: str | None = None
    for _ in range(20):
        page = await world.list()(
            ListQuery(limit=2, after=Cursor.decode(cursor) if cursor else None))
        seen += [t.id for t in page.items]
        await make_tasks(world, 3)  # arrive between pages, newer than everything seen
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == made[::-1]


async def test_an_exact_page_has_no_next_cursor(world: World) -> None:
    await make_tasks(world, 4)
    page = await world.list()(ListQuery(limit=4))
    assert len(page.items) == 4
    assert page.next_cursor is None


async def test_listing_filters_by_any_of_several_statuses(world: World) -> None:
    done, failed, waiting = [await world.new_task(n) for n in ("done", "failed", "waiting")]
    await world.process(FixedProcessor(None))(done.id)
    await world.process(FixedProcessor("no"))(failed.id)
    finished = await world.list()(
        ListQuery(statuses=frozenset({TaskStatus.COMPLETED, TaskStatus.ERROR})))
    assert {t.id for t in finished.items} == {done.id, failed.id}
    fresh = await world.list()(ListQuery(statuses=frozenset({TaskStatus.NEW})))
    assert [t.id for t in fresh.items] == [waiting.id]
    everything = await world.list()(ListQuery())
    assert len(everything.items) == 3


def test_a_cursor_survives_its_round_trip() -> None:
    cursor = Cursor(created_at=T0, id=uuid.UUID(int=5))
    assert Cursor.decode(cursor.encode()) == cursor
    assert Cursor.decode(cursor.encode()).created_at.utcoffset() is not None


VALID = Cursor(created_at=T0, id=uuid.UUID(int=0xABC5)).encode()


@pytest.mark.parametrize(
    "text",
    ["", "garbage", "!!!!", "é", "0" * 200, VALID[:-3], VALID + "0", VALID.upper(),
     VALID.replace("-", "."), "-" + VALID, "12345678901234567-" + "0" * 32],
)
def test_a_cursor_not_of_the_service_s_form_is_invalid_input(text: str) -> None:
    assert Cursor.decode(VALID).id == uuid.UUID(int=0xABC5)  # the base of the tampering is fine
    with pytest.raises(InvalidInput, match="cursor"):
        Cursor.decode(text)

