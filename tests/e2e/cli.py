"""The installed `tasks` script run as a user runs it: at once, or read line by line as it goes."""

from __future__ import annotations

import os
import queue
import subprocess
import threading

from tests.support.processes import TASKS, Stack


def client_env(url: str, **extra: str) -> dict[str, str]:
    """The user's environment: none of the service's settings, TASKS_URL set."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TASKS_")}
    return {**clean, "TASKS_URL": url, "NO_COLOR": "1", **extra}


def tasks(stack: Stack | str, *args: str, timeout: float = 60,
          **env: str) -> subprocess.CompletedProcess[str]:
    url = stack if isinstance(stack, str) else stack.base_url
    return subprocess.run([TASKS, *args], env=client_env(url, **env), capture_output=True,
                          text=True, timeout=timeout)


class Live:
    """A running `tasks` command; its stdout lines arrive through a queue as it prints them."""

    def __init__(self, stack: Stack, *args: str, **env: str) -> None:
        self.popen = subprocess.Popen([TASKS, *args], env=client_env(stack.base_url, **env),
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True)
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def next_line(self, timeout: float = 30) -> str:
        """The next line printed; fails if none comes within `timeout` or the output ends."""
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no new line within {timeout}s after {self.seen}") from None
        assert line is not None, f"the output ended after {self.seen}: {self.stderr()}"
        self.seen.append(line)
        return line

    def running(self) -> bool:
        return self.popen.poll() is None

    def finish(self, timeout: float = 30) -> int:
        """The exit status, once every line has been read."""
        code = self.popen.wait(timeout)
        while (line := self._lines.get(timeout=5)) is not None:
            self.seen.append(line)
        return code

    def stderr(self) -> str:
        if self.running():
            return "(still running)"
        assert self.popen.stderr is not None
        return self.popen.stderr.read()

    def close(self) -> None:
        if self.running():
            self.popen.kill()
        self.popen.wait(10)
        for stream in (self.popen.stdout, self.popen.stderr):
            if stream is not None:
                stream.close()

