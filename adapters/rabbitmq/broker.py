"""The RabbitMQ adapter: one object per process, one connection at a time, one reconnect
strategy, for one node or the nodes of a cluster.

- FastStream's RabbitBroker opens the connection (an aio-pika robust connection) to one node;
  its subscribers consume `tasks.create` and the dispatch queues (consumers.py) and its
  publishers send dispatches, dead letters and replies, persistent and confirmed
  (endpoints.py). The AsyncAPI document is generated from those endpoints.
- Each connection is a Link: a broker of its own on one node's URL, its topology channel and
  its consumers. When the connection is lost (the node died, was cut off, or closed it), the
  link is dropped at once and a new one is made, to the next node first (the same one when
  only one is named): its consumers start afresh and declare the queues again. What the old
  link had in flight is settled by RabbitMQ: unacknowledged deliveries go back to their queue
  for some worker, and publishes it never confirmed fail, so that their outbox entries are sent
  again by the relay.
- Acknowledgements of one channel that are ready in the same turn of the loop go out as one
  (acks.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import urllib.parse
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import structlog
from aio_pika.abc import AbstractChannel, AbstractRobustConnection
from faststream.rabbit import RabbitBroker
from faststream.rabbit.message import RabbitMessage

from adapters.diagnosis import Diagnosis
from adapters.queues import TRACE_HEADER, queue_of
from adapters.rabbitmq.acks import Acks
from adapters.rabbitmq.consumers import Consumer
from adapters.rabbitmq.endpoints import Endpoints
from adapters.rabbitmq.errors import diagnose
from adapters.rabbitmq.topology import Topology
from adapters.timeouts import (
    AMQP_CONFIRM_SECONDS,
    AMQP_CONNECT_SECONDS,
    AMQP_HEARTBEAT_SECONDS,
    AMQP_RECONNECT_SECONDS,
    AMQP_RPC_SECONDS,
)
from application.backoff import Backoff
from application.messaging import Delivery, DeliveryHandler
from application.model import Dispatch
from application.telemetry import NO_TRACING, Tracer
from domain.errors import ServiceUnavailable

log = structlog.get_logger(__name__)
_encode = msgspec.json.Encoder().encode
def with_heartbeat(url: str) -> str:
    """`url` asking for the service's AMQP heartbeat, unless it asks for one of its own."""
    try:
        parts = urllib.parse.urlsplit(url)
        query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    except ValueError:  # a bad URL is reported when connecting
        return url
    if any(key == "heartbeat" for key, _ in query):
        return url
    query.append(("heartbeat", str(AMQP_HEARTBEAT_SECONDS)))
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def public(url: str) -> str:
    """`url` as the AsyncAPI document names the server: no user, password or query."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1],
                                                  query=""))


@dataclass
class _Wanted:
    """A queue this process consumes: started on every link."""

    queue: str
    prefetch: int
    handler: DeliveryHandler


@dataclass
class _Link:
    """One connection to one node, and what lives on it."""

    url: str
    faststream: RabbitBroker
    endpoints: Endpoints
    connection: AbstractRobustConnection | None = None
    topology: AbstractChannel | None = None
    consumers: list[Consumer] = field(default_factory=list)


class RabbitMQ:
    """The MessageBroker port on RabbitMQ. Publishes are persistent and wait for the broker's
    confirm (`timeout` seconds at most); a message is handed to its handler in an asyncio task
    of its own, and one the handler leaves unsettled after raising is put back. A silent
    RabbitMQ is caught by the heartbeat and the connect timeout (adapters/timeouts.py), and
    the process goes on through another node. Making one connects nothing."""

    name = "broker"

    def __init__(self, urls: str | Sequence[str], timeout: float = AMQP_CONFIRM_SECONDS, *,
                 queues: int = 1, tracer: Tracer = NO_TRACING) -> None:
        self.urls = (urls,) if isinstance(urls, str) else tuple(urls)
        self.topology = Topology(queues, cluster=len(self.urls) > 1)
        #: the dispatch queues, in order: a task's queue follows from its id
        self.dispatch = self.topology.dispatch
        #: the first node's broker, never connected: the AsyncAPI document is made from it
        self.faststream = self._link(self.urls[0]).faststream
        self._failure: Diagnosis | None = None  # why the last attempt to connect failed
        self._failed_url = self.urls[0]
        self._timeout = timeout
        self._tracer = tracer
        self._acks = Acks(_ack)
        self._wanted: list[_Wanted] = []
        self._live: _Link | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()  # ends the connect loop between two attempts

    def _link(self, url: str) -> _Link:
        broker = RabbitBroker(
            with_heartbeat(url), timeout=AMQP_CONNECT_SECONDS, logger=None, app_id="tasks",
            reconnect_interval=AMQP_RECONNECT_SECONDS, graceful_timeout=None,
            specification_url=public(url))
        return _Link(url, broker, Endpoints(broker, self.topology))

    async def start(self) -> None:
        """Connect in the background: the process starts while RabbitMQ is still down."""
        self._closing.clear()
        self._connecting = asyncio.create_task(self._connect(0), name="broker-connect")

    async def _connect(self, first: int, backoff: Backoff | None = None) -> None:
        """Each node in turn from `first`, round after round, until one takes the link."""
        backoff, attempt = backoff or Backoff(first=0.5, cap=10.0), 1
        while not self._closing.is_set():
            for turn in range(len(self.urls)):
                url = self.urls[(first + turn) % len(self.urls)]
                link = self._link(url)
                try:
                    await self._open(link)
                except Exception as exc:  # noqa: BLE001 - every failure to connect is retried
                    self._failure, self._failed_url = diagnose(exc, url), url
                    await self._drop(link)
                    continue
                self._failure, self._live = None, link
                log.info("broker_connected", attempt=attempt, node=public(url))
                return
            delay = backoff.next_delay()
            assert self._failure is not None
            log.warning("broker_unavailable", attempt=attempt, retry_in=round(delay, 2),
                        error=self._failure.line(self._failed_url))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), delay)
            attempt += 1

    async def _open(self, link: _Link) -> None:
        connection = await link.faststream.connect()
        link.connection = connection
        connection.close_callbacks.add(lambda _, exc: self._lost(link, exc))
        link.topology = await connection.channel()
        await self.topology.declare(link.topology)
        for wanted in list(self._wanted):  # one added meanwhile is taken too
            await self._start(link, wanted)

    async def _start(self, link: _Link, wanted: _Wanted) -> None:
        subscriber, channel = link.endpoints.subscriber(wanted.queue)
        channel.prefetch_count = wanted.prefetch  # read when the subscriber opens its channel
        consumer = Consumer(wanted.queue, subscriber, wanted.handler, self._acks, self.send)
        link.consumers.append(consumer)
        await consumer.start()

    def _lost(self, link: _Link, exc: BaseException | None) -> None:
        """The live link's connection closed under it: go on through the next node. A link
        being dropped on purpose is no longer live, and is let go."""
        if link is not self._live or self._closing.is_set():
            return
        self._live = None
        at = self.urls.index(link.url)
        log.warning("broker_connection_lost", node=public(link.url),
                    error=f"{type(exc).__name__}: {exc}" if exc else "closed")
        self._connecting = asyncio.create_task(self._reconnect(link, at + 1),
                                               name="broker-reconnect")

    async def _reconnect(self, lost: _Link, first: int) -> None:
        """Soon after a loss, and often: the next node is most likely up already."""
        await self._drop(lost)
        soon = Backoff(first=AMQP_RECONNECT_SECONDS / 2, cap=2 * AMQP_RECONNECT_SECONDS)
        await self._connect(first % len(self.urls), soon)

    async def _drop(self, link: _Link) -> None:
        """Stops the link's consumers and closes its connection, each within a deadline (a dead
        node answers nothing); what they held goes back to RabbitMQ with the connection."""
        for consumer in link.consumers:
            with contextlib.suppress(Exception):
                await consumer.stop()
        link.consumers.clear()
        with contextlib.suppress(Exception):  # closing what never opened: nothing to do
            async with asyncio.timeout(AMQP_RPC_SECONDS):
                await link.faststream.stop()

    async def close(self) -> None:
        self._closing.set()
        if self._connecting is not None:
            # an attempt cancelled halfway leaves aio-pika's own reconnect task behind, trying
            # on: the attempt under way gets a few seconds to end first
            await asyncio.wait({self._connecting}, timeout=5.0)
            self._connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connecting
        live, self._live = self._live, None
        if live is not None:
            await self._drop(live)

    async def consume(self, queue: str, prefetch: int, handler: DeliveryHandler) -> None:
        wanted = _Wanted(queue, prefetch, handler)
        self._wanted.append(wanted)
        if self._live is not None:
            await self._start(self._live, wanted)

    async def consume_dispatches(self, concurrency: int, handler: DeliveryHandler) -> None:
        """Every dispatch queue, sharing `concurrency` between them. Quorum queues know no
        prefetch per channel, only per consumer, so each consumer gets its share rounded up
        (a task waiting in any queue can be taken), and a semaphore keeps the handler to
        `concurrency` deliveries at once: at most N - 1 wait in the process for a free slot."""
        share = math.ceil(concurrency / len(self.dispatch))
        if share * len(self.dispatch) > concurrency:
            handler = _at_most(concurrency, handler)
        for queue in self.dispatch:
            await self.consume(queue, share, handler)

    async def stop_consuming(self) -> None:
        self._wanted.clear()
        if self._live is not None:
            consumers, self._live.consumers = self._live.consumers, []
            for consumer in consumers:
                await consumer.stop()

    async def publish(self, dispatches: Sequence[Dispatch]) -> None:
        """All at once on the confirming channel, so that the confirms overlap."""
        await asyncio.gather(*(self._publish(d) for d in dispatches))

    async def _publish(self, dispatch: Dispatch) -> None:
        """To the task's own queue. A dispatch that carries a trace is sent inside a `publish`
        span of that trace, and the span's context goes in the headers (the body stays task id
        and attempt)."""
        queue = queue_of(dispatch.task_id, self.dispatch)
        properties: dict[str, Any] = {"message_id": f"{dispatch.task_id}:{dispatch.attempt}",
                                      "content_type": "application/json", "persistent": True}
        if dispatch.trace is None:
            await self.send(queue, _encode(dispatch), **properties)
            return
        with self._tracer.span(f"publish {queue}", dispatch.task_id, parent=dispatch.trace,
                               kind="producer", attributes={
                                   "messaging.system": "rabbitmq",
                                   "messaging.operation.type": "send",
                                   "messaging.destination.name": queue}) as span:
            body = _encode(msgspec.structs.replace(dispatch, trace=None))
            headers = {TRACE_HEADER: span.context} if span.context else {}
            await self.send(queue, body, headers=headers, **properties)

    async def send(self, queue: str, body: bytes, *, persistent: bool = False,
                   **properties: Any) -> None:
        """To `queue` through the default exchange, by its publisher when the service has one;
        returns once RabbitMQ confirmed it."""
        link = self._live
        if link is None:
            raise ServiceUnavailable("broker did not confirm: not connected")
        publisher = link.endpoints.publishers.get(queue)
        try:
            # the deadline is ours: FastStream 0.7 does not pass its `timeout` on to aio-pika
            async with asyncio.timeout(self._timeout):
                if publisher is not None:
                    await publisher.publish(body, persist=persistent, **properties)
                else:
                    await link.faststream.publish(body, queue, persist=persistent, **properties)
        except TimeoutError as exc:
            raise ServiceUnavailable("broker did not confirm in time") from exc
        except asyncio.CancelledError as exc:
            # aiormq cancels the confirms a dead connection still owed: that is an outage
            # for this caller, unless the caller itself is being cancelled
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            raise ServiceUnavailable("broker did not confirm: connection lost") from exc
        except Exception as exc:
            raise ServiceUnavailable(f"broker did not confirm: {type(exc).__name__}") from exc

    @contextlib.asynccontextmanager
    async def channel(self) -> AsyncIterator[AbstractChannel]:
        """A short-lived channel of the live connection (for looks at queues, dead letters)."""
        link = self._live
        connection = link.connection if link is not None else None
        if connection is None or not connection.connected.is_set():
            raise ServiceUnavailable("broker unreachable")
        channel = await asyncio.wait_for(connection.channel(), AMQP_RPC_SECONDS)
        try:
            yield channel
        finally:
            with contextlib.suppress(Exception):
                await channel.close()

    async def check(self) -> str | None:
        """Health probe: connected to some node; says which (`host:port`)."""
        link = self._live
        if link is None and self._failure is not None:
            raise ServiceUnavailable(self._failure.short())
        if link is None:
            raise ServiceUnavailable("not connected (connecting)")
        if link.connection is None or not link.connection.connected.is_set():
            raise ServiceUnavailable("connection lost (reconnecting)")
        parts = urllib.parse.urlsplit(link.url)
        return f"{parts.hostname}:{parts.port or (5671 if parts.scheme == 'amqps' else 5672)}"


async def _ack(message: RabbitMessage, multiple: bool) -> None:
    await message.ack(multiple=multiple)


def _at_most(slots: int, handler: DeliveryHandler) -> DeliveryHandler:
    """`handler`, run for at most `slots` deliveries at once."""
    gate = asyncio.Semaphore(slots)

    async def gated(delivery: Delivery) -> None:
        async with gate:
            await handler(delivery)

    return gated
