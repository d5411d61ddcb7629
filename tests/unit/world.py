"""A small world of in-memory adapters and fakes, and the use cases wired to it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from adapters.memory import InMemoryBroker, InMemoryStore
from adapters.memory.backlog import InMemoryDispatchQueue
from adapters.memory.steps import InMemoryTaskStore
from application.create import CreateTask
from application.leases import RecoverExpiredLeases, RenewLeases
from application.messaging import DispatchPublisher, DispatchQueue
from application.model import NewTaskRequest
from application.operator import CancelTask, RetryTask
from application.ports import Processor
from application.process import ProcessTask
from application.queries import GetHistory, GetTask, ListTasks
from application.redispatch import RedispatchLost
from application.relay import RelayDispatches
from application.stops import StopRequests
from domain.task import Task
from tests.unit.fakes import CountingSignal, FixedProcessor, SequentialIds, SettableClock

LEASE = timedelta(seconds=30)
QUIET = timedelta(seconds=60)


@dataclass
class World:
    store: InMemoryStore = field(default_factory=InMemoryStore)
    clock: SettableClock = field(default_factory=SettableClock)
    ids: SequentialIds = field(default_factory=SequentialIds)
    signal: CountingSignal = field(default_factory=CountingSignal)
    queue: InMemoryBroker = field(default_factory=InMemoryBroker)
    stops: StopRequests = field(default_factory=StopRequests)

    def __post_init__(self) -> None:
        self.store.on_cancel.append(self.stops.request)
        self.steps = InMemoryTaskStore(self.store, hold=12.0)

    def create(self) -> CreateTask:
        return CreateTask(self.steps, self.clock, self.ids, self.signal)

    def process(self, processor: Processor | None = None, worker: str = "w1") -> ProcessTask:
        return ProcessTask(self.steps, processor or FixedProcessor(), self.clock, worker, LEASE,
                           self.stops)

    def recover(self, max_attempts: int = 3) -> RecoverExpiredLeases:
        return RecoverExpiredLeases(self.store.unit_of_work, self.clock, self.signal, max_attempts)

    def renew(self, worker: str = "w1") -> RenewLeases:
        return RenewLeases(self.store.unit_of_work, self.clock, worker, LEASE, self.stops)

    def redispatch(self, max_dispatches: int = 3, queue: DispatchQueue | None = None
                   ) -> RedispatchLost:
        return RedispatchLost(self.store.unit_of_work, self.clock,
                              queue or InMemoryDispatchQueue(self.queue), self.signal, "w9",
                              QUIET, max_dispatches)

    def relay(self, publisher: DispatchPublisher | None = None) -> RelayDispatches:
        return RelayDispatches(self.steps, publisher or self.queue, hold=12.0)

    def retry(self) -> RetryTask:
        return RetryTask(self.steps, self.clock, self.signal)

    def cancel(self) -> CancelTask:
        return CancelTask(self.steps, self.clock)

    def get(self) -> GetTask:
        return GetTask(self.store.unit_of_work)

    def history(self) -> GetHistory:
        return GetHistory(self.store.unit_of_work)

    def list(self) -> ListTasks:
        return ListTasks(self.store.unit_of_work)

    async def new_task(self, title: str = "t", **request: Any) -> Task:
        created = await self.create()(NewTaskRequest(title=title, **request))
        return created.task

    async def relay_once(self) -> int:
        """One round of a relay, its removals of confirmed entries done."""
        relay = self.relay()
        sent = await relay()
        await relay.close()
        return sent

    async def publish_sent(self) -> None:
        """Publish what creates sent at once and remove their entries, as the relay does."""
        sent, self.signal.sent = self.signal.sent, {}
        await self.queue.publish(list(sent.values()))
        await self.steps.remove(sent.keys())

    def task(self, task_id: uuid.UUID) -> Task:
        return self.store.tasks[task_id]

    def snapshot(self) -> tuple[object, ...]:
        """Everything the store holds, copied (tasks are frozen values)."""
        s = self.store
        return dict(s.tasks), dict(s.keys), list(s.history), list(s.outbox)
