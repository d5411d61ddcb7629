"""Real `tasks` processes for end-to-end and chaos tests, with their logs kept for failures."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx

T = TypeVar("T")
TASKS = str(Path(sys.executable).with_name("tasks"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], T], timeout: float, what: str, every: float = 0.1) -> T:
    """Poll `check` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class Proc:
    def __init__(self, name: str, args: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.log_path = Path(tempfile.mkstemp(prefix=f"tasks-{name}-", suffix=".log")[1])
        self._log = self.log_path.open("wb")
        self.popen = subprocess.Popen([TASKS, *args], env=env, stdout=self._log,
                                      stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            os.kill(self.pid, sig)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then SIGKILL if it does not exit within `timeout`."""
        self.signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.name} ignored SIGTERM for {timeout}s") from None

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.popen.wait(10)

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def close(self) -> None:
        """Release the log file (the process must have exited)."""
        self._log.close()


class Stack:
    """Starts `tasks` commands against one database and one vhost; stops them all at the end."""

    def __init__(self, database_url: str, rabbitmq_url: str, **settings: str) -> None:
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("TASKS_")},
            "TASKS_DATABASE_URL": database_url,
            "TASKS_RABBITMQ_URL": rabbitmq_url,
            "TASKS_HTTP_HOST": "127.0.0.1",
            "TASKS_PROCESSING_MIN_SECONDS": "0.05",
            "TASKS_PROCESSING_MAX_SECONDS": "0.2",
            "TASKS_LOG_FORMAT": "json",
            "TASKS_LOG_LEVEL": "INFO",
            **settings,
        }
        self.procs: list[Proc] = []
        self.base_url = ""

    def run(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([TASKS, *args], env={**self.env, **extra}, capture_output=True,
                              text=True, timeout=120)

    def migrate(self) -> None:
        done = self.run("migrate")
        assert done.returncode == 0, done.stderr

    def start(self, command: str, *args: str, **extra: str) -> Proc:
        env = {**self.env, **extra}
        proc = Proc(command, [command, *args], env)
        self.procs.append(proc)
        return proc

    def api(self, *args: str, wait_ready: bool = True, port: int | None = None,
            **extra: str) -> Proc:
        """`port`: the same one as a stopped API's, to restart it where clients expect it."""
        port = port or free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        proc = self.start("api", *args, TASKS_HTTP_PORT=str(port), **extra)
        if wait_ready:
            self.wait_http(proc, "/health/ready")
        return proc

    def wait_http(self, proc: Proc, path: str, timeout: float = 30) -> None:
        def ok() -> bool:
            assert proc.alive(), f"{proc.name} exited:\n{proc.log()}"
            try:
                return httpx.get(self.base_url + path, timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ok, timeout, f"{proc.name} to answer {path}")

    def worker(self, **extra: str) -> Proc:
        return self.start("worker", **extra)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=10)

    def close(self) -> None:
        for proc in self.procs:
            if proc.alive():
                proc.kill()
            proc.close()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ({p.log_path})\n{p.log()[-4000:]}" for p in self.procs)


async def eventually(check: Callable[[], object], timeout: float, what: str,
                     every: float = 0.1) -> object:
    """Async `wait_until`: `check` may be sync or async."""
    import asyncio
    import inspect

    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = check()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
