"""The hive's op apply path alone: ``python benchmarks/apply_inprocess.py [ADMIN_DSN]``.

Times :func:`vk_hive.gateway.apply.apply_batch` in this process on one pooled connection to a
fresh migrated database (dropped at the end) — no simulated nodes, no WebSocket — so a change
to the apply path shows without the load generator that dominates ``run.py``'s figures on a
shared machine. Three cases, 60 batches of 50 ops each: new tasks; edits of 10 tasks, each
edited 5 times per batch; ``logs.append`` ops of one execution, 20 lines each. Prints one JSON
line per case: rate, wall seconds, and the CPU seconds of this process (the hive's side) and of
its PostgreSQL backend (from ``/proc``, so less sensitive to the machine's load than the rate).
Compare two trees by running each with its own ``PYTHONPATH``, alternately.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import sys
import time
import uuid
from collections.abc import Sequence

import asyncpg
import msgspec

from vk_hive.auth import repository as auth_repo
from vk_hive.gateway.apply import apply_batch
from vk_hive.gateway.identity import NodeIdentity
from vk_hive.store.db import Database, init_connection
from vk_hive.store.migrate import migrate
from vk_hive.store.models import LocalProjectInfo, NodeRegistration
from vk_hive.store.repositories import node_local_projects, nodes, project_links, swarm_projects
from vk_hive.tenancy.repository import ensure_personal_organization
from vk_shared.wire import (
    AttemptUpsert,
    ExecutionUpsert,
    LogEntry,
    LogsAppend,
    OpPayload,
    OutboxOp,
    TaskUpsert,
)

BATCHES, SIZE, LINES = 60, 50, 20


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class _Node:
    """The ops of one simulated node, as the hive decodes them from the wire."""

    def __init__(self, local_project: uuid.UUID) -> None:
        self.project = local_project
        self.seq = 0

    def op(self, payload: OpPayload, entity: uuid.UUID) -> OutboxOp:
        self.seq += 1
        op = OutboxOp(
            seq=self.seq, entity_id=entity, idempotency_key=f"k{self.seq}", payload=payload
        )
        return msgspec.msgpack.decode(msgspec.msgpack.encode(op), type=OutboxOp)

    def task(self, task_id: uuid.UUID, title: str, status: str = "todo") -> OutboxOp:
        upsert = TaskUpsert(
            id=task_id,
            project_id=self.project,
            title=title,
            status=status,  # type: ignore[arg-type]
            created_at=_now(),
            updated_at=_now(),
        )
        return self.op(upsert, task_id)


def _cpu_s(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _run(dsn: str) -> None:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1, init=init_connection)
    db = Database(pool)
    async with db.transaction() as conn:
        backend = int(await conn.fetchval("SELECT pg_backend_pid()"))
        user = await auth_repo.upsert_user(conn, email="bench@example.com", username="bench")
        org = await ensure_personal_organization(conn, user.id, "bench")
        project = await swarm_projects.create(conn, org.id, "bench")
        node = await nodes.create(conn, org.id, NodeRegistration(name="n", machine_id="m"))
        local = uuid.uuid4()
        info = LocalProjectInfo(local_project_id=local, name="r", git_repo_path="/r")
        await node_local_projects.bulk_upsert(conn, node.id, [info])
        await project_links.link_node_pool(conn, project.id, node.id, local, "/r")
    identity = NodeIdentity(node_id=node.id, organization_id=org.id, name="n")
    sim = _Node(local)

    async def timed(case: str, batches: Sequence[list[OutboxOp]], units: int) -> None:
        started, pg, py = time.perf_counter(), _cpu_s(backend), time.process_time()
        for ops in batches:
            result = await apply_batch(db, identity, ops)
            if result.rejected or result.parked_seq is not None:
                raise RuntimeError(f"the batch did not apply whole: {result}")
        seconds = time.perf_counter() - started
        line = {
            "case": case,
            "per_s": round(len(batches) * units / seconds),
            "seconds": round(seconds, 3),
            "hive_cpu_s": round(time.process_time() - py, 3),
            "pg_cpu_s": round(_cpu_s(backend) - pg, 3),
            "loadavg_1m": os.getloadavg()[0],
        }
        print(json.dumps(line), flush=True)

    creates = [[sim.task(uuid.uuid4(), f"t{b}.{i}") for i in range(SIZE)] for b in range(BATCHES)]
    await timed("new tasks", creates, SIZE)

    edited = [uuid.uuid4() for _ in range(SIZE // 5)]
    await apply_batch(db, identity, [sim.task(t, "edit me") for t in edited])
    edits = [
        [
            sim.task(t, f"e{b}.{k}", "inprogress" if k % 2 == 0 else "inreview")
            for k in range(5)
            for t in edited
        ]
        for b in range(BATCHES)
    ]
    await timed("edits, chains of 5 per task", edits, SIZE)

    task, attempt, execution = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    run = [
        sim.task(task, "run", "inprogress"),
        sim.op(
            AttemptUpsert(
                id=attempt,
                task_id=task,
                executor="SCRIPT",
                branch="b",
                target_branch="main",
                created_at=_now(),
                updated_at=_now(),
            ),
            attempt,
        ),
        sim.op(
            ExecutionUpsert(
                id=execution,
                attempt_id=attempt,
                run_reason="codingagent",
                status="running",  # type: ignore[arg-type]
                started_at=_now(),
            ),
            execution,
        ),
    ]
    await apply_batch(db, identity, run)
    logs: list[list[OutboxOp]] = []
    last = 0
    for _ in range(BATCHES):
        ops = []
        for _ in range(SIZE):
            entries = [
                LogEntry(id=last + i, output_type="stdout", content="x" * 80, timestamp=_now())  # type: ignore[arg-type]
                for i in range(1, LINES + 1)
            ]
            last += LINES
            append = LogsAppend(
                execution_id=execution,
                first_log_id=entries[0].id,
                last_log_id=entries[-1].id,
                entries=entries,
            )
            ops.append(sim.op(append, execution))
        logs.append(ops)
    await timed(f"log lines ({SIZE} ops x {LINES} lines a batch)", logs, SIZE * LINES)
    await pool.close()


async def main(admin_dsn: str) -> None:
    name = f"vk_apply_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(admin_dsn)
    await admin.execute(f"CREATE DATABASE {name}")
    try:
        dsn = admin_dsn.rsplit("/", 1)[0] + f"/{name}"
        await migrate(dsn)
        await _run(dsn)
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()


if __name__ == "__main__":
    asyncio.run(
        main(sys.argv[1] if len(sys.argv) > 1 else "postgresql://postgres@127.0.0.1:5432/postgres")
    )
