"""The owner of every periodic background task of the hive process."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog

__all__ = ["JobRunner", "PeriodicJob"]

log = structlog.get_logger("vk_hive.jobs")


@dataclass
class PeriodicJob:
    """``run`` is awaited every ``interval_s`` (first run right away unless ``delay_first``)."""

    name: str
    interval_s: float
    run: Callable[[], Awaitable[object]]
    delay_first: bool = False
    runs: int = field(default=0, init=False)
    failures: int = field(default=0, init=False)


class JobRunner:
    """Starts periodic jobs, isolates their failures, cancels and awaits them on stop."""

    def __init__(self) -> None:
        self._jobs: list[PeriodicJob] = []
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def jobs(self) -> list[PeriodicJob]:
        return list(self._jobs)

    def add(self, job: PeriodicJob) -> None:
        if self._tasks:
            raise RuntimeError("jobs must be added before start()")
        self._jobs.append(job)

    async def _loop(self, job: PeriodicJob) -> None:
        if job.delay_first:
            await asyncio.sleep(job.interval_s)
        while True:
            try:
                await job.run()
                job.runs += 1
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                job.failures += 1
                log.warning("job.failed", job=job.name, error=type(exc).__name__, message=str(exc))
            await asyncio.sleep(job.interval_s)

    def start(self) -> None:
        for job in self._jobs:
            self._tasks.append(asyncio.create_task(self._loop(job), name=f"vk-hive-job:{job.name}"))
        log.info("jobs.started", jobs=[j.name for j in self._jobs])

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
