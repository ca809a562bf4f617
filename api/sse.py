"""The server-sent events wire format: writing events (the API) and reading them (the client).

An event is a few ``field: value`` lines and a blank line (WHATWG HTML, "Server-sent events");
a line that starts with ``:`` is a comment, which keeps an idle connection alive.

Example:
    >>> format_event("status", '{"a": 1}', event_id=3)
    'event: status\\nid: 3\\ndata: {"a": 1}\\n\\n'
    >>> list(parse_events(["event: status", 'data: {"a": 1}', "", ": keep-alive", ""]))
    [ServerEvent(event='status', data='{"a": 1}', id=None)]
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import NamedTuple

KEEP_ALIVE = ": keep-alive\n\n"


class ServerEvent(NamedTuple):
    """One event as a client receives it."""

    event: str  # "message" when the server named none
    data: str
    id: str | None


def format_event(event: str, data: str, event_id: int | None = None) -> str:
    """One event as text; ``data`` may span lines (each becomes its own ``data:`` line)."""
    lines = [f"event: {event}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.extend(f"data: {part}" for part in data.split("\n"))
    return "\n".join(lines) + "\n\n"


def parse_events(lines: Iterable[str]) -> Iterator[ServerEvent]:
    """The events in a stream of lines (without their line ends); comments are skipped."""
    event, data = "", list[str]()
    event_id: str | None = None
    for line in lines:
        if not line:
            if data:
                yield ServerEvent(event or "message", "\n".join(data), event_id)
            event, data, event_id = "", [], None
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id":
            event_id = value
