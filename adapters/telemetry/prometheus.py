"""The Metrics port on prometheus-client, the HTTP metrics, and what a scrape returns.

One process, one registry: the families live in prometheus-client's default registry, next to
its process and garbage-collector metrics. Several API processes on one port: when
PROMETHEUS_MULTIPROC_DIR is set before prometheus-client is first imported (see
entrypoints/metrics.py), every value goes to that process's files in the directory instead, and
a scrape, answered by whichever process gets it, sums the files of all of them.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from application.gauges import Gauges
from domain.status import TaskSource, TaskStatus

#: What a scrape answers with (Litestar adds the charset itself).
MEDIA_TYPE = "text/plain; version=0.0.4"
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: From a busy moment's milliseconds to an outage's hour.
WAIT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300,
                600, 1800, 3600)
#: Fine around the emulated work's 5 to 10 seconds.
WORK_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12.5, 15, 20, 30, 60,
                120, 300)
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Families:
    """Every metric this process records, registered once per registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.created = Counter("tasks_created", "Tasks created, by source (api, amqp).",
                               ["source"], registry=registry)
        self.finished = Counter("tasks_finished", "Tasks finished, by final status.",
                                ["status"], registry=registry)
        self.recovered = Counter("tasks_recovered",
                                 "Claims taken back after their lease expired.",
                                 registry=registry)
        self.queue_wait = Histogram("tasks_queue_wait_seconds",
                                    "From created (or retried, or taken back) to claimed.",
                                    buckets=WAIT_BUCKETS, registry=registry)
        self.processing = Histogram("tasks_processing_seconds",
                                    "From claimed to finished, for tasks a worker ran.",
                                    buckets=WORK_BUCKETS, registry=registry)
        labels = ["method", "route", "status_code"]
        self.requests = Counter("tasks_http_requests",
                                "HTTP requests answered, by route template and status code.",
                                labels, registry=registry)
        self.request_seconds = Histogram(
            "tasks_http_request_duration_seconds",
            "From the request to the start of its answer, by route template and status code.",
            labels, buckets=HTTP_BUCKETS, registry=registry)
        self.in_flight = Gauge("tasks_http_requests_in_progress",
                               "HTTP requests being handled now.", registry=registry,
                               multiprocess_mode="livesum")
        for source in TaskSource:  # every series exists from the start, at zero
            self.created.labels(source.value)
        for status in TaskStatus:
            if status.is_final:
                self.finished.labels(status.value)


@functools.cache
def families(registry: CollectorRegistry = REGISTRY) -> Families:
    return Families(registry)


class PrometheusMetrics:
    """The Metrics port. Recording is a lock and an addition (a write to an mmap'ed file in
    multiprocess mode): cheap enough for every task and every request."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.registry = registry
        self._f = families(registry)

    def created(self, source: TaskSource) -> None:
        self._f.created.labels(source.value).inc()

    def claimed(self, queue_wait_seconds: float) -> None:
        self._f.queue_wait.observe(queue_wait_seconds)

    def finished(self, status: TaskStatus, processing_seconds: float | None) -> None:
        self._f.finished.labels(status.value).inc()
        if processing_seconds is not None:
            self._f.processing.observe(processing_seconds)

    def recovered(self, count: int) -> None:
        self._f.recovered.inc(count)

    def request_started(self) -> None:
        self._f.in_flight.inc()

    def request_done(self, method: str, route: str, status: int, seconds: float | None) -> None:
        """`seconds` until the answer started; None when it is already counted."""
        labels = (method, route, str(status))
        self._f.requests.labels(*labels).inc()
        if seconds is not None:
            self._f.request_seconds.labels(*labels).observe(seconds)
        self._f.in_flight.dec()


class GaugesCollector(Collector):
    """The API's gauges, read at scrape time (ReadGauges); a part that is None is left out."""

    def __init__(self, gauges: Gauges) -> None:
        self._gauges = gauges

    def collect(self) -> Iterator[Metric]:
        counts = self._gauges.counts
        if counts is not None:
            by_status = GaugeMetricFamily("tasks_by_status", "Tasks now in each status.",
                                          labels=["status"])
            for status, n in counts.by_status.items():
                by_status.add_metric([status.value], n)
            yield by_status
            yield GaugeMetricFamily(
                "tasks_oldest_new_age_seconds",
                "Age of the oldest task waiting in new (0 when none waits).",
                value=self._gauges.oldest_new_age_seconds or 0.0)
            yield GaugeMetricFamily(
                "tasks_outbox_pending",
                "Dispatches committed but not yet confirmed by RabbitMQ.",
                value=counts.outbox_pending)
        if self._gauges.dead_letters is not None:
            letters = GaugeMetricFamily("tasks_dead_letters",
                                        "Messages in each dead-letter queue.", labels=["queue"])
            for queue, n in sorted(self._gauges.dead_letters.items()):
                letters.add_metric([queue], n)
            yield letters
        if self._gauges.dispatch_queues is not None:
            ready = GaugeMetricFamily("tasks_dispatch_ready", "Dispatches in each dispatch "
                                      "queue waiting for a worker.", labels=["queue"])
            consumers = GaugeMetricFamily("tasks_dispatch_consumers", "Workers' consumers on "
                                          "each dispatch queue.", labels=["queue"])
            for queue, look in sorted(self._gauges.dispatch_queues.items()):
                ready.add_metric([queue], look.ready)
                consumers.add_metric([queue], look.consumers)
            yield ready
            yield consumers


def multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROCESS_ENV))


def scrape(gauges: Gauges | None = None, registry: CollectorRegistry = REGISTRY) -> bytes:
    """The text exposition: this process's metrics (every process's, summed, in multiprocess
    mode) and, when given, the gauges. A fresh registry per scrape: nothing accumulates. Every
    family shows, at zero, even in a process that has not recorded anything yet."""
    families(registry)
    answer = CollectorRegistry(auto_describe=False)
    if multiprocess():
        MultiProcessCollector(answer)  # type: ignore[no-untyped-call]
    else:
        answer.register(registry)
    if gauges is not None:
        answer.register(GaugesCollector(gauges))
    return generate_latest(answer)
