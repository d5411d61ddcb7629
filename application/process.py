"""ProcessTask: claim by compare-and-set, do the work, finish by compare-and-set."""

from __future__ import annotations

import asyncio
import enum
import time
import uuid
from datetime import timedelta

import structlog

from application.ports import Clock, Processor, UnitOfWorkFactory
from application.retry import retrying
from domain.errors import InvalidTransition, ServiceUnavailable
from domain.task import Task, TaskStatus, Transition

log = structlog.get_logger(__name__)


class Outcome(enum.StrEnum):
    FINISHED = "finished"  # this call moved the task to completed or error
    SKIPPED = "skipped"  # not `new` any more (duplicate or late message): nothing done
    LOST = "lost"  # the lease was taken over before the end; the result was dropped
    MISSING = "missing"  # no such task (a message from another database?)


class ProcessTask:
    """A task is finished at most once: claim and finish only succeed from the status they expect.

    Cancelling the call while the work runs (shutdown) hands the task back to `new` without
    using up an attempt.
    """

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        processor: Processor,
        clock: Clock,
        worker_id: str,
        lease: timedelta,
    ) -> None:
        self._uow = uow
        self._processor = processor
        self._clock = clock
        self._worker = worker_id
        self._lease = lease

    async def __call__(self, task_id: uuid.UUID) -> Outcome:
        claimed = await retrying(lambda: self._claim(task_id), "claim")
        if isinstance(claimed, Outcome):
            return claimed
        log.info("task_claimed", task_id=str(task_id), attempt=claimed.attempts)
        started = time.monotonic()
        try:
            error = await self._processor.process(claimed)
        except asyncio.CancelledError:
            await asyncio.shield(self._hand_back(claimed))
            raise
        except Exception as exc:  # a broken processor fails the task, not the worker
            log.exception("processor_crashed", task_id=str(task_id))
            error = f"processor crashed: {type(exc).__name__}"
        outcome = await retrying(lambda: self._finish(claimed, error), "finish")
        log.info(
            "task_finished" if outcome is Outcome.FINISHED else "task_result_dropped",
            task_id=str(task_id),
            outcome="error" if error else "completed",
            error=error,
            duration_s=round(time.monotonic() - started, 3),
            attempt=claimed.attempts,
        )
        return outcome

    async def _claim(self, task_id: uuid.UUID) -> Task | Outcome:
        async with self._uow() as uow:
            task = await uow.tasks.get(task_id)
            if task is None:
                return Outcome.MISSING
            if task.status is not TaskStatus.NEW:
                log.info("dispatch_skipped", task_id=str(task_id), status=task.status)
                return Outcome.SKIPPED
            now = self._clock.now()
            claimed = task.claim(now=now, worker=self._worker, lease_until=now + self._lease)
            if not await uow.tasks.compare_and_set(task, claimed):
                return Outcome.SKIPPED
            await uow.tasks.record([Transition.between(task, claimed, worker=self._worker)])
            await uow.commit()
        return claimed

    async def _finish(self, claimed: Task, error: str | None) -> Outcome:
        now = self._clock.now()
        done = claimed.fail(now=now, reason=error) if error else claimed.complete(now=now)
        async with self._uow() as uow:
            if not await uow.tasks.compare_and_set(claimed, done):
                return Outcome.LOST
            await uow.tasks.record([Transition.between(claimed, done, worker=self._worker)])
            await uow.commit()
        return Outcome.FINISHED

    async def _hand_back(self, claimed: Task) -> None:
        try:
            back = claimed.release(now=self._clock.now(), count_attempt=False)
            async with self._uow() as uow:
                if await uow.tasks.compare_and_set(claimed, back):
                    await uow.tasks.record(
                        [Transition.between(claimed, back, worker=self._worker,
                                            reason="handed back on shutdown")]
                    )
                    await uow.commit()
                    log.info("task_handed_back", task_id=str(claimed.id))
        except (ServiceUnavailable, InvalidTransition) as exc:
            # the lease will expire and recovery will take the task back instead
            log.warning("hand_back_failed", task_id=str(claimed.id), error=str(exc))
