"""The job store: job records in Redis, their indexes, and every status change.

Records are JSON strings; sorted sets index them by creation order (per status, per kind and
per both), so listing stays fast. Every status change goes through :meth:`JobStore._update`,
an optimistic WATCH/MULTI transaction checked by ``service.states``.
"""

from __future__ import annotations

import builtins
import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, cast

import redis
import redis.asyncio
from redis.client import Pipeline

from service.auth import OPEN_TENANT
from service.errors import (
    Conflict,
    IdempotencyMismatch,
    InvalidInput,
    JobNotFound,
)
from service.ids import is_id, new_id, shown
from service.keys import Keys
from service.queue import JobQueue
from service.schemas import (
    ClusterInfo,
    JobKind,
    JobPublic,
    JobSpec,
    JobStatus,
    MetaTrainSpec,
    Progress,
    SearchSpec,
    SupernetPublic,
)
from service.states import check_transition

_SPEC_OF_KIND: dict[JobKind, type[MetaTrainSpec] | type[SearchSpec]] = {
    JobKind.meta_train: MetaTrainSpec,
    JobKind.search: SearchSpec,
}
# A cancel flag outlives any sane job, and then goes away by itself.
_CANCEL_FLAG_TTL_S = 30 * 24 * 3600


def _now() -> datetime:
    return datetime.now(timezone.utc)


class JobRecord(JobPublic):
    """A job as stored: the public view plus bookkeeping for workers."""

    seq: int
    worker: str | None = None
    attempts: int = 0
    # Who owns the job (``service.auth``); records from before tenancy belong to the open one.
    tenant: str = OPEN_TENANT

    def public(self) -> JobPublic:
        """The view the API returns."""
        return JobPublic.model_validate(self.model_dump(include=set(JobPublic.model_fields)))


def _not_found(job_id: str) -> JobNotFound:
    return JobNotFound(f"no job with id {shown(job_id)}")


def _parse_job(job_id: str, raw: Any, tenant: str | None = None) -> JobRecord:
    if raw is None:
        raise _not_found(job_id)
    job = JobRecord.model_validate_json(raw)
    if tenant is not None and job.tenant != tenant:
        raise _not_found(job_id)  # another tenant's job does not exist for this one
    return job


