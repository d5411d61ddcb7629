"""Pruning finished tasks, and replaying dead letters, on the in-memory adapters."""

from __future__ import annotations

import uuid
from datetime import timedelta

import msgspec

from adapters.memory.deadletters import InMemoryDeadLetters
from adapters.queues import CREATE, CREATE_DLQ, DISPATCH, DISPATCH_DLQ, REASON_HEADER
from application.deadletters import ListDeadLetters, ReplayDeadLetters, Verdict
from application.model import Dispatch
from application.retention import PruneTasks
from domain.status import TaskStatus
from tests.unit.fakes import FixedProcessor
from tests.unit.world import World

DAY = timedelta(days=1)


async def finished(world: World, title: str) -> uuid.UUID:
    task = await world.new_task(title)
    await world.process(FixedProcessor(None))(task.id)
    return task.id


async def test_prune_deletes_old_finished_tasks_with_their_history_and_keeps_the_rest(
    world: World,
) -> None:
    old = [await finished(world, f"old {n}") for n in range(5)]
    world.clock.advance(3 * 86_400)
    young = await finished(world, "young")
    waiting = (await world.new_task("waiting")).id
    prune = PruneTasks(world.store.unit_of_work, world.clock, batch=2)

    dry = await prune(2 * DAY, dry_run=True)
    assert (dry.matched, dry.deleted, dry.more) == (5, 0, False)
    done = await prune(2 * DAY)

    assert (done.matched, done.deleted, done.more) == (5, 5, False)
    assert set(world.store.tasks) == {young, waiting}
    assert {h.task_id for h in world.store.history} == {young, waiting}
    counts = await world.store.unit_of_work().tasks.counts()
    assert counts.by_status[TaskStatus.COMPLETED] == 1 and counts.by_status[TaskStatus.NEW] == 1
    assert all(task_id not in world.store.tasks for task_id in old)


async def test_prune_stops_after_its_time_budget_and_says_there_is_more(world: World) -> None:
    for n in range(6):
        await finished(world, f"t{n}")
    world.clock.advance(2 * 86_400)

    class SlowClock:  # every look at the clock costs a second
        def now(self):  # type: ignore[no-untyped-def]
            world.clock.advance(1)
            return world.clock.now()

    prune = PruneTasks(world.store.unit_of_work, SlowClock(), batch=2, budget=0.5)
    first = await prune(DAY)
    assert (first.deleted, first.more) == (2, True)
    assert await prune.until_done(DAY) == 4
    assert world.store.tasks == {}


async def test_an_idempotency_key_is_free_again_once_its_task_is_pruned(world: World) -> None:
    from application.model import NewTaskRequest

    first = await world.create()(NewTaskRequest(title="t", idempotency_key="k"))
    await world.process(FixedProcessor(None))(first.task.id)
    world.clock.advance(2 * 86_400)
    await PruneTasks(world.store.unit_of_work, world.clock)(DAY)
    again = await world.create()(NewTaskRequest(title="t", idempotency_key="k"))
    assert not again.replayed and again.task.id != first.task.id


async def test_dead_letters_are_listed_with_their_reason_and_left_in_place(world: World) -> None:
    broker = world.queue
    broker.put(CREATE_DLQ, b'{"nope": 1}', message_id="m1", headers={REASON_HEADER: "bad"})
    broker.put(DISPATCH_DLQ, msgspec.json.encode(Dispatch(uuid.uuid4(), 1)))
    queues = InMemoryDeadLetters(broker)
    counts, letters = await ListDeadLetters(queues)(10)
    assert counts == {CREATE_DLQ: 1, DISPATCH_DLQ: 1}
    assert [(d.queue, d.message_id, d.reason) for d in letters] == [
        (CREATE_DLQ, "m1", "bad"), (DISPATCH_DLQ, None, None)]
    assert await queues.counts() == counts


async def test_replay_sends_intake_back_with_its_id_and_a_dispatch_only_while_its_task_is_new(
    world: World,
) -> None:
    broker = world.queue
    waiting = await world.new_task("still new")
    done_id = await finished(world, "done")
    broker.put(CREATE_DLQ, b'{"title": "again"}', message_id="m1",
               headers={REASON_HEADER: "broker was down", "keep": "me"})
    broker.put(DISPATCH_DLQ, msgspec.json.encode(Dispatch(waiting.id, 1)))
    broker.put(DISPATCH_DLQ, msgspec.json.encode(Dispatch(done_id, 1)))
    broker.put(DISPATCH_DLQ, b"not a dispatch")

    replayed = await ReplayDeadLetters(InMemoryDeadLetters(broker), world.store.unit_of_work)(10)

    assert [(r.letter.queue, r.verdict) for r in replayed] == [
        (CREATE_DLQ, Verdict.REPLAY), (DISPATCH_DLQ, Verdict.REPLAY),
        (DISPATCH_DLQ, Verdict.DROP), (DISPATCH_DLQ, Verdict.KEEP)]
    intake = broker.queue(CREATE).get_nowait()
    assert (intake.message_id, intake.body, dict(intake.headers)) == (
        "m1", b'{"title": "again"}', {"keep": "me"})
    queued = [broker.queue(DISPATCH).get_nowait() for _ in range(broker.queue(DISPATCH).qsize())]
    assert msgspec.json.decode(queued[-1].body, type=Dispatch) == Dispatch(waiting.id, 1)
    assert await InMemoryDeadLetters(broker).counts() == {CREATE_DLQ: 0, DISPATCH_DLQ: 1}
