"""Leases the node holds on hive assignments (DESIGN.md §5). Pure state on a monotonic clock.

A grant (``task_assign`` or ``lease_grant``) sets the deadline to *receipt time + ttl* — the wire
carries relative durations only, so wall-clock skew cannot matter. The node renews every ttl/3
and fences itself (stops the run) when a deadline passes, connected or not. Tokens only go up.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

__all__ = ["Lease", "LeaseTable"]


@dataclass
class Lease:
    assignment_id: UUID
    token: int
    ttl_s: float
    deadline: float
    renew_at: float


class LeaseTable:
    def __init__(self) -> None:
        self._leases: dict[UUID, Lease] = {}

    def __len__(self) -> int:
        return len(self._leases)

    def __contains__(self, assignment_id: object) -> bool:
        return assignment_id in self._leases

    def get(self, assignment_id: UUID) -> Lease | None:
        return self._leases.get(assignment_id)

    def ids(self) -> list[UUID]:
        return list(self._leases)

    def grant(self, assignment_id: UUID, token: int, ttl_s: float, now: float) -> Lease:
        """Start or restart a lease at ``now``; the token never goes down."""
        lease = self._leases.get(assignment_id)
        if lease is None:
            lease = Lease(assignment_id, token, ttl_s, now + ttl_s, now + ttl_s / 3)
            self._leases[assignment_id] = lease
        else:
            lease.token = max(lease.token, token)
            lease.ttl_s = ttl_s
            lease.deadline = now + ttl_s
            lease.renew_at = now + ttl_s / 3
        return lease

    def provisional(self, assignment_id: UUID, token: int, grace_s: float, now: float) -> Lease:
        """A lease restored after a restart: no grant yet, fenced after ``grace_s`` unless the
        hive grants it; renewal is due at once."""
        lease = Lease(assignment_id, token, grace_s, now + grace_s, now)
        self._leases[assignment_id] = lease
        return lease

    def release(self, assignment_id: UUID) -> Lease | None:
        """Stop holding the lease (run ended, cancelled, revoked or fenced)."""
        return self._leases.pop(assignment_id, None)

    def due_for_renewal(self, now: float) -> list[UUID]:
        """Leases whose renewal time came; their next renewal moves ttl/3 ahead."""
        due = []
        for lease in self._leases.values():
            if now >= lease.renew_at:
                due.append(lease.assignment_id)
                lease.renew_at = now + max(lease.ttl_s / 3, 0.001)
        return due

    def renew_all_now(self, now: float) -> None:
        """Make every lease due for renewal (a new session started)."""
        for lease in self._leases.values():
            lease.renew_at = now

    def expired(self, now: float) -> list[UUID]:
        """Leases whose deadline has passed."""
        return [lease.assignment_id for lease in self._leases.values() if now >= lease.deadline]

    def next_wakeup(self, *, renewing: bool) -> float | None:
        """The earliest deadline, or renewal time when ``renewing`` (connected)."""
        times = [lease.deadline for lease in self._leases.values()]
        if renewing:
            times += [lease.renew_at for lease in self._leases.values()]
        return min(times) if times else None
