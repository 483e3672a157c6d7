"""Crash safety: a node SIGKILLed while task writes stream in loses no acknowledged write and
leaves no write without its outbox op (nor an op without its write)."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from pathlib import Path
from uuid import UUID, uuid4

import httpx
import pytest

from vk_node.store import Store, outbox
from vk_node.store.repositories import tasks as tasks_repo
from vk_shared.wire.ops import OpType

_WORKERS = 4
_KILL_AFTER = 80


async def _stream_tasks(url: str, project_id: str, acked: list[UUID], kill) -> None:
    """Concurrent writers create tasks until the connection dies; ``kill`` fires mid-stream."""
    killed = asyncio.Event()

    async def worker(n: int) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=5) as http:
            i = 0
            while True:
                i += 1
                try:
                    r = await http.post(
                        "/api/tasks", json={"project_id": project_id, "title": f"w{n}-{i}"}
                    )
                except httpx.TransportError:
                    return
                assert r.status_code == 201, r.text
                acked.append(UUID(r.json()["id"]))
                if len(acked) >= _KILL_AFTER and not killed.is_set():
                    killed.set()
                    kill()

    await asyncio.wait_for(asyncio.gather(*(worker(n) for n in range(_WORKERS))), 30)


@pytest.mark.asyncio
async def test_sigkill_mid_stream_keeps_tasks_and_ops_together(
    node_process, git_repo: Path
) -> None:
    """Every task whose create returned 2xx survives a SIGKILL with exactly one task.upsert op,
    and every op in the outbox belongs to a task that exists."""
    async with httpx.AsyncClient(base_url=node_process.url, timeout=10) as http:
        r = await http.post("/api/projects", json={"name": "p", "git_repo_path": str(git_repo)})
        project_id = r.json()["id"]
        r = await http.post(
            f"/api/projects/{project_id}/link", json={"swarm_project_id": str(uuid4())}
        )
        assert r.status_code == 200, r.text

    acked: list[UUID] = []
    await _stream_tasks(
        node_process.url, project_id, acked, lambda: node_process.signal(signal.SIGKILL)
    )
    assert node_process.wait() == -signal.SIGKILL
    assert len(acked) >= _KILL_AFTER

    store = await Store.open(node_process.data_dir / "db.sqlite")
    try:
        async with store.read() as conn:
            tasks = await tasks_repo.find_by_project_id_with_attempt_status(
                conn, UUID(project_id), include_archived=True
            )
            ops = await outbox.peek_unacked(conn, limit=1_000_000)
    finally:
        await store.close()
    task_ids = {t.id for t in tasks}
    assert set(acked) <= task_ids  # nothing acknowledged was lost
    upserts = Counter(op.entity_id for op in ops if op.op_type == OpType.TASK_UPSERT)
    assert all(op.op_type == OpType.TASK_UPSERT for op in ops)
    assert set(upserts) == task_ids  # no task without its op, no op without its task
    assert set(upserts.values()) == {1}
    assert [op.seq for op in ops] == list(range(1, len(ops) + 1))  # gap-free
