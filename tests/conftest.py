"""Fixtures: real services for integration and end-to-end tests (fresh database and vhost each)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from tests.support.pgcluster import PgCluster, start_cluster
from tests.support.pgserver import Unavailable
from tests.support.processes import Stack
from tests.support.refusing_postgres import refusing_postgres
from tests.support.services import Services, provide_services


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    with provide_services() as found:
        yield found


@pytest.fixture(scope="session")
def template_database(services: Services) -> Iterator[str]:
    """One migrated database that every test database is copied from (fast CREATE ... TEMPLATE)."""
    import asyncio

    from adapters.postgres.migrate import migrate

    url = services.new_database()
    asyncio.run(migrate(url))
    yield str(conninfo_to_dict(url)["dbname"])
    services.drop_database(url)


@pytest.fixture
def database_url(services: Services, template_database: str) -> Iterator[str]:
    url = services.new_database(template=template_database)
    yield url
    services.drop_database(url)


@pytest.fixture
def empty_database_url(services: Services) -> Iterator[str]:
    """A database with no schema at all (for migration tests)."""
    url = services.new_database()
    yield url
    services.drop_database(url)


@pytest.fixture
def rabbitmq_url(services: Services) -> Iterator[str]:
    url = services.new_vhost()
    yield url
    services.drop_vhost(url)


@pytest.fixture
def rabbitmq_user(services: Services, rabbitmq_url: str) -> Iterator[tuple[str, str]]:
    """(name, password) of a RabbitMQ user with every permission on the test's vhost."""
    user = services.new_user(rabbitmq_url)
    yield user
    services.drop_user(user[0])


@pytest.fixture(scope="module")
def pg_cluster(services: Services) -> Iterator[PgCluster]:
    """A PostgreSQL primary with a synchronous standby of the module's own, started once per
    module (tests/support/pgcluster.py); one that cannot start fails the tests, never skips
    them. Its start-up time is printed (pytest -s, or -rP)."""
    try:
        cluster = start_cluster(services.database_url)
    except Unavailable as why:
        pytest.fail(f"the tests' own PostgreSQL primary and standby did not start: {why}",
                    pytrace=False)
    print(f"\npgcluster: started in {cluster.timings['start']:.2f}s "
          f"(initdb {cluster.timings['initdb']:.2f}s)")
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(scope="session")
def refusing_port() -> Iterator[int]:
    """The port of a PostgreSQL stand-in that refuses every password (see its module)."""
    with refusing_postgres() as port:
        yield port


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection]:
    """A plain autocommit connection for assertions on what is really stored."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def stack(database_url: str, rabbitmq_url: str, request: pytest.FixtureRequest) -> Iterator[Stack]:
    """Real `tasks` processes; their logs are printed when the test fails."""
    running = Stack(database_url, rabbitmq_url)
    yield running
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        print(running.logs())
    running.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[object]:
    from adapters.postgres.pool import make_pool

    pg = make_pool(database_url, max_size=4)
    await pg.open(wait=True, timeout=10)
    yield pg
    await pg.close()
