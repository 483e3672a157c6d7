"""``GET /api/execution-processes/{id}/logs/ws``: a process's log rows, history then live.

The socket sends each ``log_entries`` row as a JSON text frame (``{"id", "output_type",
"content", "timestamp"}``) in id order, tailing the table by id cursor: rows are committed in id
order by one writer, so the stream has no duplicates and no gaps. When the process has ended and
every row was sent, a final ``{"type": "finished", "status", "exit_code"}`` frame is sent and the
socket closes (code 1000). An unknown process closes with code 4404.

The handshake reaches this handler only after :mod:`vk_node.api.guard` has checked it like any
request: a foreign ``Host`` (421), a foreign or ``null`` ``Origin`` — browsers send one with every
WebSocket handshake, and WebSockets are not bound by the same-origin policy — (403) and, when
``VK_NODE_API_TOKEN`` is set, a missing or wrong Bearer token (401) are answered with that HTTP
status instead of being accepted. A browser, which cannot send an ``Authorization`` header here,
offers the subprotocols ``vk-logs`` and ``vk-token.<token>`` instead (see the guard); the socket
then selects :data:`LOGS_PROTOCOL`, never the token's value. A client offering no subprotocol
gets none.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
from litestar import WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect
from litestar.params import FromPath

from vk_node.context import NodeContext
from vk_node.store.repositories import execution_processes as processes_repo
from vk_node.store.repositories import log_entries as logs_repo

__all__ = ["LOGS_PROTOCOL", "logs_ws"]

LOGS_PROTOCOL = "vk-logs"
"""The subprotocol a client may offer (a browser must, to carry the token beside it)."""

_PAGE = 500
_IDLE_POLL_S = 0.5


@websocket("/execution-processes/{process_id:uuid}/logs/ws")
async def logs_ws(socket: WebSocket[Any, Any, Any], process_id: FromPath[UUID]) -> None:
    ctx: NodeContext = socket.app.state.node
    store, executor = ctx.store, ctx.executor
    offered = socket.scope.get("subprotocols") or []
    await socket.accept(subprotocols=LOGS_PROTOCOL if LOGS_PROTOCOL in offered else None)
    async with store.read() as conn:
        process = await processes_repo.find_by_id(conn, process_id)
    if process is None:
        await socket.close(code=4404, reason="execution process not found")
        return
    cursor = 0
    try:
        while True:
            # Read the status BEFORE the rows: rows committed before it ended are then included.
            async with store.read() as conn:
                process = await processes_repo.get(conn, process_id)
                rows = await logs_repo.find_after_id(conn, process_id, cursor, _PAGE)
            for row in rows:
                await socket.send_text(
                    msgspec.json.encode(
                        {
                            "id": row.id,
                            "output_type": row.output_type,
                            "content": row.content,
                            "timestamp": row.timestamp,
                        }
                    ).decode()
                )
                cursor = row.id
            if len(rows) == _PAGE:
                continue
            ended = process.status != "running" and not executor.is_live(process_id)
            if ended and not rows:
                await socket.send_text(
                    msgspec.json.encode(
                        {
                            "type": "finished",
                            "status": process.status,
                            "exit_code": process.exit_code,
                        }
                    ).decode()
                )
                await socket.close(code=1000)
                return
            if not rows:
                await executor.wait_for_logs(process_id, _IDLE_POLL_S)
    except WebSocketDisconnect:
        return
