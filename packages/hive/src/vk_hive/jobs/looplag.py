"""Event-loop lag of the hive process: how late the loop wakes a sleeper.

A job sleeps ``interval_s`` over and over and records how much later than asked it woke up. A
busy loop (a long synchronous step, too many ready callbacks) shows here before anything else:
every WebSocket session, heartbeat and REST request of the process waits for the same loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from vk_hive.jobs.runner import PeriodicJob

__all__ = ["LOOP_LAG_INTERVAL_S", "LoopLagMonitor", "loop_lag_job"]

LOOP_LAG_INTERVAL_S = 0.05
"""How long each probe sleeps (20 probes a second)."""


class LoopLagMonitor:
    """``tick()`` sleeps ``interval_s`` and passes the lateness (seconds, ≥ 0) to ``observe``."""

    def __init__(self, observe: Callable[[float], None], interval_s: float) -> None:
        self.observe = observe
        self.interval_s = interval_s

    async def tick(self) -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.sleep(self.interval_s)
        lag = max(0.0, loop.time() - started - self.interval_s)
        self.observe(lag)
        return lag


def loop_lag_job(
    observe: Callable[[float], None], interval_s: float = LOOP_LAG_INTERVAL_S
) -> PeriodicJob:
    """The periodic job of the lifespan's runner (it re-runs the probe right away)."""
    return PeriodicJob("event_loop_lag", 0.0, LoopLagMonitor(observe, interval_s).tick)
