"""The job runner owns its periodic tasks: failures are isolated, stop cancels and awaits."""

from __future__ import annotations

import asyncio

import pytest

from vk_hive.jobs.runner import JobRunner, PeriodicJob


@pytest.mark.asyncio
async def test_runner_repeats_isolates_failures_and_stops() -> None:
    """A failing job keeps being retried, a healthy one keeps running, and stop() leaves no task
    behind."""
    calls = {"ok": 0, "bad": 0}

    async def ok() -> None:
        calls["ok"] += 1

    async def bad() -> None:
        calls["bad"] += 1
        raise RuntimeError("boom")

    runner = JobRunner()
    runner.add(PeriodicJob("ok", 0.01, ok))
    runner.add(PeriodicJob("bad", 0.01, bad))
    runner.start()
    with pytest.raises(RuntimeError):
        runner.add(PeriodicJob("late", 1, ok))
    await asyncio.sleep(0.1)
    await runner.stop()
    assert calls["ok"] >= 3
    assert calls["bad"] >= 3
    assert runner.jobs[1].failures == calls["bad"]
    before = dict(calls)
    await asyncio.sleep(0.05)
    assert calls == before
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("vk-hive-job")]
