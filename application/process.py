"""ProcessTask: claim by compare-and-set, do the work, finish by compare-and-set, in batches."""

from __future__ import annotations

import asyncio
import enum
import time
import uuid
from collections.abc import Sequence
from datetime import timedelta

import structlog

from application.batching import MicroBatcher, alone_on_error
from application.ports import Clock, Processor, TaskRepository, UnitOfWorkFactory
from application.retry import retrying
from domain.errors import InvalidTransition, ServiceUnavailable
from domain.task import Task, TaskStatus, Transition

log = structlog.get_logger(__name__)


class Outcome(enum.StrEnum):
    FINISHED = "finished"  # this call moved the task to completed or error
    SKIPPED = "skipped"  # not `new` any more (duplicate or late message): nothing done
    LOST = "lost"  # the lease was taken over before the end; the result was dropped
    MISSING = "missing"  # no such task (a message from another database?)


#: What a finish needs: the task as claimed, and the processor's error (None for success).
Finish = tuple[Task, str | None]


class ProcessTask:
    """A task is finished at most once: claim and finish only succeed from the status they expect.

    Concurrent calls share transactions: one per batch of claims, one per batch of finishes,
    history included; an id repeated within a claim batch is claimed once. An outage fails the
    whole batch and every member retries; any other error reruns that batch item by item, so it
    fails only its own call. Cancelling a call (shutdown) hands its task back to `new` without
    using up an attempt, also when the cancel came while the claim batch was in flight.
    """

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        processor: Processor,
        clock: Clock,
        worker_id: str,
        lease: timedelta,
        max_batch: int = 256,
    ) -> None:
        self._uow = uow
        self._processor = processor
        self._clock = clock
        self._worker = worker_id
        self._lease = lease
        self._claims: MicroBatcher[uuid.UUID, Task | Outcome] = MicroBatcher(
            lambda ids: alone_on_error(self._claim_all, ids), max_batch=max_batch
        )
        self._finishes: MicroBatcher[Finish, Outcome] = MicroBatcher(
            lambda items: alone_on_error(self._finish_all, items), max_batch=max_batch
        )

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
        outcome = await retrying(lambda: self._finishes.submit((claimed, error)), "finish")
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
        """The batch runs on if this call is cancelled: wait for it, and hand back its claim."""
        submitted = asyncio.ensure_future(self._claims.submit(task_id))
        try:
            return await asyncio.shield(submitted)
        except asyncio.CancelledError:
            await asyncio.shield(self._give_back(submitted))
            raise

    async def _give_back(self, submitted: asyncio.Future[Task | Outcome]) -> None:
        await asyncio.wait([submitted])
        if submitted.cancelled() or submitted.exception() is not None:
            return  # nothing was claimed
        claimed = submitted.result()
        if isinstance(claimed, Task):
            await self._hand_back(claimed)

    async def _claim_all(self, ids: list[uuid.UUID]) -> list[Task | Outcome]:
        """Claims the `new` tasks among `ids` in one transaction; a repeated id is claimed once."""
        answers: list[Task | Outcome] = []
        pairs: dict[uuid.UUID, tuple[Task, Task]] = {}
        async with self._uow() as uow:
            found = {task.id: task for task in await uow.tasks.get_many(ids)}
            now = self._clock.now()
            for task_id in ids:
                task = found.get(task_id)
                if task is None:
                    answers.append(Outcome.MISSING)
                elif task.status is not TaskStatus.NEW or task_id in pairs:
                    log.info("dispatch_skipped", task_id=str(task_id), status=task.status,
                             repeated=task_id in pairs)
                    answers.append(Outcome.SKIPPED)
                else:
                    pairs[task_id] = (task, task.claim(now=now, worker=self._worker,
                                                       lease_until=now + self._lease))
                    answers.append(pairs[task_id][1])
            written = await uow.tasks.compare_and_set_many(list(pairs.values()))
            if written:
                await uow.tasks.record([Transition.between(old, new, worker=self._worker)
                                        for old, new in pairs.values() if old.id in written])
                await uow.commit()
        # a claim the compare-and-set missed lost a race with another worker: skipped
        return [a if not isinstance(a, Task) or a.id in written else Outcome.SKIPPED
                for a in answers]

    async def _finish_all(self, items: list[Finish]) -> list[Outcome]:
        """Finishes, in one transaction, every task whose claim still holds; drops the rest."""
        now = self._clock.now()
        pairs = [(c, c.fail(now=now, reason=e) if e else c.complete(now=now)) for c, e in items]
        async with self._uow() as uow:
            written = await _swap(uow.tasks, pairs)
            if any(written):
                await uow.tasks.record([
                    Transition.between(old, new, worker=self._worker)
                    for (old, new), ok in zip(pairs, written, strict=True) if ok
                ])
                await uow.commit()
        return [Outcome.FINISHED if ok else Outcome.LOST for ok in written]

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


async def _swap(tasks: TaskRepository, pairs: Sequence[tuple[Task, Task]]) -> list[bool]:
    """compare_and_set_many, answered per pair. An id may repeat (this worker claimed the task
    again after its lease lapsed): repeats go to a later statement of the same transaction."""
    written = [False] * len(pairs)
    todo = list(range(len(pairs)))
    while todo:
        first: dict[uuid.UUID, int] = {}
        for i in todo:
            first.setdefault(pairs[i][0].id, i)
        done = await tasks.compare_and_set_many([pairs[i] for i in first.values()])
        for task_id, i in first.items():
            written[i] = task_id in done
        taken = set(first.values())
        todo = [i for i in todo if i not in taken]
    return written
