"""Acceptance: a partitioned node fences itself before the hive reclaims its lease, the task is
re-dispatched with a higher fencing token, and the partitioned node's late ops are refused.

Node A reaches the hive through a :class:`~support.tcpproxy.TcpProxy`; node B directly. A SCRIPT
task is dispatched to A and its link is blackholed. Evidence of "when" comes from one machine
clock only (CLOCK_REALTIME): the script writes ``date +%s.%N`` when it starts, at every mark and
when SIGTERM stops it, and PostgreSQL stamps the reclaim (``completed_at`` = the database's
``now()``, same host). The nodes' and the hive's *configured* wall-clock skews
(``clock_skew_s``) touch neither, which is the point: leases must not depend on them.
"""

from __future__ import annotations

import itertools
import os
import shlex
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from support.node_link import Node, World, wait_for
from support.tcpproxy import TcpProxy
from vk_node.store.repositories import execution_processes as processes_repo
from vk_node.store.repositories import task_attempts as attempts_repo
from vk_node.store.repositories import tasks as tasks_repo
from vk_node.store.sql import fetch_all

TTL_S = 2.0
GRACE_S = 1.0

HIVE_SETTINGS: dict[str, Any] = {
    "lease_ttl_s": TTL_S,
    "lease_grace_s": GRACE_S,
    "lease_sweep_interval_s": 0.2,
    "heartbeat_interval_s": 0.5,
    # The hive drops the silent session before the lease is reclaimed, so the re-dispatch goes to
    # a node that is really connected (B), not back into the partition.
    "heartbeat_timeout_s": 1.5,
}
PARTITIONED_NODE: dict[str, Any] = {"link_ping_interval_s": 0.5, "link_open_timeout_s": 1.0}

REFUSED = {"stale_fencing_token", "no_active_assignment"}


@dataclass
class Run:
    """One execution of the script, from the files it wrote."""

    name: str
    where: str
    start: Decimal
    stop: Decimal | None
    """SIGTERM received (killed)."""
    end: Decimal | None
    """Finished on its own."""
    marks: list[Decimal]

    @property
    def finished_at(self) -> Decimal:
        last = self.stop if self.stop is not None else self.end
        assert last is not None, f"run {self.name} has neither a stop nor an end time"
        return max([last, *self.marks])


def _script(evidence: Path, endless_under: Path) -> str:
    """Runs 15 marks (~1.6 s) — or forever in a worktree under ``endless_under`` (node A), so
    only a fence ends A's run."""
    ev = shlex.quote(str(evidence))
    endless = shlex.quote(str(endless_under))
    return f"""
run="$(date +%s%N)-$$"
echo "$PWD" > {ev}/"$run.where"
date +%s.%N > {ev}/"$run.start"
trap 'date +%s.%N > {ev}/"$run.stop"; exit 143' TERM INT
limit=15
case "$PWD" in {endless}/*) limit=1000000 ;; esac
i=0
while [ "$i" -lt "$limit" ]; do
  t="$(date +%s.%N)"
  echo "$t" >> {ev}/"$run.marks"
  echo "mark $run $t"
  sleep 0.1 & wait $!
  i=$((i + 1))
done
date +%s.%N > {ev}/"$run.end"
"""


def _runs(evidence: Path) -> list[Run]:
    def read(path: Path) -> Decimal | None:
        return Decimal(path.read_text().strip()) if path.exists() else None

    runs = []
    for start in sorted(evidence.glob("*.start")):
        name = start.name.removesuffix(".start")
        marks_file = evidence / f"{name}.marks"
        marks = [Decimal(x) for x in marks_file.read_text().split()] if marks_file.exists() else []
        started = read(start)
        assert started is not None
        runs.append(
            Run(
                name=name,
                where=(evidence / f"{name}.where").read_text().strip(),
                start=started,
                stop=read(evidence / f"{name}.stop"),
                end=read(evidence / f"{name}.end"),
                marks=marks,
            )
        )
    return sorted(runs, key=lambda r: r.start)


def _group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


async def _outbox_rows(node: Node, after_seq: int) -> list[Any]:
    async with node.store.read() as conn:
        return await fetch_all(
            conn,
            """SELECT seq, op_type, acked_at, rejected_at, reject_code FROM node_outbox
               WHERE seq > ? ORDER BY seq""",
            (after_seq,),
        )


