"""Metrics from real processes: what the API and a worker report adds up to what was done,
across several API processes too; a worker whose port is taken still works."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import psycopg
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from tests.support.amqp import amqp_client
from tests.support.processes import Stack, eventually, free_port

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
FINAL = ("completed", "error")


def parse(text: str) -> Samples:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def scrape(url: str) -> Samples:
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.get(url + "/metrics")
    assert answer.status_code == 200, answer.text
    return parse(answer.text)


def total(found: Samples, name: str) -> float:
    return sum(v for (n, _), v in found.items() if n == name)


def one(found: Samples, name: str, **labels: str) -> float:
    return found[(name, tuple(sorted(labels.items())))]


async def create(base_url: str, count: int, fresh_connections: bool = False) -> None:
    limits = httpx.Limits(max_keepalive_connections=0) if fresh_connections else None
    async with httpx.AsyncClient(base_url=base_url, timeout=30,
                                 **({"limits": limits} if limits else {})) as http:
        answers = await asyncio.gather(*(http.post("/tasks", json={"title": f"m{i}"})
                                         for i in range(count)))
    assert [a.status_code for a in answers] == [201] * count


async def test_api_and_worker_metrics_add_up_to_what_was_created_and_finished(
    stack: Stack, rabbitmq_url: str, db: psycopg.Connection,
) -> None:
    stack.migrate()
    stack.api()
    worker_url = f"http://127.0.0.1:{free_port()}"
    stack.worker(TASKS_WORKER_HTTP_PORT=worker_url.rsplit(":", 1)[1])
    over_http, over_amqp = 40, 5
    await create(stack.base_url, over_http)
    async with amqp_client(rabbitmq_url) as amqp:
        for i in range(over_amqp):
            await amqp.publish(f'{{"title": "amqp {i}"}}'.encode(), message_id=f"m-{i}")
        await amqp.publish(b"not json", message_id="bad-1")
    created = over_http + over_amqp

    def all_final() -> bool:
        return db.execute("SELECT count(*) FROM tasks WHERE status IN ('completed', 'error')"
                          ).fetchone()[0] == created

    await eventually(all_final, 60, "every task to finish")

    async def settled() -> Samples | None:
        found = await scrape(stack.base_url)
        done = (one(found, "tasks_outbox_pending") == 0
                and one(found, "tasks_dead_letters", queue="tasks.create.dlq") == 1)
        return found if done else None

    api = await eventually(settled, 15, "the outbox to drain and the bad message to be dead")
    worker = await scrape(worker_url)
    both = [api, worker]
    assert one(api, "tasks_created_total", source="api") == over_http
    assert one(api, "tasks_created_total", source="amqp") == over_amqp
    assert sum(total(f, "tasks_created_total") for f in both) == created
    finished = {s: sum(one(f, "tasks_finished_total", status=s) for f in both) for s in FINAL}
    assert sum(finished.values()) == created
    by_status = {s: one(api, "tasks_by_status", status=s)
                 for s in ("new", "in_progress", "completed", "error")}
    assert by_status == {"new": 0, "in_progress": 0, **finished}
    assert one(worker, "tasks_queue_wait_seconds_count") == created
    assert one(worker, "tasks_processing_seconds_count") == created
    assert one(worker, "tasks_processing_seconds_bucket", le="+Inf") == created
    assert one(api, "tasks_oldest_new_age_seconds") == 0
    assert one(api, "tasks_dead_letters", queue="tasks.dispatch.dlq") == 0
    assert one(api, "tasks_http_requests_total",
               method="POST", route="/tasks", status_code="201") == over_http
    async with httpx.AsyncClient(timeout=10) as http:
        assert (await http.get(worker_url + "/health/ready")).status_code == 200


def counter_values(directory: Path, name: str) -> dict[str, float]:
    """The value of counter `name` in each process's file, by the file's name."""
    found = {}
    for path in directory.glob("counter_*.db"):
        alone = directory.parent / f"one-{path.stem}"
        alone.mkdir()
        shutil.copy(path, alone / path.name)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(alone))
        found[path.name] = sum(s.value for m in registry.collect() for s in m.samples
                               if s.name == name)
        shutil.rmtree(alone)
    return found


def leave_an_earlier_runs_file(directory: Path) -> None:
    stale = ("from prometheus_client import Counter; "
             "Counter('tasks_created', 'x', ['source']).labels('api').inc(1000)")
    subprocess.run([sys.executable, "-c", stale], check=True,
                   env={"PROMETHEUS_MULTIPROC_DIR": str(directory)})


async def test_with_two_api_processes_a_scrape_counts_the_creates_of_both(
    stack: Stack, tmp_path: Path,
) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    leave_an_earlier_runs_file(directory)
    assert counter_values(directory, "tasks_created_total") != {}  # an earlier run's file
    stack.migrate()
    api = stack.api(TASKS_HTTP_WORKERS="2", PROMETHEUS_MULTIPROC_DIR=str(directory))
    try:
        made = 0
        for _ in range(10):  # new connections until both processes have taken some
            await create(stack.base_url, 20, fresh_connections=True)
            made += 20
            per_process = counter_values(directory, "tasks_created_total")
            if len(per_process) == 2 and all(per_process.values()):
                break
        assert len(per_process) == 2 and all(per_process.values()), per_process
        assert sum(per_process.values()) == made
        for _ in range(3):  # whichever process answers, the sum is the same
            assert one(await scrape(stack.base_url), "tasks_created_total",
                       source="api") == made
    finally:
        # SIGTERM: uvicorn's supervisor stops its processes (a SIGKILL would orphan them)
        await asyncio.to_thread(api.stop)


async def test_a_worker_whose_port_is_taken_warns_once_and_still_works(
    stack: Stack, db: psycopg.Connection,
) -> None:
    stack.migrate()
    stack.api()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        worker = stack.worker(TASKS_WORKER_HTTP_PORT=str(taken.getsockname()[1]))
        await create(stack.base_url, 3)

        def finished() -> bool:
            return db.execute("SELECT count(*) FROM tasks WHERE status IN ('completed', 'error')"
                              ).fetchone()[0] == 3

        await eventually(finished, 30, "the worker to finish the tasks")
    warnings = [line for line in worker.log().splitlines() if "worker_http_unavailable" in line]
    assert len(warnings) == 1, worker.log()
    assert '"level": "warning"' in warnings[0]
