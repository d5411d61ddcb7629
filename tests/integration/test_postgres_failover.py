"""Several hosts in TASKS_DATABASE_URL: the adapters use the primary and, after a failover or a
switchover, the new one; what the change cut off fails as ServiceUnavailable (a 503) or is
retried, in bounded time. On the tests' own primary and synchronous standby (pgcluster.py)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import psycopg_pool
import pytest
from psycopg.conninfo import conninfo_to_dict

from adapters.postgres.listener import PostgresListener
from adapters.postgres.migrate import migrate
from adapters.postgres.pool import PostgresProbe, make_pool
from adapters.postgres.store import PostgresTaskStore
from adapters.postgres.uow import PostgresUnitOfWork
from adapters.timeouts import OUTBOX_HOLD_SECONDS, PG_POOL_WAIT_SECONDS, PG_ROUND_TRIP_SECONDS
from application.model import NewTask
from domain.errors import ServiceUnavailable
from tests.support.pgcluster import Node, PgCluster
from tests.support.proxy import HOST, Proxy

from .builders import new_task, request_for
from .waiting import eventually

pytestmark = pytest.mark.failover

#: what a call may take at most: a wait for a connection, then a round trip (DESIGN: 10 s)
BOUND = PG_POOL_WAIT_SECONDS + PG_ROUND_TRIP_SECONDS + 1.0
#: DESIGN, promise 8: work goes on within 30 s
GOES_ON = 30.0
APP = "failover-test"


@pytest.fixture(scope="module")
def database(pg_cluster: PgCluster) -> str:
    """The module's database, made by `migrate` through both hosts (the standby listed first:
    the primary is found, and its maintenance database used to create it)."""
    a, b = pg_cluster.nodes
    name = f"tasks_test_{uuid.uuid4().hex[:10]}"
    standby_first = (f"postgresql://postgres@{b.address},{a.address}/{name}"
                     f"?application_name={APP}")
    assert asyncio.run(migrate(standby_first)), "nothing was applied"
    return name


@pytest.fixture
def cluster(pg_cluster: PgCluster) -> Iterator[PgCluster]:
    """The module's cluster with a synchronous standby again, whatever the last test did."""
    pg_cluster.heal()
    yield pg_cluster
    read_only(pg_cluster.primary, False)  # should a test have stopped half-way


@pytest.fixture
def url(cluster: PgCluster, database: str) -> str:
    return cluster.url(database) + f"&application_name={APP}"


@pytest.fixture
async def pool(url: str) -> AsyncIterator[psycopg_pool.AsyncConnectionPool[Any]]:
    made = make_pool(url, max_size=4)
    await made.open(wait=True, timeout=10)
    yield made
    await made.close()


async def create(steps: PostgresTaskStore) -> uuid.UUID:
    task = new_task()
    stored = await steps.create(NewTask(task, request_for(task)))
    assert stored.inserted
    return task.id


async def server(pool: psycopg_pool.AsyncConnectionPool[Any]) -> str:
    """Where the readiness probe's connection is: the server the pool uses."""
    return await PostgresProbe(pool).check()


async def outcome(call: Callable[[], Awaitable[object]]) -> tuple[str, float]:
    """"ok" or the name of the error, and how long the call took."""
    began = time.monotonic()
    try:
        await call()
    except Exception as exc:
        return type(exc).__name__, time.monotonic() - began
    return "ok", time.monotonic() - began


async def until_it_works(call: Callable[[], Awaitable[object]], what: str) -> float:
    """Seconds until `call` succeeds; each failure must be a ServiceUnavailable in bounded
    time (never a hang, never another error)."""
    began = time.monotonic()

    async def works() -> bool:
        name, took = await outcome(call)
        assert name in ("ok", "ServiceUnavailable"), name
        assert took < BOUND, f"a call took {took:.1f}s"
        return name == "ok"

    await eventually(works, what, timeout=GOES_ON)
    return time.monotonic() - began


