"""Prometheus metrics for ``GET /metrics`` (web role), with prometheus-client.

What lives in the database (runs, jobs, heartbeats, Slack API errors and
retries, which every process records there) is read from it at each scrape,
so the figures are right whichever process serves them. Only the answers of
this web server (webhooks and callbacks by status) are counted in memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from .models import Clock
from .store import MetricsSnapshot, Store

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# seconds: how long runs took, and how late they started after they were due
DURATION_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)
LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)


class Metrics:
    """The registry this web server exposes."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store, self._clock = store, clock
        self.registry = CollectorRegistry(auto_describe=True)
        self._database = _DatabaseCollector(clock)
        self.registry.register(self._database)
        self.answers = Counter(
            "bennettbot_http_answers",
            "Answers of the web server to webhooks and callbacks, by status",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self._lock = asyncio.Lock()

    def answered(self, endpoint: str, status: int) -> None:
        self.answers.labels(endpoint=endpoint, status=str(status)).inc()

    async def exposition(self) -> bytes:
        """The text format, with the database's figures as they are now."""
        async with self._lock:
            self._database.snapshot = await self._store.metrics_snapshot(
                DURATION_BUCKETS, LAG_BUCKETS
            )
            return generate_latest(self.registry)


class _DatabaseCollector(Collector):
    """Families built from the last snapshot of the database."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.snapshot: MetricsSnapshot | None = None

    def describe(self) -> Iterable[Metric]:
        return []  # built at each scrape

    def collect(self) -> Iterator[Metric]:
        found = self.snapshot
        if found is None:
            return
        runs = CounterMetricFamily(
            "bennettbot_job_runs",
            "Runs recorded, by namespace, job type and outcome",
            labels=["namespace", "job_type", "outcome"],
        )
        for job_type, outcome, count in found.runs:
            runs.add_metric([_namespace(job_type), job_type, outcome], count)
        yield runs
        yield _histogram(
            "bennettbot_job_run_duration_seconds",
            "How long finished runs took",
            found.durations,
            DURATION_BUCKETS,
        )
        yield _histogram(
            "bennettbot_job_start_lag_seconds",
            "How long after their due time runs started",
            found.lags,
            LAG_BUCKETS,
        )
        jobs = GaugeMetricFamily(
            "bennettbot_jobs", "Jobs in the queue, by state", labels=["state"]
        )
        for state in ("waiting", "running"):
            jobs.add_metric([state], found.jobs.get(state, 0))
        yield jobs
        beats = GaugeMetricFamily(
            "bennettbot_heartbeat_age_seconds",
            "Seconds since each role's last heartbeat",
            labels=["role"],
        )
        now = self._clock.now()
        for role, at in sorted(found.heartbeats.items()):
            beats.add_metric([role], max(0.0, (now - at).total_seconds()))
        yield beats
        for kind, about in (("error", "errors"), ("retry", "retries")):
            family = CounterMetricFamily(
                f"bennettbot_slack_api_{about}",
                f"Slack Web API {about}, by method",
                labels=["method"],
            )
            for method, recorded, count in found.slack:
                if recorded == kind:
                    family.add_metric([method], count)
            yield family


def _histogram(
    name: str,
    documentation: str,
    rows: dict[str, tuple[int, float, list[int]]],
    bounds: Sequence[float],
) -> HistogramMetricFamily:
    family = HistogramMetricFamily(
        name, documentation, labels=["namespace", "job_type"]
    )
    for job_type, (count, total, cumulative) in sorted(rows.items()):
        buckets = [(f"{b:g}", n) for b, n in zip(bounds, cumulative, strict=True)]
        buckets.append(("+Inf", count))
        family.add_metric([_namespace(job_type), job_type], buckets, total)
    return family


def _namespace(job_type: str) -> str:
    return job_type.partition("_")[0]
