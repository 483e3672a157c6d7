"""The event-loop lag probe reports how late a blocked loop woke it, and near zero otherwise."""

from __future__ import annotations

import asyncio
import time

import pytest

from vk_hive.jobs.looplag import LoopLagMonitor, loop_lag_job
from vk_hive.jobs.runner import JobRunner


@pytest.mark.asyncio
async def test_a_blocked_loop_shows_as_lag() -> None:
    """A probe sleeping 10 ms while the loop is blocked for 150 ms records at least ~140 ms;
    an idle loop records a small lag."""
    seen: list[float] = []
    monitor = LoopLagMonitor(seen.append, 0.01)
    probe = asyncio.create_task(monitor.tick())
    await asyncio.sleep(0)  # the probe starts sleeping
    time.sleep(0.15)  # noqa: ASYNC251 - blocking the loop is the point
    lag = await probe
    assert lag >= 0.13
    assert seen == [lag]
    idle = await monitor.tick()
    assert 0 <= idle < 0.1


@pytest.mark.asyncio
async def test_the_job_keeps_sampling_until_stopped() -> None:
    """Run by the job runner, the probe observes continuously and stops with the runner."""
    seen: list[float] = []
    runner = JobRunner()
    runner.add(loop_lag_job(seen.append, 0.005))
    runner.start()
    await asyncio.sleep(0.1)
    await runner.stop()
    assert len(seen) >= 5
    count = len(seen)
    await asyncio.sleep(0.03)
    assert len(seen) == count
