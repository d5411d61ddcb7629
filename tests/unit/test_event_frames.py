"""The frames of the event streams: each event and each batch encoded once for all streams."""

from __future__ import annotations

from adapters.memory.events import InMemoryEventLog
from application.model import ORIGIN
from application.watch import LAST
from domain.status import TaskStatus
from entrypoints.http.events import _Frames
from tests.unit.world import World

WHOLE = (None, frozenset[TaskStatus]())


async def test_a_batch_is_the_frames_of_its_events_joined_once_for_every_stream(
    world: World,
) -> None:
    for n in range(3):
        await world.new_task(f"t{n}")
    events = await InMemoryEventLog(world.store).read(ORIGIN, LAST, 10)
    frames = _Frames(keep=100)

    whole = frames.batch(events, WHOLE)
    assert whole == b"".join(frames(e) for e in events)
    assert whole.count(b"event: transition\n") == 3
    assert frames.batch(list(events), WHOLE) is whole  # another stream: the same bytes


async def test_batches_of_streams_that_follow_different_things_are_never_mixed_up(
    world: World,
) -> None:
    for n in range(4):
        await world.new_task(f"t{n}")
    e1, e2, e3, e4 = await InMemoryEventLog(world.store).read(ORIGIN, LAST, 10)
    frames = _Frames(keep=100)

    # same first and last event, same count, other events in between: other streams
    one = frames.batch([e1, e2, e4], (None, frozenset({TaskStatus.NEW})))
    other = frames.batch([e1, e3, e4], (e3.task.id, frozenset[TaskStatus]()))
    assert one == b"".join(frames(e) for e in [e1, e2, e4])
    assert other == b"".join(frames(e) for e in [e1, e3, e4])
