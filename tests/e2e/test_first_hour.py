"""What a new user meets first: an unmigrated database and wrong URLs, on real processes.

Each wall is one clear state or one line naming the setting and the fix: no 500s, no tracebacks,
no password, and no flood of repeated lines.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.support.processes import TASKS, Proc, Stack, eventually
from tests.support.refusing_postgres import refusing_postgres
from tests.support.services import Services
from tests.support.urls import (
    SECRET,
    postgres_missing_database,
    postgres_missing_role,
    postgres_refused,
    postgres_unknown_host,
    postgres_wrong_password,
    rabbitmq_refused,
    with_login,
    with_vhost,
)

RUN_MIGRATE = "not migrated (run tasks migrate)"
REQUEST_503 = "database not migrated (run tasks migrate)"


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
def refusing_port() -> Iterator[int]:
    with refusing_postgres() as port:
        yield port


@pytest.fixture
def rabbitmq_user(services: Services, rabbitmq_url: str) -> Iterator[tuple[str, str]]:
    user = services.new_user(rabbitmq_url)
    yield user
    services.drop_user(user[0])


def events(proc: Proc) -> list[dict[str, Any]]:
    """The process's JSON log lines, in order (anything else is kept as {"raw": line})."""
    found = []
    for line in proc.log().splitlines():
        try:
            found.append(json.loads(line))
        except ValueError:
            found.append({"raw": line})
    return found


def assert_clean(proc: Proc, *secrets: str) -> None:
    """No traceback, no password, every line one JSON event."""
    log = proc.log()
    assert "Traceback" not in log
    for secret in (SECRET, *secrets):
        assert secret not in log
    assert [e for e in events(proc) if "raw" in e] == []


async def readiness_detail(stack: Stack, *words: str, timeout: float = 20) -> str:
    """The 503 detail of /health/ready, once it has all of `words`."""
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=10) as http:
        async def detail() -> str | None:
            answer = await http.get("/health/ready")
            assert answer.status_code == 503, answer.text
            text = str(answer.json()["detail"])
            return text if all(w in text for w in words) else None

        return str(await eventually(detail, timeout, f"/health/ready to name {words}"))


# --- an unmigrated database -------------------------------------------------------------


async def test_an_unmigrated_database_is_a_clear_state_until_tasks_migrate_runs(
    empty_database_url: str, rabbitmq_url: str, stacks: Callable[..., Stack]
) -> None:
    stack = stacks(empty_database_url, rabbitmq_url)
    api = stack.api(wait_ready=False)
    worker = stack.worker()
    stack.wait_http(api, "/health/live")

    assert await readiness_detail(stack, RUN_MIGRATE) == f"database: {RUN_MIGRATE}"
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as http:
        answers = await asyncio.gather(
            *(http.post("/tasks", json={"title": f"t{i}"}) for i in range(100)),
            *(http.get("/tasks") for _ in range(50)),
            *(http.get(f"/tasks/{uuid.uuid4()}") for _ in range(50)),
            *(http.get(f"/tasks/{uuid.uuid4()}/history") for _ in range(50)),
        )
    for answer in answers:
        assert answer.status_code == 503, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["detail"] == REQUEST_503
        assert "Traceback" not in answer.text
    await eventually(lambda: RUN_MIGRATE in worker.log(), 20, "the worker to say it")

    for proc in (api, worker):
        assert_clean(proc)
        said = proc.log().count("run tasks migrate")
        assert 1 <= said <= 8, f"{proc.name} said it {said} times:\n{proc.log()}"

    stack.migrate()  # and the same processes carry on, without a restart
    stack.wait_http(api, "/health/ready", timeout=20)
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=10) as http:
        created = await http.post("/tasks", json={"title": "after migrate"})
        assert created.status_code == 201, created.text
        task_id = created.json()["id"]

        async def finished() -> bool:
            status = (await http.get(f"/tasks/{task_id}")).json()["status"]
            return status in ("completed", "error")

        await eventually(finished, 30, "the worker to process a task after migrate")
    await eventually(lambda: any(e.get("event") == "process_ready" for e in events(worker)),
                     10, "the worker to say it is ready")


async def test_a_schema_newer_than_the_code_makes_the_api_unready(
    database_url: str, rabbitmq_url: str, stacks: Callable[..., Stack]
) -> None:
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_migrations (version) VALUES ('9999_newer_release')")
    stack = stacks(database_url, rabbitmq_url)
    api = stack.api(wait_ready=False)
    stack.wait_http(api, "/health/live")

    detail = await readiness_detail(stack, "newer than this code")
    assert detail.startswith("database: database schema is newer than this code (")
    assert detail.endswith("upgrade the service")
    assert_clean(api)


# --- tasks migrate, a one-shot: exit code 2 and one line ------------------------------------


def run_tasks(*args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKS_")}
    return subprocess.run([TASKS, *args], env={**env, **settings}, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("refused port", ["connection refused at 127.0.0.1:", "is PostgreSQL running"]),
        ("unknown host", ["unknown host 'no-such-host.invalid'"]),
        ("wrong password", ['authentication failed for user "tasks"', "will not fix itself"]),
        ("missing role", ['role "tasks_no_such_role" does not exist', "will not fix itself"]),
        ("wrong scheme", ["must be a URL starting with postgresql://"]),
    ],
)
def test_tasks_migrate_with_a_bad_database_url_exits_2_with_one_line(
    case: str, words: list[str], services: Services, refusing_port: int
) -> None:
    url = {
        "refused port": postgres_refused(),
        "unknown host": postgres_unknown_host(),
        "wrong password": postgres_wrong_password(refusing_port),
        "missing role": postgres_missing_role(services.database_url),
        "wrong scheme": f"mysql://root:{SECRET}@127.0.0.1:3306/tasks",
    }[case]
    done = run_tasks("migrate", TASKS_DATABASE_URL=url)

    assert done.returncode == 2, done
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("tasks: ")
    assert "TASKS_DATABASE_URL" in lines[0]
    for word in words:
        assert word in lines[0]
    assert SECRET not in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("command", ["api", "worker"])
