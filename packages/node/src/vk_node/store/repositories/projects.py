"""Projects: local git repositories, optionally linked to a swarm project on the hive."""

from __future__ import annotations

from uuid import UUID

import aiosqlite

from vk_node.errors import Conflict, NotFound
from vk_node.store.codec import now_db, uuid_from_db, uuid_or_none, uuid_to_db
from vk_node.store.models import Project, ProjectWithStats
from vk_node.store.sql import execute, fetch_all, fetch_model, fetch_models, fetch_value

__all__ = [
    "count",
    "create",
    "delete",
    "exists",
    "find_all",
    "find_all_with_remote_id",
    "find_by_git_repo_path",
    "find_by_git_repo_path_excluding_id",
    "find_by_id",
    "find_by_remote_project_id",
    "find_github_enabled",
    "find_local_project_remote_ids",
    "find_local_projects",
    "find_local_projects_with_stats",
    "find_most_active",
    "find_unlinked",
    "get",
    "set_github_enabled",
    "set_remote_project_id",
    "update",
    "update_github_counts",
]


async def count(conn: aiosqlite.Connection) -> int:
    return int(await fetch_value(conn, "SELECT COUNT(*) FROM projects"))


async def exists(conn: aiosqlite.Connection, project_id: UUID) -> bool:
    return bool(
        await fetch_value(
            conn, "SELECT EXISTS (SELECT 1 FROM projects WHERE id = ?)", (uuid_to_db(project_id),)
        )
    )


async def find_by_id(conn: aiosqlite.Connection, project_id: UUID) -> Project | None:
    return await fetch_model(
        conn, Project, "SELECT * FROM projects WHERE id = ?", (uuid_to_db(project_id),)
    )


async def get(conn: aiosqlite.Connection, project_id: UUID) -> Project:
    """:func:`find_by_id` or :class:`NotFound`."""
    project = await find_by_id(conn, project_id)
    if project is None:
        raise NotFound(f"project {project_id} not found")
    return project


async def find_all(conn: aiosqlite.Connection) -> list[Project]:
    return await fetch_models(
        conn, Project, "SELECT * FROM projects ORDER BY created_at DESC, rowid DESC"
    )


async def find_most_active(conn: aiosqlite.Connection, limit: int) -> list[Project]:
    """Projects with at least one attempt, most recently updated attempt first."""
    return await fetch_models(
        conn,
        Project,
        """SELECT p.* FROM projects p
           JOIN (SELECT t.project_id, MAX(a.updated_at) AS last_at
                 FROM task_attempts a JOIN tasks t ON t.id = a.task_id GROUP BY t.project_id) x
             ON x.project_id = p.id
           ORDER BY x.last_at DESC LIMIT ?""",
        (int(limit),),
    )


async def find_by_git_repo_path(conn: aiosqlite.Connection, path: str) -> Project | None:
    return await fetch_model(
        conn, Project, "SELECT * FROM projects WHERE is_remote = 0 AND git_repo_path = ?", (path,)
    )


async def find_by_git_repo_path_excluding_id(
    conn: aiosqlite.Connection, path: str, project_id: UUID
) -> Project | None:
    """The update-time uniqueness check: another local project with this path."""
    return await fetch_model(
        conn,
        Project,
        "SELECT * FROM projects WHERE is_remote = 0 AND git_repo_path = ? AND id <> ?",
        (path, uuid_to_db(project_id)),
    )


