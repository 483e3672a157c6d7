"""Admission to the node control channel, decided from the handshake alone (no frame read).

Pure state with an injectable clock; :func:`vk_hive.gateway.node_socket` asks
:meth:`Admission.check` before it accepts a socket and turns a :class:`Refusal` into the answer.

Invariants:

- At most ``max_pending`` sockets are connected but not yet authenticated. Over the cap a new
  socket is refused (503) before its first frame is read, so unauthenticated peers can hold only
  ``max_pending`` frames of memory; the session's auth timeout frees every slot in time.
- Every admitted socket is one ``auth`` attempt (the first frame must be ``auth``) and is counted
  against its source (:func:`vk_hive.limits.client_key`): ``rate_limit`` attempts per
  ``rate_window_s``, with a burst of ``rate_limit``. Beyond it the socket is refused (429) with
  the seconds after which one attempt will be admitted again. A socket refused for the cap costs
  no attempt.
- A session counts as pending from :meth:`Admission.track` until it authenticates or
  :meth:`Admission.forget` is called (the socket ended), whichever comes first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from vk_hive.limits import AttemptBuckets, client_key, retry_after_s
from vk_hive.settings import HiveSettings

__all__ = ["Admission", "Refusal"]


class _Pending(Protocol):
    @property
    def authenticated(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a socket is not admitted: the HTTP status, problem code and message of the handshake
    refusal and its ``Retry-After`` in seconds."""

    status_code: int
    message: str
    retry_after_s: int
    code: str = "unavailable"
    """``unavailable`` (too many pending sockets) or ``rate_limited``."""


class Admission:
    def __init__(
        self,
        *,
        rate_limit: int,
        rate_window_s: float,
        max_pending: int,
        pending_retry_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_pending = max_pending
        self.pending_retry_s = retry_after_s(pending_retry_s)
        self.attempts = (
            AttemptBuckets(rate_limit, rate_window_s, clock=clock) if rate_limit > 0 else None
        )
        self._pending: set[_Pending] = set()

    @classmethod
    def from_settings(
        cls, settings: HiveSettings, *, clock: Callable[[], float] = time.monotonic
    ) -> Admission:
        return cls(
            rate_limit=settings.node_auth_rate_limit,
            rate_window_s=settings.node_auth_rate_window_s,
            max_pending=settings.node_auth_max_pending,
            pending_retry_s=settings.auth_timeout_s,
            clock=clock,
        )

    @property
    def pending(self) -> int:
        """Sockets tracked and not yet authenticated (those that did are forgotten here)."""
        done = [s for s in self._pending if s.authenticated]
        for session in done:
            self._pending.discard(session)
        return len(self._pending)

    def check(self, host: str | None) -> Refusal | None:
        """``None`` when a socket from ``host`` may be accepted now, else why not."""
        if self.max_pending > 0 and self.pending >= self.max_pending:
            return Refusal(
                503,
                "too many connections are waiting to authenticate; "
                f"retry after {self.pending_retry_s} s",
                self.pending_retry_s,
            )
        if self.attempts is not None:
            wait = self.attempts.take(client_key(host))
            if wait > 0:
                seconds = retry_after_s(wait)
                return Refusal(
                    429,
                    f"too many auth attempts from this address; retry after {seconds} s",
                    seconds,
                    "rate_limited",
                )
        return None

    def track(self, session: _Pending) -> None:
        """Count ``session`` as pending until it authenticates or is forgotten."""
        self._pending.add(session)

    def forget(self, session: _Pending) -> None:
        self._pending.discard(session)
