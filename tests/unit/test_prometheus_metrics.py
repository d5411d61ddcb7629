"""The Metrics port on prometheus-client, and the gauges a scrape reads from counts."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from adapters.telemetry.prometheus import PrometheusMetrics, scrape
from application.gauges import Gauges
from application.stats import Counts
from domain.status import TaskSource, TaskStatus

S = TaskStatus


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, keyed by name and sorted labels."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text.decode())
            for s in family.samples}


def fresh() -> tuple[PrometheusMetrics, CollectorRegistry]:
    registry = CollectorRegistry()
    return PrometheusMetrics(registry), registry


def test_every_contract_family_exists_at_zero_before_anything_happens() -> None:
    _, registry = fresh()
    found = samples(scrape(registry=registry))
    assert found[("tasks_created_total", (("source", "api"),))] == 0
    assert found[("tasks_created_total", (("source", "amqp"),))] == 0
    assert found[("tasks_finished_total", (("status", "completed"),))] == 0
    assert found[("tasks_finished_total", (("status", "error"),))] == 0
    assert found[("tasks_recovered_total", ())] == 0
    assert found[("tasks_queue_wait_seconds_count", ())] == 0
    assert found[("tasks_processing_seconds_count", ())] == 0


def test_events_become_counters_and_histograms() -> None:
    metrics, registry = fresh()
    metrics.created(TaskSource.API)
    metrics.created(TaskSource.API)
    metrics.created(TaskSource.AMQP)
    metrics.claimed(0.3)
    metrics.claimed(42.0)
    metrics.finished(S.COMPLETED, 6.5)
    metrics.finished(S.ERROR, None)  # cancelled before it ran: counted, not timed
    metrics.recovered(3)
    found = samples(scrape(registry=registry))
    assert found[("tasks_created_total", (("source", "api"),))] == 2
    assert found[("tasks_created_total", (("source", "amqp"),))] == 1
    assert found[("tasks_finished_total", (("status", "completed"),))] == 1
    assert found[("tasks_finished_total", (("status", "error"),))] == 1
    assert found[("tasks_recovered_total", ())] == 3
    assert found[("tasks_queue_wait_seconds_count", ())] == 2
    assert found[("tasks_queue_wait_seconds_sum", ())] == 42.3
    assert found[("tasks_queue_wait_seconds_bucket", (("le", "0.5"),))] == 1
    assert found[("tasks_processing_seconds_count", ())] == 1
    assert found[("tasks_processing_seconds_bucket", (("le", "6.0"),))] == 0
    assert found[("tasks_processing_seconds_bucket", (("le", "7.0"),))] == 1


def test_http_requests_are_counted_and_timed_by_route_and_status() -> None:
    metrics, registry = fresh()
    for status in (201, 201, 401):
        metrics.request_started()
        metrics.request_done("POST", "/tasks", status, 0.004)
    found = samples(scrape(registry=registry))
    labels = (("method", "POST"), ("route", "/tasks"), ("status_code", "201"))
    assert found[("tasks_http_requests_total", labels)] == 2
    assert found[("tasks_http_request_duration_seconds_count", labels)] == 2
    assert found[("tasks_http_requests_in_progress", ())] == 0


def test_gauges_come_from_the_counts_and_the_dead_letter_queues() -> None:
    _, registry = fresh()
    counts = Counts(by_status={S.NEW: 3, S.IN_PROGRESS: 2, S.COMPLETED: 10, S.ERROR: 1},
                    oldest_new_at=datetime(2025, 1, 1, tzinfo=UTC), created=16,
                    finished={S.COMPLETED: 10, S.ERROR: 1}, outbox_pending=4)
    gauges = Gauges(counts=counts, oldest_new_age_seconds=12.5,
                    dead_letters={"tasks.create.dlq": 2, "tasks.dispatch.dlq": 0})
    found = samples(scrape(gauges, registry))
    assert {s.value: found[("tasks_by_status", (("status", s.value),))] for s in S} == {
        "new": 3, "in_progress": 2, "completed": 10, "error": 1}
    assert found[("tasks_oldest_new_age_seconds", ())] == 12.5
    assert found[("tasks_outbox_pending", ())] == 4
    assert found[("tasks_dead_letters", (("queue", "tasks.create.dlq"),))] == 2
    assert found[("tasks_dead_letters", (("queue", "tasks.dispatch.dlq"),))] == 0


def test_a_source_that_did_not_answer_leaves_out_only_its_own_gauges() -> None:
    _, registry = fresh()
    found = samples(scrape(Gauges(counts=None, oldest_new_age_seconds=None,
                                  dead_letters={"tasks.create.dlq": 1}), registry))
    names = {name for name, _ in found}
    assert "tasks_dead_letters" in names
    assert not names & {"tasks_by_status", "tasks_oldest_new_age_seconds", "tasks_outbox_pending"}
    assert "tasks_created_total" in names  # the process's own counters are always there


def test_nothing_waiting_in_new_is_an_age_of_zero() -> None:
    _, registry = fresh()
    counts = Counts(by_status={s: 0 for s in S}, oldest_new_at=None, created=0,
                    finished={S.COMPLETED: 0, S.ERROR: 0})
    found = samples(scrape(Gauges(counts=counts, oldest_new_age_seconds=None,
                                  dead_letters=None), registry))
    assert found[("tasks_oldest_new_age_seconds", ())] == 0