async def create(
    conn: aiosqlite.Connection,
    project_id: UUID,
    *,
    name: str,
    git_repo_path: str,
    setup_script: str | None = "",
    dev_script: str | None = "",
    cleanup_script: str | None = None,
    copy_files: str | None = None,
    parallel_setup_script: bool = False,
) -> Project:
    """Insert a local project; :class:`Conflict` when the path is already a local project."""
    if await find_by_git_repo_path(conn, git_repo_path) is not None:
        raise Conflict(f"a project for {git_repo_path!r} already exists")
    now = now_db()
    await execute(
        conn,
        """INSERT INTO projects (id, name, git_repo_path, setup_script, dev_script, cleanup_script,
               copy_files, parallel_setup_script, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        (
            uuid_to_db(project_id),
            name,
            git_repo_path,
            setup_script,
            dev_script,
            cleanup_script,
            copy_files,
            int(parallel_setup_script),
            now,
            now,
        ),
    )
    return await get(conn, project_id)


async def update(
    conn: aiosqlite.Connection,
    project_id: UUID,
    *,
    name: str,
    git_repo_path: str,
    setup_script: str | None,
    dev_script: str | None,
    cleanup_script: str | None,
    copy_files: str | None,
    parallel_setup_script: bool,
) -> Project:
    """Overwrite name, path, scripts, copy files and the parallel flag."""
    if await find_by_git_repo_path_excluding_id(conn, git_repo_path, project_id) is not None:
        raise Conflict(f"another project already uses {git_repo_path!r}")
    changed = await execute(
        conn,
        """UPDATE projects SET name = ?, git_repo_path = ?, setup_script = ?, dev_script = ?,
               cleanup_script = ?, copy_files = ?, parallel_setup_script = ?, updated_at = ?
           WHERE id = ?""",
        (
            name,
            git_repo_path,
            setup_script,
            dev_script,
            cleanup_script,
            copy_files,
            int(parallel_setup_script),
            now_db(),
            uuid_to_db(project_id),
        ),
    )
    if not changed:
        raise NotFound(f"project {project_id} not found")
    return await get(conn, project_id)


async def delete(conn: aiosqlite.Connection, project_id: UUID) -> bool:
    """Delete a project; tasks, attempts, processes and logs cascade."""
    return bool(await execute(conn, "DELETE FROM projects WHERE id = ?", (uuid_to_db(project_id),)))


async def find_by_remote_project_id(
    conn: aiosqlite.Connection, remote_project_id: UUID
) -> Project | None:
    return await fetch_model(
        conn,
        Project,
        "SELECT * FROM projects WHERE remote_project_id = ? LIMIT 1",
        (uuid_to_db(remote_project_id),),
    )


async def set_remote_project_id(
    conn: aiosqlite.Connection, project_id: UUID, remote_project_id: UUID | None
) -> Project:
    """Link (``remote_project_id``) or unlink (``None``) a local project.

    :class:`Conflict` when another local project is already linked to that swarm project.
    """
    if remote_project_id is not None:
        other = await find_by_remote_project_id(conn, remote_project_id)
        if other is not None and other.id != project_id:
            raise Conflict(f"swarm project {remote_project_id} is linked to project {other.id}")
    changed = await execute(
        conn,
        "UPDATE projects SET remote_project_id = ?, updated_at = ? WHERE id = ?",
        (uuid_or_none(remote_project_id), now_db(), uuid_to_db(project_id)),
    )
    if not changed:
        raise NotFound(f"project {project_id} not found")
    return await get(conn, project_id)


async def find_unlinked(conn: aiosqlite.Connection) -> list[Project]:
    return await fetch_models(
        conn,
        Project,
        """SELECT * FROM projects WHERE is_remote = 0 AND remote_project_id IS NULL
           ORDER BY created_at DESC, rowid DESC""",
    )


async def find_local_projects(conn: aiosqlite.Connection) -> list[Project]:
    return await fetch_models(
        conn,
        Project,
        "SELECT * FROM projects WHERE is_remote = 0 ORDER BY created_at DESC, rowid DESC",
    )


async def find_all_with_remote_id(conn: aiosqlite.Connection) -> list[Project]:
    """Linked local projects, by name (used for automatic re-linking)."""
    return await fetch_models(
        conn,
        Project,
        """SELECT * FROM projects WHERE is_remote = 0 AND remote_project_id IS NOT NULL
           ORDER BY name""",
    )


async def find_local_project_remote_ids(conn: aiosqlite.Connection) -> list[UUID]:
    rows = await fetch_all(
        conn,
        """SELECT remote_project_id FROM projects
           WHERE is_remote = 0 AND remote_project_id IS NOT NULL""",
    )
    return [uuid_from_db(r[0]) for r in rows]


async def find_github_enabled(conn: aiosqlite.Connection) -> list[Project]:
    return await fetch_models(
        conn,
        Project,
        "SELECT * FROM projects WHERE is_remote = 0 AND github_enabled = 1 ORDER BY name",
    )


async def set_github_enabled(
    conn: aiosqlite.Connection,
    project_id: UUID,
    enabled: bool,
    *,
    owner: str | None = None,
    repo: str | None = None,
) -> bool:
    return bool(
        await execute(
            conn,
            """UPDATE projects SET github_enabled = ?, github_owner = ?, github_repo = ?,
                   updated_at = ? WHERE id = ? AND is_remote = 0""",
            (int(enabled), owner, repo, now_db(), uuid_to_db(project_id)),
        )
    )


async def update_github_counts(
    conn: aiosqlite.Connection, project_id: UUID, *, open_issues: int, open_prs: int
) -> bool:
    return bool(
        await execute(
            conn,
            """UPDATE projects SET github_open_issues = ?, github_open_prs = ?,
                   github_last_synced_at = ? WHERE id = ? AND is_remote = 0""",
            (int(open_issues), int(open_prs), now_db(), uuid_to_db(project_id)),
        )
    )


async def find_local_projects_with_stats(conn: aiosqlite.Connection) -> list[ProjectWithStats]:
    """Local projects with their latest attempt time and task counts per status, newest first."""
    return await fetch_models(
        conn,
        ProjectWithStats,
        """SELECT p.*,
               (SELECT MAX(a.updated_at) FROM task_attempts a JOIN tasks t ON t.id = a.task_id
                 WHERE t.project_id = p.id) AS last_attempt_at,
               (SELECT COUNT(*) FROM tasks t WHERE t.project_id = p.id AND t.status = 'todo')
                 AS todo_count,
               (SELECT COUNT(*) FROM tasks t WHERE t.project_id = p.id
                 AND t.status = 'inprogress') AS inprogress_count,
               (SELECT COUNT(*) FROM tasks t WHERE t.project_id = p.id
                 AND t.status = 'inreview') AS inreview_count,
               (SELECT COUNT(*) FROM tasks t WHERE t.project_id = p.id AND t.status = 'done')
                 AS done_count
           FROM projects p WHERE p.is_remote = 0 ORDER BY p.created_at DESC, p.rowid DESC""",
    )
