"""1. POST /tasks at N connections, against GET /health/live of the same api as the no-op."""

from __future__ import annotations

from bench.context import Context, Row
from bench.infra import sandbox
from bench.load import LoadResult, hammer
from bench.stats import ms

BODY = b'{"title": "bench", "payload": {"n": 1}}'


def _describe(result: LoadResult) -> str:
    failed = f", {result.failed} failed" if result.failed else ""
    return f"{result.rps:,.0f} req/s, p50 {ms(result.p50)}, p99 {ms(result.p99)}{failed}"


def run(ctx: Context) -> list[Row]:
    rows: list[Row] = []
    seconds, conns = ctx.sizes.http_seconds, ctx.sizes.connections
    with sandbox(ctx.admin, ctx.log_dir) as stack:
        for workers in (1, 2):
            api = stack.api(TASKS_HTTP_WORKERS=str(workers))
            noop = hammer(ctx.load_tool, stack.base_url + "/health/live", None, seconds, conns)
            post = hammer(ctx.load_tool, stack.base_url + "/tasks", BODY, seconds, conns)
            api.stop()
            rows += _rows(workers, conns, seconds, post, noop)
    return rows


def _rows(
    workers: int, conns: int, seconds: float, post: LoadResult, noop: LoadResult
) -> list[Row]:
    setting = f"HTTP_WORKERS={workers}, {conns} conns, {seconds:g} s, {post.tool}"
    ratio = post.rps / noop.rps if noop.rps else float("nan")
    return [
        Row("POST /tasks", setting, _describe(post)),
        Row("GET /health/live (no-op)", setting, _describe(noop)),
        Row("POST / no-op throughput", setting, f"{ratio:.2f}"),
    ]
