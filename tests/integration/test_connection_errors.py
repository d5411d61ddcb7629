"""Real connection failures, against real servers, become the diagnosis a user reads."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator

import psycopg
import pytest
import structlog

from adapters.postgres.errors import diagnose
from adapters.rabbitmq.broker import RabbitMQ
from domain.errors import ServiceUnavailable
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


async def connect_error(url: str) -> psycopg.Error:
    with pytest.raises(psycopg.Error) as caught:
        await psycopg.AsyncConnection.connect(url, connect_timeout=5)
    return caught.value


@pytest.mark.parametrize(
    ("case", "summary", "permanent"),
    [
        ("refused", "connection refused", False),
        ("unknown host", "unknown host", False),
        ("wrong password", "authentication failed", True),
        ("missing database", 'database "tasks_no_such_database" does not exist', True),
        ("missing role", 'role "tasks_no_such_role" does not exist', True),
        ("wrong scheme", "not a PostgreSQL URL", True),
    ],
)
async def test_each_postgres_connection_error_gets_its_own_diagnosis(
    case: str, summary: str, permanent: bool, services: Services, refusing_port: int
) -> None:
    url = {
        "refused": postgres_refused(),
        "unknown host": postgres_unknown_host(),
        "wrong password": postgres_wrong_password(refusing_port),
        "missing database": postgres_missing_database(services.database_url),
        "missing role": postgres_missing_role(services.database_url),
        "wrong scheme": f"mysql://root:{SECRET}@127.0.0.1:3306/tasks",
    }[case]
    diagnosis = diagnose(await connect_error(url))

    assert diagnosis.summary == summary
    assert diagnosis.permanent is permanent
    line = diagnosis.line(url)
    assert line.startswith("TASKS_DATABASE_URL=")
    assert SECRET not in line
    assert "\n" not in line


async def broker_reason(url: str, timeout: float = 10) -> str:
    """What the adapter's health probe says while it keeps failing to connect to `url`."""
    broker = RabbitMQ(url)
    await broker.start()
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                await broker.check()
            except ServiceUnavailable as exc:
                if "connecting" not in str(exc):
                    return str(exc)
            else:
                raise AssertionError(f"connected to {url}")
            assert asyncio.get_running_loop().time() < deadline, "no reason in time"
            await asyncio.sleep(0.1)
    finally:
        await broker.close()


@pytest.fixture(autouse=True)
async def collect_failed_connections(caplog: pytest.LogCaptureFixture) -> AsyncIterator[None]:
    """aio-pika leaves the connection of each failed attempt unclosed; its __del__ schedules a
    close on the running loop. Collected later, outside any loop (in a sync test), that close is
    a coroutine never awaited, and the warning fails whichever test runs then: collect them
    here, while the loop runs. aiormq's log record of the failure would keep one alive past
    this point (its exception's traceback holds the connection), so it is not made at all."""
    for library in ("aiormq", "aio_pika"):
        caplog.set_level(logging.CRITICAL, logger=library)
    yield
    for _ in range(3):
        gc.collect()
        await asyncio.sleep(0.05)


async def test_a_wrong_rabbitmq_password_is_authentication_failed_and_said_to_be_permanent(
    rabbitmq_url: str, rabbitmq_user: tuple[str, str]
) -> None:
    url = with_login(rabbitmq_url, rabbitmq_user[0], SECRET)
    with structlog.testing.capture_logs() as logs:
        reason = await broker_reason(url)

    assert reason == "authentication failed (check TASKS_RABBITMQ_URL)"
    said = [e for e in logs if e["event"] == "broker_unavailable"]
    assert said
    assert f'authentication failed for user "{rabbitmq_user[0]}"' in said[0]["error"]
    assert "will not fix itself" in said[0]["error"]
    assert all(SECRET not in str(e) for e in logs)


async def test_the_right_password_of_that_user_connects(
    rabbitmq_url: str, rabbitmq_user: tuple[str, str]
) -> None:
    broker = RabbitMQ(with_login(rabbitmq_url, *rabbitmq_user))
    await broker.start()
    try:
        for _ in range(100):
            try:
                await broker.check()
                break
            except ServiceUnavailable:
                await asyncio.sleep(0.1)
        await broker.check()
    finally:
        await broker.close()


async def test_a_missing_vhost_is_named_as_such(
    rabbitmq_url: str, rabbitmq_user: tuple[str, str]
) -> None:
    url = with_vhost(with_login(rabbitmq_url, *rabbitmq_user), "tasks-no-such-vhost")
    with structlog.testing.capture_logs() as logs:
        reason = await broker_reason(url)

    assert reason.startswith('vhost "tasks-no-such-vhost" does not exist')
    said = [e["error"] for e in logs if e["event"] == "broker_unavailable"]
    assert "rabbitmqctl add_vhost tasks-no-such-vhost" in said[0]
    assert "will not fix itself" in said[0]
    assert all(rabbitmq_user[1] not in str(e) for e in logs)


async def test_a_refused_rabbitmq_port_is_connection_refused() -> None:
    reason = await broker_reason(rabbitmq_refused())
    assert reason == "connection refused (check TASKS_RABBITMQ_URL)"
