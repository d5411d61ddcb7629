"""The emulated processor (seeded chance, bounded wait) and the UUIDv7 id source."""

from __future__ import annotations

import random
import time
import uuid

from adapters.system import EmulatedProcessor, Uuid7Source
from domain.status import TaskSource
from domain.task import Task
from tests.unit.fakes import T0

TASK = Task.create(id=uuid.UUID(int=1), title="t", description=None, payload={},
                   source=TaskSource.API, now=T0)


class RecordingRandom(random.Random):
    """A seeded Random that remembers every wait it drew."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self.waits: list[tuple[float, float, float]] = []

    def uniform(self, a: float, b: float) -> float:
        value = super().uniform(a, b)
        self.waits.append((a, b, value))
        return value


async def outcomes(processor: EmulatedProcessor, count: int) -> list[str | None]:
    return [await processor.process(TASK) for _ in range(count)]


async def test_no_wait_returns_at_once() -> None:
    processor = EmulatedProcessor(0, 0, 0.0, random.Random(1))
    started = time.monotonic()
    assert await outcomes(processor, 50) == [None] * 50
    assert time.monotonic() - started < 1.0


async def test_a_failure_rate_of_zero_never_fails() -> None:
    assert set(await outcomes(EmulatedProcessor(0, 0, 0.0, random.Random(2)), 300)) == {None}


async def test_a_failure_rate_of_one_always_fails_with_a_reason() -> None:
    results = await outcomes(EmulatedProcessor(0, 0, 1.0, random.Random(3)), 300)
    assert set(results) == {"emulated failure"}


async def test_the_same_seed_gives_the_same_sequence() -> None:
    first = await outcomes(EmulatedProcessor(0, 0, 0.5, random.Random(42)), 100)
    again = await outcomes(EmulatedProcessor(0, 0, 0.5, random.Random(42)), 100)
    other = await outcomes(EmulatedProcessor(0, 0, 0.5, random.Random(43)), 100)
    assert first == again
    assert first != other
    assert set(first) == {None, "emulated failure"}


async def test_each_call_draws_a_wait_then_a_failure_from_the_injected_source() -> None:
    rate, twin = 0.3, random.Random(9)
    expected = []
    for _ in range(100):
        twin.uniform(0, 0)
        expected.append("emulated failure" if twin.random() < rate else None)
    assert await outcomes(EmulatedProcessor(0, 0, rate, random.Random(9)), 100) == expected
    failures = expected.count("emulated failure")
    assert 10 < failures < 50  # about 30 of 100 for this seed


async def test_the_wait_is_drawn_uniformly_within_min_and_max() -> None:
    rng = RecordingRandom(5)
    processor = EmulatedProcessor(0.001, 0.004, 0.0, rng)
    await outcomes(processor, 30)
    assert len(rng.waits) == 30
    assert all((a, b) == (0.001, 0.004) for a, b, _ in rng.waits)
    assert all(0.001 <= wait <= 0.004 for _, _, wait in rng.waits)
    assert len({wait for _, _, wait in rng.waits}) == 30


async def test_the_processor_really_waits_at_least_the_minimum() -> None:
    processor = EmulatedProcessor(0.02, 0.03, 0.0, random.Random(6))
    started = time.monotonic()
    await processor.process(TASK)
    elapsed = time.monotonic() - started
    assert 0.019 <= elapsed < 1.0


def test_uuid7_ids_have_version_7_and_the_rfc_variant() -> None:
    ids = Uuid7Source()
    for _ in range(200):
        new = ids.new_id()
        assert new.version == 7
        assert new.variant == uuid.RFC_4122


def test_uuid7_ids_carry_the_current_unix_milliseconds() -> None:
    before = time.time_ns() // 1_000_000
    new = Uuid7Source().new_id()
    after = time.time_ns() // 1_000_000
    assert before <= new.int >> 80 <= after


def test_uuid7_ids_are_unique() -> None:
    ids = Uuid7Source()
    assert len({ids.new_id() for _ in range(5000)}) == 5000


def test_uuid7_ids_made_in_later_milliseconds_sort_later() -> None:
    ids = Uuid7Source()
    made = []
    for _ in range(15):
        made.append(ids.new_id())
        time.sleep(0.002)
    assert made == sorted(made)
    assert [u.bytes for u in made] == sorted(u.bytes for u in made)

