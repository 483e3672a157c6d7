"""``vk-hive export`` and ``vk-hive import`` as real processes against real PostgreSQL databases:
an organization built through the hive's repositories, exported, imported into a fresh database,
then compared table by table; and the import's refusals (bad lines, a non-empty target, an
unmigrated database), each leaving the target untouched."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from support.hive_db import hive_template
from support.postgres import DatabaseFactory, PostgresServer
from vk_hive.auth import repository as auth_repo
from vk_hive.store.db import init_connection
from vk_hive.store.models import NewOutputLog, NodeRegistration
from vk_hive.store.repositories import (
    activity,
    assignments,
    executions,
    labels,
    nodes,
    project_links,
    shared_tasks,
    swarm_projects,
)
from vk_hive.store.repositories.executions import AttemptData, ProcessData
from vk_hive.store.repositories.shared_tasks import NewTask
from vk_hive.store.transfer import TransferError, import_organization
from vk_hive.tenancy import repository as tenancy

__all__ = ["hive_template"]

VK_HIVE = str(Path(sys.executable).with_name("vk-hive"))

# Per table: the rows of organization $1 in the source database (written independently of the
# exporter's own queries).
_ORG_ROWS = {
    "organizations": "SELECT * FROM organizations WHERE id = $1",
    "organization_member_metadata": (
        "SELECT * FROM organization_member_metadata WHERE organization_id = $1"
    ),
    "users": """SELECT u.* FROM users u WHERE u.id IN (
        SELECT user_id FROM organization_member_metadata WHERE organization_id = $1)""",
    "nodes": "SELECT * FROM nodes WHERE organization_id = $1",
    "swarm_projects": "SELECT * FROM swarm_projects WHERE organization_id = $1",
    "swarm_project_nodes": """SELECT l.* FROM swarm_project_nodes l
        JOIN swarm_projects p ON p.id = l.swarm_project_id WHERE p.organization_id = $1""",
    "labels": "SELECT * FROM labels WHERE organization_id = $1",
    "shared_tasks": "SELECT * FROM shared_tasks WHERE organization_id = $1",
    "shared_task_labels": """SELECT l.* FROM shared_task_labels l
        JOIN shared_tasks t ON t.id = l.shared_task_id WHERE t.organization_id = $1""",
    "node_task_assignments": """SELECT a.* FROM node_task_assignments a
        JOIN shared_tasks t ON t.id = a.task_id WHERE t.organization_id = $1""",
    "node_task_attempts": """SELECT a.* FROM node_task_attempts a
        JOIN shared_tasks t ON t.id = a.shared_task_id WHERE t.organization_id = $1""",
    "node_execution_processes": """SELECT p.* FROM node_execution_processes p
        JOIN nodes n ON n.id = p.node_id WHERE n.organization_id = $1""",
    "node_task_output_logs": """SELECT l.* FROM node_task_output_logs l
        JOIN node_execution_processes p ON p.id = l.execution_process_id
        JOIN nodes n ON n.id = p.node_id WHERE n.organization_id = $1""",
    "node_task_progress_events": """SELECT e.* FROM node_task_progress_events e
        JOIN node_task_assignments a ON a.id = e.assignment_id
        JOIN nodes n ON n.id = a.node_id WHERE n.organization_id = $1""",
    "activity": """SELECT a.* FROM activity a
        JOIN swarm_projects p ON p.id = a.swarm_project_id WHERE p.organization_id = $1""",
}


def _env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VK_HIVE_")}
    env.update({"VK_HIVE_DATABASE_URL": url, "VK_HIVE_JWT_SECRET": "transfer-" + "s" * 40})
    return env


async def _run(url: str, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        VK_HIVE,
        *args,
        env=_env(url),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def _connect(url: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(url)
    await init_connection(conn)
    return conn


async def _organization(conn: asyncpg.Connection, name: str) -> uuid.UUID:
    """An organization with two members, two nodes on one project, labels, tasks (one assigned
    and run with logs, one with a finished earlier assignment) and the activity they record."""
    org = await tenancy.create_organization(conn, name=name, slug=f"{name}-{uuid.uuid4().hex[:6]}")
    assert org is not None
    alice = await auth_repo.upsert_user(conn, email=f"alice-{name}@example.com", username="alice")
    bob = await auth_repo.upsert_user(conn, email=f"bob-{name}@example.com", username="bob")
    await tenancy.add_member(conn, org.id, alice.id, "admin")
    await tenancy.add_member(conn, org.id, bob.id, "member")
    project = await swarm_projects.create(conn, org.id, "proj")
    n1 = await nodes.create(
        conn, org.id, NodeRegistration(name="n1", machine_id="m1", capabilities={"x": [1]})
    )
    n2 = await nodes.create(conn, org.id, NodeRegistration(name="n2", machine_id="m2"))
    link1 = await project_links.link_node(conn, project.id, n1.id, uuid.uuid4(), "/src/one")
    link2 = await project_links.link_node(conn, project.id, n2.id, uuid.uuid4(), "/src/two")
    bug = await labels.create(conn, org.id, "bug", project_id=project.id, color="#ff0000")
    await labels.create(conn, org.id, "chore")
    for i in range(6):
        task = await shared_tasks.create(
            conn,
            NewTask(
                organization_id=org.id,
                swarm_project_id=project.id,
                title=f"{name} task {i}",
                description='ünïcode ✓ and "quotes"\nnew line' if i == 0 else None,
                creator_user_id=alice.id,
                assignee_user_id=bob.id if i % 2 else None,
            ),
        )
        if i < 3:
            await labels.attach(conn, task.task.id, bug.id)
        if i == 0:  # an assignment finished, then a second one that ran with logs
            await assignments.create(conn, task.task.id, n2.id, link2.id)
            await assignments.complete_active_for_task(conn, task.task.id, "cancelled")
            assignment = await assignments.create(conn, task.task.id, n1.id, link1.id)
            attempt = await executions.upsert_attempt(
                conn,
                n1.id,
                AttemptData(
                    id=uuid.uuid4(),
                    shared_task_id=task.task.id,
                    assignment_id=assignment.id,
                    executor="SCRIPT",
                    branch="vk/t0",
                    target_branch="main",
                ),
            )
            process = await executions.upsert_process(
                conn,
                n1.id,
                ProcessData(
                    id=uuid.uuid4(),
                    attempt_id=attempt.id,
                    run_reason="codingagent",
                    status="completed",
                    started_at=dt.datetime.now(dt.UTC),
                    executor_action={"typ": "script", "args": ["a", 1]},
                    exit_code=0,
                ),
            )
            await executions.insert_logs(
                conn,
                assignment.id,
                process.id,
                [
                    NewOutputLog(output_type="stdout", content=f"line {k}", local_log_id=k)
                    for k in range(3)
                ],
            )
            await executions.create_progress_event(
                conn, assignment.id, "started", "go", {"step": 1}
            )
    await activity.append(
        conn, project.id, "custom.note", {"nested": {"a": [1, 2]}}, swarm_project_id=project.id
    )
    return org.id


async def _rows(conn: asyncpg.Connection, sql: str, org_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = [dict(r) for r in await conn.fetch(sql, org_id)]
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str))


@pytest.mark.asyncio
async def test_export_then_import_gives_the_same_organization(
    exported: Exported, pg_databases: DatabaseFactory, hive_template: str
) -> None:
    source, org_id, out = exported.source, exported.org_id, exported.file
    target = await pg_databases.create("dst", template=hive_template)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines[0]["kind"] == "header"
    assert lines[0]["format_version"] == 1
    assert lines[-1]["kind"] == "end"
    text = out.read_text()
    assert "other task" not in text
    for secret in ("token_hash", "key_hash", "session_secret", "password"):
        assert secret not in text

    # stdout without --out: the same kinds and counts.
    code, streamed, _ = await _run(source, "export", "--organization-id", str(org_id))
    assert code == 0
    assert json.loads(streamed.splitlines()[-1]) == lines[-1]

    code, stdout, stderr = await _run(target, "import", str(out), "--json")
    assert code == 0, stderr
    report = json.loads(stdout)
    assert report["organization_id"] == str(org_id)
    assert report["counts"]["shared_task"] == 6
    assert report["counts"]["task_assignment"] == 2

    src, dst = await _connect(source), await _connect(target)
    try:
        for table, sql in _ORG_ROWS.items():
            before = await _rows(src, sql, org_id)
            after = await _rows(dst, sql, org_id)
            assert len(after) == len(before) > 0, table
            if table == "nodes":  # nodes come back offline, without a session
                for row in (*before, *after):
                    row.pop("status")
                    row.pop("session_id")
            assert after == before, table
        # the target's sequences moved past the imported rows
        top_log = await dst.fetchval("SELECT max(id) FROM node_task_output_logs")
        log_id = await dst.fetchval(
            "INSERT INTO node_task_output_logs (output_type, content) "
            "VALUES ('x', 'y') RETURNING id"
        )
        assert log_id > top_log
        top = await dst.fetchval("SELECT max(fencing_token) FROM node_task_assignments")
        assert await dst.fetchval("SELECT nextval('node_fencing_token_seq')") > top
    finally:
        await src.close()
        await dst.close()

    # A second import of the same organization is refused, and changes nothing.
    code, _, stderr = await _run(target, "import", str(out))
    assert code == 1
    assert "already has organization" in stderr, stderr


@dataclass(frozen=True)
class Exported:
    source: str
    org_id: uuid.UUID
    file: Path


async def _export_source(factory: DatabaseFactory, template: str, tmp: Path) -> Exported:
    source = await factory.create("src", template=template)
    conn = await _connect(source)
    try:
        org_id = await _organization(conn, "acme")
        await _organization(conn, "other")  # a second organization that must stay out
    finally:
        await conn.close()
    out = tmp / "acme.jsonl"
    code, stdout, stderr = await _run(
        source, "export", "--organization-id", str(org_id), "--out", str(out)
    )
    assert code == 0, stderr
    assert stdout == ""
    assert "export: shared_task 6" in stderr
    return Exported(source, org_id, out)


@pytest.fixture(scope="module")
def exported(
    pg_server: PostgresServer, hive_template: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Exported]:
    """A source database with two organizations, and ``acme`` exported by ``vk-hive export``."""
    factory = DatabaseFactory(pg_server, prefix="vk_hive_export")
    tmp = tmp_path_factory.mktemp("export")
    try:
        yield asyncio.run(_export_source(factory, hive_template, tmp))
    finally:
        asyncio.run(factory.drop_all())


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


@pytest.mark.asyncio
async def test_import_refuses_bad_files_and_imports_nothing(
    exported: Exported, pg_databases: DatabaseFactory, hive_template: str, tmp_path: Path
) -> None:
    target = await pg_databases.create("dst", template=hive_template)
    bare = await pg_databases.create("bare")
    source, good = exported.source, exported.file
    lines = good.read_text().splitlines()
    task_line = next(i for i, line in enumerate(lines) if '"kind":"shared_task"' in line)

    before, task, after = lines[:task_line], lines[task_line], lines[task_line + 1 :]
    cases = {
        "truncated line": ([*before, task[:40]], f"line {task_line + 1}"),
        "cut at a line boundary": (lines[:-1], "without its end line"),
        "unknown kind": (
            [*before, task.replace('"shared_task"', '"secret_task"'), *after],
            f"line {task_line + 1}",
        ),
        "wrong type": (
            [*before, task.replace('"version":1', '"version":"one"'), *after],
            f"line {task_line + 1}",
        ),
        "unknown field": (
            [*before, task.replace('"version":1', '"version":1,"extra":2'), *after],
            f"line {task_line + 1}",
        ),
        "a kind out of order": ([*before, task, lines[3], *after], f"line {task_line + 2}"),
        "dangling reference": (
            [lines[0], *lines[2:]],  # no organization line: members name an unknown one
            "names no organization earlier in the file",
        ),
        "no header": (lines[1:], "line 1"),
    }
    # One case through the command (exit code and message), the others through the same import
    # function in this process (a process start per case costs a second).
    path = _write(tmp_path / "truncated.jsonl", cases.pop("truncated line")[0])
    code, stdout, stderr = await _run(target, "import", str(path))
    assert code == 1, (stdout, stderr)
    assert f"vk-hive: error: line {task_line + 1}: not a JSON object" in stderr, stderr
    assert "Traceback" not in stderr
    dst = await _connect(target)
    try:
        for name, (content, expected) in cases.items():
            with pytest.raises(TransferError) as caught:
                await import_organization(dst, [(line + "\n").encode() for line in content])
            assert expected in str(caught.value), (name, str(caught.value))
        for table in ("organizations", "users", "shared_tasks", "nodes", "activity"):
            assert await dst.fetchval(f"SELECT count(*) FROM {table}") == 0, table
    finally:
        await dst.close()

    # Not migrated: refused with the way out.
    code, _, stderr = await _run(bare, "import", str(good))
    assert code == 1
    assert "vk-hive migrate" in stderr, stderr

    # An export of an organization that does not exist.
    code, _, stderr = await _run(source, "export", "--organization-id", str(uuid.uuid4()))
    assert code == 1
    assert "does not exist" in stderr
