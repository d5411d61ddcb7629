"""Sizes of a run, what every scenario is handed, and what it hands back."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.infra import Admin


@dataclass(frozen=True)
class Sizes:
    http_seconds: float = 10
    connections: int = 64
    intake_messages: int = 20_000
    backlog: int = 20_000
    capacity_tasks: int = 3000
    capacity_concurrency: int = 2000
    pickup_rate: float = 200
    pickup_seconds: float = 10
    stored_tasks: int = 1_000_000
    list_requests: int = 300
    deep_pages: int = 100
    streams: tuple[int, ...] = (100, 1000)
    stream_rate: float = 500
    stream_seconds: float = 10
    prune_tasks: int = 1_000_000
    prune_rate: float = 500
    prune_baseline_seconds: float = 10
    sustained_rates: tuple[float, ...] = (50, 100, 200, 300, 400, 600, 800, 1000, 1300, 1600, 2000)
    sustained_seconds: float = 12
    sustained_tries: int = 2  # a rate fails when each try failed: the box may be shared
    bulk_tasks: int = 100_000
    scheduled_tasks: int = 100_000
    scheduled_quiet_seconds: float = 30
    trips_rate: float = 200
    trips_seconds: float = 10
    trips_warmup_seconds: float = 1
    trips_settle_seconds: float = 11  # an idle backend's counts reach pg_stat_database 10 s late
    e2e_rates: tuple[float, ...] = (200, 600)
    e2e_seconds: float = 10
    e2e_warmup_seconds: float = 1


SMOKE = Sizes(
    http_seconds=2,
    intake_messages=300,
    backlog=300,
    capacity_tasks=60,
    capacity_concurrency=50,
    pickup_rate=20,
    pickup_seconds=2,
    stored_tasks=10_000,
    list_requests=50,
    deep_pages=20,
    streams=(50,),
    stream_rate=50,
    stream_seconds=1,
    prune_tasks=10_000,
    prune_rate=50,
    prune_baseline_seconds=1,
    sustained_rates=(50, 100),
    sustained_seconds=2,
    sustained_tries=1,
    bulk_tasks=2000,
    scheduled_tasks=2000,
    scheduled_quiet_seconds=2,
    trips_rate=20,
    trips_seconds=2,
    trips_warmup_seconds=0,
    trips_settle_seconds=1,
    e2e_rates=(20,),
    e2e_seconds=2,
    e2e_warmup_seconds=0,
)


@dataclass(frozen=True)
class Context:
    admin: Admin
    sizes: Sizes
    log_dir: Path
    load_tool: str


@dataclass(frozen=True)
class Row:
    scenario: str
    setting: str
    result: str
