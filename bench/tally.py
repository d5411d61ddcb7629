"""Scrape the API and a worker while tasks flow, and check the counters against the database."""

from __future__ import annotations

import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench import db
from bench.context import Row
from bench.infra import Stack, free_port, wait_until, wait_workers
from bench.load import hammer

NO_WORK = {"TASKS_PROCESSING_MIN_SECONDS": "0", "TASKS_PROCESSING_MAX_SECONDS": "0"}
BODY = b'{"title": "tally", "payload": {"n": 1}}'


def totals(text: str, family: str) -> float:
    """The sum of a counter family's samples over every label value."""
    return sum(sample.value for metric in text_string_to_metric_families(text)
               if metric.name == family for sample in metric.samples
               if sample.name == f"{family}_total")


def run(stack: Stack, tool: str, seconds: float, connections: int) -> Row:
    """POST for `seconds` to two API processes with a worker finishing at once, wait until
    every task is finished, then compare what the scrapes say with what the tables hold."""
    port = free_port()
    stack.api(TASKS_HTTP_WORKERS="2")
    worker = stack.worker(TASKS_WORKER_HTTP_PORT=str(port), **NO_WORK)
    wait_workers(stack, 1, procs=[worker])
    posted = hammer(tool, stack.base_url + "/tasks", BODY, seconds, connections)
    time.sleep(2)  # requests still in flight when the load stopped commit after it
    with stack.db() as conn:
        created = db.tasks(conn)
        wait_until(lambda: db.finished(conn) >= created, 60 + created / 50,
                   f"{created} tasks to finish", every=0.2)
        created, finished = db.tasks(conn), db.finished(conn)
    time.sleep(1)  # the worker counts a finish just after its commit
    api = httpx.get(stack.base_url + "/metrics", timeout=30).text
    own = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
    scraped_created = totals(api, "tasks_created") + totals(own, "tasks_created")
    scraped_finished = totals(api, "tasks_finished") + totals(own, "tasks_finished")
    verdict = "add up" if (scraped_created, scraped_finished) == (created, finished) else "DIFFER"
    return Row(
        "Metrics during a run",
        f"2 API processes + 1 worker, {seconds:g} s of POST /tasks ({posted.rps:,.0f} req/s)",
        f"{verdict}: tasks_created_total {scraped_created:,.0f} vs {created:,} rows; "
        f"tasks_finished_total {scraped_finished:,.0f} vs {finished:,} finished",
    )
