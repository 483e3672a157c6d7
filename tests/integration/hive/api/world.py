"""Two organizations with one of everything, for isolation and bad-input tests."""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg

from support.postgres import DatabaseFactory, PostgresServer
from vk_hive.store.models import ExecutionProcess, NodeRegistration, TaskAttempt
from vk_hive.store.repositories import executions, nodes, project_links
from vk_hive.store.repositories.executions import AttemptData, ProcessData

from .conftest import Actor, Hive, running_hive


@dataclass
class World:
    hive: Hive
    admin: Actor  # admin of org A
    member: Actor  # plain member of org A
    outsider: Actor  # admin of org B only
    org: uuid.UUID
    other_org: uuid.UUID
    ids: dict[str, str]


async def mirror_run(
    conn: asyncpg.Connection,
    node_id: uuid.UUID,
    task_id: uuid.UUID,
    *,
    assignment_id: uuid.UUID | None = None,
    branch: str = "vk/t",
) -> tuple[TaskAttempt, ExecutionProcess]:
    """A node's attempt at the task (``assignment_id`` None: one it started by itself) and its
    running execution process, as the hive mirrors them."""
    attempt = await executions.upsert_attempt(
        conn,
        node_id,
        AttemptData(
            id=uuid.uuid4(),
            shared_task_id=task_id,
            assignment_id=assignment_id,
            executor="SCRIPT",
            branch=branch,
            target_branch="main",
        ),
    )
    process = await executions.upsert_process(
        conn,
        node_id,
        ProcessData(
            id=uuid.uuid4(),
            attempt_id=attempt.id,
            run_reason="codingagent",
            status="running",
            started_at=dt.datetime.now(dt.UTC),
        ),
    )
    return attempt, process


async def build_world(hive: Hive) -> World:
    admin = await hive.user()
    member = await hive.user()
    outsider = await hive.user()
    org = await hive.org_with(admin, member)
    other_org = await hive.org_with(outsider)
    h = admin.headers
    c = hive.client

    async def ok(r_coro: object) -> dict[str, object]:
        r = await r_coro  # type: ignore[misc]
        assert r.status_code < 300, r.text
        return r.json() if r.content else {}

    project = await ok(
        c.post("/v1/swarm/projects", json={"organization_id": str(org), "name": "p"}, headers=h)
    )
    project2 = await ok(
        c.post("/v1/swarm/projects", json={"organization_id": str(org), "name": "p2"}, headers=h)
    )
    async with hive.db.transaction() as conn:
        node = await nodes.create(
            conn,
            org,
            NodeRegistration(name="n1", machine_id="m1", capabilities={"executors": ["SCRIPT"]}),
        )
        node2 = await nodes.create(
            conn,
            org,
            NodeRegistration(name="n2", machine_id="m2", capabilities={"executors": ["SCRIPT"]}),
        )
        await project_links.link_node(
            conn, uuid.UUID(str(project["id"])), node.id, uuid.uuid4(), "/repo"
        )
    created = await ok(
        c.post(
            "/v1/tasks",
            json={
                "project_id": project["id"],
                "title": "t",
                "description": "d",
                "executor": "SCRIPT",
            },
            headers=h,
        )
    )
    task = created["task"]
    assignment = await ok(c.post(f"/v1/tasks/{task['id']}/assign", json={}, headers=h))  # type: ignore[index]
    async with hive.db.transaction() as conn:
        _, process = await mirror_run(conn, node.id, uuid.UUID(str(task["id"])))  # type: ignore[index]
    label = await ok(
        c.post("/v1/swarm/labels", json={"organization_id": str(org), "name": "bug"}, headers=h)
    )
    label2 = await ok(
        c.post("/v1/swarm/labels", json={"organization_id": str(org), "name": "b2"}, headers=h)
    )
    template = await ok(
        c.post("/v1/swarm/templates", json={"organization_id": str(org), "name": "tp"}, headers=h)
    )
    template2 = await ok(
        c.post("/v1/swarm/templates", json={"organization_id": str(org), "name": "tp2"}, headers=h)
    )
    key = await ok(
        c.post("/v1/nodes/api-keys", json={"organization_id": str(org), "name": "k"}, headers=h)
    )
    invitation = await ok(
        c.post(f"/v1/organizations/{org}/invitations", json={"email": "x@example.com"}, headers=h)
    )
    hooks = [
        await ok(
            c.post(
                f"/v1/organizations/{org}/webhooks",
                json={"name": name, "url": "https://hooks.example.com/a", "events": [event]},
                headers=h,
            )
        )
        for name, event in (("w", "task_finished"), ("w-gone", "node_offline"))
    ]
    ids = {
        "org_id": str(org),
        "project_id": str(project["id"]),
        "project2_id": str(project2["id"]),
        "node_id": str(node.id),
        "node2_id": str(node2.id),
        "task_id": str(task["id"]),  # type: ignore[index]
        "assignment_id": str(assignment["id"]),
        "process_id": str(process.id),
        "label_id": str(label["id"]),
        "label2_id": str(label2["id"]),
        "template_id": str(template["id"]),
        "template2_id": str(template2["id"]),
        "key_id": str(key["id"]),
        "key_secret": str(key["secret"]),
        "invitation_id": str(invitation["id"]),
        "webhook_id": str(hooks[0]["id"]),
        "webhook2_id": str(hooks[1]["id"]),
        "invitation_token": str(invitation["token"]),
        "member_id": str(member.user_id),
        "admin_id": str(admin.user_id),
    }
    return World(hive, admin, member, outsider, org, other_org, ids)


@contextlib.asynccontextmanager
async def world_on(pg_server: PostgresServer, template: str, name: str) -> AsyncIterator[World]:
    """A running hive on a fresh copy of the migrated ``template`` database (``name``) with the
    world built; the database is dropped on exit."""
    factory = DatabaseFactory(pg_server, prefix="vk_hive")
    dsn = await factory.create(name, template=template)
    try:
        async with running_hive(dsn) as hive:
            yield await build_world(hive)
    finally:
        await factory.drop_all()
