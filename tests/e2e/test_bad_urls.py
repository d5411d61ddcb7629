"""Each wrong URL is one line naming the setting and the fix: exit 2, or retries and a reason."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable

import pytest

from tests.support.processes import TASKS, Stack
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
from tests.support.watching import (
    assert_clean,
    events,
    first_line_of,
    readiness_detail,
    wait_for_events,
)

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
        "be one URL starting with amqp:// or amqps://, or several separated by commas (the "
        "nodes of one cluster), e.g. amqp://user:password@host:5672/vhost"
    ]


# --- api and worker: they retry, one clear line per attempt, readiness names the reason -----


async def test_api_refused_database_and_wrong_rabbitmq_password(
    rabbitmq_url: str, rabbitmq_user: tuple[str, str], stacks: Callable[..., Stack]
) -> None:
    stack = stacks(postgres_refused(), with_login(rabbitmq_url, rabbitmq_user[0], SECRET))
    api = stack.api(wait_ready=False)
    stack.wait_http(api, "/health/live")

    detail = await readiness_detail(stack, "database: connection refused",
                                    "broker: authentication failed")
    assert "check TASKS_DATABASE_URL" in detail and "check TASKS_RABBITMQ_URL" in detail
    await wait_for_events(api, "database_connect_failed", "broker_unavailable")
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
    await wait_for_events(api, "database_connect_failed", "broker_unavailable")
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
    await wait_for_events(api, "database_connect_failed", "broker_unavailable")
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

    await wait_for_events(worker, "database_connect_failed", "broker_unavailable",
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
