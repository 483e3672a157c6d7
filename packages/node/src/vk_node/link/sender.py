"""The outbox sender (DESIGN.md §3): pushes unacked ops in seq order as soon as they commit.

The store calls :meth:`OutboxSender.wake` after every commit that appended ops (no polling
interval). One :meth:`run` per session streams ``op_batch`` frames within the send window
(:mod:`vk_node.link.window`); fencing tokens are stamped at send time from the node's current
assignments (:meth:`AssignmentManager.token_for_task`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from uuid import UUID

import aiosqlite
import msgspec
import structlog

from vk_node.link.assignments import AssignmentManager
from vk_node.link.clock import Clock
from vk_node.link.window import SendWindow
from vk_node.settings import NodeSettings
from vk_node.store import Store, outbox
from vk_node.store.sql import fetch_value
from vk_shared.protocol import MAX_FRAME_BYTES
from vk_shared.wire import (
    AssignmentStatus,
    AttemptUpsert,
    ExecutionUpsert,
    LogsAppend,
    OpBatch,
    OutboxOp,
    TaskUpsert,
)

__all__ = ["OutboxSender"]

log = structlog.get_logger("vk_node.link")

SendFrame = Callable[[OpBatch], Awaitable[int]]
"""Sends one batch; returns the encoded frame size in bytes."""


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

    async def run(self, send: SendFrame, acked_through: int) -> None:
        """Stream ops for one session (until cancelled)."""
        s = self.settings
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
                    ops = await self._peek(window.next_seq, s.outbox_batch_size)
                    # Linger to fill a batch only while another one is in flight (its ack
                    # would not come sooner anyway); an idle link sends a lone write at once.
                    if (
                        ops
                        and len(ops) < s.outbox_batch_size
                        and s.outbox_linger_s > 0
                        and window.in_flight
                    ):
                        await self.clock.sleep(s.outbox_linger_s)
                        ops = await self._peek(window.next_seq, s.outbox_batch_size)
                    if ops:
                        await self._send(send, window, ops)
                        continue
                deadline = window.next_deadline()
                timeout = None if deadline is None else max(0.0, deadline - now)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
        finally:
            self.window = None

    async def _send(self, send: SendFrame, window: SendWindow, ops: list[OutboxOp]) -> None:
        batch = OpBatch(ops=ops)
        size = len(msgspec.msgpack.encode(batch))
        while size > MAX_FRAME_BYTES * 0.9 and len(ops) > 1:
            ops = ops[: len(ops) // 2]
            batch = OpBatch(ops=ops)
            size = len(msgspec.msgpack.encode(batch))
        # Record first: the ack may arrive before send() returns to this task.
        window.sent(ops[0].seq, ops[-1].seq, self.clock.monotonic())
        await send(batch)
        self.sent_ops += len(ops)
        log.debug("op_batch.sent", first_seq=ops[0].seq, last_seq=ops[-1].seq, ops=len(ops))

    async def _peek(self, seq: int, limit: int) -> list[OutboxOp]:
        async with self.store.read() as conn:
            ops = await outbox.peek_from_seq(conn, seq, limit)
            if ops and self.assignments.has_tokens():
                ops = [await self._stamp(conn, op) for op in ops]
        return ops

    async def _stamp(self, conn: aiosqlite.Connection, op: OutboxOp) -> OutboxOp:
        payload = op.payload
        token: int | None
        if isinstance(payload, AssignmentStatus):
            token = self.assignments.token_for_assignment(payload.assignment_id)
        else:
            task_id = await _task_of(conn, payload)
            token = None if task_id is None else self.assignments.token_for_task(task_id)
        if token is None or token == op.fencing_token:
            return op
        return msgspec.structs.replace(op, fencing_token=token)


async def _task_of(
    conn: aiosqlite.Connection, payload: TaskUpsert | AttemptUpsert | ExecutionUpsert | LogsAppend
) -> UUID | None:
    """The local task an op is about."""
    if isinstance(payload, TaskUpsert):
        return payload.id
    if isinstance(payload, AttemptUpsert):
        return payload.task_id
    if isinstance(payload, ExecutionUpsert):
        value = await fetch_value(
            conn, "SELECT task_id FROM task_attempts WHERE id = ?", (payload.attempt_id.bytes,)
        )
    else:
        value = await fetch_value(
            conn,
            """SELECT a.task_id FROM execution_processes e
               JOIN task_attempts a ON a.id = e.task_attempt_id WHERE e.id = ?""",
            (payload.execution_id.bytes,),
        )
    return None if value is None else UUID(bytes=bytes(value))
