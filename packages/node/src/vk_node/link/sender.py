"""The outbox sender (DESIGN.md §3): pushes unacked ops in seq order as soon as they commit.

The store calls :meth:`OutboxSender.wake` after every commit that appended ops (no polling
interval). One :meth:`run` per session streams ``op_batch`` frames within the send window
(:mod:`vk_node.link.window`); fencing tokens are stamped at send time from the node's current
assignments (:meth:`AssignmentManager.token_for_task`, by the task the outbox row names, or
:meth:`AssignmentManager.token_for_assignment` for ``assignment.status``).

An op kind the session's hive did not announce (``auth_result.features``) is never sent as it
is: the node writes such ops only while its hive announces them, so one is left only after the
hive was downgraded. It goes as a stand-in the older hive refuses (an ``assignment.status`` of no
assignment, answered ``op_rejected``), which keeps the op sequence gap-free.

A batch is encoded once, in the session's format; that frame is what the size check measures
(at most ``MAX_FRAME_BYTES``, halving the batch until it fits; a lone op goes as it is) and what
is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import msgspec
import structlog

from vk_node.link.assignments import AssignmentManager
from vk_node.link.clock import Clock
from vk_node.link.window import SendWindow
from vk_node.settings import NodeSettings
from vk_node.store import Store, outbox
from vk_shared.codec import Codec, encode_json, encode_msgpack
from vk_shared.protocol import (
    FEATURE_LABEL_OPS,
    FEATURE_PROGRESS_OPS,
    HIVE_FEATURES,
    MAX_FRAME_BYTES,
)
from vk_shared.status import ExecutionStatus
from vk_shared.wire import (
    AssignmentStatus,
    LabelUpsert,
    OpBatch,
    OpPayload,
    OutboxOp,
    ProgressAppend,
)

__all__ = ["OutboxSender", "SendFrame", "for_hive"]

log = structlog.get_logger("vk_node.link")

SendFrame = Callable[[bytes], Awaitable[None]]
"""Sends one encoded ``op_batch`` (a text frame when the session speaks JSON, else binary)."""

_FEATURE_OF: dict[type[OpPayload], str] = {
    ProgressAppend: FEATURE_PROGRESS_OPS,
    LabelUpsert: FEATURE_LABEL_OPS,
}
"""Op payloads a hive applies only when it announced the feature."""


def for_hive(op: OutboxOp, hive_features: frozenset[str]) -> OutboxOp:
    """``op`` as it may go to a hive with ``hive_features``: itself, or the stand-in the hive
    refuses when it does not know the op's kind."""
    feature = _FEATURE_OF.get(type(op.payload))
    if feature is None or feature in hive_features:
        return op
    stand_in = AssignmentStatus(
        assignment_id=op.entity_id,
        status=ExecutionStatus.FAILED,
        message=f"{op.op_type.value} needs a hive with the {feature} feature",
    )
    return msgspec.structs.replace(op, fencing_token=None, payload=stand_in)


class OutboxSender:
    def __init__(
        self, store: Store, settings: NodeSettings, clock: Clock, assignments: AssignmentManager
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.assignments = assignments
        self.window: SendWindow | None = None
        self.sent_ops = 0
        self._wake = asyncio.Event()
        self._remove_listener = store.add_outbox_listener(self.wake)

    def wake(self) -> None:
        self._wake.set()

    def close(self) -> None:
        self._remove_listener()

    # --- hive answers ---------------------------------------------------------------------

    def on_ack(self, through: int) -> None:
        if self.window is not None and self.window.acked(through, self.clock.monotonic()):
            log.info("outbox.parked", seq=through + 1, retry_s=self.settings.outbox_park_retry_s)
        self.wake()

    def sent_through(self) -> int:
        """The highest seq sent in the current session (0 when none)."""
        return 0 if self.window is None else self.window.highest_sent

    def was_sent(self, seq: int) -> bool:
        """Whether ``seq`` was sent in the current session."""
        return self.window is not None and self.window.was_sent(seq)

    def resend_from(self, seq: int) -> None:
        if self.window is not None:
            self.window.resend_from(seq)
            log.info("outbox.resend", from_seq=seq)
        self.wake()

    # --- the stream -----------------------------------------------------------------------

    async def run(
        self,
        codec: Codec,
        send: SendFrame,
        acked_through: int,
        *,
        hive_features: frozenset[str] = frozenset(HIVE_FEATURES),
    ) -> None:
        """Stream ops for one session (until cancelled), encoded in ``codec``'s format, to a hive
        that announced ``hive_features``."""
        s = self.settings
        encode = encode_msgpack if codec.binary else encode_json
        window = SendWindow(
            acked_through,
            window=s.outbox_window,
            park_retry_s=s.outbox_park_retry_s,
            ack_timeout_s=s.outbox_ack_timeout_s,
        )
        self.window = window
        try:
            while True:
                self._wake.clear()
                now = self.clock.monotonic()
                if window.check_timeouts(now):
                    log.warning("outbox.ack_timeout", resend_from=window.next_seq)
                if window.can_send(now):
                    ops = await self._peek(window.next_seq, s.outbox_batch_size, hive_features)
                    # Linger to fill a batch only while another one is in flight (its ack
                    # would not come sooner anyway); an idle link sends a lone write at once.
                    if (
                        ops
                        and len(ops) < s.outbox_batch_size
                        and s.outbox_linger_s > 0
                        and window.in_flight
                    ):
                        await self.clock.sleep(s.outbox_linger_s)
                        ops = await self._peek(window.next_seq, s.outbox_batch_size, hive_features)
                    if ops:
                        await self._send(send, encode, window, ops)
                        continue
                deadline = window.next_deadline()
                timeout = None if deadline is None else max(0.0, deadline - now)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
        finally:
            self.window = None

    async def _send(
        self,
        send: SendFrame,
        encode: Callable[[OpBatch], bytes],
        window: SendWindow,
        ops: list[OutboxOp],
    ) -> None:
        frame = encode(OpBatch(ops=ops))
        while len(frame) > MAX_FRAME_BYTES and len(ops) > 1:
            ops = ops[: len(ops) // 2]
            frame = encode(OpBatch(ops=ops))
        # Record first: the ack may arrive before send() returns to this task.
        window.sent(ops[0].seq, ops[-1].seq, self.clock.monotonic())
        await send(frame)
        self.sent_ops += len(ops)
        log.debug(
            "op_batch.sent",
            first_seq=ops[0].seq,
            last_seq=ops[-1].seq,
            ops=len(ops),
            bytes=len(frame),
        )

    async def _peek(self, seq: int, limit: int, features: frozenset[str]) -> list[OutboxOp]:
        async with self.store.read() as conn:
            queued = await outbox.peek_to_send(conn, seq, limit)
        if not self.assignments.has_tokens():
            return [for_hive(q.op, features) for q in queued]
        return [for_hive(self._stamp(q), features) for q in queued]

    def _stamp(self, queued: outbox.QueuedOp) -> OutboxOp:
        """The op with the fencing token of the node's current assignment for its task (or, for
        ``assignment.status``, of that assignment); as stored when there is none."""
        op, task_id = queued
        token: int | None
        if isinstance(op.payload, AssignmentStatus):
            token = self.assignments.token_for_assignment(op.payload.assignment_id)
        elif task_id is not None:
            token = self.assignments.token_for_task(task_id)
        else:
            token = None
        if token is None or token == op.fencing_token:
            return op
        return msgspec.structs.replace(op, fencing_token=token)
