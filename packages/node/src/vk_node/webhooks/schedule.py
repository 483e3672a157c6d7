"""The retry schedule of a webhook delivery, as pure rules.

A delivery is tried at once, then again after each delay of ``delays`` in turn (the setting
``webhook_retry_delays_s``, default 5 s, 15 s, 40 s: four tries within about a minute). A try
succeeds when the endpoint answers 2xx; after the last failed try the delivery is ``failed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

__all__ = ["max_attempts", "next_attempt_at"]


def max_attempts(delays: Sequence[float]) -> int:
    """How many tries a delivery gets in all."""
    return len(delays) + 1


def next_attempt_at(attempts_made: int, at: datetime, delays: Sequence[float]) -> datetime | None:
    """When to try again after try number ``attempts_made`` (1-based) failed at ``at``;
    ``None`` when that was the last try."""
    if attempts_made < 1:
        raise ValueError("attempts_made starts at 1")
    if attempts_made > len(delays):
        return None
    return at + timedelta(seconds=delays[attempts_made - 1])
