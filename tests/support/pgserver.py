"""Throwaway PostgreSQL servers of our own (tests' clusters, the benchmark's private one).

Each runs from the machine's own server programs (Debian's layout, the machine server's major
version), on a free loopback port, with its socket in its own directory, as the `postgres` user
when we are root (initdb refuses root); it is stopped by its own PID, never by name. The
machine's PostgreSQL is only asked for its version.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

SUPERUSER = "postgres"


class Unavailable(Exception):
    """No server of our own can be had here; the message says why, in a few words."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bindir(machine_url: str) -> Path:
    """The server programs of the machine server's major version."""
    try:
        with psycopg.connect(machine_url, connect_timeout=5) as conn:
            row = conn.execute("SELECT current_setting('server_version_num')::int / 10000"
                               ).fetchone()
    except psycopg.Error as exc:
        raise Unavailable(f"cannot ask the machine's PostgreSQL for its version: {exc}") from exc
    major = int(row[0]) if row else 0
    found = Path(f"/usr/lib/postgresql/{major}/bin")
    if not (found / "initdb").exists():
        raise Unavailable(f"no {found}/initdb")
    return found


@dataclass(frozen=True)
class Owner:
    """Who runs the servers: the `postgres` user when we are root, else ourselves."""

    user: str | None
    uid: int
    gid: int

    @classmethod
    def find(cls) -> Owner:
        if os.geteuid() != 0:
            return cls(None, os.getuid(), os.getgid())
        try:
            entry = pwd.getpwnam("postgres")
        except KeyError:
            raise Unavailable("running as root and there is no postgres user") from None
        return cls("postgres", entry.pw_uid, entry.pw_gid)

    def run(self, *args: str | Path, timeout: float = 120) -> str:
        """A server program as this owner; its output, or Unavailable with its last words."""
        done = subprocess.run([str(a) for a in args], capture_output=True, text=True,
                              timeout=timeout, **self.as_owner())
        if done.returncode != 0:
            raise Unavailable(f"{Path(str(args[0])).name} failed: "
                              f"{(done.stderr or done.stdout).strip()[-300:]}")
        return done.stdout

    def as_owner(self) -> dict[str, object]:
        return {"user": self.user, "group": self.gid} if self.user else {}

    def own(self, *paths: Path) -> None:
        for path in paths:
            os.chown(path, self.uid, self.gid)


def initdb(programs: Path, owner: Owner, data: Path, *extra: str) -> None:
    """A new cluster in `data`: superuser `postgres`, trust on loopback, no fsync."""
    owner.run(programs / "initdb", "-D", data, "-U", SUPERUSER, "-A", "trust", "-E", "UTF8",
              "--no-sync", "--no-instructions", *extra)


def admin_url(port: int, dbname: str = "postgres") -> str:
    return make_conninfo(host="127.0.0.1", port=port, user=SUPERUSER, dbname=dbname)


def start(programs: Path, owner: Owner, data: Path, port: int, socket_dir: Path,
          log_path: Path, settings: list[str]) -> subprocess.Popen[bytes]:
    """The postmaster of `data`, a child of ours (its PID is ours to signal), listening on
    loopback only; `settings` are "name=value" given on its command line."""
    args = [str(programs / "postgres"), "-D", str(data), "-p", str(port), "-k", str(socket_dir),
            "-c", "listen_addresses=127.0.0.1"]
    for setting in settings:
        args += ["-c", setting]
    with log_path.open("ab") as log:
        return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, **owner.as_owner())  # type: ignore[call-overload]


def wait_ready(server: subprocess.Popen[bytes], url: str, log_path: Path,
               timeout: float = 60) -> None:
    """Until `url` answers; Unavailable at once when the server exits (its log says why)."""
    deadline = time.monotonic() + timeout
    while True:
        if server.poll() is not None:  # e.g. not enough shared memory for one more server
            raise Unavailable(f"PostgreSQL exited at start: {tail(log_path)}")
        try:
            with psycopg.connect(url, connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise Unavailable(f"PostgreSQL did not answer within {timeout}s: "
                                  f"{tail(log_path)}") from None
            time.sleep(0.02)


def tail(log_path: Path, size: int = 300) -> str:
    with contextlib.suppress(OSError):
        return log_path.read_text(errors="replace").strip()[-size:]
    return "(no log)"


def stop(server: subprocess.Popen[bytes]) -> None:
    """Fast shutdown (SIGINT to the postmaster); immediate (SIGQUIT), then SIGKILL, if it
    hangs. Only this server's own PID is signalled."""
    for sig, wait in ((signal.SIGINT, 30), (signal.SIGQUIT, 10), (signal.SIGKILL, 10)):
        if server.poll() is not None:
            return
        os.kill(server.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(wait)
