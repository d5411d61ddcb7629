"""Unit-tier fixtures: in-memory adapters and fakes only; nothing here touches a network."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.world import World

HERE = Path(__file__).parent
UNIT_TIMEOUT = 10  # seconds; a hanging unit test is a bug, not a slow test


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(UNIT_TIMEOUT))


@pytest.fixture
def world() -> World:
    return World()
