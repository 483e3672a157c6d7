"""The outgoing side of one WebSocket connection, without I/O: a bounded queue, urgent messages
that go before it, node statuses coalesced beside it, and closing.

Node sessions (:mod:`.session`) and user stream sessions (:mod:`vk_hive.userstream.session`)
both send through one; their sender task writes what :meth:`Outbound.messages` yields.

- :meth:`~Outbound.send` waits for room (a session's own replies and pumps); :meth:`~Outbound.push`
  never waits and closes the connection when the queue is full (a slow consumer must not grow
  memory without bound); :meth:`~Outbound.try_push` queues only if there is room (for what can
  be re-read later).
- :meth:`~Outbound.push_urgent` goes before everything queued (lease decisions); urgent messages
  keep their order among themselves and are few, so they are not bounded.
- :meth:`~Outbound.push_status` keeps only the latest ``node_status`` of each node, outside the
  queue: a connect storm of N nodes costs each connection at most one entry per node, and a
  status that flaps while the connection is busy is sent once.
- :meth:`~Outbound.close` closes after what is queued; :meth:`~Outbound.abort` at once.
"""

from __future__ import annotations

import asyncio
import collections
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from vk_shared.wire import NodeStatusChanged, WireStruct

__all__ = ["CLOSE_NORMAL", "CLOSE_TRY_AGAIN", "Outbound", "SendsThroughOutbound"]

CLOSE_NORMAL = 1000
CLOSE_TRY_AGAIN = 1013


@dataclass(frozen=True)
class _Close:
    """Queue sentinel: close after everything queued before it was sent."""

    code: int
    reason: str


class _Mark:
    """Queue sentinel that wakes the sender for what waits outside the queue: urgent messages
    and collected ``node_status`` pushes."""


_MARK = _Mark()


class Outbound:
    """Outgoing messages of one connection, in order, through a bounded queue."""

    def __init__(self, maxsize: int, *, full_reason: str) -> None:
        self._queue: asyncio.Queue[WireStruct | _Close | _Mark] = asyncio.Queue(maxsize=maxsize)
        self._full_reason = full_reason
        self._urgent: collections.deque[WireStruct] = collections.deque()
        self._statuses: dict[uuid.UUID, NodeStatusChanged] = {}
        self._marked = False
        self.closed = asyncio.Event()
        """Set once the connection is to close (:meth:`close` reached, or :meth:`abort`)."""
        self.close_code = CLOSE_NORMAL
        self.close_reason = ""

    @property
    def closing(self) -> bool:
        return self.closed.is_set()

    async def send(self, msg: WireStruct) -> None:
        """Queue, waiting for room."""
        if not self.closed.is_set():
            await self._queue.put(msg)

    def push(self, msg: WireStruct) -> bool:
        """Queue without waiting; a full queue aborts the connection. Whether it was queued."""
        if self.closed.is_set():
            return False
        if not self._put(msg):
            self.abort(CLOSE_TRY_AGAIN, self._full_reason)
            return False
        return True

    def try_push(self, msg: WireStruct) -> bool:
        """Queue only if there is room right now."""
        return self._put(msg)

    def push_urgent(self, msg: WireStruct) -> None:
        """Send ``msg`` before everything already queued."""
        if self.closed.is_set():
            return
        self._urgent.append(msg)
        self._mark()

    def push_status(self, msg: NodeStatusChanged) -> None:
        """Queue a node's status, coalesced per node outside the bounded queue."""
        if self.closed.is_set():
            return
        self._statuses[msg.node_id] = msg
        self._mark()

    def close(self, code: int, reason: str) -> None:
        """Close after the queued messages were sent."""
        if not self.closed.is_set() and not self._put(_Close(code, reason)):
            self.abort(code, reason)

    def abort(self, code: int, reason: str) -> None:
        """Close now; whatever is still queued is dropped."""
        if not self.closed.is_set():
            self.close_code, self.close_reason = code, reason
            self.closed.set()

    def _put(self, item: WireStruct | _Close | _Mark) -> bool:
        if self.closed.is_set():
            return False
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            return False
        return True

    def _mark(self) -> None:
        """Put the marker in the queue unless it is there (it only wakes an idle sender: a busy
        one sends urgent messages before its next frame). With the queue full, the sender puts
        it after its next frame."""
        if not self._marked:
            self._marked = self._put(_MARK)

    async def messages(self) -> AsyncIterator[WireStruct]:
        """What to write, in order, until the connection is to close."""
        while True:
            item = await self._queue.get()
            while self._urgent:
                yield self._urgent.popleft()
            if isinstance(item, _Close):
                self.abort(item.code, item.reason)
                return
            if isinstance(item, _Mark):
                self._marked = False
                statuses, self._statuses = self._statuses, {}
                for status in statuses.values():
                    yield status
                continue
            yield item
            if self._statuses or self._urgent:
                self._mark()


class SendsThroughOutbound:
    """The :class:`~vk_hive.gateway.ports.Outgoing` port of a session whose ``_out`` is its
    :class:`Outbound`."""

    _out: Outbound

    async def send(self, msg: WireStruct) -> None:
        """A reply or a pump's message: waits for room (back-pressure on the session's own
        work)."""
        await self._out.send(msg)

    def push(self, msg: WireStruct) -> bool:
        """From elsewhere, without waiting; a full queue closes the connection."""
        return self._out.push(msg)

    def try_push(self, msg: WireStruct) -> bool:
        """Only if there is room now (for what can be re-read later)."""
        return self._out.try_push(msg)

    def push_urgent(self, msg: WireStruct) -> None:
        """Before everything queued (``task_assign``, ``task_cancel``, ``lease_revoked``: a
        lease decision must not wait behind a burst of activity frames)."""
        self._out.push_urgent(msg)

    def push_status(self, msg: NodeStatusChanged) -> None:
        """Another node's ``node_status``, coalesced per node."""
        self._out.push_status(msg)

    def close(self, code: int, reason: str) -> None:
        """Close after the queued messages were sent."""
        self._out.close(code, reason)

    def abort(self, code: int, reason: str) -> None:
        """Close now; whatever is still queued is dropped."""
        self._out.abort(code, reason)

    @property
    def closing(self) -> bool:
        return self._out.closing
