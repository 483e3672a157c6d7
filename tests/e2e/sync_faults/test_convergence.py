"""Acceptance: after a seeded random mix of 1,000 task edits on the hive and on three nodes, with
link cuts and link restarts in between, every node's copy of every task equals the hive's and a
digest exchange finds nothing to resend or pull.

The hive edits through REST (``PATCH`` with the version it read, re-read and retried on 409;
creates, archives, operator status changes, a few deletes); the nodes through their local
services (creates, title/description edits, archives, node-authored status changes) — also on
tasks they do not own, which the hive refuses and the node must then take back. Each node
reaches the hive through its own :class:`~support.tcpproxy.TcpProxy`.

The seed is printed; ``VK_CHAOS_SEED=<seed>`` replays a schedule (the timing of a run is not
replayable, the sequence of edits and faults is). The suite uses a fixed seed. Seed 2118414807
once found a node keeping a refused local archive at the hive's version (fixed: the hive's copy
is taken whole, archive included).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio

from support.node_link import Node, World, wait_for
from support.tcpproxy import TcpProxy
from vk_node.errors import Conflict
from vk_node.link import HiveLink
from vk_node.services.tasks import TaskChanges, archive_task, create_task, update_task
from vk_node.store.codec import uuid_from_db, uuid_to_db
from vk_node.store.repositories import shared_activity_cursors as cursors_repo
from vk_node.store.sql import fetch_all
from vk_shared.status import NodeTaskStatus, canonicalize, to_node

EDITS = 1000
NODES = 3
NODE_SETTINGS: dict[str, Any] = {
    "link_ping_interval_s": 0.5,
    "link_open_timeout_s": 1.0,
    "outbox_ack_timeout_s": 2.0,
}
HIVE_SETTINGS: dict[str, Any] = {"heartbeat_interval_s": 0.5, "heartbeat_timeout_s": 2.0}

# Status changes each side may author (DESIGN.md §5), hive spelling / node spelling.
HIVE_MOVES: dict[str, list[str]] = {
    "todo": ["in-progress", "in-progress", "in-progress", "cancelled"],
    "in-progress": ["cancelled"],
    "in-review": ["done", "in-progress", "in-progress", "cancelled"],
    "done": ["cancelled"],
    "cancelled": [],
}
NODE_MOVES: dict[str, list[NodeTaskStatus]] = {
    "inprogress": [NodeTaskStatus.INREVIEW, NodeTaskStatus.INREVIEW, NodeTaskStatus.DONE],
}

WEIGHTS: dict[str, int] = {
    "hive_create": 8,
    "hive_title": 18,
    "hive_description": 8,
    "hive_status": 12,
    "hive_archive": 2,
    "hive_delete": 2,
    "node_create": 10,
    "node_title": 18,
    "node_description": 8,
    "node_status": 10,
    "node_archive": 2,
    "fault": 2,
}


DEFAULT_SEED = 1
"""The suite runs one fixed schedule so that CI is repeatable; explore others with
``VK_CHAOS_SEED=<n>`` or ``VK_CHAOS_SEED=random`` (a new seed, printed)."""


def _seed() -> int:
    raw = os.environ.get("VK_CHAOS_SEED")
    if raw == "random":
        return random.SystemRandom().randrange(2**32)
    return int(raw) if raw else DEFAULT_SEED


class Swarm:
    """The hive, the nodes, their proxies and the edits (see the module docstring)."""

    def __init__(self, world: World, rng: random.Random) -> None:
        self.world = world
        self.rng = rng
        self.nodes: list[Node] = []
        self.proxies: list[TcpProxy] = []
        self.hive_ids: list[str] = []
        self.counts: dict[str, int] = {}

    async def start(self) -> None:
        for _ in range(NODES):
            proxy = await TcpProxy("127.0.0.1", self.world.hive.port).start()
            self.proxies.append(proxy)
            self.nodes.append(await self.world.node(hive_url=proxy.url, **NODE_SETTINGS))
        for node in self.nodes:
            await node.ready()

    async def close(self) -> None:
        for proxy in self.proxies:
            await proxy.close()

    def count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    # --- hive edits -------------------------------------------------------------------------

    async def _hive_task(self) -> dict[str, Any] | None:
        """A live hive task, freshly read (None when there is none)."""
        while self.hive_ids:
            task_id = self.rng.choice(self.hive_ids)
            r = await self.world.http.get(f"/v1/tasks/{task_id}")
            if r.status_code == 200:
                return dict(r.json())
            assert r.status_code == 404, r.text
            self.hive_ids.remove(task_id)
        return None

    async def _refresh_hive_ids(self) -> None:
        r = await self.world.http.get(
            "/v1/tasks", params={"project_id": str(self.world.swarm_project_id)}
        )
        assert r.status_code == 200, r.text
        self.hive_ids = [t["id"] for t in r.json() if t.get("deleted_at") is None]

    async def _patch(self, make: Callable[[dict[str, Any]], dict[str, Any] | None]) -> None:
        """PATCH the change ``make(task)`` with the task's version; re-read and retry on 409."""
        for _ in range(10):
            task = await self._hive_task()
            if task is None:
                return
            change = make(task)
            if change is None:
                return
            r = await self.world.http.patch(
                f"/v1/tasks/{task['id']}", json={"version": task["version"], **change}
            )
            if r.status_code == 200:
                return
            if r.status_code == 404:
                continue
            self._conflict(r)
        self.count("hive_gave_up")

    def _conflict(self, r: httpx.Response) -> None:
        """409 (version moved): retry. 503: a deadlock between a REST write and an op batch
        (both lock a task row and the project's activity counter, in opposite orders) that
        PostgreSQL broke by aborting the REST transaction — retried too, and counted."""
        assert r.status_code in (409, 503), r.text
        self.count(f"hive_{r.status_code}")

    async def hive_create(self, i: int) -> None:
        r = await self.world.http.post(
            "/v1/tasks",
            json={
                "project_id": str(self.world.swarm_project_id),
                "title": f"hive task {i}",
                "description": f"created on the hive at step {i}",
                "executor": "SCRIPT",
            },
        )
        assert r.status_code == 201, r.text
        self.hive_ids.append(r.json()["task"]["id"])

    async def hive_title(self, i: int) -> None:
        await self._patch(lambda t: {"title": f"hive title {i}"})

    async def hive_description(self, i: int) -> None:
        await self._patch(lambda t: {"description": f"hive description {i}"})

    async def hive_status(self, i: int) -> None:
        def move(task: dict[str, Any]) -> dict[str, Any] | None:
            choices = HIVE_MOVES[task["status"]]
            return {"status": self.rng.choice(choices)} if choices else None

        await self._patch(move)

    async def hive_archive(self, i: int) -> None:
        await self._patch(lambda t: None if t.get("archived_at") else {"archived": True})

    async def hive_delete(self, i: int) -> None:
        for _ in range(10):
            task = await self._hive_task()
            if task is None:
                return
            r = await self.world.http.delete(
                f"/v1/tasks/{task['id']}", params={"version": task["version"]}
            )
            if r.status_code in (204, 404):
                if task["id"] in self.hive_ids:
                    self.hive_ids.remove(task["id"])
                return
            self._conflict(r)

    # --- node edits -------------------------------------------------------------------------

    async def _local_task(self, node: Node) -> Any | None:
        async with node.store.read() as conn:
            rows = await fetch_all(
                conn,
                "SELECT id, status FROM tasks WHERE project_id = ?",
                (uuid_to_db(node.project_id),),
            )
        return self.rng.choice(rows) if rows else None

    async def _node_update(self, node: Node, changes: TaskChanges) -> None:
        row = await self._local_task(node)
        if row is None:
            return
        try:
            await update_task(node.store, uuid_from_db(row["id"]), changes)
        except Conflict:
            self.count("node_409")

    async def node_create(self, node: Node, i: int) -> None:
        await create_task(
            node.store,
            project_id=node.project_id,
            title=f"{node.settings.name} task {i}",
            description=f"created on {node.settings.name} at step {i}",
            parent_task_id=None,
        )

    async def node_title(self, node: Node, i: int) -> None:
        await self._node_update(node, TaskChanges(title=f"{node.settings.name} title {i}"))

    async def node_description(self, node: Node, i: int) -> None:
        await self._node_update(
            node, TaskChanges(description=f"{node.settings.name} description {i}")
        )

    async def node_status(self, node: Node, i: int) -> None:
        async with node.store.read() as conn:
            rows = await fetch_all(
                conn,
                "SELECT id, status FROM tasks WHERE project_id = ? AND status = 'inprogress'",
                (uuid_to_db(node.project_id),),
            )
        if not rows:
            return
        row = self.rng.choice(rows)
        try:
            await update_task(
                node.store,
                uuid_from_db(row["id"]),
                TaskChanges(status=self.rng.choice(NODE_MOVES[row["status"]])),
            )
        except Conflict:
            self.count("node_409")

    async def node_archive(self, node: Node, i: int) -> None:
        row = await self._local_task(node)
        if row is not None:
            await archive_task(node.store, uuid_from_db(row["id"]))

    # --- faults -----------------------------------------------------------------------------

    async def fault(self, i: int) -> None:
        k = self.rng.randrange(len(self.nodes))
        proxy, node = self.proxies[k], self.nodes[k]
        if proxy.mode is not None:
            proxy.heal()
            self.count("heal")
        elif self.rng.random() < 0.3:
            await self.restart_link(node)
            self.count("link_restart")
        else:
            proxy.cut(self.rng.choice(["reset", "blackhole"]))
            self.count(f"cut_{proxy.mode}")

    async def restart_link(self, node: Node) -> None:
        await node.link.close()
        node.link = HiveLink(node.store, node.settings, node.executor)
        await node.link.start()

    async def heal_all(self) -> None:
        for proxy in self.proxies:
            proxy.heal()

    # --- the schedule -----------------------------------------------------------------------

    async def run(self, edits: int) -> None:
        kinds = list(WEIGHTS)
        weights = [WEIGHTS[k] for k in kinds]
        i = 0
        while i < edits:
            kind = self.rng.choices(kinds, weights)[0]
            if kind == "fault":
                await self.fault(i)
                continue
            if i % 100 == 0:
                await self._refresh_hive_ids()
            step: Coroutine[Any, Any, None]
            if kind.startswith("hive_"):
                step = getattr(self, kind)(i)
            else:
                step = getattr(self, kind)(self.rng.choice(self.nodes), i)
            await step
            self.count(kind)
            i += 1
            if self.rng.random() < 0.2:
                await asyncio.sleep(self.rng.uniform(0, 0.02))

    # --- checks -----------------------------------------------------------------------------

    async def hive_state(self) -> tuple[dict[uuid.UUID, asyncpg.Record], int]:
        conn = await asyncpg.connect(self.world.dsn)
        try:
            rows = await conn.fetch(
                "SELECT id, title, description, status, version, archived_at, deleted_at "
                "FROM shared_tasks WHERE swarm_project_id = $1",
                self.world.swarm_project_id,
            )
            latest = await conn.fetchval(
                "SELECT COALESCE(MAX(seq), 0) FROM activity WHERE project_id = $1",
                self.world.swarm_project_id,
            )
        finally:
            await conn.close()
        return {row["id"]: row for row in rows}, int(latest)

    async def quiescent(self) -> bool:
        _, latest = await self.hive_state()
        for node in self.nodes:
            if not node.link.connected.is_set() or await node.backlog():
                return False
            async with node.store.read() as conn:
                cursor = await cursors_repo.get(conn, self.world.swarm_project_id)
            if cursor is None or cursor.last_seq != latest:
                return False
        return True

    async def differences(self) -> list[str]:
        hive, _ = await self.hive_state()
        problems: list[str] = []
        for node in self.nodes:
            name = node.settings.name
            async with node.store.read() as conn:
                rows = await fetch_all(
                    conn,
                    """SELECT id, shared_task_id, title, description, status, remote_version,
                              archived_at FROM tasks WHERE project_id = ?""",
                    (uuid_to_db(node.project_id),),
                )
            linked: dict[uuid.UUID, Any] = {}
            for row in rows:
                if row["shared_task_id"] is None:
                    continue
                shared = uuid_from_db(row["shared_task_id"])
                if shared in linked:
                    problems.append(f"{name}: two local tasks link {shared}")
                linked[shared] = row
            for task_id, task in hive.items():
                local = linked.get(task_id)
                if task["deleted_at"] is not None:
                    if local is not None:
                        problems.append(f"{name}: deleted task {task_id} still linked")
                    continue
                if local is None:
                    problems.append(f"{name}: no copy of task {task_id}")
                    continue
                want = {
                    "title": task["title"],
                    "description": task["description"],
                    "status": to_node(canonicalize(task["status"])).value,
                    "version": task["version"],
                    "archived": task["archived_at"] is not None,
                }
                got = {
                    "title": local["title"],
                    "description": local["description"],
                    "status": local["status"],
                    "version": local["remote_version"],
                    "archived": local["archived_at"] is not None,
                }
                if want != got:
                    problems.append(f"{name}: task {task_id}: hive {want} != node {got}")
            for shared in linked:
                if shared not in hive:
                    problems.append(f"{name}: links {shared}, which the hive does not have")
        return problems


