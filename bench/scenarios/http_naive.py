"""10. POST /tasks of the service against a naive Litestar app doing one INSERT, interleaved."""

from __future__ import annotations

from bench.baselines import naive_app
from bench.context import Context, Row
from bench.infra import sandbox
from bench.load import LoadResult, hammer
from bench.scenarios.http_post import BODY, _describe

ROUNDS = 2  # naive, service, naive, service: a drift of the box shows as a gap between rounds


def _rps(results: list[LoadResult]) -> float:
    return sum(r.rps for r in results) / len(results)


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def run(ctx: Context) -> list[Row]:
    """Each in a database of its own, both up throughout (the idle one costs next to nothing);
    the service without a worker, as in the `http` scenario."""
    seconds, conns, tool = ctx.sizes.http_seconds, ctx.sizes.connections, ctx.load_tool
    naive: list[LoadResult] = []
    service: list[LoadResult] = []
    with sandbox(ctx.admin, ctx.log_dir) as alone, sandbox(ctx.admin, ctx.log_dir) as stack:
        _, naive_url = naive_app(alone, workers=1)
        stack.api(TASKS_HTTP_WORKERS="1")
        for _ in range(ROUNDS):
            naive.append(hammer(tool, naive_url + "/tasks", BODY, seconds, conns))
            service.append(hammer(tool, stack.base_url + "/tasks", BODY, seconds, conns))
        noop = hammer(tool, stack.base_url + "/health/live", None, seconds, conns)
    setting = f"HTTP_WORKERS=1, {conns} conns, {seconds:g} s, {tool}"
    rounds = f"{setting}, naive and service taking turns"
    runs = "; ".join(f"run {i + 1} {_ratio(s.rps, n.rps)}"
                     for i, (s, n) in enumerate(zip(service, naive, strict=True)))
    return [
        Row("POST /tasks, naive app (one INSERT)", rounds,
            "; ".join(f"run {i + 1}: {_describe(r)}" for i, r in enumerate(naive))),
        Row("POST /tasks, service", rounds,
            "; ".join(f"run {i + 1}: {_describe(r)}" for i, r in enumerate(service))),
        Row("POST /tasks: service against the naive Litestar + one-INSERT app, same run", setting,
            f"{_ratio(_rps(service), _rps(naive))} ({_rps(service):,.0f} against "
            f"{_rps(naive):,.0f} req/s; {runs})"),
        Row("GET /health/live (no-op)", setting, _describe(noop)),
        Row("POST / no-op throughput", setting + ", service's POST runs",
            f"{_rps(service) / noop.rps:.2f}" if noop.rps else "n/a"),
    ]
