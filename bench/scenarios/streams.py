"""7. Open event streams: delay from a change to the client, API RSS, and the cost to POST."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from bench import db
from bench.context import Context, Row
from bench.infra import Proc, Stack, sandbox, wait_until, wait_workers
from bench.load import LoadResult, hammer
from bench.rawhttp import Paced, paced_posts
from bench.sampling import oldest_writer, peak
from bench.scenarios.drain import NO_WORK
from bench.scenarios.http_post import BODY
from bench.sse import Received, Streams
from bench.stats import mib, ms, p50_p99

PROBES = 10  # streams that time every event; the rest only count them


def settle(stack: Stack) -> int:
    """Until every task is final; the number of history rows then."""
    with stack.db() as conn:
        wait_until(lambda: db.tasks(conn, "status NOT IN ('completed', 'error')") == 0,
                   120, "every task to be final", every=0.2)
        return db.scalar(conn, "SELECT count(*) FROM task_history")


def _caught_up(streams: Streams, events: int) -> None:
    """Until the timed streams have every change, or 60 s have passed (the row says how
    many arrived)."""
    deadline = time.monotonic() + 60
    while streams.timed_events() < events and time.monotonic() < deadline:
        time.sleep(0.1)


@dataclass
class Watched:
    """One round: `count` streams open while tasks were posted at a steady rate."""

    count: int
    paced: Paced
    got: Received
    changes: int  # history rows written while they were open
    rss: tuple[int, int]  # KiB: with the streams open, peak
    busy: LoadResult  # POST /tasks at full speed with them open
    oldest: float  # s: the oldest writing transaction in the database meanwhile (holds events)


def watch(ctx: Context, stack: Stack, api: Proc, count: int) -> Watched:
    s = ctx.sizes
    before = settle(stack)
    streams = Streams(stack.base_url, "/events", count, min(PROBES, count))
    try:
        streams.wait_open(60 + count / 20)
        time.sleep(1)  # every stream has joined the feed
        open_rss = api.rss_kib()
        with stack.db() as conn, peak(api.rss_kib) as rss, peak(oldest_writer(conn)) as held:
            paced = asyncio.run(paced_posts(stack.base_url, "/tasks", BODY, s.stream_rate,
                                            s.stream_seconds))
            changes = settle(stack) - before
            _caught_up(streams, min(PROBES, count) * changes)
            streams.mark()
            oldest = held[0]
            busy = hammer(ctx.load_tool, stack.base_url + "/tasks", BODY, s.stream_seconds,
                          s.connections)
    finally:
        got = streams.close()
    return Watched(count, paced, got, changes, (open_rss, int(rss[0])), busy, oldest)


def run(ctx: Context) -> list[Row]:
    s = ctx.sizes
    with sandbox(ctx.admin, ctx.log_dir, **NO_WORK) as stack:
        api = stack.api()
        url = stack.base_url + "/tasks"
        alone = hammer(ctx.load_tool, url, BODY, s.stream_seconds, s.connections)
        stack.worker()  # only now: the row above is measured as the `http` scenario does
        wait_workers(stack, 1)
        settle(stack)
        quiet = hammer(ctx.load_tool, url, BODY, s.stream_seconds, s.connections)
        settle(stack)
        idle_rss = api.rss_kib()
        rounds = [watch(ctx, stack, api, count) for count in s.streams]
    setting = f"{s.connections} conns, {s.stream_seconds:g} s, {quiet.tool}"
    rows = [Row("POST /tasks, no stream open", f"HTTP_WORKERS=1, {setting}, no worker (as http)",
                f"{alone.rps:,.0f} req/s, p50 {ms(alone.p50)}, p99 {ms(alone.p99)}"),
            Row("POST /tasks, no stream open", f"{setting}, 1 worker",
                f"{quiet.rps:,.0f} req/s, p50 {ms(quiet.p50)}, p99 {ms(quiet.p99)}; "
                f"API RSS {mib(idle_rss)}")]
    for round_ in rounds:
        rows += _rows(ctx, round_, quiet)
    return rows


def _rows(ctx: Context, w: Watched, quiet: LoadResult) -> list[Row]:
    s = ctx.sizes
    setting = f"{w.count:,} x GET /events, {s.stream_rate:g} tasks/s for {s.stream_seconds:g} s"
    delays = [d for d, _ in w.got.delays]
    changed = [d for d, created in w.got.delays if not created]
    probes = min(PROBES, w.count)
    each = sum(w.got.marked[:probes]) / probes
    paced, busy = w.paced, w.busy
    return [
        Row("Stream delay (at -> client)", setting,
            f"{p50_p99(delays)}, max {ms(max(delays, default=float('nan')))} "
            f"(workers' changes only: {p50_p99(changed)}); {each:,.0f} events per timed "
            f"stream ({probes}) for {w.changes:,} changes written in the round; oldest "
            f"writing transaction in the database meanwhile {w.oldest:.1f} s"),
        Row("Stream: API RSS", setting, f"{mib(w.rss[0])} open, peak {mib(w.rss[1])}"),
        Row("Stream: load generators", setting,
            f"SSE client {100 * w.got.cpu / w.got.seconds:.0f}% of a core, "
            f"{sum(w.got.marked):,} events read; POSTs {paced.sent_rate:,.0f}/s sent, "
            f"{p50_p99(paced.latencies)}, "
            f"client {100 * paced.cpu / max(paced.seconds, 1e-9):.0f}% of a core"
            + (f", {paced.failed} failed" if paced.failed else "")),
        Row(f"POST /tasks, {w.count:,} streams open",
            f"{s.connections} conns, {s.stream_seconds:g} s, {busy.tool}, 1 worker",
            f"{busy.rps:,.0f} req/s, p50 {ms(busy.p50)}, p99 {ms(busy.p99)} "
            f"({busy.rps / quiet.rps if quiet.rps else float('nan'):.2f} of no stream)"),
    ]