async def _acked_through(node: Node) -> int:
    async with node.store.read() as conn:
        rows = await fetch_all(
            conn, "SELECT COALESCE(MAX(seq), 0) AS s FROM node_outbox WHERE acked_at IS NOT NULL"
        )
    return int(rows[0]["s"])


@pytest_asyncio.fixture
async def world(hive_dsn: str, tmp_path: Path) -> AsyncIterator[World]:
    w = World(hive_dsn, tmp_path)
    try:
        yield w
    finally:
        await w.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("skew_s", [-30.0, 0.0, 30.0], ids=["skew-30s", "skew0", "skew+30s"])
async def test_partitioned_node_fences_before_reclaim_and_its_late_ops_are_refused(
    world: World, tmp_path: Path, skew_s: float
) -> None:
    """A blackholed node kills its run before the hive reclaims the lease; the task moves to
    another node with a higher token and reaches in-review there; after the heal every late op of
    the first node is refused and the hive keeps only the winner's result — with the node's and
    the hive's wall clocks skewed by ``skew_s`` (and the node's by the opposite)."""
    await world.start(**HIVE_SETTINGS, clock_skew_s=skew_s)
    assert world.hive.settings is not None
    assert world.hive.settings.clock_skew_s == skew_s
    async with TcpProxy("127.0.0.1", world.hive.port) as proxy:
        a = await world.node(hive_url=proxy.url, clock_skew_s=-skew_s, **PARTITIONED_NODE)
        b = await world.node()
        await a.ready()
        await b.ready()
        a_id = (await a.link.status()).node_id
        b_id = (await b.link.status()).node_id
        evidence = tmp_path / "evidence"
        evidence.mkdir()

        r = await world.http.post(
            "/v1/tasks",
            json={
                "project_id": str(world.swarm_project_id),
                "title": "partitioned run",
                "description": _script(evidence, a.settings.worktrees_dir),
                "executor": "SCRIPT",
                "start_attempt": True,
                "node_id": str(a_id),
            },
        )
        assert r.status_code == 201, r.text
        task_id = r.json()["task"]["id"]
        first = r.json()["assignment"]
        assert first["node_id"] == str(a_id)

        # --- A runs; its first mark has been mirrored; then the partition -------------------
        async def a_pid() -> int | None:
            async with a.store.read() as conn:
                attempt = await attempts_repo.find_by_hive_assignment_id(
                    conn, uuid.UUID(first["id"])
                )
                if attempt is None:
                    return None
                rows = await processes_repo.find_running_by_task_attempt(conn, attempt.id)
            return rows[0].pid if rows and rows[0].pid else None

        pid = await wait_for(a_pid, what="A's script to start")

        async def a_marked() -> bool:
            r = await world.http.get(f"/v1/tasks/{task_id}/logs")
            return any("mark" in row["content"] for row in r.json()["logs"])

        await wait_for(a_marked, what="A's first mark on the hive")
        acked_at_cut = await _acked_through(a)
        proxy.cut("blackhole")

        # --- A fences itself; the hive reclaims later and re-dispatches to B ----------------
        async def fenced() -> bool:
            return _group_gone(pid)

        await wait_for(fenced, within=TTL_S + 3, what="A to kill its run (self-fence)")
        assert a.link.assignments.fenced == 1

        async def reassigned() -> list[dict[str, Any]] | None:
            r = await world.http.get(f"/v1/tasks/{task_id}/assignments")
            rows = r.json()
            return rows if len(rows) == 2 else None

        assignments = await wait_for(
            reassigned, within=TTL_S + GRACE_S + 5, what="the re-dispatch to B"
        )
        second, old = assignments[0], assignments[1]
        assert old["id"] == first["id"]
        assert old["execution_status"] == "failed"
        assert second["node_id"] == str(b_id)
        assert second["fencing_token"] > old["fencing_token"]

        async def in_review() -> bool:
            r = await world.http.get(f"/v1/tasks/{task_id}")
            return bool(r.json()["status"] == "in-review")

        await wait_for(in_review, within=15, what="B to bring the task to in-review")

        async def b_completed() -> bool:
            r = await world.http.get(f"/v1/tasks/{task_id}/assignments")
            return bool(r.json()[0]["execution_status"] == "completed")

        await wait_for(b_completed, what="B's assignment to complete")

        # --- heal: A's late ops are refused -------------------------------------------------
        proxy.heal()

        async def a_drained() -> bool:
            return a.link.connected.is_set() and (await a.backlog()) == 0

        await wait_for(a_drained, within=15, what="A to reconnect and drain its outbox")
        late = await _outbox_rows(a, acked_at_cut)
        rejected = [row for row in late if row["rejected_at"] is not None]
        assert {row["reject_code"] for row in rejected} <= REFUSED, [dict(r) for r in late]
        assert any(row["op_type"] == "assignment.status" for row in rejected), [
            dict(r) for r in late
        ]

    # --- the evidence ----------------------------------------------------------------------
    runs = _runs(evidence)
    a_runs = [run for run in runs if run.where.startswith(str(a.settings.worktrees_dir))]
    b_runs = [run for run in runs if run.where.startswith(str(b.settings.worktrees_dir))]
    assert len(a_runs) == 1, runs
    assert len(b_runs) == 1, runs
    a_run, b_run = a_runs[0], b_runs[0]
    assert a_run.stop is not None, "A's run was not stopped by SIGTERM"
    assert a_run.end is None
    assert b_run.end is not None
    assert b_run.stop is None
    # No two executions overlapped.
    for earlier, later in itertools.pairwise(runs):
        assert earlier.finished_at < later.start, (earlier, later)

    conn = await asyncpg.connect(world.dsn)
    try:
        reclaimed_at = await conn.fetchval(
            "SELECT extract(epoch FROM completed_at)::numeric FROM node_task_assignments "
            "WHERE id = $1",
            uuid.UUID(first["id"]),
        )
        logged = {
            row["seq"]: row["applied_at"]
            for row in await conn.fetch(
                "SELECT seq, extract(epoch FROM applied_at)::numeric AS applied_at "
                "FROM node_op_log WHERE node_id = $1 AND seq > $2",
                a_id,
                acked_at_cut,
            )
        }
        task = await conn.fetchrow(
            "SELECT status, executing_node_id, title, deleted_at FROM shared_tasks WHERE id = $1",
            uuid.UUID(task_id),
        )
        attempts = await conn.fetch(
            "SELECT node_id, assignment_id FROM node_task_attempts WHERE shared_task_id = $1",
            uuid.UUID(task_id),
        )
        winner_logs = await conn.fetch(
            "SELECT content FROM node_task_output_logs WHERE assignment_id = $1",
            uuid.UUID(second["id"]),
        )
        loser_logs = await conn.fetch(
            "SELECT content FROM node_task_output_logs WHERE assignment_id = $1",
            uuid.UUID(first["id"]),
        )
        winner_processes = await conn.fetch(
            "SELECT p.node_id, p.status FROM node_execution_processes p "
            "JOIN node_task_attempts a ON a.id = p.attempt_id WHERE a.assignment_id = $1",
            uuid.UUID(second["id"]),
        )
    finally:
        await conn.close()

    # A stopped before the hive reclaimed (one clock: this host's CLOCK_REALTIME).
    assert a_run.finished_at < reclaimed_at, (a_run, reclaimed_at)
    # The hive recorded each op A had not seen acked at the cut (so a resend never applies it
    # twice); the ones it accepted were in flight before the reclaim, everything later was refused.
    for row in late:
        assert row["seq"] in logged, dict(row)
        if row["rejected_at"] is None:
            assert logged[row["seq"]] < reclaimed_at, dict(row)
    # The hive's history: B's result only.
    assert task["status"] == "in-review"
    assert task["executing_node_id"] == b_id
    assert task["deleted_at"] is None
    for attempt in attempts:
        if attempt["assignment_id"] == uuid.UUID(second["id"]):
            assert attempt["node_id"] == b_id
    assert {row["node_id"] for row in winner_processes} == {b_id}
    assert winner_logs
    marks = [row["content"] for row in winner_logs if row["content"].startswith("mark ")]
    assert marks
    assert all(f" {b_run.name} " in line for line in marks), marks
    for line in loser_logs:
        if line["content"].startswith("mark "):
            _, run_name, at = line["content"].split()
            assert run_name == a_run.name
            assert Decimal(at) <= a_run.finished_at

    # A's own copy of the task ends where the hive is.
    async def a_converged() -> bool:
        async with a.store.read() as conn:
            local = await tasks_repo.find_by_shared_task_id(conn, uuid.UUID(task_id))
        return local is not None and local.status == "inreview"

    await wait_for(a_converged, within=5, what="A's copy of the task to reach inreview")