@pytest_asyncio.fixture
async def world(hive_dsn: str, tmp_path: Path) -> AsyncIterator[World]:
    w = World(hive_dsn, tmp_path)
    await w.start(**HIVE_SETTINGS)
    try:
        yield w
    finally:
        await w.close()


@pytest.mark.asyncio
@pytest.mark.timeout(120)
async def test_edits_on_both_sides_with_faults_converge(world: World) -> None:
    """1,000 seeded random edits on the hive and three nodes, with link cuts and restarts in
    between, converge once healed: every node's copy of every task equals the hive's (version,
    title, description, status, archived; deleted tasks unlinked) and a digest asks for nothing."""
    seed = _seed()
    print(f"\nVK_CHAOS_SEED={seed}")
    swarm = Swarm(world, random.Random(seed))
    started = time.monotonic()
    try:
        await swarm.start()
        await swarm.run(EDITS)
        edited = time.monotonic() - started
        await swarm.heal_all()
        await wait_for(swarm.quiescent, within=30, what="quiescence (outboxes acked, cursors)")
        quiet = time.monotonic() - started
        # Quiescent is not yet converged: pulls of refused or held-back copies may still run.
        problems: list[str] = []

        async def converged() -> bool:
            problems[:] = await swarm.differences()
            return not problems

        try:
            await wait_for(converged, within=15, what="every node's copy to equal the hive's")
        except AssertionError:
            raise AssertionError("\n".join(problems[:20])) from None
        for node in swarm.nodes:
            node.link.stats.last_digest_result = None
            assert await node.link.send_digest()

            async def answered(node: Node = node) -> Any:
                return node.link.stats.last_digest_result

            result = await wait_for(answered, what=f"{node.settings.name}'s digest_result")
            assert result.resend_from_seq is None, result
            assert result.pull_entities == [], result
            assert result.mismatched_buckets == [], result
        print(
            f"converged: {EDITS} edits in {edited:.1f} s, quiescent at {quiet:.1f} s, total"
            f" {time.monotonic() - started:.1f} s; {sorted(swarm.counts.items())}"
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n(replay with VK_CHAOS_SEED={seed})") from exc
    finally:
        await swarm.close()
