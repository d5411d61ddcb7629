"""End-to-end fixtures: stacks of real processes on URLs of a test's choosing."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.support.processes import Stack


@pytest.fixture
def stacks(request: pytest.FixtureRequest) -> Iterator[Callable[..., Stack]]:
    """Stacks on URLs of the test's choosing; their logs are printed when the test fails.

    Ask for it after the database and vhost fixtures: it then stops its processes first."""
    made: list[Stack] = []

    def make(database_url: str, rabbitmq_url: str, **settings: str) -> Stack:
        made.append(Stack(database_url, rabbitmq_url, **settings))
        return made[-1]

    yield make
    failed = getattr(request.node, "rep_call", None)
    for stack in made:
        if failed is not None and failed.failed:
            print(stack.logs())
        stack.close()
