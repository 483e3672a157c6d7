"""The clock of the hive link: monotonic time for deadlines, wall time for display only.

Leases use only :meth:`Clock.monotonic` (DESIGN.md §5: wall-clock skew between machines must not
matter); :meth:`Clock.wall` applies the ``clock_skew_s`` setting, so tests can run a node whose
wall clock is hours off and prove nothing depends on it.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "SystemClock"]


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never jumps."""
        ...

    def wall(self) -> datetime:
        """The (possibly skewed) wall clock, timezone-aware UTC."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of monotonic time."""
        ...


class SystemClock:
    """The process clocks; ``skew_s`` is added to every wall-clock reading."""

    def __init__(self, skew_s: float = 0.0) -> None:
        self.skew = timedelta(seconds=skew_s)

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> datetime:
        return datetime.now(UTC) + self.skew

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))
