"""A fresh database and vhost per scenario, and real `tasks` processes against them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import aio_pika
import httpx
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

T = TypeVar("T")
TASKS = str(Path(sys.executable).with_name("tasks"))
ADMIN_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
ADMIN_RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/"
DISPATCH_QUEUE = "tasks.dispatch"  # internal to the service: see adapters/rabbitmq/topology.py


class BenchError(Exception):
    """A scenario could not be measured (a timeout, a process that died)."""


def wait_until(check: Callable[[], T], timeout: float, what: str, every: float = 0.1) -> T:
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise BenchError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Admin:
    """Admin URLs of the local services: makes and drops databases and vhosts."""

    database_url: str = ADMIN_DATABASE_URL
    rabbitmq_url: str = ADMIN_RABBITMQ_URL
    template: str | None = None  # a database migrated once, copied by new_database

    def rabbitmqctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["rabbitmqctl", *args], capture_output=True, text=True, timeout=120, check=check
        )

    def new_vhost(self) -> str:
        name = f"tasks-bench-{uuid.uuid4().hex[:10]}"
        parts = urllib.parse.urlsplit(self.rabbitmq_url)
        self.rabbitmqctl("add_vhost", name)
        self.rabbitmqctl("set_permissions", "-p", name, parts.username or "guest", ".*", ".*", ".*")
        return urllib.parse.urlunsplit(parts._replace(path="/" + urllib.parse.quote(name, safe="")))

    def drop_vhost(self, url: str) -> None:
        name = urllib.parse.unquote(urllib.parse.urlsplit(url).path.lstrip("/"))
        self.rabbitmqctl("delete_vhost", name, check=False)

    def new_database(self) -> str:
        name = f"tasks_bench_{uuid.uuid4().hex[:10]}"
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if self.template:
            query = sql.SQL("{} TEMPLATE {}").format(query, sql.Identifier(self.template))
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute(query)
        return make_conninfo(self.database_url, dbname=name)

    def drop_database(self, url: str) -> None:
        name = str(conninfo_to_dict(url)["dbname"])
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


class Proc:
    """One `tasks` subprocess (or `program`) in its own session (so its uvicorn children go
    with it)."""

    def __init__(
        self,
        name: str,
        args: list[str],
        env: dict[str, str],
        log_dir: Path,
        program: Sequence[str] = (TASKS,),
    ) -> None:
        self.name = name
        self.log_path = Path(tempfile.mkstemp(prefix=f"{name}-", suffix=".log", dir=log_dir)[1])
        with self.log_path.open("wb") as log:
            self.popen = subprocess.Popen(
                [*program, *args],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid = self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def rss_kib(self) -> int:
        """VmRSS of the process itself (0 once it is gone)."""
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process itself so far (0 once it is gone)."""
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return 0.0

    def kill(self) -> None:
        """SIGKILL to this process only: no hand-back, no ack."""
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
        self.popen.wait(10)

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM; SIGKILL to its process group if it has not exited within `timeout`."""
        if self.alive():
            os.kill(self.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            # still running, so its pid (and group id) is still ours: take its children too
            os.killpg(self.pid, signal.SIGKILL)
            self.popen.wait(10)

    def tail(self, chars: int = 2000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


class Stack:
    """`tasks` commands against one database and one vhost."""

    def __init__(
        self, database_url: str, rabbitmq_url: str, log_dir: Path, **settings: str
    ) -> None:
        self.database_url = database_url
        self.rabbitmq_url = rabbitmq_url
        self.log_dir = log_dir
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("TASKS_")},
            "TASKS_DATABASE_URL": database_url,
            "TASKS_RABBITMQ_URL": rabbitmq_url,
            "TASKS_HTTP_HOST": "127.0.0.1",
            "TASKS_LOG_FORMAT": "json",
            "TASKS_LOG_LEVEL": "INFO",  # as in production: every step logged (JSON, to a file)
            **settings,
        }
        self.procs: list[Proc] = []
        self.base_url = ""

    def migrate(self) -> None:
        done = subprocess.run(
            [TASKS, "migrate"], env=self.env, capture_output=True, text=True, timeout=120
        )
        if done.returncode != 0:
            raise BenchError(f"tasks migrate failed: {done.stderr[-1000:]}")

    def start(self, command: str, *args: str, **extra: str) -> Proc:
        proc = Proc(command, [command, *args], {**self.env, **extra}, self.log_dir)
        self.procs.append(proc)
        return proc

    def api(self, *args: str, **extra: str) -> Proc:
        port = free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        proc = self.start("api", *args, TASKS_HTTP_PORT=str(port), **extra)
        self.wait_http(proc, "/health/ready")
        return proc

    def worker(self, **extra: str) -> Proc:
        return self.start("worker", **extra)

    def wait_http(self, proc: Proc, path: str, timeout: float = 60) -> None:
        def ok() -> bool:
            if not proc.alive():
                raise BenchError(f"{proc.name} exited ({proc.popen.returncode}):\n{proc.tail()}")
            try:
                return httpx.get(self.base_url + path, timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ok, timeout, f"{proc.name} to answer {path}", every=0.2)

    def db(self) -> psycopg.Connection[tuple]:
        return psycopg.connect(self.database_url, autocommit=True)

    def close(self) -> None:
        """SIGTERM to all at once, then wait for each."""
        for proc in self.procs:
            if proc.alive():
                os.kill(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            proc.stop(timeout=10)


@dataclass(frozen=True)
class BoxCpu:
    """Whole-machine CPU counters from /proc/stat, in seconds: busy (every process, the
    services and the load generator included) and steal (taken by the hypervisor)."""

    busy: float
    steal: float
    total: float

    @classmethod
    def now(cls) -> BoxCpu:
        ticks = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
        user, nice, system, _idle, _iowait, irq, softirq, steal = ticks
        hz = os.sysconf("SC_CLK_TCK")
        return cls((user + nice + system + irq + softirq) / hz, steal / hz, sum(ticks) / hz)

    def __sub__(self, earlier: BoxCpu) -> BoxCpu:
        return BoxCpu(self.busy - earlier.busy, self.steal - earlier.steal,
                      self.total - earlier.total)

    def per_task(self, tasks: int) -> str:
        """Busy CPU per task, and the share of time stolen (a noisy neighbour)."""
        steal = 100 * self.steal / self.total if self.total else 0.0
        return f"box CPU {1000 * self.busy / max(tasks, 1):.2f} ms/task (steal {steal:.0f}%)"


def queue_counts(url: str, queue: str) -> tuple[int, int]:
    """(ready messages, consumers) of `queue` in the vhost of `url` (the first node's, when it
    names several; (0, 0) while it is not declared)."""

    async def count() -> tuple[int, int]:
        connection = await aio_pika.connect(url.split(",")[0], timeout=10)
        try:
            channel = await connection.channel()
            declared = await channel.declare_queue(queue, passive=True)
            result = declared.declaration_result
            return int(result.message_count or 0), int(result.consumer_count or 0)
        except aio_pika.exceptions.ChannelClosed:
            return 0, 0
        finally:
            await connection.close()

    return asyncio.run(count())


def consumers(url: str, queue: str) -> int:
    """Consumers on `queue` (see queue_counts)."""
    return queue_counts(url, queue)[1]


def wait_workers(
    stack: Stack, count: int, timeout: float = 60, procs: Sequence[Proc] | None = None
) -> None:
    """Until `count` workers consume the dispatch queue of the stack's vhost; fails when one
    of `procs` (default: every worker of the stack) exits on its own."""
    watched = [p for p in stack.procs if p.name == "worker"] if procs is None else procs

    def ready() -> bool:
        for proc in watched:
            if not proc.alive() and proc.popen.returncode != -9:
                raise BenchError(f"worker exited:\n{proc.tail()}")
        return consumers(stack.rabbitmq_url, DISPATCH_QUEUE) >= count

    wait_until(ready, timeout, f"{count} worker(s) consuming", every=0.1)


@contextlib.contextmanager
def sandbox(admin: Admin, log_dir: Path, **settings: str) -> Iterator[Stack]:
    """A migrated fresh database and a fresh vhost (made side by side: each takes a second);
    processes, database and vhost are gone afterwards."""
    with ThreadPoolExecutor(2) as pool:
        database = pool.submit(admin.new_database)
        vhost = pool.submit(admin.new_vhost)
        wait([database, vhost])
    stack: Stack | None = None
    try:
        stack = Stack(database.result(), vhost.result(), log_dir, **settings)
        if not admin.template:
            stack.migrate()
        yield stack
    finally:
        if stack is not None:
            stack.close()
        with ThreadPoolExecutor(2) as pool:
            if not vhost.exception():
                pool.submit(admin.drop_vhost, vhost.result())
            if not database.exception():
                pool.submit(admin.drop_database, database.result())


@contextlib.contextmanager
def migrated_template(admin: Admin, log_dir: Path) -> Iterator[None]:
    """Run `tasks migrate` once, into a database that each sandbox is then copied from
    (a copy takes a fraction of the second that a `tasks migrate` process costs)."""
    url = admin.new_database()
    try:
        Stack(url, admin.rabbitmq_url, log_dir).migrate()
        admin.template = str(conninfo_to_dict(url)["dbname"])
        yield
    finally:
        admin.template = None
        admin.drop_database(url)


def new_log_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="tasks-bench-"))


def finish_log_dir(path: Path, keep: bool) -> None:
    """Process logs are removed after a clean run and kept (and named) after a failed one."""
    if keep:
        print(f"process logs kept in {path}", file=sys.stderr)
    else:
        shutil.rmtree(path, ignore_errors=True)
