"""One user stream session's followed execution processes: a cursor per process and the pump
that sends their new lines.

Invariants: a process's lines reach the client in id order, each once. The cursor is the last
id sent; every read is ``id > cursor`` of committed rows. The lines of one process come from
one node, whose op batches the hive applies one at a time (the node's cursor row is locked for
the batch), so a process's row ids are committed in increasing order and a read never skips a
row that commits later. A notification (``logs_appended``) only marks the process; the pump
reads at the session's pace (its sends wait for room in the outgoing queue), so a burst of
lines costs the hive nothing while the client is slow.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

from vk_hive.store.db import Database
from vk_hive.store.models import OutputLog
from vk_hive.store.repositories import executions
from vk_shared.wire import LogLine, LogLines

__all__ = ["LogFollows"]

PAGE_BYTES = 512 * 1024
"""A ``log_lines`` message carries at most this much content (at least one line)."""

PAGE_LINES = 100
"""Lines read per query (a line holds up to 256 KiB: this bounds what one read holds)."""


def _line(row: OutputLog) -> LogLine:
    return LogLine(
        id=row.id, output_type=row.output_type, content=row.content, timestamp=row.timestamp
    )


def batches(rows: list[OutputLog], process_id: uuid.UUID) -> list[LogLines]:
    """``rows`` as ``log_lines`` messages of at most :data:`PAGE_BYTES` of content each."""
    out: list[LogLines] = []
    lines: list[LogLine] = []
    size = 0
    for row in rows:
        if lines and size + len(row.content) > PAGE_BYTES:
            out.append(LogLines(execution_process_id=process_id, lines=lines))
            lines, size = [], 0
        lines.append(_line(row))
        size += len(row.content)
    if lines:
        out.append(LogLines(execution_process_id=process_id, lines=lines))
    return out


class LogFollows:
    """Followed processes of one session; :meth:`pump` is a task the session owns."""

    def __init__(self, db: Database, send: Callable[[LogLines], Awaitable[None]]) -> None:
        self._db = db
        self._send = send
        self._cursors: dict[uuid.UUID, int] = {}
        self._dirty: dict[uuid.UUID, None] = {}
        self._wake = asyncio.Event()

    def __len__(self) -> int:
        return len(self._cursors)

    def __contains__(self, process_id: uuid.UUID) -> bool:
        return process_id in self._cursors

    def follow(self, process_id: uuid.UUID, after_id: int) -> None:
        """Send the process's lines after ``after_id``, then new ones."""
        self._cursors[process_id] = after_id
        self.appended(process_id)

    def unfollow(self, process_id: uuid.UUID) -> None:
        self._cursors.pop(process_id, None)
        self._dirty.pop(process_id, None)

    def appended(self, process_id: uuid.UUID) -> None:
        """New lines of the process may be committed."""
        if process_id in self._cursors:
            self._dirty[process_id] = None
            self._wake.set()

    def catch_up_all(self) -> None:
        for process_id in self._cursors:
            self.appended(process_id)

    async def pump(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._dirty:
                process_id = next(iter(self._dirty))
                del self._dirty[process_id]
                await self._read(process_id)

    async def _read(self, process_id: uuid.UUID) -> None:
        """One page of the process's new lines; a full page marks it again (other processes
        get their turn in between)."""
        cursor = self._cursors.get(process_id)
        if cursor is None:
            return
        async with self._db.acquire() as conn:
            rows = await executions.list_logs(
                conn, execution_process_id=process_id, after_id=cursor, limit=PAGE_LINES
            )
        for message in batches(rows, process_id):
            if self._cursors.get(process_id) != cursor:
                return  # unfollowed (or followed again from elsewhere) meanwhile
            await self._send(message)
            if self._cursors.get(process_id) != cursor:
                return
            cursor = self._cursors[process_id] = message.lines[-1].id
        if len(rows) == PAGE_LINES:
            self.appended(process_id)
