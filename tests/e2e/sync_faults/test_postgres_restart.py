"""PostgreSQL restarts under load (docs/operations.md, "PostgreSQL itself highly available").

A real ``vk-hive serve`` on a PostgreSQL server the test owns (``LocalPostgres``: never the shared
one), two real ``vk-node serve`` linked to a swarm project, a steady stream of task creates and
edits on both nodes and a dispatched SCRIPT run printing numbered lines. In the middle of it the
server is restarted cleanly (``pg_ctl restart -m fast``), then crashed (``stop -m immediate``:
REST and ``GET /v1/health`` answer 503 while it is down) and started again.

Afterwards: the hive is healthy and leads again, both nodes are connected with empty outboxes,
every task written on a node is on the hive once with the node's last title and version, every
line of the run arrived once and in order, the hive's op log holds each op of each node exactly
once (seq 1..N, the node's own keys, nothing rejected), and the hive logged no crash.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.cluster import Cluster, ClusterNode
from support.postgres import DatabaseFactory, LocalPostgres, PostgresServer, local_postgres

LINES = 120
RUN_SCRIPT = f"""set -e
for i in $(seq 1 {LINES}); do echo "line $i"; sleep 0.1; done
echo "done" >> notes.txt
git add notes.txt
git -c user.name=vk -c user.email=vk@example.com commit -q -m "numbered run"
"""
WRITE_INTERVAL_S = 0.06
"""Each node's writer: one task create or edit every this many seconds (~16/s per node)."""
CRASH_EVENTS = (
    "session.crashed",
    "session.handler_failed",
    "session.cleanup_failed",
    "request.unhandled_error",
)
"""Hive log events of an unexpected error (each logged with its traceback)."""
LIBRARY_LOGGERS = ("asyncpg.pool",)
"""Loggers whose warnings carry a traceback by themselves (asyncpg retrying its pool's floor of
connections while the server is down)."""


@pytest.fixture
def postgres() -> Iterator[LocalPostgres]:
    with local_postgres() as server:
        yield server


class Writer(threading.Thread):
    """Creates tasks on one node's REST API and renames them, at a steady pace, until stopped;
    remembers the last title it gave each local task."""

    def __init__(self, node: ClusterNode) -> None:
        super().__init__(name=f"writer-{node.name}", daemon=True)
        self.node = node
        self.titles: dict[str, str] = {}
        self.writes = 0
        self.error: BaseException | None = None
        self._halt = threading.Event()

    def run(self) -> None:
        try:
            while not self._halt.wait(WRITE_INTERVAL_S):
                self._write_one()
        except BaseException as exc:  # reported by the test
            self.error = exc

    def _write_one(self) -> None:
        n = self.writes
        self.writes += 1
        if n % 3 == 0 or not self.titles:
            title = f"{self.node.name} task {len(self.titles)} v0"
            task = self.node.api.post(
                "/tasks", json={"project_id": self.node.project_id, "title": title}
            )
            self.titles[task["id"]] = title
            return
        ids = list(self.titles)
        task_id = ids[n % len(ids)]
        base, version = self.titles[task_id].rsplit(" v", 1)
        title = f"{base} v{int(version) + 1}"
        self.node.api.patch(f"/tasks/{task_id}", json={"title": title})
        self.titles[task_id] = title

    def finish(self) -> None:
        self._halt.set()
        self.join(timeout=30)
        assert not self.is_alive(), f"{self.name} did not stop"
        assert self.error is None, f"{self.name} failed: {self.error!r}"


def _status(url: str) -> int | None:
    try:
        return httpx.get(url, timeout=2.0).status_code
    except httpx.TransportError:
        return None


def _hive_events(log_path: Path) -> list[dict[str, Any]]:
    events = []
    for line in log_path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
    return events


def _log_numbers(cluster: Cluster, task_id: str) -> list[str]:
    """The numbers of the run's ``line N`` outputs on the hive, in order (every page)."""
    contents: list[str] = []
    after = 0
    while True:
        page = cluster.api.get(f"/tasks/{task_id}/logs", params={"after": after, "limit": 500})
        if not page["logs"]:
            break
        contents.extend(row["content"] for row in page["logs"])
        after = page["next_after"]
    return re.findall(r"^line (\d+)$", "\n".join(contents), flags=re.MULTILINE)


