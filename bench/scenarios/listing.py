"""6. GET /tasks latency over many stored tasks: first pages and a deep keyset page."""

from __future__ import annotations

import time

import httpx

from bench import db
from bench.context import Context, Row
from bench.infra import BenchError, sandbox
from bench.load import sequential_gets
from bench.stats import p50_p99


def deep_cursor(client: httpx.Client, params: dict[str, str], pages: int) -> tuple[str, int]:
    """Follow next_cursor `pages` times (fewer if the walk ends first): the last cursor and
    the number of the page it leads to."""
    cursor: str | None = None
    page = 1
    for _ in range(pages):
        answer = client.get("/tasks", params={**params, **({"cursor": cursor} if cursor else {})})
        if answer.status_code != 200:
            raise BenchError(f"GET /tasks answered {answer.status_code}: {answer.text}")
        following = answer.json()["next_cursor"]
        if following is None:
            break
        cursor, page = following, page + 1
    if cursor is None:
        raise BenchError("GET /tasks gave no next_cursor on its first page")
    return cursor, page


def run(ctx: Context) -> list[Row]:
    count, requests = ctx.sizes.stored_tasks, ctx.sizes.list_requests
    with sandbox(ctx.admin, ctx.log_dir) as stack:
        with stack.db() as conn:
            started = time.monotonic()
            db.bulk_load(conn, count)
            loaded = time.monotonic() - started
        stack.api()
        rows = [
            Row(
                "GET /tasks: bulk load",
                f"{count:,} rows, INSERT ... SELECT + ANALYZE",
                f"{loaded:.1f} s",
            )
        ]
        with httpx.Client(base_url=stack.base_url, timeout=30) as client:
            sequential_gets(client, "/health/live", {}, 5)  # warm-up
            noop = sequential_gets(client, "/health/live", {}, requests)
            rows.append(Row("GET /health/live (no-op)", f"{requests} sequential, same client",
                            p50_p99(noop)))
            for label, params in (("no filter", {}), ("status=completed", {"status": "completed"})):
                sequential_gets(client, "/tasks", params, 5)  # warm-up
                first = sequential_gets(client, "/tasks", params, requests)
                cursor, page = deep_cursor(client, params, ctx.sizes.deep_pages)
                deep = sequential_gets(client, "/tasks", {**params, "cursor": cursor}, requests)
                setting = f"{count:,} rows, {label}, limit 50, {requests} sequential"
                rows += [
                    Row("GET /tasks first page", setting, p50_p99(first)),
                    Row(f"GET /tasks page {page}", setting, p50_p99(deep)),
                ]
    return rows
