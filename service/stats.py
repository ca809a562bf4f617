"""Service-wide job statistics read from Redis at the moment they are asked for.

The API and the dispatchers are different processes (often on different machines), so nothing
here counts in memory: every figure comes from the job store's indexes and records, which all
processes share. The work per call is bounded: one count per (status, kind) index, the oldest
queued record, the ``recent`` newest finished records per (status, kind), and the records of
the running jobs (at most one per dispatcher job slot). Nothing is written.

Example:
    >>> stats = job_stats(r, Keys("atnas"))   # doctest: +SKIP
    >>> stats.counts[("search", "running")]   # doctest: +SKIP
    1
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import redis

from service.keys import Keys
from service.schemas import ClusterInfo, JobKind, JobStatus

#: Finished jobs whose durations are read per (status, kind) index, newest first.
RECENT_FINISHED = 100
#: Running jobs read per kind (far above the job slots of any real deployment).
MAX_RUNNING = 1000
FINISHED = (JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled)


@dataclass(frozen=True)
class JobStats:
    """A snapshot of the job store.

    ``durations`` maps (kind, status) to the run times in seconds (``finished_at -
    started_at``) of the newest finished jobs; a job cancelled while queued never ran and has
    none. ``evaluations_per_s`` sums, over running searches, the candidates scored per second
    since each started; ``iterations_per_s`` sums meta-iterations per second over running
    meta_train jobs.
    """

    counts: dict[tuple[str, str], int]  # (kind, status) -> jobs
    created: int  # jobs ever created (the store's sequence)
    oldest_queued_age_s: float | None  # None: nothing queued
    durations: dict[tuple[str, str], list[float]]
    evaluations_per_s: float
    iterations_per_s: float
    running_with_progress: dict[str, int]  # kind -> running jobs that reported progress
    workers_alive: int
    cluster: ClusterInfo | None
    scanned: int = field(default=0)  # job records read for this snapshot

    @property
    def queued(self) -> int:
        """Jobs waiting for a worker (every kind)."""
        return sum(n for (_, status), n in self.counts.items() if status == "queued")


def job_stats(r: redis.Redis, keys: Keys, recent: int = RECENT_FINISHED) -> JobStats:
    """The statistics of every tenant's jobs under ``keys`` (see the module docstring)."""
    if recent < 1:
        raise ValueError("recent must be at least 1")
    now = _server_time(r)
    kinds = [k.value for k in JobKind]
    pairs = [(k, s.value) for k in kinds for s in JobStatus]
    with r.pipeline(transaction=False) as pipe:
        for kind, status in pairs:
            pipe.zcard(keys.job_index(status, kind))
        pipe.get(keys.job_seq())
        pipe.zrange(keys.job_index(JobStatus.queued.value), 0, 0)
        for kind in kinds:
            for status in FINISHED:
                pipe.zrevrange(keys.job_index(status.value, kind), 0, recent - 1)
        for kind in kinds:
            pipe.zrange(keys.job_index(JobStatus.running.value, kind), 0, MAX_RUNNING - 1)
        pipe.zcount(keys.workers(), now, "+inf")
        pipe.get(keys.cluster())
        replies: list[Any] = pipe.execute()
    # The replies in the order asked: counts, seq, oldest queued, finished ids, running ids,
    # live workers, cluster.
    done_pairs = [(k, st.value) for k in kinds for st in FINISHED]
    replies.reverse()
    counts = {pair: int(replies.pop()) for pair in pairs}
    created = int(replies.pop() or 0)
    oldest_ids: list[str] = replies.pop()
    finished_ids: dict[tuple[str, str], list[str]] = {p: replies.pop() for p in done_pairs}
    running_ids: dict[str, list[str]] = {k: replies.pop() for k in kinds}
    workers_raw, cluster_raw = replies.pop(), replies.pop()

    ids = oldest_ids + [j for v in finished_ids.values() for j in v]
    ids += [j for v in running_ids.values() for j in v]
    records = _records(r, keys, ids)

    oldest_age = None
    if oldest_ids and oldest_ids[0] in records:
        created_at = _time(records[oldest_ids[0]].get("created_at"))
        if created_at is not None:
            oldest_age = max(0.0, now - created_at)
    durations = {
        pair: [d for j in job_ids if (d := _duration(records.get(j))) is not None]
        for pair, job_ids in finished_ids.items()
    }
    rates: dict[str, float] = {}
    reporting: dict[str, int] = {}
    for kind, job_ids in running_ids.items():
        for j in job_ids:
            rate = _rate(kind, records.get(j))
            if rate is not None:
                rates[kind] = rates.get(kind, 0.0) + rate
                reporting[kind] = reporting.get(kind, 0) + 1
    return JobStats(
        counts=counts,
        created=created,
        oldest_queued_age_s=oldest_age,
        durations=durations,
        evaluations_per_s=rates.get(JobKind.search.value, 0.0),
        iterations_per_s=rates.get(JobKind.meta_train.value, 0.0),
        running_with_progress=reporting,
        workers_alive=int(workers_raw),
        cluster=None if cluster_raw is None else ClusterInfo.model_validate_json(cluster_raw),
        scanned=len(records),
    )


def _records(r: redis.Redis, keys: Keys, ids: list[str]) -> dict[str, dict[str, Any]]:
    """The raw JSON records of ``ids`` (missing ones left out: deleted since indexed)."""
    unique = list(dict.fromkeys(ids))
    if not unique:
        return {}
    raws: list[Any] = r.mget([keys.job(j) for j in unique])
    # Plain JSON rather than the pydantic model: a scrape reads hundreds of records and needs
    # four fields of each.
    return {j: json.loads(raw) for j, raw in zip(unique, raws, strict=True) if raw is not None}


def _duration(record: dict[str, Any] | None) -> float | None:
    if record is None:
        return None
    start, end = _time(record.get("started_at")), _time(record.get("finished_at"))
    if start is None or end is None:
        return None
    return max(0.0, end - start)


def _rate(kind: str, record: dict[str, Any] | None) -> float | None:
    """Units of work per second since the job started: candidates scored for a search
    (``progress.extra.evaluations``), meta-iterations (``progress.step``) for meta_train."""
    progress = (record or {}).get("progress") or {}
    elapsed = progress.get("elapsed") or 0.0
    if elapsed <= 0:
        return None
    if kind == JobKind.search.value:
        done = (progress.get("extra") or {}).get("evaluations")
    elif progress.get("phase") == "meta_train":
        done = progress.get("step")
    else:
        return None
    if not isinstance(done, int | float):
        return None
    return float(done) / float(elapsed)


def _time(value: Any) -> float | None:
    return datetime.fromisoformat(value).timestamp() if isinstance(value, str) else None


def _server_time(r: redis.Redis) -> float:
    # Redis's clock, the one worker heartbeats expire by (JobStore.heartbeat).
    seconds, micros = r.time()
    return float(seconds) + float(micros) / 1e6