class JobStore:
    """Creates jobs, moves them through their statuses, lists them; also worker heartbeats.

    Example:
        >>> store = JobStore(r, Keys("atnas"))                       # doctest: +SKIP
        >>> job, created = store.create(JobKind.search, spec, "key-1")  # doctest: +SKIP
        >>> store.start(job.id, "worker-1")                              # doctest: +SKIP
        >>> store.succeed(job.id, {"accuracy": 0.9})                     # doctest: +SKIP
    """

    def __init__(self, r: redis.Redis, keys: Keys, idempotency_ttl_s: int = 24 * 3600) -> None:
        self._r = r
        self._keys = keys
        self._idem_ttl = idempotency_ttl_s
        self.queue = JobQueue(r, keys)

    @property
    def client(self) -> redis.Redis:
        """The client this store uses (e.g. to hand its address to worker processes)."""
        return self._r

    # --- creation -----------------------------------------------------------------------
    def create(
        self,
        kind: JobKind,
        spec: JobSpec,
        idempotency_key: str | None = None,
        check: Callable[[], None] | None = None,
        tenant: str = OPEN_TENANT,
    ) -> tuple[JobRecord, bool]:
        """Stores a queued job of ``tenant`` and enqueues it; returns ``(job, created)``.

        With an ``idempotency_key`` seen before (within the TTL) and the same body, the first
        job comes back with ``created=False``; with a different body, :class:`IdempotencyMismatch`.
        ``check`` (e.g. spec validation against the data) runs only when a new job is about to
        be made, so a replay returns the first job even if the data changed since.
        """
        if not isinstance(spec, _SPEC_OF_KIND[kind]):
            raise InvalidInput(f"a {kind.value} job needs a {_SPEC_OF_KIND[kind].__name__}")
        body = json.dumps(
            {"kind": kind.value, "spec": spec.model_dump(mode="json")}, sort_keys=True
        )
        fingerprint = hashlib.sha256(body.encode()).hexdigest()
        job_id = new_id()
        idem = None
        if idempotency_key is not None:
            if not 1 <= len(idempotency_key) <= 255:
                raise InvalidInput("Idempotency-Key must be 1 to 255 characters")
            idem = self._keys.idempotency(idempotency_key, tenant)
            replay = self._replay(self._r.get(idem), fingerprint)
            if replay is not None:
                return replay, False
        if check is not None:
            check()
        seq = int(self._r.incr(self._keys.job_seq()))
        record = JobRecord(
            id=job_id,
            kind=kind,
            status=JobStatus.queued,
            spec=spec,
            created_at=_now(),
            seq=seq,
            tenant=tenant,
        )
        self.queue.ensure_group()

        def tx(pipe: Pipeline) -> JobRecord | None:
            # The key, the record and the queue entry are written in one transaction: a crash
            # can never leave a key that points at a job that was not written.
            if idem is not None:
                earlier = self._replay(pipe.get(idem), fingerprint)
                if earlier is not None:
                    return earlier
            pipe.multi()
            if idem is not None:
                pipe.set(idem, f"{job_id} {fingerprint}", ex=self._idem_ttl)
            pipe.set(self._keys.job(job_id), record.model_dump_json())
            for index in self._indexes(record):
                pipe.zadd(index, {job_id: seq})
            self.queue.enqueue(job_id, pipe=pipe)
            return None

        tx_any = cast(Callable[[Pipeline], None], tx)
        watched = [idem] if idem is not None else []
        earlier = cast(
            "JobRecord | None", self._r.transaction(tx_any, *watched, value_from_callable=True)
        )
        if earlier is not None:  # another request with this key won the race
            return earlier, False
        return record, True

    def _replay(self, value: Any, fingerprint: str) -> JobRecord | None:
        """The job an Idempotency-Key entry (``<job_id> <body sha256>``) points at; None for no
        entry, or when that job was since removed (``service.retention``): a fresh key."""
        if value is None:
            return None
        first_id, first_fingerprint = str(value).split(" ", 1)
        if first_fingerprint != fingerprint:
            raise IdempotencyMismatch(
                "this Idempotency-Key was already used with a different request body"
            )
        try:
            return self.get(first_id)
        except JobNotFound:
            return None

    # --- reading ------------------------------------------------------------------------
    def get(self, job_id: str, tenant: str | None = None) -> JobRecord:
        """The job, or :class:`JobNotFound` (also for an id of the wrong shape, and for
        another tenant's job when ``tenant`` is given)."""
        if not is_id(job_id):
            raise _not_found(job_id)
        return _parse_job(job_id, self._r.get(self._keys.job(job_id)), tenant)

    async def get_async(
        self, r: redis.asyncio.Redis, job_id: str, tenant: str | None = None
    ) -> JobRecord:
        """:meth:`get` over an asyncio client of the same Redis (for the API's event loop)."""
        if not is_id(job_id):
            raise _not_found(job_id)
        return _parse_job(job_id, await r.get(self._keys.job(job_id)), tenant)

    def list(
        self,
        status: JobStatus | None = None,
        kind: JobKind | None = None,
        limit: int = 50,
        cursor: str | None = None,
        tenant: str | None = None,
    ) -> tuple[builtins.list[JobRecord], str | None]:
        """Jobs newest first, optionally filtered (by ``tenant`` too: None lists every
        tenant's); returns ``(page, next_cursor)``.

        ``cursor`` is the ``next_cursor`` of the previous page (None for the first page);
        pages stay stable while new jobs arrive.
        """
        if not 1 <= limit <= 1000:
            raise InvalidInput("limit must be in 1..1000")
        top = "+inf"
        if cursor is not None:
            if not cursor.isdigit():
                raise InvalidInput(f"invalid cursor {cursor!r}")
            top = f"({int(cursor)}"
        rows: Any = self._r.zrevrangebyscore(
            self._keys.job_index(status and status.value, kind and kind.value, tenant),
            top,
            "-inf",
            start=0,
            num=limit + 1,
            withscores=True,
        )
        more = len(rows) > limit
        rows = rows[:limit]
        records = self._get_many([job_id for job_id, _ in rows])
        next_cursor = str(int(rows[-1][1])) if more and rows else None
        return records, next_cursor

    def _get_many(self, job_ids: builtins.list[str]) -> builtins.list[JobRecord]:
        if not job_ids:
            return []
        raws: Any = self._r.mget([self._keys.job(j) for j in job_ids])
        return [JobRecord.model_validate_json(raw) for raw in raws if raw is not None]

    def delete(self, job_id: str) -> JobRecord:
        """Removes a finished job's record and index entries (``service.retention``); a queued
        or running job is a :class:`Conflict`. Artifacts and folders are the caller's."""

        def tx(pipe: Pipeline) -> JobRecord:
            job = _parse_job(job_id, pipe.get(self._keys.job(job_id)))
            if job.status in (JobStatus.queued, JobStatus.running):
                raise Conflict(f"job {job_id} is {job.status.value}; cancel it first")
            pipe.multi()
            pipe.delete(self._keys.job(job_id), self._keys.job_cancel(job_id))
            for index in self._indexes(job):
                pipe.zrem(index, job_id)
            return job

        if not is_id(job_id):
            raise _not_found(job_id)
        tx_any = cast(Callable[[Pipeline], None], tx)
        return cast(
            JobRecord,
            self._r.transaction(tx_any, self._keys.job(job_id), value_from_callable=True),
        )

    def supernets(
        self, limit: int = 1000, tenant: str | None = None
    ) -> builtins.list[SupernetPublic]:
        """Succeeded meta_train jobs (of ``tenant`` when given), newest first, as supernets
        that search jobs can use."""
        records, _ = self.list(JobStatus.succeeded, JobKind.meta_train, limit=limit, tenant=tenant)
        out = []
        for rec in records:
            assert isinstance(rec.spec, MetaTrainSpec)
            out.append(
                SupernetPublic(
                    id=rec.id,
                    created_at=rec.finished_at or rec.created_at,
                    way=rec.spec.way,
                    shot=rec.spec.shot,
                    summary=rec.result or {},
                )
            )
        return out

    # --- status changes -----------------------------------------------------------------
    def start(self, job_id: str, worker: str) -> JobRecord:
        """queued -> running, by ``worker``."""

        def change(job: JobRecord) -> JobRecord:
            check_transition(job_id, job.status, JobStatus.running)
            return job.model_copy(
                update={
                    "status": JobStatus.running,
                    "started_at": _now(),
                    "worker": worker,
                    "attempts": job.attempts + 1,
                    "progress": Progress(phase="starting"),
                }
            )

        return self._update(job_id, change)

    def requeue(self, job_id: str, enqueue: bool = False) -> JobRecord:
        """running -> queued, for the job of a worker that crashed.

        After :meth:`JobQueue.reclaim_stale` the claim is already yours: requeue, then
        :meth:`start`. Pass ``enqueue=True`` to put the job back in the stream instead (then
        ack your old claim).
        """

        def change(job: JobRecord) -> JobRecord:
            check_transition(job_id, job.status, JobStatus.queued)
            return job.model_copy(
                update={"status": JobStatus.queued, "worker": None, "started_at": None}
            )

        def after(pipe: Pipeline, _: JobRecord) -> None:
            if enqueue:
                self.queue.enqueue(job_id, pipe=pipe)

        if enqueue:
            self.queue.ensure_group()
        return self._update(job_id, change, after)

    def update_progress(self, job_id: str, progress: Progress) -> JobRecord:
        """Replaces the progress of a running job (:class:`Conflict` when it is not running)."""

        def change(job: JobRecord) -> JobRecord:
            if job.status is not JobStatus.running:
                raise Conflict(f"job {job_id!r} is {job.status.value}; progress not recorded")
            return job.model_copy(update={"progress": progress})

        return self._update(job_id, change)

    def succeed(self, job_id: str, result: dict[str, Any]) -> JobRecord:
        """running -> succeeded with a JSON-serialisable ``result`` summary."""
        return self._finish(job_id, JobStatus.succeeded, {"result": result})

    def fail(self, job_id: str, error: str) -> JobRecord:
        """running -> failed with an ``error`` a user can act on."""
        return self._finish(job_id, JobStatus.failed, {"error": error})

    def mark_cancelled(self, job_id: str) -> JobRecord:
        """running -> cancelled; the worker calls it once it has stopped."""
        return self._finish(job_id, JobStatus.cancelled, {})

    def request_cancel(self, job_id: str) -> JobRecord:
        """Cancels a queued job at once; flags a running one for its worker to stop.

        Cancelling a cancelled job is a no-op; a succeeded or failed one is an
        :class:`IllegalTransition`. The worker polls :meth:`cancel_requested`.
        """
        flag = self._keys.job_cancel(job_id)

        def change(job: JobRecord) -> JobRecord:
            if job.status in (JobStatus.queued, JobStatus.cancelled):
                return job.model_copy(
                    update={"status": JobStatus.cancelled, "finished_at": job.finished_at or _now()}
                )
            check_transition(job_id, job.status, JobStatus.cancelled)
            return job  # running: the flag below asks the worker to stop

        def after(pipe: Pipeline, job: JobRecord) -> None:
            if job.status is JobStatus.running:
                pipe.set(flag, "1", ex=_CANCEL_FLAG_TTL_S)

        return self._update(job_id, change, after)

    def cancel_requested(self, job_id: str) -> bool:
        """True once a cancel was requested for this running job."""
        return bool(self._r.exists(self._keys.job_cancel(job_id)))

    def _finish(self, job_id: str, status: JobStatus, update: dict[str, Any]) -> JobRecord:
        def change(job: JobRecord) -> JobRecord:
            check_transition(job_id, job.status, status)
            return job.model_copy(update={"status": status, "finished_at": _now(), **update})

        def after(pipe: Pipeline, _: JobRecord) -> None:
            pipe.delete(self._keys.job_cancel(job_id))

        return self._update(job_id, change, after)

    def _update(
        self,
        job_id: str,
        change: Callable[[JobRecord], JobRecord],
        after: Callable[[Pipeline, JobRecord], None] | None = None,
    ) -> JobRecord:
        """Reads, changes and writes one record atomically (retried if it changed meanwhile)."""
        if not is_id(job_id):
            raise _not_found(job_id)
        key = self._keys.job(job_id)

        def tx(pipe: Pipeline) -> JobRecord:
            raw = pipe.get(key)
            if raw is None:
                raise _not_found(job_id)
            old = JobRecord.model_validate_json(raw)
            new = change(old)
            if new.status is not old.status:  # checked again: ``change`` must not skip it
                check_transition(job_id, old.status, new.status)
            # Pydantic's model_copy does not validate; a round trip catches a bad update.
            new = JobRecord.model_validate_json(new.model_dump_json())
            pipe.multi()
            pipe.set(key, new.model_dump_json())
            if new.status is not old.status:
                for index in self._indexes(old):
                    pipe.zrem(index, job_id)
                for index in self._indexes(new):
                    pipe.zadd(index, {job_id: new.seq})
            if after is not None:
                after(pipe, new)
            return new

        tx_any = cast(Callable[[Pipeline], None], tx)  # redis's stub types the callable as -> None
        return cast(JobRecord, self._r.transaction(tx_any, key, value_from_callable=True))

    def _indexes(self, job: JobRecord) -> builtins.list[str]:
        s, k = job.status.value, job.kind.value
        return [
            self._keys.job_index(status, kind, tenant)
            for tenant in (None, job.tenant)
            for status, kind in ((None, None), (s, None), (None, k), (s, k))
        ]

    # --- worker heartbeats --------------------------------------------------------------
    def heartbeat(self, worker_id: str, ttl_s: float) -> None:
        """Records that ``worker_id`` is alive for the next ``ttl_s`` seconds."""
        self._r.zadd(self._keys.workers(), {worker_id: self._server_time() + ttl_s})

    def worker_gone(self, worker_id: str) -> None:
        """Removes ``worker_id`` at once (on a clean shutdown)."""
        self._r.zrem(self._keys.workers(), worker_id)

    def workers_alive(self) -> builtins.list[str]:
        """Ids of the workers whose last heartbeat has not expired (sorted)."""
        now = self._server_time()
        self._r.zremrangebyscore(self._keys.workers(), "-inf", now)
        alive: Any = self._r.zrangebyscore(self._keys.workers(), now, "+inf")
        return sorted(str(w) for w in alive)

    def publish_cluster(self, info: ClusterInfo, ttl_s: float) -> None:
        """Records what the Ray cluster can place, for ``ttl_s`` seconds (dispatchers)."""
        self._r.set(self._keys.cluster(), info.model_dump_json(), px=max(1, int(ttl_s * 1000)))

    def cluster(self) -> ClusterInfo | None:
        """The Ray cluster's size as a live dispatcher last published it; None if unknown."""
        raw = self._r.get(self._keys.cluster())
        return None if raw is None else ClusterInfo.model_validate_json(raw)

    def _server_time(self) -> float:
        # Redis's clock, so that workers on other machines agree on expiry.
        seconds, micros = self._r.time()
        return float(seconds) + float(micros) / 1e6
