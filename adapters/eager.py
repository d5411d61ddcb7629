"""Tasks that start at once, as Python 3.12's eager ones: no task for a step that never waits."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Coroutine, Generator
from contextvars import copy_context
from typing import Any, Generic, TypeVar, cast

RV = TypeVar("RV")


def eager_task(step: Coroutine[Any, Any, RV]) -> asyncio.Future[RV]:
    """`step`'s first stretch, run now in the caller's task (what it raises, it raises here);
    a future already done if that was all of it, else a task that runs the rest. Either way the
    step has a context of its own, as a task has, from its first line to its last."""
    loop = asyncio.get_running_loop()
    context = copy_context()
    try:
        waiting = context.run(step.send, None)
    except StopIteration as done:
        answered: asyncio.Future[RV] = loop.create_future()
        answered.set_result(cast(RV, done.value))
        return answered
    return loop.create_task(_rest(step, waiting), context=context)


async def _rest(step: Coroutine[Any, Any, RV], waiting: Any) -> RV:
    return await _Resume(step, waiting)


class _Resume(Generic[RV]):
    """What `await step` does from the step's first wait on (PEP 380's `yield from`): what
    it waits on goes up to the task, what the task sends or throws goes down to the step."""

    def __init__(self, step: Coroutine[Any, Any, RV], waiting: Any) -> None:
        self._step, self._waiting = step, waiting

    def __await__(self) -> Generator[Any, Any, RV]:
        waiting = self._waiting
        while True:
            try:
                sent = yield waiting
            except BaseException as exc:  # noqa: BLE001 - passed on, as `await` would
                go_on = functools.partial(self._step.throw, exc)
            else:
                go_on = functools.partial(self._step.send, sent)
            try:
                waiting = go_on()
            except StopIteration as done:
                return cast(RV, done.value)
