"""The retry schedule of a webhook delivery (rules in :mod:`vk_shared.webhooks`).

A delivery is tried at once, then again after each delay of ``delays`` in turn (the setting
``webhook_retry_delays_s``, default 5 s, 15 s, 40 s: four tries within about a minute). A try
succeeds when the endpoint answers 2xx; after the last failed try the delivery is ``failed``.
"""

from __future__ import annotations

from vk_shared.webhooks import max_attempts, next_attempt_at

__all__ = ["max_attempts", "next_attempt_at"]
