from __future__ import annotations

import time

import redis

from service.keys import Keys
from service.queue import JobQueue


def test_enqueue_claim_ack(redis_client: redis.Redis, keys: Keys) -> None:
    q = JobQueue(redis_client, keys)
    q.enqueue("j1")
    q.enqueue("j2")
    c1 = q.claim("w1", block_ms=10)
    assert c1 is not None and c1.job_id == "j1"
    assert q.pending() == 1
    q.ack(c1)
    assert q.pending() == 0
    c2 = q.claim("w1", block_ms=10)
    assert c2 is not None and c2.job_id == "j2"
    q.ack(c2)
    assert q.claim("w1", block_ms=10) is None
    assert q.length() == 0


def test_group_creation_is_idempotent(redis_client: redis.Redis, keys: Keys) -> None:
    JobQueue(redis_client, keys).ensure_group()
    JobQueue(redis_client, keys).ensure_group()  # BUSYGROUP ignored


def test_second_consumer_does_not_get_a_claimed_message(
    redis_client: redis.Redis, keys: Keys
) -> None:
    q = JobQueue(redis_client, keys)
    q.enqueue("j1")
    assert q.claim("w1", block_ms=10) is not None
    assert q.claim("w2", block_ms=10) is None


def test_stale_claims_are_reclaimed(redis_client: redis.Redis, keys: Keys) -> None:
    q = JobQueue(redis_client, keys)
    q.enqueue("j1")
    crashed = q.claim("w1", block_ms=10)
    assert crashed is not None
    assert q.reclaim_stale("w2", min_idle_ms=10_000) == []  # not idle long enough
    time.sleep(0.05)
    claims = q.reclaim_stale("w2", min_idle_ms=20)
    assert [c.job_id for c in claims] == ["j1"]
    q.ack(claims[0])
    assert q.pending() == 0
    assert q.reclaim_stale("w3", min_idle_ms=0) == []
