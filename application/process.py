"""ProcessTask: claim the task, do the work, finish it — each step a compare-and-set."""

from __future__ import annotations

import asyncio
import enum
import time
import uuid
from datetime import datetime, timedelta

import structlog

from application.model import Change, Claimed
from application.pause import AGAIN_IN_A_SECOND, DispatchPaused, Resumption
from application.ports import Clock, Processor, TaskStore
from application.stops import StopRequests
from application.telemetry import NO_METRICS, NO_TRACING, Metrics, Tracer
from application.until import until_set
from domain.status import TaskStatus
from domain.task import Task, Transition

log = structlog.get_logger(__name__)


class Stopped(enum.Enum):
    """What the work gives instead of a verdict when an operator's cancel stopped it."""

    BY_OPERATOR = "by_operator"


class Outcome(enum.StrEnum):
    FINISHED = "finished"  # this call moved the task to completed or error
    SKIPPED = "skipped"  # not `new` any more (duplicate or late message): nothing done
    LOST = "lost"  # the lease was taken over before the end; the result was dropped
    MISSING = "missing"  # no such task (a message from another database?)


class ProcessTask:
    """A task is finished at most once: claim and finish only succeed from the status they
    expect, and the finish only while this worker still holds the claim. An operator's cancel
    stops the work and ends the task cancelled; stopped by a shutdown instead, the worker hands
    the task back to `new` without using up an attempt. Each step is one write of the store."""

    def __init__(
        self,
        tasks: TaskStore,
        processor: Processor,
        clock: Clock,
        worker_id: str,
        lease: timedelta,
        stops: StopRequests,
        *,
        pause: Resumption = AGAIN_IN_A_SECOND,
        metrics: Metrics = NO_METRICS,
        tracer: Tracer = NO_TRACING,
    ) -> None:
        self._tasks = tasks
        self._pause = pause
        self._processor = processor
        self._clock = clock
        self._worker = worker_id
        self._lease = lease
        self._stops = stops
        self._metrics = metrics
        self._tracer = tracer

    async def __call__(self, task_id: uuid.UUID) -> Outcome:
        with self._tracer.span("task.claim", task_id):
            claim = await self._claim(task_id)
        if claim is None:
            return Outcome.MISSING
        if not isinstance(claim, Claimed):
            log.info("dispatch_skipped", task_id=str(task_id), status=claim)
            return Outcome.SKIPPED
        claimed = claim.task
        self._metrics.claimed(_seconds(claim.waited_since, claimed.started_at) or 0.0)
        log.info("task_claimed", task_id=str(task_id), attempt=claimed.attempts)
        started = time.monotonic()
        # watched (so its lease is renewed) until its end is committed, however long that takes
        with self._stops.watching((claimed.id, claimed.attempts)) as stop:
            with self._tracer.span("task.process", task_id):
                error = await self._work(claimed, stop)
            with self._tracer.span("task.finish", task_id) as span:
                if error is Stopped.BY_OPERATOR:
                    done = await self._stop(claimed)
                else:
                    done = await self._finish(claimed, error)
                span.set("task.outcome", done.status if done else "dropped")
        if done:
            self._metrics.finished(done.status, _seconds(claimed.started_at, done.finished_at))
        log.info(
            "task_finished" if done else "task_result_dropped",
            task_id=str(task_id),
            outcome=done.status if done else "dropped",
            **({"error": done.error} if done and done.error else {}),
            duration_s=round(time.monotonic() - started, 3),
            attempt=claimed.attempts,
        )
        return Outcome.FINISHED if done else Outcome.LOST

    async def _claim(self, task_id: uuid.UUID) -> Claimed | TaskStatus | None:
        """While dispatch is paused, the claim waits for the resume, holding its delivery: the
        task stays `new` and spends nothing (no attempt, no redelivery)."""
        while True:
            now = self._clock.now()
            try:
                return await self._tasks.claim(task_id, worker=self._worker, now=now,
                                               lease_until=now + self._lease)
            except DispatchPaused:
                log.info("claim_waits_for_resume", task_id=str(task_id))
                await self._pause.resumed()

    async def _work(self, claimed: Task, stop: asyncio.Event) -> str | Stopped | None:
        """The processor's verdict: None for success, else why it failed; or Stopped when an
        operator's cancel came first."""
        try:
            return await until_set(self._processor.process(claimed), stop, Stopped.BY_OPERATOR)
        except asyncio.CancelledError:
            await self._hand_back(claimed)
            raise
        except Exception as exc:  # a broken processor fails the task, not the worker
            log.exception("processor_crashed", task_id=str(claimed.id))
            return f"processor crashed: {type(exc).__name__}"

    async def _finish(self, claimed: Task, error: str | None) -> Task | None:
        """None when the lease expired and the task was taken back meanwhile."""
        now = self._clock.now()
        done = claimed.fail(now=now, reason=error) if error else claimed.complete(now=now)
        step = Transition.between(claimed, done, worker=self._worker)
        return done if await self._tasks.apply(Change(claimed, done, step)) else None

    async def _stop(self, claimed: Task) -> Task | None:
        """Ends the task as its cancel request says (who asked, and why)."""
        current = await self._tasks.get(claimed.id)
        if current is None or (request := current.cancel_request) is None:
            return None
        done = current.stop(now=self._clock.now())
        step = Transition.between(current, done, worker=self._worker, actor=request.actor,
                                  reason=request.reason)
        return done if await self._tasks.apply(Change(claimed, done, step)) else None

    async def _hand_back(self, claimed: Task) -> None:
        """Back to `new` for another worker; or, if an operator asked to cancel it meanwhile,
        ended cancelled rather than run again."""
        current = await self._tasks.get(claimed.id)
        request = current.cancel_request if current is not None else None
        if current is not None and request is not None:
            back = current.stop(now=self._clock.now())
            step = Transition.between(current, back, worker=self._worker,
                                      actor=request.actor, reason=request.reason)
        else:
            back = claimed.release(now=self._clock.now(), count_attempt=False)
            step = Transition.between(claimed, back, worker=self._worker,
                                      reason="handed back on shutdown")
        if await self._tasks.apply(Change(claimed, back, step)):
            log.info("task_handed_back", task_id=str(claimed.id), to=back.status)
            if back.status.is_final:
                self._metrics.finished(back.status,
                                       _seconds(claimed.started_at, back.finished_at))


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return max(0.0, (end - start).total_seconds()) if start and end else None
