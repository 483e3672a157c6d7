"""Project repository: create/update uniqueness, link/unlink, lookups, stats, cascade delete."""

from __future__ import annotations

from uuid import uuid4

import pytest

from vk_node.store import Conflict, Store
from vk_node.store.repositories import projects, tasks
from vk_shared.status import NodeTaskStatus

from . import _seed


@pytest.mark.asyncio
async def test_create_update_and_path_uniqueness(store: Store) -> None:
    """A repo path belongs to one local project; update re-checks it excluding itself."""
    async with store.transaction() as conn:
        a = await projects.create(conn, uuid4(), name="a", git_repo_path="/r/a")
        b = await projects.create(conn, uuid4(), name="b", git_repo_path="/r/b")
        with pytest.raises(Conflict):
            await projects.create(conn, uuid4(), name="dup", git_repo_path="/r/a")
        with pytest.raises(Conflict):
            await projects.update(
                conn, b.id, name="b", git_repo_path="/r/a", setup_script="", dev_script="",
                cleanup_script=None, copy_files=None, parallel_setup_script=False,
            )  # fmt: skip
        updated = await projects.update(
            conn, a.id, name="A", git_repo_path="/r/a", setup_script="make", dev_script="",
            cleanup_script=None, copy_files=".env", parallel_setup_script=True,
        )  # fmt: skip
        assert (updated.name, updated.setup_script, updated.copy_files) == ("A", "make", ".env")
        assert updated.parallel_setup_script
        assert (await projects.find_by_git_repo_path(conn, "/r/b")) == b
        assert await projects.count(conn) == 2
        assert [p.name for p in await projects.find_all(conn)] == ["b", "A"]


@pytest.mark.asyncio
async def test_link_unlink_and_one_project_per_swarm_project(store: Store) -> None:
    """A swarm project links to at most one local project; unlinked lists follow the link state."""
    remote = uuid4()
    async with store.transaction() as conn:
        a = await _seed.project(conn, linked=False, name="a")
        b = await _seed.project(conn, linked=False, name="b")
        linked = await projects.set_remote_project_id(conn, a.id, remote)
        assert linked.remote_project_id == remote
        with pytest.raises(Conflict):
            await projects.set_remote_project_id(conn, b.id, remote)
        assert (await projects.find_by_remote_project_id(conn, remote)) == linked
        assert [p.id for p in await projects.find_unlinked(conn)] == [b.id]
        assert await projects.find_local_project_remote_ids(conn) == [remote]
        assert [p.id for p in await projects.find_all_with_remote_id(conn)] == [a.id]
        await projects.set_remote_project_id(conn, a.id, None)
        assert await projects.find_by_remote_project_id(conn, remote) is None


@pytest.mark.asyncio
async def test_stats_most_active_and_cascading_delete(store: Store) -> None:
    """Stats count tasks per status; most-active needs an attempt; delete cascades to tasks."""
    async with store.transaction() as conn:
        p = await _seed.project(conn, linked=False, name="busy")
        idle = await _seed.project(conn, linked=False, name="idle")
        t = await _seed.task(conn, p)
        await _seed.task(conn, p)
        await tasks.update_status(conn, t.id, NodeTaskStatus.INREVIEW)
        await _seed.attempt(conn, t)
        stats = {s.name: s for s in await projects.find_local_projects_with_stats(conn)}
        assert (stats["busy"].todo_count, stats["busy"].inreview_count) == (1, 1)
        assert stats["busy"].last_attempt_at is not None
        assert stats["idle"].last_attempt_at is None
        assert [x.id for x in await projects.find_most_active(conn, 10)] == [p.id]
        assert await projects.set_github_enabled(conn, idle.id, True, owner="o", repo="r")
        assert await projects.update_github_counts(conn, idle.id, open_issues=3, open_prs=1)
        (gh,) = await projects.find_github_enabled(conn)
        assert (gh.github_open_issues, gh.github_open_prs) == (3, 1)
        assert await projects.delete(conn, p.id)
        assert await tasks.find_by_id(conn, t.id) is None
        assert not await projects.exists(conn, p.id)
