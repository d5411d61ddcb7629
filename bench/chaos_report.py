"""What the chaos run did to the tasks, read back from `tasks` and `task_history`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

from bench.context import Row
from bench.db import FINAL
from bench.stats import percentile, secs

HAND_BACK = "handed back on shutdown"


@dataclass(frozen=True)
class Kill:
    at: datetime
    worker: str  # the worker id the service wrote into task_history
    pid: int


@dataclass
class Outcome:
    created: int = 0
    failed_posts: int = 0
    finished: int = 0
    completed: int = 0
    errors: int = 0
    missing: int = 0
    not_final: int = 0
    finished_twice: int = 0
    stuck: int = 0
    recoveries: int = 0
    hand_backs: int = 0
    gave_up: int = 0
    without_kill: int = 0
    unclaimed: int = 0
    recovery_seconds: tuple[float, ...] = ()


def _one(conn: psycopg.Connection[tuple], query: str) -> tuple:
    row = conn.execute(query).fetchone()
    assert row is not None
    return tuple(0 if v is None else v for v in row)


def analyse(conn: psycopg.Connection[tuple], accepted: list[str], kills: list[Kill]) -> Outcome:
    out = Outcome(created=len(accepted))
    conn.execute("CREATE TEMP TABLE accepted (id uuid PRIMARY KEY)")
    with conn.cursor().copy("COPY accepted (id) FROM STDIN") as copy:
        for task_id in accepted:
            copy.write_row((task_id,))
    out.missing, out.finished, out.completed, out.errors, out.not_final = _one(
        conn,
        f"""
        SELECT count(*) FILTER (WHERE t.id IS NULL), count(*) FILTER (WHERE t.{FINAL}),
               count(*) FILTER (WHERE t.status = 'completed'),
               count(*) FILTER (WHERE t.status = 'error'),
               count(*) FILTER (WHERE t.id IS NOT NULL AND NOT t.{FINAL})
        FROM accepted a LEFT JOIN tasks t USING (id)""",
    )
    (out.stuck,) = _one(conn, f"SELECT count(*) FROM tasks WHERE NOT {FINAL}")
    (out.finished_twice,) = _one(
        conn,
        """
        SELECT count(*) FROM (SELECT task_id FROM task_history
        WHERE to_status IN ('completed', 'error') GROUP BY task_id HAVING count(*) > 1) twice""",
    )
    out.hand_backs, out.gave_up = _one(
        conn,
        f"""
        SELECT count(*) FILTER (WHERE to_status = 'new' AND reason = '{HAND_BACK}'),
               count(*) FILTER (WHERE to_status = 'error' AND reason LIKE 'worker lost%')
        FROM task_history WHERE from_status = 'in_progress'""",
    )
    recovered = conn.execute(f"""
        SELECT r.worker, (SELECT min(c.at) FROM task_history c
                          WHERE c.task_id = r.task_id AND c.id > r.id
                            AND c.from_status = 'new' AND c.to_status = 'in_progress')
        FROM task_history r
        WHERE r.from_status = 'in_progress' AND r.to_status = 'new'
          AND r.reason IS DISTINCT FROM '{HAND_BACK}'""").fetchall()
    out.recoveries = len(recovered)
    killed_at = {k.worker: k.at for k in kills}
    times = []
    for worker, next_claim in recovered:
        if worker not in killed_at:
            out.without_kill += 1  # a live worker's lease ran out (it was starved or cut off)
        elif next_claim is None:
            out.unclaimed += 1
        else:
            times.append((next_claim - killed_at[worker]).total_seconds())
    out.recovery_seconds = tuple(times)
    return out


def rows(out: Outcome) -> list[Row]:
    lost = out.missing + out.not_final
    times = out.recovery_seconds
    return [
        Row(
            "created",
            f"{out.created:,}",
            f"201s received ({out.failed_posts} POSTs failed or timed out)",
        ),
        Row(
            "finished",
            f"{out.finished:,}",
            f"of the accepted: {out.completed:,} completed, {out.errors:,} error",
        ),
        Row(
            "lost",
            f"{lost:,}",
            f"{out.missing} accepted ids missing from the table, {out.not_final} never final",
        ),
        Row(
            "finished twice",
            f"{out.finished_twice:,}",
            "tasks with more than one transition into completed/error",
        ),
        Row("stuck", f"{out.stuck:,}", "tasks not final at the end"),
        Row(
            "recoveries",
            f"{out.recoveries:,}",
            f"in_progress -> new by lease expiry; {out.without_kill} of them from a worker "
            f"that was not killed; {out.gave_up} gave up after max attempts; "
            f"{out.hand_backs} hand-backs",
        ),
        Row(
            "recovery time",
            f"p50 {secs(percentile(times, 50))}",
            f"p90 {secs(percentile(times, 90))}, max {secs(max(times, default=float('nan')))}"
            f" over {len(times)} recovered tasks (kill -> next claim; "
            f"{out.unclaimed} never claimed again)",
        ),
    ]
