"""follow_logs on ``/v1/ws`` with real nodes: a SCRIPT run that prints slowly, dispatched by the
hive or started by the node itself, reaches a follower as the backlog, then live batches — every
line once, in order — and the run shows in ``GET /v1/tasks/{id}/executions``."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from support.node_link import Node, World, wait_for
from vk_node.services.tasks import create_task
from vk_node.store.repositories import tasks as tasks_repo

pytestmark = pytest.mark.asyncio

TICKS = 8
SCRIPT = f'for i in $(seq 1 {TICKS}); do echo "tick $i"; sleep 0.5; done'


async def _process_of(world: World, task_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The task's first mirrored attempt and its first execution process, once the hive has
    them."""

    async def found() -> tuple[dict[str, Any], dict[str, Any]] | None:
        r = await world.http.get(f"/v1/tasks/{task_id}/executions")
        assert r.status_code == 200, r.text
        for attempt in r.json():
            for process in attempt["processes"]:
                return attempt, process
        return None

    return await wait_for(found, what="the run mirrored on the hive")


async def _first_line(world: World, process_id: str) -> None:
    async def some() -> bool:
        r = await world.http.get(f"/v1/execution-processes/{process_id}/logs")
        return bool(r.json()["logs"])

    await wait_for(some, what="the run's first line on the hive")


async def _follow_to_the_end(ws: ClientConnection, process_id: str) -> list[list[dict[str, Any]]]:
    """Follow the process from the start; the ``log_lines`` batches until the last tick."""
    await ws.send(json.dumps({"type": "follow_logs", "execution_process_id": process_id}))
    batches: list[list[dict[str, Any]]] = []
    deadline = time.monotonic() + 20
    while not any(line["content"].startswith(f"tick {TICKS}") for b in batches for line in b):
        message = json.loads(await asyncio.wait_for(ws.recv(), deadline - time.monotonic()))
        if message["type"] == "log_lines":
            assert message["execution_process_id"] == process_id
            batches.append(message["lines"])
    return batches


def _check(batches: list[list[dict[str, Any]]]) -> None:
    """Backlog then live: more than one batch, ids strictly increasing across them (no
    duplicates), and exactly the script's lines in order."""
    assert len(batches) >= 2, batches
    lines = [line for batch in batches for line in batch]
    ids = [line["id"] for line in lines]
    assert ids == sorted(set(ids))
    ticks = [line["content"].strip() for line in lines if line["content"].startswith("tick")]
    assert ticks == [f"tick {i}" for i in range(1, TICKS + 1)]


async def _stream(world: World) -> ClientConnection:
    url = world.hive.url.replace("http://", "ws://") + "/v1/ws"
    auth = world.http.headers["Authorization"]
    ws = await connect(url, additional_headers={"Authorization": auth}, open_timeout=5)
    hello = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert hello["type"] == "hello"
    return ws


async def test_a_dispatched_script_run_streams_its_backlog_then_live_lines(world: World) -> None:
    """A hive-dispatched SCRIPT task printing a line every 0.5 s: a follower joining after the
    first line gets it as backlog, then the rest live, each once and in order."""
    node = await world.node()
    await node.ready()
    status = await node.link.status()
    r = await world.http.post(
        "/v1/tasks",
        json={
            "project_id": str(world.swarm_project_id),
            "title": "slow printer",
            "description": SCRIPT,
            "executor": "SCRIPT",
            "start_attempt": True,
            "node_id": str(status.node_id),
        },
    )
    assert r.status_code == 201, r.text
    body = r.json()
    attempt, process = await _process_of(world, body["task"]["id"])
    assert attempt["assignment_id"] == body["assignment"]["id"]
    await _first_line(world, process["id"])
    ws = await _stream(world)
    try:
        _check(await _follow_to_the_end(ws, process["id"]))
    finally:
        await ws.close()


async def test_a_run_the_node_started_itself_streams_too(world: World) -> None:
    """A task created on the node and run there without a hive assignment: its attempt is
    listed with no assignment and its lines stream to a follower like a dispatched run's."""
    node: Node = await world.node()
    await node.ready()
    local = await create_task(
        node.store,
        project_id=node.project_id,
        title="local slow printer",
        description=SCRIPT,
        parent_task_id=None,
    )

    async def shared() -> uuid.UUID | None:
        async with node.store.read() as conn:
            task = await tasks_repo.get(conn, local.id)
        return task.shared_task_id

    shared_id = await wait_for(shared, what="the hive to learn the node's task")
    ws = await _stream(world)
    try:
        await node.executor.create_attempt(task_id=local.id, executor="SCRIPT", base_branch="main")
        attempt, process = await _process_of(world, str(shared_id))
        assert attempt["assignment_id"] is None
        await _first_line(world, process["id"])
        _check(await _follow_to_the_end(ws, process["id"]))
    finally:
        await ws.close()
