"""The worker: consumes dispatches, runs ProcessTask, acks only after the final commit."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable

import msgspec
import structlog
from aio_pika.abc import AbstractIncomingMessage

from adapters.memory import InMemoryDispatchQueue
from adapters.rabbitmq.lane import Handler
from application.model import Dispatch
from application.process import Outcome, ProcessTask

log = structlog.get_logger(__name__)
_decode = msgspec.json.Decoder(Dispatch).decode


class WorkerRuntime:
    """Knows what is in flight, so that shutdown can drain it and hand back the rest."""

    def __init__(self, process: ProcessTask, grace_seconds: float) -> None:
        self._process = process
        self._grace = grace_seconds
        self._inflight: set[asyncio.Task[object]] = set()
        self.draining = False

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    async def run(self, task_id: uuid.UUID) -> Outcome:
        current = asyncio.current_task()
        assert current is not None
        self._inflight.add(current)
        try:
            with structlog.contextvars.bound_contextvars(task_id=str(task_id)):
                return await self._process(task_id)
        finally:
            self._inflight.discard(current)

    async def drain(self) -> None:
        """Stop taking work, let in-flight tasks finish within the grace period, cancel the rest
        (ProcessTask hands them back to `new`; their messages go back to the queue)."""
        self.draining = True
        pending = set(self._inflight)
        log.info("worker_draining", inflight=len(pending), grace_s=self._grace)
        if pending:
            _, late = await asyncio.wait(pending, timeout=self._grace)
            for task in late:
                task.cancel()
            if late:
                log.warning("worker_handing_back", count=len(late))
                await asyncio.wait(late, timeout=10)


def dispatch_handler(runtime: WorkerRuntime) -> Handler:
    """What the lane calls for each delivery (each in its own asyncio task)."""

    async def on_dispatch(msg: AbstractIncomingMessage) -> None:
        if runtime.draining:
            return  # left unacknowledged: RabbitMQ requeues it when our channel closes
        try:
            dispatch = _decode(msg.body)
        except msgspec.DecodeError as exc:
            log.error("dispatch_rejected", reason=str(exc), message_id=msg.message_id)
            await _settle(msg.reject(requeue=False))  # dead-lettered to tasks.dispatch.dlq
            return
        try:
            outcome = await runtime.run(dispatch.task_id)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.shield(msg.nack(requeue=True))
            raise
        except Exception:
            # the delivery limit dead-letters a message that keeps failing
            log.exception("dispatch_failed", task_id=str(dispatch.task_id))
            await _settle(msg.nack(requeue=True))
            return
        log.debug("dispatch_done", task_id=str(dispatch.task_id), outcome=outcome)
        await _settle(msg.ack())

    return on_dispatch


async def _settle(action: Awaitable[None]) -> None:
    """Ack/nack on a channel that died is harmless: the message is redelivered and skipped."""
    try:
        await action
    except Exception as exc:  # noqa: BLE001
        log.warning("settle_failed", error=f"{type(exc).__name__}: {exc}")


async def consume_memory(
    queue: InMemoryDispatchQueue, runtime: WorkerRuntime, concurrency: int
) -> None:
    """`tasks dev`: the same runtime, fed from the in-memory queue."""
    slots = asyncio.Semaphore(concurrency)
    running: set[asyncio.Task[Outcome]] = set()

    async def one(dispatch: Dispatch) -> Outcome:
        try:
            return await runtime.run(dispatch.task_id)
        finally:
            slots.release()

    while True:
        await slots.acquire()
        dispatch = await queue.queue.get()
        task = asyncio.create_task(one(dispatch))
        running.add(task)
        task.add_done_callback(running.discard)
