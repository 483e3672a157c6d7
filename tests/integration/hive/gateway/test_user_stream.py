"""The user activity stream ``/v1/ws`` over a real socket to a real hive (uvicorn, PostgreSQL):
handshake authentication (Bearer, cookie with the hive's own Origin, the cross-site hijacking
attack), organization binding, live activity, replay and resync, node status, log following and
hostile frames. Nodes here are the protocol test client (real WebSocket, real op batches)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from support.node_link import wait_for
from vk_hive.auth.browser import COOKIE_NAME, start_browser_session
from vk_hive.store.models import NewOutputLog
from vk_hive.store.repositories import executions
from vk_shared.wire import LogEntry, LogsAppend

from .conftest import Node, World, now, run_ops, running_world

pytestmark = pytest.mark.asyncio


def _ws_url(world: World, query: str = "") -> str:
    return world.url.replace("http://", "ws://") + "/v1/ws" + (f"?{query}" if query else "")


@asynccontextmanager
async def _stream(
    world: World, *, query: str = "", headers: dict[str, str] | None = None
) -> AsyncIterator[ClientConnection]:
    hdrs = world.headers if headers is None else headers
    async with connect(_ws_url(world, query), additional_headers=hdrs, open_timeout=5) as ws:
        yield ws


async def _next(ws: ClientConnection, within: float = 5.0) -> dict[str, Any]:
    frame = await asyncio.wait_for(ws.recv(), within)
    message: dict[str, Any] = json.loads(frame)
    return message


async def _expect(ws: ClientConnection, kind: str, within: float = 5.0) -> dict[str, Any]:
    """The next message of type ``kind`` (others before it are skipped)."""
    deadline = time.monotonic() + within
    while True:
        message = await _next(ws, max(0.01, deadline - time.monotonic()))
        if message["type"] == kind:
            return message


async def _refused(world: World, headers: dict[str, str], query: str = "") -> tuple[int, Any]:
    with pytest.raises(InvalidStatus) as caught:
        async with _stream(world, query=query, headers=headers):
            pass
    response = caught.value.response
    return response.status_code, json.loads(response.body or b"{}")


async def _cookie(world: World) -> str:
    async with world.db.transaction() as conn:
        return await start_browser_session(conn, world.user_id)


async def test_bearer_handshake_gets_hello_listing_the_projects(world: World) -> None:
    """A personal access token opens the stream; hello names the organization, the user and
    every swarm project with its latest seq; ping is answered with pong."""
    await world.create_task()
    second = await world.project("second")
    async with _stream(world) as ws:
        hello = await _next(ws)
        assert hello["type"] == "hello"
        assert hello["organization_id"] == str(world.org_id)
        assert hello["user_id"] == str(world.user_id)
        cursors = {p["project_id"]: p["latest_seq"] for p in hello["projects"]}
        assert cursors == {str(world.project_id): 1, str(second): 0}
        await ws.send(json.dumps({"type": "ping"}))
        assert await _next(ws) == {"type": "pong"}


async def test_cookie_handshake_needs_the_hives_own_origin(world: World) -> None:
    """The session cookie opens the stream only with the hive's own Origin; a foreign Origin
    or none (a cross-site page hijacking the user's cookie) is refused with 403 before the
    upgrade, and so is the cookie's absence (401)."""
    cookie = await _cookie(world)
    own = {"Cookie": f"{COOKIE_NAME}={cookie}", "Origin": world.url}
    async with _stream(world, headers=own) as ws:
        assert (await _next(ws))["type"] == "hello"
    for origin in ("https://evil.example", "null", None):
        headers = {"Cookie": f"{COOKIE_NAME}={cookie}"}
        if origin is not None:
            headers["Origin"] = origin
        status, body = await _refused(world, headers)
        assert (status, body["code"]) == (403, "cross_origin"), origin
    status, body = await _refused(world, {"Origin": world.url})
    assert status == 401
    assert body["status"] == 401
    status, _ = await _refused(world, {"Cookie": f"{COOKIE_NAME}=forged", "Origin": world.url})
    assert status == 401


async def test_no_or_bad_token_and_foreign_organizations_are_refused(world: World) -> None:
    """No credentials: 401; a bad token: 401; another organization: 403; an unknown one: 404;
    a malformed id: 400 — all problem details, before the upgrade."""
    assert (await _refused(world, {}))[0] == 401
    assert (await _refused(world, {"Authorization": "Bearer vk_pat_nope"}))[0] == 401
    other = await world.other_org()
    status, body = await _refused(world, world.headers, f"organization_id={other}")
    assert (status, body["code"]) == (403, "forbidden")
    status, _ = await _refused(world, world.headers, f"organization_id={uuid.uuid4()}")
    assert status == 404
    status, _ = await _refused(world, world.headers, "organization_id=not-a-uuid")
    assert status == 400
    async with _stream(world, query=f"organization_id={world.org_id}") as ws:
        assert (await _next(ws))["organization_id"] == str(world.org_id)


async def test_a_task_created_over_rest_arrives_as_activity_within_a_second(world: World) -> None:
    """Live activity: a REST write reaches the open stream in under a second, in the node
    protocol's Activity shape; a project created after hello is streamed too."""
    async with _stream(world) as ws:
        await _expect(ws, "hello")
        started = time.monotonic()
        created = await world.create_task(title="live one")
        event = await _expect(ws, "activity", within=1.0)
        assert time.monotonic() - started < 1.0
        assert event["project_id"] == str(world.project_id)
        assert event["seq"] == 1
        assert event["event_type"] == "task.created"
        assert event["payload"]["task"]["id"] == created["task"]["id"]
        later = await world.project("later")
        r = await world.http.post(
            "/v1/tasks",
            json={"project_id": str(later), "title": "in the new project", "executor": "SCRIPT"},
            headers=world.headers,
        )
        assert r.status_code == 201, r.text
        event = await _expect(ws, "activity", within=2.0)
        assert (event["project_id"], event["seq"]) == (str(later), 1)


async def test_subscribe_replays_in_order_and_a_pruned_cursor_gets_resync(world: World) -> None:
    """subscribe after=N replays N+1.. in seq order, then goes on live; a cursor whose next
    events were pruned gets resync_required with the latest seq; a foreign project is an
    error."""
    for i in range(5):
        await world.create_task(title=f"t{i}")
    async with _stream(world) as ws:
        await _expect(ws, "hello")
        await ws.send(json.dumps({"type": "subscribe", "project_id": str(world.project_id)}))
        seqs = [(await _expect(ws, "activity"))["seq"] for _ in range(5)]
        assert seqs == [1, 2, 3, 4, 5]
        await ws.send(
            json.dumps({"type": "subscribe", "project_id": str(world.project_id), "after": 3})
        )
        assert [(await _expect(ws, "activity"))["seq"] for _ in range(2)] == [4, 5]
        await world.create_task(title="t5")
        assert (await _expect(ws, "activity"))["seq"] == 6
        async with world.db.acquire() as conn:
            await conn.execute(
                "DELETE FROM activity WHERE project_id = $1 AND seq <= 4", world.project_id
            )
        await ws.send(
            json.dumps({"type": "subscribe", "project_id": str(world.project_id), "after": 2})
        )
        resync = await _next(ws)
        assert resync["type"] == "resync_required"
        assert (resync["project_id"], resync["latest_seq"]) == (str(world.project_id), 6)
        other = await world.project("theirs", org_id=await world.other_org())
        await ws.send(json.dumps({"type": "subscribe", "project_id": str(other)}))
        refused = await _next(ws)
        assert (refused["type"], refused["code"], refused["ref"]) == (
            "error",
            "not_found",
            str(other),
        )


async def test_node_status_arrives_when_a_node_connects_and_disconnects(world: World) -> None:
    """A node of the organization connecting and going away reaches the stream as node_status
    online, then offline."""
    async with _stream(world) as ws:
        await _expect(ws, "hello")
        node = await world.node()
        online = await _expect(ws, "node_status")
        assert (online["node_id"], online["status"]) == (str(node.id), "online")
        await node.client.close()
        offline = await _expect(ws, "node_status")
        assert (offline["node_id"], offline["status"]) == (str(node.id), "offline")


async def _run_of_own_task(world: World, node: Node) -> uuid.UUID:
    """A run the node started by itself (no hive assignment), mirrored on the hive: the id of
    its execution process."""
    local_task, attempt_id, exec_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await node.batch(
        node.task_op(local_task, status="inprogress"),
        *run_ops(node, local_task, attempt_id, exec_id),
    )
    return exec_id


async def _ship(node: Node, exec_id: uuid.UUID, first: int, last: int) -> None:
    entries = [
        LogEntry(id=i, output_type="stdout", content=f"line {i}\n", timestamp=now())
        for i in range(first, last + 1)
    ]
    await node.batch(
        node.op(
            LogsAppend(execution_id=exec_id, first_log_id=first, last_log_id=last, entries=entries),
            entity_id=exec_id,
        )
    )


async def test_follow_logs_of_a_run_without_assignment_backlog_then_live(world: World) -> None:
    """follow_logs sends the lines after after_id, then lines the node ships later within a
    second, in id order and never twice; unfollow stops them; another organization's or an
    unknown process is not_found."""
    node = await world.node()
    exec_id = await _run_of_own_task(world, node)
    await _ship(node, exec_id, 1, 4)
    async with _stream(world) as ws:
        await _expect(ws, "hello")
        await ws.send(json.dumps({"type": "follow_logs", "execution_process_id": str(exec_id)}))
        backlog = await _expect(ws, "log_lines")
        contents = [line["content"] for line in backlog["lines"]]
        assert contents == [f"line {i}\n" for i in range(1, 5)]
        ids = [line["id"] for line in backlog["lines"]]
        started = time.monotonic()
        await _ship(node, exec_id, 5, 6)
        live = await _expect(ws, "log_lines", within=1.0)
        assert time.monotonic() - started < 1.0
        assert [line["content"] for line in live["lines"]] == ["line 5\n", "line 6\n"]
        assert min(line["id"] for line in live["lines"]) > max(ids)
        # Following again from a cursor replays only what is after it.
        await ws.send(
            json.dumps(
                {"type": "follow_logs", "execution_process_id": str(exec_id), "after_id": ids[2]}
            )
        )
        again = await _expect(ws, "log_lines")
        assert [line["content"] for line in again["lines"]] == [f"line {i}\n" for i in range(4, 7)]
        await ws.send(json.dumps({"type": "unfollow_logs", "execution_process_id": str(exec_id)}))
        await _ship(node, exec_id, 7, 7)
        await ws.send(json.dumps({"type": "ping"}))
        assert await _next(ws, 2.0) == {"type": "pong"}
        for unknown in (uuid.uuid4(),):
            await ws.send(json.dumps({"type": "follow_logs", "execution_process_id": str(unknown)}))
            refused = await _next(ws)
            assert (refused["type"], refused["code"]) == ("error", "not_found")


async def test_bad_frames_get_errors_and_the_session_survives(world: World) -> None:
    """Garbage, an unknown type, a bad field and an oversize frame each get an error naming
    the problem and the session goes on; three malformed frames in a row close it with 1008."""
    async with _stream(world) as ws:
        await _expect(ws, "hello")
        for frame, code in (
            ("not json", "malformed_frame"),
            ('{"type": "launch_missiles"}', "malformed_frame"),
            ('{"type": "subscribe", "project_id": "x"}', "malformed_frame"),
            (json.dumps({"type": "ping", "pad": "x" * 70_000}), "frame_too_large"),
        ):
            await ws.send(frame)
            reply = await _next(ws)
            assert (reply["type"], reply["code"]) == ("error", code), frame[:40]
            await ws.send(json.dumps({"type": "ping"}))
            assert await _next(ws) == {"type": "pong"}
        for _ in range(3):
            await ws.send("{")
        errors = [await _next(ws) for _ in range(3)]
        assert {e["code"] for e in errors} == {"malformed_frame"}
        with pytest.raises(ConnectionClosed) as closed:
            await _next(ws)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1008


async def _raw_follower(world: World, exec_id: uuid.UUID) -> socket.socket:
    """A WebSocket client written by hand on a socket with a 4 KiB receive buffer: the
    handshake, one masked ``follow_logs`` frame, then nothing is read."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    port = int(world.url.rsplit(":", 1)[1])
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {world.token}\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += await asyncio.to_thread(sock.recv, 1)
    assert head.startswith(b"HTTP/1.1 101"), head
    payload = json.dumps({"type": "follow_logs", "execution_process_id": str(exec_id)}).encode()
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    assert len(payload) < 126
    sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)
    return sock


async def test_a_client_that_does_not_read_is_dropped_and_holds_up_no_one(hive_dsn: str) -> None:
    """A client that follows a 24 MB log and stops reading: the other session still gets its
    activity within a second, and the stalled one is disconnected once a frame waits longer
    than user_ws_send_timeout_s (its session and registrations are gone)."""
    async with running_world(hive_dsn, user_ws_send_timeout_s=0.5, user_ws_queue_size=4) as world:
        node = await world.node()
        exec_id = await _run_of_own_task(world, node)
        async with world.db.transaction() as conn:
            await executions.insert_logs(
                conn,
                None,
                exec_id,
                [
                    NewOutputLog(output_type="stdout", content="x" * 200_000, local_log_id=i)
                    for i in range(1, 121)
                ],
            )
        # A raw client with a small receive buffer (no autotuning, so the kernel does not soak
        # up the 24 MB) that sends follow_logs and then never reads.
        slow = await _raw_follower(world, exec_id)
        try:
            async with _stream(world) as ws:
                await _expect(ws, "hello")
                started = time.monotonic()
                await world.create_task(title="not held up")
                await _expect(ws, "activity", within=1.0)
                assert time.monotonic() - started < 1.0

            async def dropped() -> bool:
                return len(world.gateway.watchers) == 0

            await wait_for(dropped, within=15, what="the stalled session to be dropped")
            assert world.gateway.watchers.following(exec_id) == []
        finally:
            slow.close()
