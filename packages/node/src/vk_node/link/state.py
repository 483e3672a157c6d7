"""What the hive link is doing now, for ``GET /api/link/status``, ``vk-node status`` and logs.

:class:`LinkState` is plain state with named transitions (no I/O); the client persists a copy to
the store after every transition so ``vk-node status`` (which only reads the store file) can show
it. :class:`LinkStats` counts what the link did (metrics, tests).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID

import msgspec

from vk_shared.wire import DigestResult

__all__ = ["LinkState", "LinkStats", "LinkStatus", "State"]

State = Literal["standalone", "disconnected", "connecting", "connected", "stopped"]


class LinkStatus(msgspec.Struct, frozen=True, kw_only=True):
    """A snapshot of the link (``GET /api/link/status``)."""

    state: State
    hive_url: str
    """The hive URL the link is connected to (or trying, or tried last); the configured value when
    standalone."""
    node_id: UUID | None = None
    organization_id: UUID | None = None
    connected_since: datetime | None = None
    last_error: str | None = None
    backoff_until: datetime | None = None
    sessions: int = 0
    """Sessions established since the daemon started."""
    outbox_backlog: int | None = None
    held_assignments: int = 0
    hive_urls: list[str] = msgspec.field(default_factory=list)
    """Every configured hive URL, in the order the link tries them."""


@dataclass
class LinkStats:
    """Counters for status and tests."""

    sessions: int = 0
    bad_frames: int = 0
    activity_applied: int = 0
    activity_seen: int = 0
    digests_sent: int = 0
    resyncs: int = 0
    pulled: int = 0
    rejections: int = 0
    ops_acked: int = 0
    """Outbox ops the hive acknowledged (op_ack, or the applied-through seq of auth_result)."""
    last_digest_result: DigestResult | None = None
    backoff_waits: int = 0
    """Rounds over the hive URLs that ended without a healthy session, so the link waited its
    backoff before the next one."""


class LinkState:
    def __init__(self, hive_urls: tuple[str, ...]) -> None:
        self.hive_urls = hive_urls
        self.hive_url = hive_urls[0] if hive_urls else ""
        """The URL connected to, being tried, or tried last."""
        self.state: State = "disconnected"
        self.node_id: UUID | None = None
        self.organization_id: UUID | None = None
        self.connected_since: datetime | None = None
        self.last_error: str | None = None
        self.backoff_until: datetime | None = None
        self.sessions = 0

    def connecting(self, hive_url: str) -> None:
        self.state = "connecting"
        self.hive_url = hive_url
        self.connected_since = None
        self.backoff_until = None

    def attempt_failed(self, error: str | None) -> None:
        """An attempt on :attr:`hive_url` failed or its session ended; the next one follows at
        once, or :meth:`disconnected` when the round is over."""
        self.state = "connecting"
        self.connected_since = None
        if error is not None:
            self.last_error = error

    def connected(self, node_id: UUID, organization_id: UUID, now: datetime) -> None:
        self.state = "connected"
        self.node_id = node_id
        self.organization_id = organization_id
        self.connected_since = now
        self.last_error = None
        self.backoff_until = None
        self.sessions += 1

    def disconnected(self, error: str | None, now: datetime, delay_s: float) -> None:
        self.state = "disconnected"
        self.connected_since = None
        if error is not None:
            self.last_error = error
        self.backoff_until = now + timedelta(seconds=delay_s)

    def stopped(self) -> None:
        self.state = "stopped"
        self.connected_since = None
        self.backoff_until = None

    def snapshot(self, *, outbox_backlog: int | None = None, held: int = 0) -> LinkStatus:
        return LinkStatus(
            state=self.state,
            hive_url=self.hive_url,
            node_id=self.node_id,
            organization_id=self.organization_id,
            connected_since=self.connected_since,
            last_error=self.last_error,
            backoff_until=self.backoff_until,
            sessions=self.sessions,
            outbox_backlog=outbox_backlog,
            held_assignments=held,
            hive_urls=list(self.hive_urls),
        )
