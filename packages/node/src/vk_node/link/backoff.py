"""Reconnect delays: exponential backoff with jitter (docs/sync-protocol.md, Connection §5).

Pure state, no I/O: the client asks for the next delay after every failed or ended connection.
A failure doubles the delay up to ``max_s``; an authentication failure jumps straight to
``max_s`` (retrying a refused key quickly helps nobody); a session that stayed healthy for longer
than ``initial_s`` resets it.
"""

from __future__ import annotations

import random
from collections.abc import Callable

__all__ = ["Backoff"]


class Backoff:
    def __init__(
        self,
        initial_s: float,
        max_s: float,
        *,
        factor: float = 2.0,
        jitter: float = 0.0,
        rand: Callable[[], float] = random.random,
    ) -> None:
        if initial_s <= 0 or max_s < initial_s or factor < 1 or not 0 <= jitter <= 1:
            raise ValueError("invalid backoff parameters")
        self.initial_s = initial_s
        self.max_s = max_s
        self.factor = factor
        self.jitter = jitter
        self._rand = rand
        self._next = initial_s

    def _take(self, base: float) -> float:
        self._next = min(self.max_s, base * self.factor)
        return base * (1.0 - self.jitter * self._rand())

    def failure(self) -> float:
        """Delay before the next attempt after a connection that failed or was unhealthy."""
        return self._take(self._next)

    def auth_failure(self) -> float:
        """Delay after the hive refused our credentials: the maximum."""
        return self._take(self.max_s)

    def session_ended(self, duration_s: float) -> float:
        """Delay after an established session ended; a healthy one (longer than ``initial_s``)
        resets the backoff first."""
        if self.healthy(duration_s):
            self.reset()
        return self.failure()

    def healthy(self, duration_s: float) -> bool:
        """Whether a session that lasted ``duration_s`` counts as healthy (longer than
        ``initial_s``)."""
        return duration_s > self.initial_s

    def reset(self) -> None:
        self._next = self.initial_s