@pytest.mark.timeout(120)
def test_postgres_restart_and_crash_under_load_lose_and_double_nothing(
    postgres: LocalPostgres, tmp_path: Path
) -> None:
    server = PostgresServer(postgres.admin_url, "private cluster")
    factory = DatabaseFactory(server, prefix="vk_pg_restart")
    dsn = asyncio.run(factory.create("hive"))
    # Leases of 30 s (renewed every 10 s) outlive both outages; see docs/operations.md.
    hive_env = {"VK_HIVE_LEADER_CHECK_S": "0.5", "VK_HIVE_LEASE_TTL_S": "30"}
    with Cluster(tmp_path / "cluster", nodes_count=2, dsn=dsn, hive_env=hive_env) as cluster:
        a, b = cluster.nodes
        hive = cluster.hive
        hive_pid = hive.pid
        health = hive.url + "/v1/health"
        dispatched = cluster.dispatch(a, "numbered run", RUN_SCRIPT)
        run, assignment = dispatched["task"]["id"], dispatched["assignment"]
        cluster.wait(lambda: _log_numbers(cluster, run), what="the run to print", timeout=20)
        writers = [Writer(a), Writer(b)]
        for writer in writers:
            writer.start()
        timings: dict[str, float] = {}
        try:
            time.sleep(2.0)  # load before the first fault
            t0 = time.monotonic()
            postgres.restart("fast")
            timings["restart_fast_s"] = time.monotonic() - t0
            cluster.wait(lambda: _status(health) == 200, what="hive health after restart")
            timings["healthy_after_fast_s"] = time.monotonic() - t0

            time.sleep(2.0)  # load between the faults
            t0 = time.monotonic()
            postgres.stop("immediate")
            # Down: the health check and REST say 503, not 500, and the process lives on.
            assert _status(health) == 503
            down = cluster.api.raw("GET", "/tasks", params={"project_id": cluster.swarm_project_id})
            assert down.status_code == 503, down.text
            time.sleep(1.5)  # the nodes keep writing while the database is gone
            assert hive.alive
            postgres.start()
            cluster.wait(lambda: _status(health) == 200, what="hive health after the crash")
            timings["healthy_after_crash_s"] = time.monotonic() - t0
            time.sleep(2.0)  # load after the faults
        finally:
            for writer in writers:
                writer.finish()

        # The run completed under the lease it started with; every line once, in order.
        def completed() -> list[dict[str, Any]]:
            rows: list[dict[str, Any]] = cluster.api.get(f"/tasks/{run}/assignments")
            return rows if rows and rows[0]["execution_status"] == "completed" else []

        done = cluster.wait(completed, what="the run to complete", timeout=30)
        assert [row["id"] for row in done] == [assignment["id"]]
        assert done[0]["fencing_token"] == assignment["fencing_token"]

        # Every node is connected and online again, with an empty outbox.
        for node in (a, b):
            cluster.wait_online(node)
            cluster.wait(
                lambda node=node: node.process.link_status()["outbox_backlog"] == 0,
                what=f"{node.name}'s outbox to drain",
                timeout=30,
            )

        numbers = _log_numbers(cluster, run)
        assert numbers == [str(i) for i in range(1, LINES + 1)]

        # Every task written on a node is on the hive once, with the node's last title and the
        # version the node recorded from the hive's ack.
        for node, writer in zip((a, b), writers, strict=True):
            rows = hive.sql(
                "SELECT source_task_id::text AS local_id, id::text, title, version "
                "FROM shared_tasks WHERE source_node_id = $1 AND deleted_at IS NULL",
                uuid.UUID(node.node_id),
            )
            on_hive: dict[str, list[dict[str, Any]]] = {}
            for row in rows:
                on_hive.setdefault(row["local_id"], []).append(row)
            assert set(on_hive) == set(writer.titles), node.name
            assert all(len(copies) == 1 for copies in on_hive.values()), node.name
            for local_id, title in writer.titles.items():
                local = node.api.get(f"/tasks/{local_id}")
                hive_row = on_hive[local_id][0]
                assert local["title"] == title
                assert hive_row["title"] == title, (node.name, local_id)
                assert local["shared_task_id"] == hive_row["id"]
                assert local["remote_version"] == hive_row["version"], (node.name, local_id)

            # The op log: each of the node's ops exactly once, seq 1..N, none rejected.
            outbox = node.process.sql("SELECT seq, idempotency_key FROM node_outbox ORDER BY seq")
            logged = hive.sql(
                "SELECT seq, idempotency_key, epoch, reject_code FROM node_op_log "
                "WHERE node_id = $1 ORDER BY seq",
                uuid.UUID(node.node_id),
            )
            assert [r["seq"] for r in logged] == list(range(1, len(outbox) + 1)), node.name
            assert [(r["seq"], r["idempotency_key"]) for r in logged] == [
                (r["seq"], r["idempotency_key"]) for r in outbox
            ]
            assert {r["epoch"] for r in logged} == {logged[0]["epoch"]}
            assert [r for r in logged if r["reject_code"] is not None] == []
            cursor = hive.sql(
                "SELECT applied_through_seq FROM node_op_cursors WHERE node_id = $1",
                uuid.UUID(node.node_id),
            )
            assert cursor == [{"applied_through_seq": len(outbox)}]

        # The faults were felt: op batches failed (not acked, sent again), the LISTEN connection
        # was made again after each outage, and so was the leader's lock (led again each time).
        # Nothing crashed, and the process is the one that started.
        events = _hive_events(hive.log_path)
        names = [e.get("event") for e in events]
        assert names.count("op_batch.failed") >= 1
        assert names.count("activity.listening") >= 3, names.count("activity.listening")
        assert names.count("leader.acquired") >= 3, names.count("leader.acquired")
        crashes = [e for e in events if e.get("event") in CRASH_EVENTS]
        assert crashes == []
        traced = [e for e in events if "exception" in e and e.get("logger") not in LIBRARY_LOGGERS]
        assert traced == []
        assert hive.alive
        assert hive.pid == hive_pid
        writes = sum(w.writes for w in writers)
        print(f"writes={writes} timings={timings}")
