"""Repository functions added for the gateway, against a real migrated database."""

from __future__ import annotations

import datetime as dt
import uuid

import msgspec
import pytest

from vk_hive.auth import repository as auth_repo
from vk_hive.errors import InvalidTransition
from vk_hive.store.db import Database
from vk_hive.store.models import LocalProjectInfo, NodeRegistration
from vk_hive.store.repositories import (
    activity,
    assignments,
    node_local_projects,
    nodes,
    op_log,
    project_links,
    shared_tasks,
    swarm_projects,
)
from vk_hive.store.repositories.shared_tasks import NewTask, NodeTaskData
from vk_hive.tenancy.repository import ensure_personal_organization
from vk_shared.status import TaskStatus

pytestmark = pytest.mark.asyncio

TTL = dt.timedelta(seconds=30)


async def _setup(db: Database) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID, uuid.UUID]:
    async with db.transaction() as conn:
        user = await auth_repo.upsert_user(conn, email="s@example.com", username="s")
        org = await ensure_personal_organization(conn, user.id, "s")
        project = await swarm_projects.create(conn, org.id, "p")
        node = await nodes.create(conn, org.id, NodeRegistration(name="n", machine_id="m"))
        local = uuid.uuid4()
        await node_local_projects.bulk_upsert(
            conn, node.id, [LocalProjectInfo(local_project_id=local, name="r", git_repo_path="/r")]
        )
        await project_links.link_node_pool(conn, project.id, node.id, local, "/r")
    return org.id, project.id, node.id, local


async def test_write_many_from_node_records_one_event_per_write_in_order(
    hive_db: Database,
) -> None:
    """New node tasks, two writes of one of them, get one event each with consecutive seqs in
    the order of the writes: created, created, updated; the tasks after each write."""
    org, project, node, _ = await _setup(hive_db)
    local = [uuid.uuid4(), uuid.uuid4()]
    items = [
        NodeTaskData(
            organization_id=org,
            swarm_project_id=project,
            source_task_id=source,
            title=title,
            status=TaskStatus.IN_PROGRESS,
        )
        for source, title in [(local[0], "t0"), (local[1], "t1"), (local[0], "t0 again")]
    ]
    async with hive_db.transaction() as conn:
        written = await shared_tasks.write_many_from_node(conn, node, {}, items)
        events = await activity.fetch_since(conn, project, 0)
        found = await shared_tasks.find_by_source_task_ids(conn, node, local)
    assert [(t.title, t.version) for t in written] == [("t0", 1), ("t1", 1), ("t0 again", 2)]
    assert [e.seq for e in events] == [1, 2, 3]
    assert [(e.event_type, e.payload["task"]["title"]) for e in events] == [
        ("task.created", "t0"),
        ("task.created", "t1"),
        ("task.updated", "t0 again"),
    ]
    assert set(found) == set(local)
    assert found[local[0]] == written[2]
    assert all(t.owner_node_id == node for t in written)


async def test_upsert_from_node_author_none_allows_any_legal_transition(hive_db: Database) -> None:
    """status_author=None (the owner) may make hive-authored transitions; NODE may not."""
    org, project, node, _ = await _setup(hive_db)
    data = NodeTaskData(
        organization_id=org, swarm_project_id=project, source_task_id=uuid.uuid4(), title="x"
    )
    async with hive_db.transaction() as conn:
        await shared_tasks.upsert_from_node(conn, node, data)
        started = msgspec_replace(data, status=TaskStatus.IN_PROGRESS)
        with pytest.raises(InvalidTransition):
            await shared_tasks.upsert_from_node(conn, node, started)
        task, _ = await shared_tasks.upsert_from_node(conn, node, started, status_author=None)
    assert task.task.status == TaskStatus.IN_PROGRESS


def msgspec_replace(data: NodeTaskData, **changes: object) -> NodeTaskData:
    return msgspec.structs.replace(data, **changes)


async def test_lease_helpers(hive_db: Database) -> None:
    """renew_leases renews only live leases of the node; complete_active_for_task closes the
    active assignment; find_dispatch_details reports the remaining ttl."""
    org, project, node, _ = await _setup(hive_db)
    async with hive_db.transaction() as conn:
        task = await shared_tasks.create(
            conn, NewTask(organization_id=org, swarm_project_id=project, title="t")
        )
        link = await project_links.find_node_link(conn, project, node)
        assert link is not None
        claimed = await assignments.try_claim(conn, task.task.id, node, link.id, TTL, grace=TTL)
        assert claimed is not None
        details = await assignments.find_dispatch_details(conn, claimed.id)
        renewed = await assignments.renew_leases(conn, [claimed.id, uuid.uuid4()], node, TTL)
        closed = await assignments.complete_active_for_task(conn, task.task.id, "cancelled")
        after = await assignments.find_dispatch_details(conn, claimed.id)
    assert details is not None
    assert 0 < details.lease_ttl_ms <= 30_000
    assert details.base_branch == "main"
    assert [a.id for a in renewed] == [claimed.id]
    assert closed is not None
    assert closed.execution_status == "cancelled"
    assert after is None


async def test_op_log_record_and_advance_and_has_entity(hive_db: Database) -> None:
    """record_and_advance inserts each key once and moves the cursor forward only; has_entity
    finds recorded entities."""
    _, _, node, _ = await _setup(hive_db)
    entity = uuid.uuid4()
    k1 = op_log.OpRecord("k1", 1, "task.upsert", entity)
    k2 = op_log.OpRecord("k2", 2, "task.upsert", entity)
    async with hive_db.transaction() as conn:
        first = await op_log.record_and_advance(conn, node, [k1], 1)
        again = await op_log.record_and_advance(conn, node, [k1, k2], 2)
        behind = await op_log.record_and_advance(conn, node, [], 1)
        rows = await conn.fetchval("SELECT count(*) FROM node_op_log WHERE node_id = $1", node)
        assert await op_log.has_entity(conn, node, entity)
        assert not await op_log.has_entity(conn, node, uuid.uuid4())
    assert (first, again, behind, rows) == (1, 2, 2, 2)


async def test_inventory_and_link_infos(hive_db: Database) -> None:
    """delete_unlinked_except keeps linked rows; link infos carry the swarm project's name."""
    _, project, node, local = await _setup(hive_db)
    stray = uuid.uuid4()
    async with hive_db.transaction() as conn:
        await node_local_projects.bulk_upsert(
            conn, node, [LocalProjectInfo(local_project_id=stray, name="s", git_repo_path="/s")]
        )
        deleted = await node_local_projects.delete_unlinked_except(conn, node, [])
        infos = await project_links.list_sync_infos_for_node(conn, node)
    assert deleted == 1
    assert [(i.project_id, i.local_project_id, i.project_name) for i in infos] == [
        (project, local, "p")
    ]
