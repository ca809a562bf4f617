"""``GET /metrics``: the service's job figures in Prometheus format, computed at scrape time.

Jobs run in the dispatchers, other processes (and machines) than the API, so in-process counters
would see nothing: a collector reads :func:`service.stats.job_stats` from Redis at each scrape
(bounded work, see there), and every API replica answers the same numbers.

Open like ``/healthz``: a Prometheus scraper carries no API key, and the page holds only numbers
(counts, ages, durations, rates), never a job id, a tenant, a dataset or a class name. Keep it
behind your network's edge like any scrape target if even the counts are private.
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import APIRouter, Request, Response
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from redis import Redis

from api.deps import ServicesDep
from service.keys import Keys
from service.stats import RECENT_FINISHED, JobStats, job_stats

router = APIRouter(tags=["metrics"])
#: Upper bounds (seconds) of the job-duration buckets: a tiny search takes seconds, a
#: meta-training hours.
DURATION_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 4 * 3600.0)


class JobCollector(Collector):
    """Prometheus metric families from one :class:`JobStats` snapshot per ``collect``."""

    def __init__(self, r: Redis, keys: Keys, recent: int = RECENT_FINISHED) -> None:
        self._r, self._keys, self._recent = r, keys, recent

    def collect(self) -> Iterable[Metric]:
        """Reads the store once and yields every family."""
        s = job_stats(self._r, self._keys, self._recent)
        yield from _job_families(s)
        yield from _queue_families(s)
        yield _durations(s, self._recent)
        yield from _rate_families(s)
        yield from _worker_families(s)


def _job_families(s: JobStats) -> Iterable[Metric]:
    jobs = GaugeMetricFamily(
        "atnas_jobs", "Jobs in the store by kind and status.", labels=["kind", "status"]
    )
    for (kind, status), n in sorted(s.counts.items()):
        jobs.add_metric([kind, status], n)
    yield jobs
    yield CounterMetricFamily("atnas_jobs_created", "Jobs ever submitted.", value=s.created)


def _queue_families(s: JobStats) -> Iterable[Metric]:
    yield GaugeMetricFamily(
        "atnas_queue_depth", "Jobs queued, waiting for a worker.", value=s.queued
    )
    yield GaugeMetricFamily(
        "atnas_queue_oldest_age_seconds",
        "Seconds since the oldest queued job was submitted (0 when none is queued).",
        value=s.oldest_queued_age_s or 0.0,
    )


def _durations(s: JobStats, recent: int) -> Metric:
    family = GaugeHistogramMetricFamily(
        "atnas_job_duration_seconds",
        f"Run time (start to finish) of the newest {recent} finished jobs per kind and status; "
        "a window, not a running total.",
        labels=["kind", "status"],
    )
    for (kind, status), values in sorted(s.durations.items()):
        buckets = [(repr(b), float(sum(v <= b for v in values))) for b in DURATION_BUCKETS]
        buckets.append(("+Inf", float(len(values))))
        family.add_metric([kind, status], buckets, gsum_value=float(sum(values)))
    return family


def _rate_families(s: JobStats) -> Iterable[Metric]:
    yield GaugeMetricFamily(
        "atnas_search_evaluations_per_second",
        "Candidates scored per second, summed over running searches (each averaged since it "
        "started).",
        value=s.evaluations_per_s,
    )
    yield GaugeMetricFamily(
        "atnas_meta_train_iterations_per_second",
        "Meta-iterations per second, summed over running meta_train jobs (each averaged since "
        "it started).",
        value=s.iterations_per_s,
    )


def _worker_families(s: JobStats) -> Iterable[Metric]:
    yield GaugeMetricFamily(
        "atnas_workers_alive", "Dispatchers whose heartbeat is fresh.", value=s.workers_alive
    )
    cluster = GaugeMetricFamily(
        "atnas_cluster_resources",
        "What the Ray cluster behind the dispatchers can place, as a live dispatcher published "
        "it (absent when none has).",
        labels=["resource"],
    )
    if s.cluster is not None:
        cluster.add_metric(["cpu"], s.cluster.cpus)
        cluster.add_metric(["gpu"], s.cluster.gpus)
    yield cluster


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
def metrics(request: Request, services: ServicesDep) -> Response:
    """Job, queue and worker figures in Prometheus (or OpenMetrics) text format."""
    encode, content_type = choose_encoder(request.headers.get("accept", ""))
    collector = JobCollector(services.redis, Keys(services.settings.key_prefix))
    return Response(encode(collector), media_type=content_type)