def test_a_url_that_can_never_work_stops_api_and_worker_at_once(command: str) -> None:
    done = run_tasks(command, TASKS_RABBITMQ_URL=f"http://guest:{SECRET}@127.0.0.1:15672/")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "tasks: invalid setting TASKS_RABBITMQ_URL='http://guest:***@127.0.0.1:15672/': must "
        "be a URL starting with amqp:// or amqps://, e.g. amqp://user:password@host:5672/vhost"
    ]


# --- api and worker: they retry, one clear line per attempt, readiness names the reason -----


def first_line_of(proc: Proc, event: str, within: int = 20) -> str:
    """The `error` of the first `event` among the process's first `within` log lines."""
    found = [e for e in events(proc)[:within] if e.get("event") == event]
    assert found, f"no {event} in the first {within} lines:\n{proc.log()}"
    return str(found[0]["error"])


async def wait_for_lines(proc: Proc, *events_needed: str) -> None:
    def seen() -> bool:
        names = {e.get("event") for e in events(proc)}
        return all(name in names for name in events_needed)

    await eventually(seen, 20, f"{proc.name} to log {events_needed}")


async def test_api_refused_database_and_wrong_rabbitmq_password(
    rabbitmq_url: str, rabbitmq_user: tuple[str, str], stacks: Callable[..., Stack]
) -> None:
    stack = stacks(postgres_refused(), with_login(rabbitmq_url, rabbitmq_user[0], SECRET))
    api = stack.api(wait_ready=False)
    stack.wait_http(api, "/health/live")

    detail = await readiness_detail(stack, "database: connection refused",
                                    "broker: authentication failed")
    assert "check TASKS_DATABASE_URL" in detail and "check TASKS_RABBITMQ_URL" in detail
    await wait_for_lines(api, "database_connect_failed", "broker_unavailable")
    database = first_line_of(api, "database_connect_failed")
    assert database.startswith("TASKS_DATABASE_URL=postgresql://postgres:***@127.0.0.1:")
    assert "connection refused at 127.0.0.1:" in database
    broker = first_line_of(api, "broker_unavailable")
    assert broker.startswith(f"TASKS_RABBITMQ_URL=amqp://{rabbitmq_user[0]}:***@")
    assert f'authentication failed for user "{rabbitmq_user[0]}"' in broker
    assert "will not fix itself" in broker
    assert_clean(api, rabbitmq_user[1])


async def test_api_missing_database_and_missing_vhost(
    services: Services, rabbitmq_url: str, stacks: Callable[..., Stack]
) -> None:
    stack = stacks(postgres_missing_database(services.database_url),
                   with_vhost(rabbitmq_url, "tasks-no-such-vhost"))
    api = stack.api(wait_ready=False)
    stack.wait_http(api, "/health/live")

    detail = await readiness_detail(stack, 'database "tasks_no_such_database" does not exist',
                                    'broker: vhost "tasks-no-such-vhost" does not exist')
    assert "run tasks migrate" in detail
    await wait_for_lines(api, "database_connect_failed", "broker_unavailable")
    database = first_line_of(api, "database_connect_failed")
    assert "tasks migrate" in database and "will not fix itself" in database
    broker = first_line_of(api, "broker_unavailable")
    assert 'vhost "tasks-no-such-vhost" does not exist' in broker
    assert "rabbitmqctl add_vhost tasks-no-such-vhost" in broker
    assert "will not fix itself" in broker
    assert_clean(api)


async def test_api_wrong_database_password_and_refused_rabbitmq_port(
    refusing_port: int, stacks: Callable[..., Stack]
) -> None:
    stack = stacks(postgres_wrong_password(refusing_port), rabbitmq_refused())
    api = stack.api(wait_ready=False)
    stack.wait_http(api, "/health/live")

    await readiness_detail(stack, "database: authentication failed",
                           "broker: connection refused")
    await wait_for_lines(api, "database_connect_failed", "broker_unavailable")
    database = first_line_of(api, "database_connect_failed")
    assert 'authentication failed for user "tasks"' in database
    assert "will not fix itself" in database
    assert "connection refused at 127.0.0.1:" in first_line_of(api, "broker_unavailable")
    assert_clean(api)


async def test_worker_unknown_database_host_and_missing_vhost(
    rabbitmq_url: str, stacks: Callable[..., Stack]
) -> None:
    stack = stacks(postgres_unknown_host(), with_vhost(rabbitmq_url, "tasks-no-such-vhost"))
    worker = stack.worker()

    await wait_for_lines(worker, "database_connect_failed", "broker_unavailable",
                         "process_not_ready")
    assert "unknown host 'no-such-host.invalid'" in first_line_of(
        worker, "database_connect_failed")
    assert 'vhost "tasks-no-such-vhost" does not exist' in first_line_of(
        worker, "broker_unavailable")
    waiting = next(e["waiting_for"] for e in events(worker) if e.get("event") ==
                   "process_not_ready")
    assert "database: unknown host" in waiting
    assert 'broker: vhost "tasks-no-such-vhost" does not exist' in waiting
    assert worker.alive()
    assert_clean(worker)
