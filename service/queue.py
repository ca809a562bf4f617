"""The job queue: a Redis Stream read through a consumer group.

A claimed message stays pending until it is acked; a worker that dies leaves its messages
pending, and :meth:`JobQueue.reclaim_stale` (XAUTOCLAIM) hands them to a live worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis

from service.keys import Keys


@dataclass(frozen=True)
class Claim:
    """A job handed to one consumer: the stream message id (to ack) and the job id."""

    message_id: str
    job_id: str


class JobQueue:
    """Enqueue job ids; workers claim, ack and reclaim them.

    Example:
        >>> q = JobQueue(r, Keys("atnas"))          # doctest: +SKIP
        >>> q.enqueue("j1"); c = q.claim("worker-1", block_ms=100); q.ack(c)  # doctest: +SKIP
    """

    def __init__(self, r: redis.Redis, keys: Keys) -> None:
        self._r = r
        self._stream = keys.queue_stream()
        self._group = keys.queue_group()
        self._group_ready = False

    def ensure_group(self) -> None:
        """Creates the stream and the consumer group if missing (idempotent)."""
        if self._group_ready:
            return
        try:
            self._r.xgroup_create(self._stream, self._group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    def enqueue(self, job_id: str, pipe: redis.client.Pipeline | None = None) -> None:
        """Appends ``job_id`` to the stream (inside ``pipe`` when given, to join a transaction)."""
        self.ensure_group()
        (pipe if pipe is not None else self._r).xadd(self._stream, {"job": job_id})

    def claim(self, consumer: str, block_ms: int = 1000) -> Claim | None:
        """The next never-delivered job for ``consumer``, waiting up to ``block_ms``; else None."""
        self.ensure_group()
        reply: Any = self._r.xreadgroup(
            self._group, consumer, {self._stream: ">"}, count=1, block=block_ms
        )
        if not reply:
            return None
        # reply: [[stream, [(message_id, {"job": job_id})]]]
        _, messages = reply[0]
        if not messages:
            return None
        message_id, fields = messages[0]
        return Claim(message_id=message_id, job_id=fields["job"])

    def ack(self, claim: Claim) -> None:
        """Marks the claim done: it is never delivered again (and leaves the stream)."""
        with self._r.pipeline(transaction=True) as pipe:
            pipe.xack(self._stream, self._group, claim.message_id)
            pipe.xdel(self._stream, claim.message_id)
            pipe.execute()

    def reclaim_stale(self, consumer: str, min_idle_ms: int, count: int = 10) -> list[Claim]:
        """Takes over up to ``count`` messages pending longer than ``min_idle_ms`` (XAUTOCLAIM).

        Call it from a live worker: the jobs of a crashed worker come back to it. The caller
        should re-queue each job in the store (``JobStore.requeue``) before running it again.
        """
        self.ensure_group()
        reply: Any = self._r.xautoclaim(
            self._stream, self._group, consumer, min_idle_time=min_idle_ms, count=count
        )
        # Redis 6.2: [next_id, messages]; Redis 7: [next_id, messages, deleted_ids].
        messages = reply[1]
        claims = []
        for message_id, fields in messages:
            if fields is None:  # the entry was trimmed away; nothing to run
                self._r.xack(self._stream, self._group, message_id)
                continue
            claims.append(Claim(message_id=message_id, job_id=fields["job"]))
        return claims

    def touch(self, claim: Claim, consumer: str) -> None:
        """Resets the claim's idle time (XCLAIM to the same consumer), so that a long job is
        not taken for a crashed one; call it now and then while the job runs."""
        self._r.xclaim(
            self._stream,
            self._group,
            consumer,
            min_idle_time=0,
            message_ids=[claim.message_id],
            justid=True,
        )

    def pending(self) -> int:
        """Messages delivered to some consumer and not yet acked."""
        self.ensure_group()
        info: Any = self._r.xpending(self._stream, self._group)
        return int(info["pending"])

    def length(self) -> int:
        """Messages in the stream not yet acked (waiting or claimed)."""
        return int(self._r.xlen(self._stream))
