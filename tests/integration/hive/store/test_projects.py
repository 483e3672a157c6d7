"""Swarm projects, node links and the local-project inventory."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from integration.hive.store._world import World, make_node, make_org
from vk_hive.errors import Conflict, InvalidInput, LinkAlreadyExists
from vk_hive.store.models import LocalProjectInfo
from vk_hive.store.repositories import (
    activity,
    assignments,
    node_local_projects,
    project_links,
    shared_tasks,
    swarm_projects,
)
from vk_hive.store.repositories.shared_tasks import NewTask
from vk_shared.status import TaskStatus


def _new(world: World) -> NewTask:
    return NewTask(organization_id=world.org_id, swarm_project_id=world.project.id, title="a")


@pytest.mark.asyncio
async def test_project_names_are_unique_per_org_and_counts_are_listed(world: World) -> None:
    """A duplicate name conflicts; listing shows linked nodes and per-status task counts."""
    async with world.db.acquire() as conn:
        with pytest.raises(Conflict):
            await swarm_projects.create(conn, world.org_id, "proj")
        await shared_tasks.create(
            conn,
            _new(world),
        )
        listed = await swarm_projects.list_with_nodes_count(conn, world.org_id)
        renamed = await swarm_projects.update(conn, world.project.id, description="d")
    assert [(p.name, p.node_count, p.task_counts) for p in listed] == [("proj", 2, {"todo": 1})]
    assert (renamed.name, renamed.description) == ("proj", "d")


@pytest.mark.asyncio
async def test_links_names_and_dispatch_order(world: World) -> None:
    """Links carry node and project names; dispatch lists link order with the inventory branch."""
    async with world.db.acquire() as conn:
        with pytest.raises(LinkAlreadyExists):
            await project_links.link_node(
                conn, world.project.id, world.node.id, uuid.uuid4(), "/again"
            )
        await node_local_projects.bulk_upsert(
            conn,
            world.other_node.id,
            [
                LocalProjectInfo(
                    local_project_id=world.other_link.local_project_id,
                    name="Two",
                    git_repo_path="/src/proj-two",
                    default_branch="develop",
                )
            ],
        )
        links = await project_links.list_nodes(conn, world.project.id)
        targets = await project_links.find_nodes_for_dispatch(conn, world.project.id)
        assert await project_links.unlink_node(conn, world.project.id, world.node.id)
        assert not await project_links.unlink_node(conn, world.project.id, world.node.id)
        remaining = await project_links.get_linked_node_ids(conn, world.project.id)
    assert [(link.node_name, link.project_name) for link in links] == [
        ("n1", "proj-one"),
        ("n2", "Two"),
    ]
    assert [(t.node_id, t.default_branch) for t in targets] == [
        (world.node.id, "main"),
        (world.other_node.id, "develop"),
    ]
    assert remaining == [world.other_node.id]


@pytest.mark.asyncio
async def test_link_pool_relinks_and_cross_org_is_refused(world: World) -> None:
    """link_node_pool moves a local project to another swarm project; other orgs are refused."""
    async with world.db.acquire() as conn:
        second = await swarm_projects.create(conn, world.org_id, "second")
        await project_links.unlink_node(conn, world.project.id, world.node.id)
        moved = await project_links.link_node_pool(
            conn, second.id, world.node.id, world.link.local_project_id, "/src/proj-one"
        )
        assert moved.swarm_project_id == second.id
        other_org = await make_org(conn, "other")
        stranger = await make_node(conn, other_org, "stranger")
        with pytest.raises(InvalidInput):
            await project_links.link_node(conn, second.id, stranger.id, uuid.uuid4(), "/x")


@pytest.mark.asyncio
async def test_merge_moves_tasks_links_and_inventory(world: World) -> None:
    """Merging projects moves tasks (with task.updated events), links and inventory."""
    async with world.db.acquire() as conn:
        target = await swarm_projects.create(conn, world.org_id, "target")
        await project_links.link_node(conn, target.id, world.node.id, uuid.uuid4(), "/t")
        task = await shared_tasks.create(
            conn,
            _new(world),
        )
        await node_local_projects.link_to_swarm_with_upsert(
            conn,
            world.other_node.id,
            LocalProjectInfo(
                local_project_id=world.other_link.local_project_id, name="two", git_repo_path="/2"
            ),
            world.project.id,
        )
        with pytest.raises(InvalidInput):
            await swarm_projects.merge(conn, target.id, target.id)
        await swarm_projects.merge(conn, world.project.id, target.id)
        moved = await shared_tasks.get(conn, task.task.id)
        nodes_linked = await project_links.get_linked_node_ids(conn, target.id)
        inventory = await node_local_projects.list_by_node(conn, world.other_node.id)
        events = await activity.fetch_since(conn, target.id, 0)
        assert not await swarm_projects.exists(conn, world.project.id)
    assert (moved.swarm_project_id, moved.project_id) == (target.id, target.id)
    assert moved.status == TaskStatus.TODO
    assert sorted(nodes_linked) == sorted([world.node.id, world.other_node.id])
    assert [p.swarm_project_id for p in inventory] == [target.id]
    assert [e.event_type for e in events] == ["task.updated"]


@pytest.mark.asyncio
async def test_delete_project_keeps_tasks(world: World) -> None:
    """Deleting a swarm project drops its links but keeps its tasks without a project."""
    async with world.db.acquire() as conn:
        task = await shared_tasks.create(
            conn,
            _new(world),
        )
        await swarm_projects.delete(conn, world.project.id)
        kept = await shared_tasks.get(conn, task.task.id)
        assert await project_links.list_by_node(conn, world.node.id) == []
    assert kept.swarm_project_id is None


@pytest.mark.asyncio
async def test_inventory_upsert_refreshes_and_stale_rows_of_online_nodes_go(world: World) -> None:
    """Bulk upsert refreshes rows; delete_stale removes only old rows of online nodes."""
    local = uuid.uuid4()
    info = LocalProjectInfo(local_project_id=local, name="a", git_repo_path="/a")
    async with world.db.acquire() as conn:
        await node_local_projects.bulk_upsert(conn, world.node.id, [info])
        await node_local_projects.bulk_upsert(
            conn,
            world.node.id,
            [LocalProjectInfo(local_project_id=local, name="b", git_repo_path="/b")],
        )
        rows = await node_local_projects.list_by_node(conn, world.node.id)
        assert [(r.name, r.git_repo_path) for r in rows] == [("b", "/b")]
        await conn.execute(
            "UPDATE node_local_projects SET last_seen_at = now() - interval '2 days' "
            "WHERE node_id = $1",
            world.node.id,
        )
        assert await node_local_projects.delete_stale(conn, dt.timedelta(hours=24)) >= 1
        assert await node_local_projects.list_by_node(conn, world.node.id) == []


@pytest.mark.asyncio
async def test_link_lookups_and_inventory_swarm_link(world: World) -> None:
    """Links are found by (project, node) and by local project; inventory links carry the name."""
    info = LocalProjectInfo(
        local_project_id=world.link.local_project_id, name="One", git_repo_path="/src/proj-one"
    )
    async with world.db.acquire() as conn:
        by_pair = await project_links.find_node_link(conn, world.project.id, world.node.id)
        by_local = await project_links.find_by_local_project(
            conn, world.node.id, world.link.local_project_id
        )
        row = await node_local_projects.link_to_swarm_with_upsert(
            conn, world.node.id, info, world.project.id
        )
        auth_links = await project_links.list_for_node_auth(conn, world.node.id)
        await node_local_projects.unlink_from_swarm(conn, world.node.id, info.local_project_id)
        unlinked = await node_local_projects.find_by_node_and_project(
            conn, world.node.id, info.local_project_id
        )
    assert by_pair is not None
    assert by_local is not None
    assert by_pair.id == by_local.id == world.link.id
    assert row.swarm_project_name == "proj"
    assert [link.project_name for link in auth_links] == ["One"]
    assert unlinked is not None
    assert unlinked.swarm_project_id is None


@pytest.mark.asyncio
async def test_domain_error_keeps_callers_transaction_usable(world: World) -> None:
    """A Conflict raised inside a caller's transaction leaves that transaction usable."""
    async with world.db.transaction() as conn:
        with pytest.raises(Conflict):
            await swarm_projects.create(conn, world.org_id, "proj")
        with pytest.raises(LinkAlreadyExists):
            await project_links.link_node(conn, world.project.id, world.node.id, uuid.uuid4(), "/")
        created = await swarm_projects.create(conn, world.org_id, "after-conflict")
    async with world.db.acquire() as conn:
        assert await swarm_projects.exists(conn, created.id)


@pytest.mark.asyncio
async def test_dispatch_targets_put_the_least_loaded_node_first(world: World) -> None:
    """A node holding an active assignment sorts after an idle one; ties keep link order."""
    async with world.db.transaction() as conn:
        before = await project_links.find_nodes_for_dispatch(conn, world.project.id)
        task = await shared_tasks.create(
            conn,
            NewTask(organization_id=world.org_id, swarm_project_id=world.project.id, title="busy"),
        )
        await assignments.try_claim(
            conn,
            task.task.id,
            world.node.id,
            world.link.id,
            dt.timedelta(seconds=60),
            grace=dt.timedelta(seconds=1),
        )
        after = await project_links.find_nodes_for_dispatch(conn, world.project.id)
    assert [t.node_id for t in before] == [world.node.id, world.other_node.id]
    assert [(t.node_id, t.active_assignments) for t in after] == [
        (world.other_node.id, 0),
        (world.node.id, 1),
    ]
