"""HTTP load: closed-loop at N connections (wrk, oha or httpx), paced posts, bulk creation."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

from bench.infra import BenchError
from bench.stats import percentile

TOOLS = ("auto", "wrk", "oha", "httpx")
JSON = {"content-type": "application/json"}


@dataclass
class LoadResult:
    tool: str
    ok: int
    failed: int
    seconds: float
    p50: float
    p99: float

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else 0.0


def pick_tool(wanted: str) -> str:
    if wanted != "auto":
        if wanted != "httpx" and not shutil.which(wanted):
            raise SystemExit(f"bench: --load-tool {wanted} is not on PATH")
        return wanted
    return next((t for t in ("wrk", "oha") if shutil.which(t)), "httpx")


def hammer(tool: str, url: str, body: bytes | None, seconds: float, connections: int) -> LoadResult:
    """As many requests as `connections` keep-alive connections carry in `seconds`:
    POST `body` as JSON, or GET when `body` is None. Only 2xx answers count as done."""
    if tool == "wrk":
        return _wrk(url, body, seconds, connections)
    if tool == "oha":
        return _oha(url, body, seconds, connections)
    return asyncio.run(_httpx(url, body, seconds, connections))


_WRK_DONE = """
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH-RESULT %d %d %d %d %d %d %d %f %f\\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def _wrk(url: str, body: bytes | None, seconds: float, connections: int) -> LoadResult:
    script = _WRK_DONE
    if body is not None:
        script = (
            f'wrk.method = "POST"\nwrk.body = [[{body.decode()}]]\n'
            f'wrk.headers["Content-Type"] = "application/json"\n{script}'
        )
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        lua.write(script)
        lua.flush()
        out = _run(
            [
                "wrk",
                f"-t{min(2, connections)}",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "--timeout",
                "10s",
                "-s",
                lua.name,
                url,
            ],
            seconds,
        )
    line = next((x for x in out.splitlines() if x.startswith("BENCH-RESULT")), None)
    if line is None:
        raise BenchError(f"wrk printed no result: {out[-500:]}")
    done, micros, *errors, p50, p99 = (float(x) for x in line.split()[1:])
    status_errors = errors[3]
    return LoadResult(
        "wrk", int(done - status_errors), int(sum(errors)), micros / 1e6, p50 / 1e6, p99 / 1e6
    )


def _oha(url: str, body: bytes | None, seconds: float, connections: int) -> LoadResult:
    args = ["oha", "-z", f"{max(1, round(seconds))}s", "-c", str(connections), "--no-tui"]
    if body is not None:
        args += ["-m", "POST", "-T", "application/json", "-d", body.decode()]
    try:
        out = _run([*args, "--output-format", "json", url], seconds)
    except BenchError:
        out = _run([*args, "-j", url], seconds)  # oha before --output-format
    report = json.loads(out)
    codes = {str(k): int(v) for k, v in report.get("statusCodeDistribution", {}).items()}
    ok = sum(v for k, v in codes.items() if k.startswith("2"))
    failed = sum(codes.values()) - ok + sum(report.get("errorDistribution", {}).values())
    latency = report["latencyPercentiles"]
    return LoadResult(
        "oha",
        ok,
        failed,
        float(report["summary"]["total"]),
        float(latency["p50"] or "nan"),
        float(latency["p99"] or "nan"),
    )


def _run(args: list[str], seconds: float) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0:
        raise BenchError(f"{args[0]} failed: {done.stderr[-500:]}")
    return done.stdout


async def _httpx(url: str, body: bytes | None, seconds: float, connections: int) -> LoadResult:
    """One asyncio task per connection, each with its own one-connection client (a shared
    pool serialises on its lock), sending back to back. The first `warmup` seconds
    (connection set-up) are not counted."""
    warmup = min(1.0, seconds / 4)
    latencies: list[float] = []
    failed = 0
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    clients = [
        httpx.AsyncClient(limits=limits, timeout=30, verify=False) for _ in range(connections)
    ]  # made before the clock starts: each costs CPU
    begin = time.perf_counter()
    start, end = begin + warmup, begin + warmup + seconds

    async def one_connection(client: httpx.AsyncClient) -> None:
        nonlocal failed
        async with client:
            while (sent := time.perf_counter()) < end:
                try:
                    if body is None:
                        answer = await client.get(url)
                    else:
                        answer = await client.post(url, content=body, headers=JSON)
                    good = answer.is_success
                except httpx.HTTPError:
                    good = False
                back = time.perf_counter()
                if start <= back <= end:
                    if good:
                        latencies.append(back - sent)
                    else:
                        failed += 1

    await asyncio.gather(*(one_connection(c) for c in clients))
    return LoadResult(
        "httpx",
        len(latencies),
        failed,
        seconds,
        percentile(latencies, 50),
        percentile(latencies, 99),
    )


@dataclass
class Paced:
    ids: list[str]
    failures: Counter[str]
    seconds: float
    #: when each failure came back (time.monotonic()) and its cause
    failed_at: list[tuple[float, str]] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return sum(self.failures.values())


async def paced_posts(
    base_url: str, per_second: float, seconds: float, connections: int = 32
) -> Paced:
    """Open loop: request i is sent at i / per_second whatever the earlier ones are doing,
    on connection i % `connections` (one single-connection client each: a shared httpx pool
    could not send even 50 requests/s on a slow day). Failures are counted by cause."""
    total = max(1, round(per_second * seconds))
    ids: list[str] = []
    failures: Counter[str] = Counter()
    failed_at: list[tuple[float, str]] = []
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    clients = [
        httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60)
        for _ in range(connections)
    ]
    begin = time.perf_counter()

    async def one(i: int) -> None:
        await asyncio.sleep(max(0.0, begin + i / per_second - time.perf_counter()))
        try:
            answer = await clients[i % connections].post("/tasks", json={"title": f"paced-{i}"})
        except httpx.HTTPError as exc:
            failures[type(exc).__name__] += 1
            failed_at.append((time.monotonic(), type(exc).__name__))
            return
        if answer.status_code == 201:
            ids.append(answer.json()["id"])
        else:
            failures[f"HTTP {answer.status_code}"] += 1
            failed_at.append((time.monotonic(), f"HTTP {answer.status_code}"))

    try:
        await asyncio.gather(*(one(i) for i in range(total)))
        return Paced(ids, failures, time.perf_counter() - begin, failed_at)
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))


def sequential_gets(
    client: httpx.Client, path: str, params: dict[str, str], count: int
) -> list[float]:
    """`count` GETs one after the other on one keep-alive connection; their latencies."""
    latencies: list[float] = []
    for _ in range(count):
        sent = time.perf_counter()
        answer = client.get(path, params=params)
        latencies.append(time.perf_counter() - sent)
        if answer.status_code != 200:
            raise BenchError(f"GET {path} {params} answered {answer.status_code}: {answer.text}")
    return latencies
