"""The coalescer of predict requests: who goes with whom, and who gets which answer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from workers.coalesce import Coalescer, Images


class Recorder:
    """A call that records the requests it got and answers each with its own first name."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.calls: list[list[Images]] = []
        self.fail_on = fail_on
        self.release = asyncio.Event()

    async def __call__(self, requests: list[Images]) -> list[dict[str, Any]]:
        self.calls.append(requests)
        await self.release.wait()
        if any(name == self.fail_on for images in requests for name, _ in images):
            raise RuntimeError("replica gone")
        return [{"first": images[0][0], "n": len(images)} for images in requests]


async def _settle() -> None:
    """Lets every ready task run until it waits (a submit, then the call it started)."""
    for _ in range(5):
        await asyncio.sleep(0)


def _req(name: str, n: int = 1) -> Images:
    return [(f"{name}{i}" if i else name, b"x") for i in range(n)]


def test_requests_that_arrive_while_a_call_is_in_flight_go_together() -> None:
    async def run() -> tuple[list[dict[str, Any]], Recorder]:
        rec = Recorder()
        c = Coalescer(rec, max_in_flight=1, max_images=4)
        tasks = [asyncio.create_task(c.submit(_req(name))) for name in "abcdef"]
        await _settle()  # a leaves alone at once; b..f wait for it
        assert [len(call) for call in rec.calls] == [1]
        rec.release.set()
        return list(await asyncio.gather(*tasks)), rec

    answers, rec = asyncio.run(run())
    assert [a["first"] for a in answers] == list("abcdef")  # each gets its own answer
    # b..f: 5 single-image requests, at most 4 images a call -> 4 then 1.
    assert [[r[0][0] for r in call] for call in rec.calls] == [["a"], list("bcde"), ["f"]]


def test_a_request_larger_than_max_images_still_goes_alone() -> None:
    async def run() -> Recorder:
        rec = Recorder()
        rec.release.set()
        c = Coalescer(rec, max_in_flight=2, max_images=4)
        answers = await asyncio.gather(c.submit(_req("big", 9)), c.submit(_req("s")))
        assert [a["n"] for a in answers] == [9, 1]
        return rec

    rec = asyncio.run(run())
    assert [[len(r) for r in call] for call in rec.calls] == [[9], [1]]


def test_a_failed_call_fails_its_requests_and_the_next_call_goes_on() -> None:
    async def run() -> None:
        rec = Recorder(fail_on="bad")
        c = Coalescer(rec, max_in_flight=1, max_images=8)
        first = asyncio.create_task(c.submit(_req("ok")))
        await _settle()
        together = [asyncio.create_task(c.submit(_req(n))) for n in ("bad", "mate")]
        rec.release.set()
        assert (await first)["first"] == "ok"
        for task in together:  # both were in the failed call
            with pytest.raises(RuntimeError, match="replica gone"):
                await task
        assert (await c.submit(_req("later")))["first"] == "later"

    asyncio.run(run())
