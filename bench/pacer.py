"""Open-loop POST /tasks at a fixed rate on raw keep-alive sockets: `python -m bench.pacer`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass

from bench.stats import percentile

TICK = 0.002  # how often the clock is checked for requests that are due


@dataclass
class Paced:
    offered: float
    sent: int
    created: int
    failed: int
    seconds: float
    late: int  # requests sent later than due because every connection was busy
    p50: float
    p99: float
    cpu_seconds: float


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request at a time; answers must carry a
    Content-Length (as the service's JSON answers do)."""

    def __init__(self, pacer: Pacer) -> None:
        self.pacer = pacer
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.sent_at = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def send(self, request: bytes) -> None:
        assert self.transport is not None
        self.sent_at = time.perf_counter()
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        head_end = self.buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return
        head = self.buffer[:head_end].lower()
        start = head.find(b"content-length:")
        if start < 0:
            raise RuntimeError("an answer without Content-Length")
        line_end = head.find(b"\r\n", start)
        length = int(head[start + 15 : line_end if line_end >= 0 else len(head)].strip())
        if len(self.buffer) < head_end + 4 + length:
            return
        status = int(self.buffer[9:12])
        self.buffer = self.buffer[head_end + 4 + length :]
        self.pacer.answered(self, status, time.perf_counter() - self.sent_at)

    def connection_lost(self, exc: Exception | None) -> None:
        self.pacer.lost(self)


class Pacer:
    def __init__(self, host: str, port: int, title: str) -> None:
        self.host, self.port = host, port
        body = json.dumps({"title": title}).encode()
        self.request = (
            f"POST /tasks HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        self.idle: deque[Connection] = deque()
        self.connections: list[Connection] = []
        self.owed = 0  # due but not yet sent: no idle connection
        self.late = self.created = self.failed = self.busy = 0
        self.latencies: list[float] = []
        self.quiet = asyncio.Event()  # set when no request is out or owed

    async def open(self, count: int) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(count):
            _, conn = await loop.create_connection(lambda: Connection(self), self.host, self.port)
            self.connections.append(conn)
            self.idle.append(conn)

    def due(self, count: int) -> None:
        for _ in range(count):
            if self.idle:
                self.busy += 1
                self.idle.popleft().send(self.request)
            else:
                self.owed += 1

    def answered(self, conn: Connection, status: int, seconds: float) -> None:
        self.busy -= 1
        self.latencies.append(seconds)
        if status == 201:
            self.created += 1
        else:
            self.failed += 1
        if self.owed:
            self.owed -= 1
            self.late += 1
            self.busy += 1
            conn.send(self.request)
        else:
            self.idle.append(conn)
            if not self.busy:
                self.quiet.set()

    def lost(self, conn: Connection) -> None:
        if conn not in self.idle:
            self.busy -= 1
            self.failed += 1
            if not self.busy:
                self.quiet.set()
        else:
            self.idle.remove(conn)

    async def run(self, rate: float, seconds: float, connections: int) -> Paced:
        await self.open(connections)
        print("ready", flush=True)
        sys.stdin.readline()  # the caller has started its counters
        cpu, begin = time.process_time(), time.perf_counter()
        total, sent = round(rate * seconds), 0
        while sent < total:
            await asyncio.sleep(TICK)
            now = min(total, int((time.perf_counter() - begin) * rate) + 1)
            self.due(now - sent)
            sent = now
        self.quiet.clear()
        if self.busy or self.owed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.quiet.wait(), 30)
        elapsed = time.perf_counter() - begin
        for conn in self.connections:
            if conn.transport is not None:
                conn.transport.close()
        return Paced(
            rate,
            total,
            self.created,
            self.failed + self.owed + self.busy,
            elapsed,
            self.late,
            percentile(self.latencies, 50),
            percentile(self.latencies, 99),
            time.process_time() - cpu,
        )


class PacerProcess:
    """`python -m bench.pacer` in a process of its own, connected and waiting for `go`, so that
    the caller starts its counters right before the first request."""

    def __init__(self, port: int, rate: float, seconds: float, title: str) -> None:
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "bench.pacer", f"--port={port}", f"--rate={rate}",
             f"--seconds={seconds}", f"--title={title}"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert self.popen.stdout is not None
        if self.popen.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the pacer did not start (exit {self.popen.wait(10)})")

    def go(self) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.write("go\n")
        self.popen.stdin.close()

    def running(self) -> bool:
        return self.popen.poll() is None

    def result(self) -> Paced:
        """What it reports once it has sent every request and had every answer."""
        assert self.popen.stdout is not None
        out = self.popen.stdout.read().strip().splitlines()
        if self.popen.wait() != 0 or not out:
            raise RuntimeError(f"the pacer failed (exit {self.popen.returncode})")
        return Paced(**json.loads(out[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pacer", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--title", default="paced")
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    pacer = Pacer(args.host, args.port, args.title)
    result = asyncio.run(pacer.run(args.rate, args.seconds, args.connections))
    print(json.dumps(asdict(result)), flush=True)


if __name__ == "__main__":
    main()
