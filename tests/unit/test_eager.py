"""An eager task runs its first stretch at once, and is a task only if it has to wait."""

from __future__ import annotations

import asyncio
from contextvars import ContextVar

import pytest

from adapters.eager import eager_task

seen: ContextVar[str] = ContextVar("seen", default="caller's")


async def answered_at_once() -> int:
    seen.set("the step's")
    return 42


async def answered_later(gate: asyncio.Event, steps: list[str]) -> str:
    steps.append("first stretch")
    seen.set("the step's")
    await gate.wait()
    steps.append("the rest")
    return seen.get()  # the same context after the wait as before it


async def test_a_step_that_never_waits_is_done_at_once_without_a_task() -> None:
    before = asyncio.all_tasks()
    done = eager_task(answered_at_once())
    assert done.done() and done.result() == 42
    assert not isinstance(done, asyncio.Task) and asyncio.all_tasks() == before
    assert seen.get() == "caller's"  # the step's context is its own


async def test_a_step_that_waits_runs_its_first_stretch_at_once_and_the_rest_in_a_task() -> None:
    gate, steps = asyncio.Event(), []
    trip = eager_task(answered_later(gate, steps))
    assert steps == ["first stretch"] and isinstance(trip, asyncio.Task)
    gate.set()
    assert await trip == "the step's"
    assert steps == ["first stretch", "the rest"] and seen.get() == "caller's"


async def test_what_the_first_stretch_raises_is_raised_by_the_call() -> None:
    async def refused() -> None:
        raise LookupError("at once")

    with pytest.raises(LookupError, match="at once"):
        eager_task(refused())


async def test_cancelling_the_task_reaches_the_step_which_may_clean_up() -> None:
    cleaned = asyncio.Event()

    async def cleans_up() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(0)  # it may still wait while cleaning up
            cleaned.set()

    trip = eager_task(cleans_up())
    await asyncio.sleep(0)
    trip.cancel()
    with pytest.raises(asyncio.CancelledError):
        await trip
    assert cleaned.is_set()
