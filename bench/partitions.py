"""Partitions for the chaos benchmark: one worker cut off PostgreSQL, the api off RabbitMQ."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from bench.context import Row
from bench.stats import percentile, secs
from tests.support.proxy import Proxy


@dataclass
class Cut:
    what: str  # "worker-postgres" or "api-rabbitmq"
    at: datetime
    healed: datetime
    full: bool  # False when the run ended during the cut (healed early, not counted)
    progress: datetime | None = None  # the first sign of work by the cut process after healing

    @property
    def heal_to_progress(self) -> float | None:
        return (self.progress - self.healed).total_seconds() if self.progress else None


@dataclass
class Links:
    """A proxy of its own to each service, in front of the admin URLs' servers."""

    pg: Proxy
    mq: Proxy

    @classmethod
    def start(cls, database_url: str, rabbitmq_url: str) -> Links:
        return cls(Proxy.in_front_of(database_url).start(),
                   Proxy.in_front_of(rabbitmq_url).start())

    def env(self, database_url: str, rabbitmq_url: str) -> dict[str, str]:
        return {"TASKS_DATABASE_URL": self.pg.url_for(database_url),
                "TASKS_RABBITMQ_URL": self.mq.url_for(rabbitmq_url)}

    def stop(self) -> None:
        self.pg.stop()
        self.mq.stop()


class Partitioner(threading.Thread):
    """Takes turns: blackholes the worker's PostgreSQL link for `cut_for` seconds, heals it,
    waits `pause`, does the same to the api's RabbitMQ link, and so on until `stop`."""

    def __init__(self, worker: Links, api: Links, cut_for: float, pause: float,
                 stop: threading.Event) -> None:
        super().__init__(name="partitioner", daemon=True)
        self.worker, self.api, self.cut_for, self.pause, self.stop = (
            worker, api, cut_for, pause, stop)
        self.cuts: list[Cut] = []

    def run(self) -> None:
        turns = [("worker-postgres", self.worker.pg), ("api-rabbitmq", self.api.mq)]
        turn = 0
        while not self.stop.wait(self.pause):
            what, proxy = turns[turn % 2]
            turn += 1
            at = datetime.now(UTC)
            proxy.blackhole()
            ended = self.stop.wait(self.cut_for)  # healed at once when the run ends
            proxy.heal()
            self.cuts.append(Cut(what, at, datetime.now(UTC), full=not ended))


def first_worker_step(conn: psycopg.Connection[tuple], worker: str,
                      after: datetime) -> datetime | None:
    """When the worker next wrote a transition (claim, finish, recovery) after `after`."""
    row = conn.execute("SELECT min(at) FROM task_history WHERE worker = %s AND at > %s",
                       (worker, after)).fetchone()
    return row[0] if row else None


def first_dispatch(log: Path, after: datetime) -> datetime | None:
    """When the api next relayed a dispatch after `after` (its `task_dispatched` log lines)."""
    for line in log.read_text(errors="replace").splitlines():
        if '"task_dispatched"' not in line:
            continue
        at = datetime.fromisoformat(json.loads(line)["timestamp"].replace("Z", "+00:00"))
        if at > after:
            return at
    return None


def find_progress(cuts: list[Cut], worker_step: Callable[[datetime], datetime | None],
                  api_dispatch: Callable[[datetime], datetime | None]) -> None:
    for cut in cuts:
        find = worker_step if cut.what == "worker-postgres" else api_dispatch
        cut.progress = find(cut.healed - timedelta(milliseconds=1))


def rows(cuts: list[Cut], cut_for: float) -> list[Row]:
    out = []
    for what, detail in (("worker-postgres", "one worker blackholed from PostgreSQL"),
                         ("api-rabbitmq", "the api blackholed from RabbitMQ")):
        mine = [c for c in cuts if c.what == what and c.full]
        times = [t for c in mine if (t := c.heal_to_progress) is not None]
        out.append(Row(
            f"heal -> progress ({what})",
            f"p50 {secs(percentile(times, 50))}",
            f"max {secs(max(times, default=float('nan')))}; {len(mine)} cuts of {cut_for:g} s "
            f"({detail}), {len(mine) - len(times)} with no progress seen after healing "
            "(or nothing left to do)",
        ))
    return out
