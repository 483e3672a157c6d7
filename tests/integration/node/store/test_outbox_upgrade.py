"""Migration 0006 gives the ops already in an outbox the local task each one is about."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from vk_node.store import Store, migrate
from vk_node.store.migrate import load_migrations, split_statements
from vk_node.store.sql import fetch_all


def _create_at_version(path: Path, version: int) -> None:
    """A store file migrated up to ``version`` only (as an older node left it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
            " applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')))"
        )
        for m in load_migrations():
            if m.version > version:
                break
            for statement in split_statements(m.sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (?, ?)", (m.version, m.name)
            )
    finally:
        conn.close()


def _op(
    conn: sqlite3.Connection, seq: int, entity_type: str, entity_id: UUID, payload: dict[str, str]
) -> None:
    conn.execute(
        """INSERT INTO node_outbox (id, seq, op_type, entity_type, entity_id, payload,
               idempotency_key) VALUES (?, ?, ?, ?, ?, ?, ?)""",
        (
            uuid4().bytes,
            seq,
            payload["op_type"],
            entity_type,
            entity_id.bytes,
            json.dumps(payload),
            f"{entity_type}:{entity_id}:{uuid4()}",
        ),
    )


@pytest.mark.asyncio
async def test_existing_ops_get_the_task_they_are_about(node_db_path: Path) -> None:
    """Ops written before 0006 get their task: a task op its entity, an attempt op its attempt's
    task (the payload's task for a deleted attempt, even of a deleted task that had an op), an
    execution or logs op its execution's task; an op of a deleted execution, and
    assignment.status, none."""
    _create_at_version(node_db_path, 5)
    project, task, gone_task = uuid4(), uuid4(), uuid4()
    attempt, gone_attempt, orphan_attempt = uuid4(), uuid4(), uuid4()
    execution, gone_execution, assignment = uuid4(), uuid4(), uuid4()
    conn = sqlite3.connect(node_db_path, isolation_level=None)
    try:
        conn.execute(
            "INSERT INTO projects (id, name, remote_project_id) VALUES (?, 'p', ?)",
            (project.bytes, uuid4().bytes),
        )
        conn.execute(
            "INSERT INTO tasks (id, project_id, title) VALUES (?, ?, 't')",
            (task.bytes, project.bytes),
        )
        conn.execute(
            "INSERT INTO task_attempts (id, task_id) VALUES (?, ?)", (attempt.bytes, task.bytes)
        )
        conn.execute(
            "INSERT INTO execution_processes (id, task_attempt_id) VALUES (?, ?)",
            (execution.bytes, attempt.bytes),
        )
        task_op = {"op_type": "task.upsert", "title": "t"}
        _op(conn, 1, "task", task, {**task_op, "id": str(task)})
        _op(conn, 2, "task", gone_task, {**task_op, "id": str(gone_task)})
        for seq, attempt_id, task_id in (
            (3, attempt, task),
            (4, gone_attempt, task),
            (5, orphan_attempt, gone_task),
        ):
            payload = {"op_type": "attempt.upsert", "id": str(attempt_id), "task_id": str(task_id)}
            _op(conn, seq, "attempt", attempt_id, payload)
        _op(conn, 6, "execution", execution, {"op_type": "execution.upsert", "id": str(execution)})
        logs = {"op_type": "logs.append", "execution_id": str(execution)}
        _op(conn, 7, "execution", execution, logs)
        gone = {"op_type": "execution.upsert", "id": str(gone_execution)}
        _op(conn, 8, "execution", gone_execution, gone)
        status = {"op_type": "assignment.status", "assignment_id": str(assignment)}
        _op(conn, 9, "assignment", assignment, status)
    finally:
        conn.close()

    assert await migrate(node_db_path) == [m.label for m in load_migrations() if m.version > 5]

    store = await Store.open(node_db_path)
    try:
        async with store.read() as rconn:
            stored = await fetch_all(rconn, "SELECT seq, task_id FROM node_outbox ORDER BY seq")
    finally:
        await store.close()
    rows = [(r[0], None if r[1] is None else UUID(bytes=r[1])) for r in stored]
    assert rows == [
        (1, task),
        (2, gone_task),
        (3, task),
        (4, task),
        (5, gone_task),
        (6, task),
        (7, task),
        (8, None),
        (9, None),
    ]
