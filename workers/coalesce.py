"""Predict requests for one model that arrive together travel to Ray Serve as one call.

A call through a ``DeploymentHandle`` costs the calling process about 3.5 ms of CPU on the
2-core machine (routing, serialising, the actor call: ``benchmarks/serve_models.py``), far more
than the model's forward pass over one image. A :class:`Coalescer` keeps at most
``max_in_flight`` calls of a model in flight; requests that arrive meanwhile wait, and go
together in the next call (up to ``max_images`` images). Under light load a request leaves at
once, with no added wait; under load the calls grow instead of queueing up. The replica's
``@serve.batch`` then merges the calls that reach it together (from several API processes).

Example:
    >>> c = Coalescer(call, max_in_flight=1, max_images=64)   # doctest: +SKIP
    >>> await c.submit([("a.png", png)])                       # doctest: +SKIP
    {'probabilities': [[0.9, 0.1]]}
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

Images = list[tuple[str, bytes]]
# Sends several requests' images in one call; returns one answer per request, in order.
Call = Callable[[list[Images]], Awaitable[list[dict[str, Any]]]]


class Coalescer:
    """Groups the requests of one event loop for one model; see the module docstring."""

    def __init__(self, call: Call, max_in_flight: int, max_images: int) -> None:
        self._call = call
        self.max_in_flight = max_in_flight
        self.max_images = max_images
        self._pending: list[tuple[Images, asyncio.Future[dict[str, Any]]]] = []
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()  # referenced until done (asyncio's advice)

    async def submit(self, images: Images) -> dict[str, Any]:
        """The answer to one request: ``{"probabilities": ...}`` or ``{"error": ...}``; the
        call's exception (replicas gone, Serve down) when the call failed."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending.append((images, future))
        self._pump()
        return await future

    def _pump(self) -> None:
        while self._pending and self._in_flight < self.max_in_flight:
            batch: list[tuple[Images, asyncio.Future[dict[str, Any]]]] = []
            count = 0
            while self._pending and (
                not batch or count + len(self._pending[0][0]) <= self.max_images
            ):
                item = self._pending.pop(0)
                batch.append(item)
                count += len(item[0])
            self._in_flight += 1
            task = asyncio.get_running_loop().create_task(self._send(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[tuple[Images, asyncio.Future[dict[str, Any]]]]) -> None:
        try:
            answers = await self._call([images for images, _ in batch])
            for (_, future), answer in zip(batch, answers, strict=True):
                if not future.done():  # a request that timed out has gone
                    future.set_result(answer)
        except Exception as exc:  # every request of the call gets the call's failure
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
        finally:
            self._in_flight -= 1
        self._pump()  # not after a cancel: the loop is going away
