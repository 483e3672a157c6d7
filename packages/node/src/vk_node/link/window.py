"""The outbox send window (DESIGN.md §3): which seq to send next and which batches are in flight.

Pure state. The hive answers each applied batch with a cumulative ``op_ack{applied_through_seq}``:

* an ack covering a batch's last seq completes it (and every batch before it);
* an ack that stops inside the oldest batch in flight means the hive PARKED the op after it: the
  window rewinds to that op and pauses for ``park_retry_s`` before resending;
* a transient failure on the hive acks nothing: a batch older than ``ack_timeout_s`` rewinds the
  window to the ack frontier;
* ``digest_result.resend_from_seq`` rewinds it to that seq (acked ops are resent; the hive
  dedups them by idempotency key).

It also remembers which seqs were sent in its session (:meth:`SendWindow.was_sent`): the node
takes an ack or a rejection only for those.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

__all__ = ["InFlight", "SendWindow"]


@dataclass(frozen=True)
class InFlight:
    first_seq: int
    last_seq: int
    sent_at: float


class SendWindow:
    def __init__(
        self, acked_through: int, *, window: int, park_retry_s: float, ack_timeout_s: float
    ) -> None:
        self.acked_through = acked_through
        self.next_seq = acked_through + 1
        self.window = window
        self.park_retry_s = park_retry_s
        self.ack_timeout_s = ack_timeout_s
        self.in_flight: deque[InFlight] = deque()
        self.paused_until: float | None = None
        self.parks = 0
        self.rewinds = 0
        self.lowest_sent: int | None = None
        self.highest_sent = 0

    def can_send(self, now: float) -> bool:
        if self.paused_until is not None and now < self.paused_until:
            return False
        return len(self.in_flight) < self.window

    def sent(self, first_seq: int, last_seq: int, now: float) -> None:
        self.in_flight.append(InFlight(first_seq, last_seq, now))
        if self.lowest_sent is None or first_seq < self.lowest_sent:
            self.lowest_sent = first_seq
        self.highest_sent = max(self.highest_sent, last_seq)
        self.next_seq = last_seq + 1
        self.paused_until = None

    def was_sent(self, seq: int) -> bool:
        """Whether ``seq`` was sent in this session (batches are contiguous runs of seqs)."""
        return self.lowest_sent is not None and self.lowest_sent <= seq <= self.highest_sent

    def acked(self, through: int, now: float) -> bool:
        """Apply an ``op_ack``; returns whether the hive parked an op (the window rewound)."""
        self.acked_through = max(self.acked_through, through)
        parked = False
        if self.in_flight:
            oldest = self.in_flight[0]
            if oldest.first_seq - 1 <= through < oldest.last_seq:
                parked = True
        while self.in_flight and self.in_flight[0].last_seq <= self.acked_through:
            self.in_flight.popleft()
        if parked:
            self.parks += 1
            self._rewind(through + 1)
            self.paused_until = now + self.park_retry_s
        elif self.next_seq <= self.acked_through:
            self.next_seq = self.acked_through + 1
        return parked

    def resend_from(self, seq: int) -> None:
        """Re-stream from ``seq`` (``digest_result.resend_from_seq``)."""
        self._rewind(max(1, min(seq, self.next_seq)))

    def check_timeouts(self, now: float) -> bool:
        """Rewind to the ack frontier when the oldest batch waited too long; whether it did."""
        if self.in_flight and now - self.in_flight[0].sent_at >= self.ack_timeout_s:
            self._rewind(self.acked_through + 1)
            return True
        return False

    def next_deadline(self) -> float | None:
        """When :meth:`can_send` or :meth:`check_timeouts` may change without an event."""
        times = []
        if self.paused_until is not None:
            times.append(self.paused_until)
        if self.in_flight:
            times.append(self.in_flight[0].sent_at + self.ack_timeout_s)
        return min(times) if times else None

    def _rewind(self, seq: int) -> None:
        self.in_flight.clear()
        self.next_seq = seq
        self.rewinds += 1
