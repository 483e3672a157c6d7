"""The open-loop write schedule of the write-to-ack benchmark, shared by both kinds of simulated
node: each node writes ``rate`` times a second for ``duration`` seconds, the nodes' phases
spread evenly over one interval; a late write is not skipped (the schedule never waits for an
ack), so a saturated system shows as latency, not as a lower offered load."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

__all__ = ["open_loop"]

N = TypeVar("N")


async def open_loop(
    nodes: Sequence[N],
    rate: float,
    duration: float,
    start: float,
    write: Callable[[N, int], Awaitable[None]],
) -> list[int]:
    """Run ``write(node, k)`` for k = 0, 1, … on every node at ``start + phase + k / rate``
    (monotonic) until ``start + duration``; how many writes each node made."""
    interval = 1.0 / rate

    async def run(node: N, phase: float) -> int:
        k = 0
        while True:
            due = start + phase + k * interval
            if due > start + duration:
                return k
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await write(node, k)
            k += 1

    step = interval / max(1, len(nodes))
    return list(await asyncio.gather(*(run(n, i * step) for i, n in enumerate(nodes))))
