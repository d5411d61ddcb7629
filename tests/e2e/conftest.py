"""End-to-end fixtures: stacks of real processes on URLs of a test's choosing."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.support.processes import Stack
from tests.support.rabbitcluster import RabbitCluster


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


@pytest.fixture(scope="module")
def rabbit_cluster() -> Iterator[RabbitCluster]:
    """Three RabbitMQ nodes of the module's own, booted once per module. Never skipped: with
    no RabbitMQ on this machine it fails and says what is missing."""
    cluster = RabbitCluster()
    try:
        cluster.start()
        print(f"\nRabbitMQ cluster of {len(cluster.nodes)} nodes up in {cluster.started_in:.1f}s")
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def cluster(rabbit_cluster: RabbitCluster, request: pytest.FixtureRequest
            ) -> Iterator[RabbitCluster]:
    """The module's cluster with every node up (a node an earlier test killed is revived);
    the nodes' logs are printed when the test fails."""
    for node in rabbit_cluster.nodes:
        if not rabbit_cluster.alive(node):
            rabbit_cluster.revive(node)
    yield rabbit_cluster
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        print("\n".join(rabbit_cluster.log(node) for node in rabbit_cluster.nodes))
