"""The background loops: an outage spaces a loop's tries out by the backoff, a success resets it."""

from __future__ import annotations

import asyncio

import pytest

from application.backoff import Backoff
from domain.errors import ServiceUnavailable
from entrypoints.loops import every

REAL_SLEEP = asyncio.sleep


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every pause the loop asks for, in order; each lets the event loop turn once."""
    asked: list[float] = []

    async def sleep(seconds: float) -> None:
        asked.append(seconds)
        await REAL_SLEEP(0)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    return asked


async def test_an_outage_spaces_the_tries_out_and_a_success_brings_back_the_interval(
    pauses: list[float],
) -> None:
    calls = 0

    async def step() -> int:
        nonlocal calls
        calls += 1
        if calls in (1, 2, 3, 6):
            raise ServiceUnavailable("broker unreachable")
        return 0

    loop = asyncio.create_task(every("sweep", 0.5, step, backoff=Backoff(first=1.0, cap=10.0)))
    while calls < 7:
        await REAL_SLEEP(0)
    loop.cancel()
    with pytest.raises(asyncio.CancelledError):
        await loop
    first_delay, *between = pauses
    assert first_delay == 0
    outage, after, second_outage = between[:3], between[3:5], between[5]
    assert 0.5 < outage[0] < outage[1] < outage[2] <= 4.0
    assert after == [0.5, 0.5]
    assert 0.5 < second_outage <= 1.0  # the backoff started again from its first delay


async def test_without_a_backoff_an_outage_keeps_the_interval(pauses: list[float]) -> None:

    async def step() -> int:
        raise ServiceUnavailable("database unreachable")

    loop = asyncio.create_task(every("renewal", 0.5, step))
    while len(pauses) < 4:
        await REAL_SLEEP(0)
    loop.cancel()
    with pytest.raises(asyncio.CancelledError):
        await loop
    assert pauses[:4] == [0, 0.5, 0.5, 0.5]
