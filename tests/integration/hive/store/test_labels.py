"""Labels and templates: soft delete, optimistic versions, merge, promotion."""

from __future__ import annotations

import uuid

import pytest

from integration.hive.store._world import World
from vk_hive.errors import Conflict, VersionConflict
from vk_hive.store.repositories import labels, shared_tasks, templates
from vk_hive.store.repositories.shared_tasks import NewTask


@pytest.mark.asyncio
async def test_label_versions_soft_delete_and_name_reuse(world: World) -> None:
    """Updates need the current version; a soft-deleted label's name can be reused."""
    async with world.db.acquire() as conn:
        bug = await labels.create(conn, world.org_id, "bug")
        with pytest.raises(Conflict):
            await labels.create(conn, world.org_id, "bug")
        red = await labels.update(conn, bug.id, color="#ff0000", expected_version=1)
        assert red.version == 2
        with pytest.raises(VersionConflict):
            await labels.update(conn, bug.id, color="#00ff00", expected_version=1)
        await labels.delete(conn, bug.id, expected_version=2)
        assert await labels.find_by_id(conn, bug.id) is None
        again = await labels.create(conn, world.org_id, "bug")
        assert [lb.id for lb in await labels.find_swarm_labels(conn, world.org_id)] == [again.id]


@pytest.mark.asyncio
async def test_project_labels_merge_and_promotion(world: World) -> None:
    """Project labels join global ones; merge moves task links; promotion conflicts on a name."""
    async with world.db.acquire() as conn:
        task = (
            await shared_tasks.create(
                conn,
                NewTask(organization_id=world.org_id, swarm_project_id=world.project.id, title="a"),
            )
        ).task
        glob = await labels.create(conn, world.org_id, "ui")
        local = await labels.create(conn, world.org_id, "ui", project_id=world.project.id)
        other = await labels.create(conn, world.org_id, "frontend", project_id=world.project.id)
        assert len(await labels.find_for_project(conn, world.org_id, world.project.id)) == 3
        with pytest.raises(Conflict):
            await labels.promote_to_swarm(conn, local.id)
        promoted = await labels.promote_to_swarm(conn, other.id)
        assert promoted.project_id is None
        await labels.set_task_labels(conn, task.id, [local.id, glob.id])
        await labels.merge_labels(conn, local.id, glob.id)
        on_task = await labels.find_by_task(conn, task.id)
        await labels.detach(conn, task.id, glob.id)
        await labels.attach(conn, task.id, promoted.id)
        await labels.attach(conn, task.id, promoted.id)
        after = await labels.find_by_task(conn, task.id)
    assert [lb.id for lb in on_task] == [glob.id]
    assert [lb.id for lb in after] == [promoted.id]


@pytest.mark.asyncio
async def test_templates_crud_and_merge(world: World) -> None:
    """Templates update optimistically, soft delete, and merge by soft-deleting the source."""
    async with world.db.acquire() as conn:
        a = await templates.create(conn, world.org_id, "a", "content a")
        b = await templates.create(conn, world.org_id, "b")
        with pytest.raises(Conflict):
            await templates.create(conn, world.org_id, "a")
        updated = await templates.update(conn, a.id, content="new", expected_version=1)
        assert (updated.content, updated.version) == ("new", 2)
        with pytest.raises(VersionConflict):
            await templates.delete(conn, a.id, expected_version=1)
        kept = await templates.merge(conn, b.id, a.id)
        names = [t.name for t in await templates.list_by_organization(conn, world.org_id)]
        assert await templates.organization_id(conn, b.id) == world.org_id
        assert await templates.find_by_id(conn, uuid.uuid4()) is None
    assert kept.id == a.id
    assert names == ["a"]
