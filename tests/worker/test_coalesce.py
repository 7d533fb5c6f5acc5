"""Token coalescing: few chunks, in order, first one at once."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from worker.coalesce import Coalescer


async def test_the_first_piece_goes_at_once_and_the_rest_is_batched() -> None:
    sent: list[tuple[float, str]] = []

    async def flush(text: str) -> None:
        sent.append((time.monotonic(), text))

    c = Coalescer(flush, interval=0.02, max_chars=10_000)
    start = time.monotonic()
    c.add("a")
    await asyncio.sleep(0)  # let the flusher run once
    await asyncio.sleep(0)
    assert [t for _, t in sent] == ["a"]
    assert sent[0][0] - start < 0.01
    # 500 tokens arriving at ~2 ms each over ~1 s: far fewer than 500 chunks.
    for i in range(500):
        c.add(f" t{i}")
        if i % 10 == 0:
            await asyncio.sleep(0.02)
    await asyncio.sleep(0.05)
    await c.close()
    text = "".join(t for _, t in sent)
    assert text == "a" + "".join(f" t{i}" for i in range(500))
    assert len(sent) < 80
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(sent)]
    assert min(gaps) >= 0.015


async def test_a_large_buffer_flushes_before_the_interval() -> None:
    sent: list[str] = []

    async def flush(text: str) -> None:
        sent.append(text)

    c = Coalescer(flush, interval=10.0, max_chars=100)
    c.add("x")
    await asyncio.sleep(0.01)
    c.add("y" * 150)
    await asyncio.wait_for(_until(lambda: len(sent) == 2), 1.0)
    await c.close()
    assert sent == ["x", "y" * 150]


async def test_close_waits_for_a_flush_in_flight_and_drops_the_tail() -> None:
    started = asyncio.Event()
    release = asyncio.Event()
    sent: list[str] = []

    async def slow_flush(text: str) -> None:
        started.set()
        await release.wait()
        sent.append(text)

    c = Coalescer(slow_flush, interval=0.01)
    c.add("first")
    await started.wait()
    c.add(" tail")
    closing = asyncio.create_task(c.close())
    await asyncio.sleep(0.02)
    assert not closing.done()  # the flush in flight is not cut off
    release.set()
    await closing
    assert sent == ["first"]  # the tail travels in stream_end instead


async def _until(cond: object) -> None:
    while not cond():  # type: ignore[operator]
        await asyncio.sleep(0.001)


async def test_a_reply_added_and_stopped_in_one_go_sends_no_chunk() -> None:
    sent: list[str] = []

    async def flush(text: str) -> None:
        sent.append(text)

    c = Coalescer(flush, interval=0.02)
    for piece in ("the ", "whole ", "reply"):
        c.add(piece)
    c.stop()  # the producer finished before the loop turned: stream_end carries it
    await asyncio.sleep(0.05)
    await c.close()
    assert sent == []


async def test_pieces_inside_the_interval_wait_for_one_timer() -> None:
    sent: list[str] = []

    async def flush(text: str) -> None:
        sent.append(text)

    c = Coalescer(flush, interval=0.05)
    c.add("a")
    await asyncio.wait_for(_until(lambda: sent == ["a"]), 1.0)
    for piece in "bcd":
        c.add(piece)
        await asyncio.sleep(0.005)
    assert sent == ["a"]  # still inside the interval
    await asyncio.wait_for(_until(lambda: len(sent) == 2), 1.0)
    await c.close()
    assert sent == ["a", "bcd"]


async def test_a_failed_flush_stops_flushing_and_close_raises_it() -> None:
    calls: list[str] = []

    async def failing(text: str) -> None:
        calls.append(text)
        raise ConnectionError("redis went away")

    c = Coalescer(failing, interval=0.0)
    c.add("x")
    await asyncio.wait_for(_until(lambda: calls == ["x"]), 1.0)
    await asyncio.sleep(0)
    c.add("y")
    await asyncio.sleep(0.02)
    assert calls == ["x"]
    with pytest.raises(ConnectionError, match="redis went away"):
        await c.close()