def sessions_on(node: Node) -> int:
    """The test's connections still open on `node` (none on a dead one)."""
    with contextlib.suppress(psycopg.OperationalError):
        return int(node.sql("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                            APP)[0][0])
    return 0


async def test_the_pool_uses_the_primary_and_after_a_failover_the_promoted_standby(
    cluster: PgCluster, pool: psycopg_pool.AsyncConnectionPool[Any],
) -> None:
    steps = PostgresTaskStore(pool, hold=OUTBOX_HOLD_SECONDS)
    await create(steps)
    old = cluster.primary
    assert await server(pool) == old.address

    new = await asyncio.to_thread(cluster.failover)

    # the idle connections to the dead primary are dropped at checkout, not handed out: once
    # the standby is promoted, the very first request works
    began = time.monotonic()
    name, took = await outcome(lambda: create(steps))
    assert (name, took < BOUND) == ("ok", True), f"{name} after {took:.1f}s"
    print(f"first request after the failover: {name} in {took:.2f}s")
    assert await server(pool) == new.address
    assert time.monotonic() - began < GOES_ON


async def test_an_old_primary_gone_silent_costs_a_deadline_then_the_promoted_one_serves(
    cluster: PgCluster, database: str,
) -> None:
    """The old primary's machine lost, not its server stopped: its packets are dropped (a
    proxy in front of it), so nothing is refused; the round-trip deadline ends the pool's
    connections and the connect timeout every new attempt at that host, then libpq goes on
    to the promoted one."""
    old, standby = cluster.primary, cluster.standby
    assert standby is not None
    with Proxy(HOST, old.port) as proxy:
        url = (f"postgresql://postgres@{HOST}:{proxy.port},{standby.address}/{database}"
               "?target_session_attrs=read-write")
        pool = make_pool(url, max_size=4)
        await pool.open(wait=True, timeout=10)
        try:
            steps = PostgresTaskStore(pool, hold=OUTBOX_HOLD_SECONDS)
            await create(steps)
            proxy.blackhole()
            new = await asyncio.to_thread(cluster.failover)
            took = await until_it_works(lambda: create(steps), "creates on the promoted one")
            print(f"silent old primary: creates work again {took:.2f}s after the failover")
            assert await server(pool) == new.address
        finally:
            await pool.close()


async def test_a_unit_of_work_cut_off_by_a_failover_is_unavailable_and_the_next_one_works(
    cluster: PgCluster, pool: psycopg_pool.AsyncConnectionPool[Any], url: str,
) -> None:
    task = new_task()

    async def cut_off() -> None:
        async with PostgresUnitOfWork(pool) as uow:
            assert await uow.tasks.get(task.id) is None
            await asyncio.to_thread(cluster.failover)
            await uow.commit()

    began = time.monotonic()
    with pytest.raises(ServiceUnavailable):
        await cut_off()
    assert time.monotonic() - began < BOUND + 5  # the failover itself takes a moment

    async def read() -> None:
        async with PostgresUnitOfWork(pool) as uow:
            await uow.tasks.get(task.id)

    took = await until_it_works(read, "a unit of work on the new primary")
    print(f"a unit of work works again {took:.2f}s after the failover")
    assert await server(pool) == cluster.primary.address


async def test_steps_under_load_through_a_switchover_fail_fast_or_are_retried(
    cluster: PgCluster, pool: psycopg_pool.AsyncConnectionPool[Any],
) -> None:
    """The API's creates answer 503 (ServiceUnavailable) at once; the worker's claims are
    patient: each waits the change out and ends written, once."""
    api = PostgresTaskStore(pool, hold=OUTBOX_HOLD_SECONDS)
    worker = PostgresTaskStore(pool, hold=OUTBOX_HOLD_SECONDS, patient=True)
    waiting = [await create(api) for _ in range(150)]
    old = cluster.primary
    outcomes: list[tuple[str, float]] = []
    claims: list[tuple[str, float]] = []
    stop = asyncio.Event()

    async def creating() -> None:
        while not stop.is_set():
            outcomes.append(await outcome(lambda: create(api)))
            await asyncio.sleep(0.01)

    async def claim(task_id: uuid.UUID) -> object:
        now = datetime.now(UTC)
        return await worker.claim(task_id, worker="failover-test", now=now,
                                  lease_until=now + timedelta(minutes=1))

    async def claiming() -> None:
        while waiting and not stop.is_set():
            claims.append(await outcome(functools.partial(claim, waiting.pop())))
            await asyncio.sleep(0.01)

    loads = [asyncio.create_task(creating()) for _ in range(4)]
    loads += [asyncio.create_task(claiming()) for _ in range(2)]
    await asyncio.sleep(0.3)
    new = await asyncio.to_thread(cluster.switchover)
    took = await until_it_works(lambda: create(api), "creates on the new primary")
    stop.set()
    await asyncio.wait_for(asyncio.gather(*loads), GOES_ON)

    assert {name for name, _ in outcomes} <= {"ok", "ServiceUnavailable"}, outcomes
    assert max(took for _, took in outcomes) < BOUND
    assert {name for name, _ in claims} == {"ok"}, claims
    refused = sum(name != "ok" for name, _ in outcomes)
    print(f"switchover: creates work again after {took:.2f}s; {refused} of {len(outcomes)} "
          f"creates refused; {len(claims)} claims all written (slowest "
          f"{max(t for _, t in claims):.2f}s)")
    with psycopg.connect(new.url(str(conninfo_to_dict(pool.conninfo)["dbname"]))) as db:
        twice = db.execute("SELECT count(*) FROM (SELECT task_id FROM task_history WHERE "
                           "to_status = 'in_progress' GROUP BY task_id HAVING count(*) > 1) t"
                           ).fetchone()
    assert twice == (0,)
    assert await server(pool) == new.address
    assert sessions_on(old) == 0, "a connection to the old primary (a standby now) stayed open"


async def test_a_write_refused_as_read_only_is_unavailable_and_drops_its_connection(
    cluster: PgCluster, pool: psycopg_pool.AsyncConnectionPool[Any],
) -> None:
    steps = PostgresTaskStore(pool, hold=OUTBOX_HOLD_SECONDS)
    await create(steps)
    bad = pool.get_stats().get("returns_bad", 0)
    read_only(cluster.primary, True)

    # SQLSTATE 25006: a 503, never a 500, and the connection closed rather than given back
    with pytest.raises(ServiceUnavailable):
        await create(steps)
    assert pool.get_stats().get("returns_bad", 0) == bad + 1

    read_only(cluster.primary, False)
    await until_it_works(lambda: create(steps), "writes once the primary takes them again")


async def test_a_connection_told_its_server_is_read_only_is_dropped_at_checkout(
    cluster: PgCluster, pool: psycopg_pool.AsyncConnectionPool[Any],
) -> None:
    """Reads still work on a server that turned read-only, and each answer carries the news
    (a parameter libpq keeps): the next checkout drops that connection."""
    steps = PostgresTaskStore(pool, hold=OUTBOX_HOLD_SECONDS)
    task_id = await create(steps)
    lost = pool.get_stats().get("connections_lost", 0)
    read_only(cluster.primary, True)

    outcomes: list[tuple[str, float]] = []
    while len(outcomes) < 10 and "ServiceUnavailable" not in {n for n, _ in outcomes}:
        outcomes.append(await outcome(lambda: steps.get(task_id)))
    assert outcomes[0][0] == "ok"
    assert outcomes[-1][0] == "ServiceUnavailable", outcomes  # none to connect to now
    assert pool.get_stats().get("connections_lost", 0) > lost

    read_only(cluster.primary, False)
    await until_it_works(lambda: create(steps), "writes once the primary takes them again")


def read_only(node: Node, on: bool) -> None:
    """`node` takes writes no more (or again), as a switchover script may tell a primary to;
    once a new session sees it, the server has told its sessions to reload too."""
    node.sql("ALTER SYSTEM SET default_transaction_read_only = on" if on
             else "ALTER SYSTEM RESET default_transaction_read_only")
    node.sql("SELECT pg_reload_conf()")
    want = "on" if on else "off"
    deadline = time.monotonic() + 10
    while node.sql("SHOW default_transaction_read_only") != [(want,)]:
        assert time.monotonic() < deadline, "the server did not reload its configuration"
        time.sleep(0.01)


class Heard:
    def __init__(self) -> None:
        self.payloads: list[str | None] = []

    def __call__(self, payload: str | None) -> None:
        self.payloads.append(payload)


@contextlib.asynccontextmanager
async def listening(url: str, check_every: float = 10.0) -> AsyncIterator[
        tuple[PostgresListener, Heard]]:
    listener = PostgresListener(url, check_every=check_every)
    heard = Heard()
    listener.on("failover_test", heard)
    running = asyncio.create_task(listener.run())
    try:
        await eventually(lambda: _true(listener.connected), "the listener to connect")
        yield listener, heard
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running


async def _true(value: bool) -> bool:
    return value


def notify(node: Node, database: str, payload: str) -> None:
    with psycopg.connect(node.url(database), autocommit=True) as conn:
        conn.execute("SELECT pg_notify('failover_test', %s)", (payload,))


@pytest.mark.parametrize("change", ["failover", "switchover"])
async def test_the_listener_comes_back_on_the_new_primary(
    cluster: PgCluster, url: str, database: str, change: str,
) -> None:
    async with listening(url) as (_, heard):
        notify(cluster.primary, database, "before")
        await eventually(lambda: _true("before" in heard.payloads), "the first notification")
        heard.payloads.clear()

        new = await asyncio.to_thread(getattr(cluster, change))
        began = time.monotonic()
        # told that notifications may have been missed (hearers read the state again) ...
        await eventually(lambda: _true(None in heard.payloads), "the listener to reconnect",
                         timeout=GOES_ON)
        print(f"listener back {time.monotonic() - began:.2f}s after the {change}")
        notify(new, database, "after")  # ... and it hears what the new primary sends
        await eventually(lambda: _true("after" in heard.payloads), "a notification after")


async def test_the_listener_leaves_a_primary_that_turned_read_only(
    cluster: PgCluster, url: str, database: str,
) -> None:
    async with listening(url, check_every=0.2) as (listener, heard):
        read_only(cluster.primary, True)
        await eventually(lambda: _true(not listener.connected), "the listener to leave")
        heard.payloads.clear()
        read_only(cluster.primary, False)
        await eventually(lambda: _true(None in heard.payloads), "the listener to come back",
                         timeout=GOES_ON)


async def test_migrate_through_both_hosts_finds_the_primary_after_a_switchover(
    cluster: PgCluster, database: str,
) -> None:
    await asyncio.to_thread(cluster.switchover)
    assert await migrate(cluster.url(database)) == []  # applied already: nothing to do
    fresh = cluster.url(f"tasks_test_{uuid.uuid4().hex[:10]}")
    assert await migrate(fresh)  # created on the new primary through its maintenance database
    name = conninfo_to_dict(fresh)["dbname"]
    assert cluster.primary.sql("SELECT 1 FROM pg_database WHERE datname = %s", name)
