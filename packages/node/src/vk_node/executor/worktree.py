"""Attempt worktrees: names, creation (DB first), reuse, copy files and images, cleanup (spec §1.3,
§2).

Ordering keeps the orphan sweeper safe: the attempt's ``container_ref`` is written before
``git worktree add`` creates the directory, so a directory under the worktrees dir without a live
attempt is always garbage.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path
from uuid import UUID

import aiosqlite
import structlog

from vk_node.errors import Unprocessable
from vk_node.executor.git import GitError, GitRunner
from vk_node.services import images
from vk_node.settings import NodeSettings
from vk_node.store import Store
from vk_node.store.models import Project, TaskAttempt
from vk_node.store.repositories import execution_processes as processes_repo
from vk_node.store.repositories import projects as projects_repo
from vk_node.store.repositories import task_attempts as attempts_repo
from vk_node.store.repositories import tasks as tasks_repo

__all__ = ["WorktreeManager", "branch_name", "short_id", "slugify", "worktree_dir_name"]

log = structlog.get_logger("vk_node.executor.worktree")


def short_id(attempt_id: UUID) -> str:
    """First 4 hex chars of the attempt id."""
    return attempt_id.hex[:4]


def slugify(title: str) -> str:
    """Lowercase, runs of non ``[a-z0-9]`` → ``-``, trimmed, cut to 16, trimmed again."""
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:16].strip("-")
    return slug or "task"


def worktree_dir_name(attempt_id: UUID, title: str) -> str:
    return f"{short_id(attempt_id)}-{slugify(title)}"


def branch_name(prefix: str, attempt_id: UUID, title: str) -> str:
    """``<prefix>/<short>-<slug>``, or ``<short>-<slug>`` when the prefix is empty."""
    name = worktree_dir_name(attempt_id, title)
    prefix = prefix.strip("/")
    return f"{prefix}/{name}" if prefix else name


class WorktreeManager:
    """Creates and removes the worktrees of one node's attempts."""

    def __init__(self, store: Store, settings: NodeSettings, git: GitRunner) -> None:
        self.store = store
        self.settings = settings
        self.git = git
        self.root = settings.worktrees_dir

    async def create(self, attempt: TaskAttempt, title: str, project: Project) -> Path:
        """Create the attempt's worktree on a new branch from its target branch.

        ``container_ref`` is recorded first; when ``git worktree add`` fails it is cleared again
        and :class:`Unprocessable` names the cause.
        """
        path = self.root / worktree_dir_name(attempt.id, title)
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)
        async with self.store.transaction() as conn:
            await attempts_repo.update_container_ref(conn, attempt.id, str(path))
        try:
            if await asyncio.to_thread(path.exists):
                raise GitError(f"worktree path {path} already exists")
            await self._add_new_branch(project.git_repo_path, attempt, path)
        except Exception as exc:
            async with self.store.transaction() as conn:
                await attempts_repo.clear_container_ref(conn, attempt.id)
            detail = exc.detail if isinstance(exc, Unprocessable) else str(exc)
            raise Unprocessable(f"could not create the worktree: {detail}") from exc
        await self.copy_files(project, path)
        await images.copy_into_worktree(self.store, self.settings.images_dir, attempt.task_id, path)
        log.info("worktree.created", attempt_id=str(attempt.id), path=str(path))
        return path

    async def _add_new_branch(self, repo: str, attempt: TaskAttempt, path: Path) -> None:
        await self.git.check(
            repo,
            "worktree",
            "add",
            "--quiet",
            "-b",
            attempt.branch,
            str(path),
            attempt.target_branch,
        )

    async def ensure(self, attempt: TaskAttempt, project: Project) -> Path:
        """The attempt's worktree, recreated from its branch when the directory is gone."""
        if attempt.container_ref is None:
            raise Unprocessable(f"attempt {attempt.id} has no worktree")
        path = Path(attempt.container_ref)
        if await asyncio.to_thread((path / ".git").exists):
            return path
        repo = project.git_repo_path
        await self.git.run(repo, "worktree", "prune")
        await asyncio.to_thread(shutil.rmtree, path, True)
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        if await self.git.rev(repo, f"refs/heads/{attempt.branch}") is not None:
            await self.git.check(repo, "worktree", "add", "--quiet", str(path), attempt.branch)
        else:
            await self._add_new_branch(repo, attempt, path)
        async with self.store.transaction() as conn:
            if attempt.worktree_deleted:
                await attempts_repo.reset_worktree_deleted(conn, attempt.id)
        await images.copy_into_worktree(self.store, self.settings.images_dir, attempt.task_id, path)
        log.info("worktree.recreated", attempt_id=str(attempt.id), path=str(path))
        return path

    async def copy_files(self, project: Project, path: Path) -> None:
        """Best effort: copy each ``copy_files`` entry (comma or newline separated) into the
        worktree; failures are logged, never raised."""
        if not project.copy_files:
            return
        repo = await asyncio.to_thread(Path(project.git_repo_path).resolve)
        for raw in re.split(r"[,\n]", project.copy_files):
            name = raw.strip()
            if not name:
                continue
            try:
                source = (repo / name).resolve()
                source.relative_to(repo)  # never outside the repository
                target = path / source.relative_to(repo)
                await asyncio.to_thread(_copy, source, target)
            except (OSError, ValueError) as exc:
                log.warning("worktree.copy_failed", file=name, error=str(exc))

    async def remove(self, attempt: TaskAttempt, repo: str) -> None:
        """``git worktree remove --force`` + prune, then mark the attempt's worktree deleted.

        A worktree shared with another live attempt (``use_parent_worktree``) is only marked."""
        if attempt.container_ref is not None:
            async with self.store.read() as conn:
                shared = await attempts_repo.container_ref_exists(
                    conn, attempt.container_ref, besides=attempt.id
                )
            if not shared:
                await self._remove_dir(Path(attempt.container_ref), repo)
        async with self.store.transaction() as conn:
            await attempts_repo.mark_worktree_deleted(conn, attempt.id)
        log.info("worktree.removed", attempt_id=str(attempt.id), path=attempt.container_ref)

    async def _remove_dir(self, path: Path, repo: str | None) -> None:
        repo_ok = bool(repo) and await asyncio.to_thread(Path(repo or ".").is_dir)
        if repo and repo_ok:
            await self.git.run(repo, "worktree", "remove", "--force", "--force", str(path))
        await asyncio.to_thread(shutil.rmtree, path, True)
        if repo and repo_ok:
            await self.git.run(repo, "worktree", "prune")

    # --- sweeps ----------------------------------------------------------------------------

    async def sweep_orphans(self) -> int:
        """Delete directories under the worktrees dir that no live attempt references."""
        if not await asyncio.to_thread(self.root.is_dir):
            return 0
        entries = await asyncio.to_thread(lambda: [p for p in self.root.iterdir() if p.is_dir()])
        removed = 0
        for path in entries:
            async with self.store.read() as conn:
                referenced = await attempts_repo.container_ref_exists(conn, str(path))
            if referenced:
                continue
            repo = await asyncio.to_thread(_worktree_repo, path)
            await self._remove_dir(path, repo)
            removed += 1
            log.info("worktree.orphan_removed", path=str(path))
        return removed

    async def sweep(self) -> int:
        """Mark vanished worktrees deleted; remove idle-expired ones and those of archived tasks
        (never while a process of the attempt runs). Returns how many attempts changed."""
        changed = 0
        async with self.store.read() as conn:
            live = await attempts_repo.find_by_worktree_deleted(conn)
            expired = await attempts_repo.find_expired_for_cleanup(
                conn, older_than_hours=self.settings.worktree_idle_expiry_h
            )
        expired_ids = {a.id for a in expired}
        for attempt in live:
            assert attempt.container_ref is not None
            async with self.store.read() as conn:
                task = await tasks_repo.get(conn, attempt.task_id)
                project_path = await _repo_of_task(conn, task.project_id)
                running = await processes_repo.find_running_by_task_attempt(conn, attempt.id)
            if not await asyncio.to_thread(Path(attempt.container_ref).exists):
                async with self.store.transaction() as conn:
                    await attempts_repo.mark_worktree_deleted(conn, attempt.id)
                log.info("worktree.vanished", attempt_id=str(attempt.id))
                changed += 1
            elif not running and (attempt.id in expired_ids or task.archived_at is not None):
                await self.remove(attempt, project_path)
                changed += 1
        return changed


async def _repo_of_task(conn: aiosqlite.Connection, project_id: UUID) -> str:
    return (await projects_repo.get(conn, project_id)).git_repo_path


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target, dirs_exist_ok=True)
    else:
        shutil.copy2(source, target)


def _worktree_repo(path: Path) -> str | None:
    """The main repository of a linked worktree (from its ``.git`` file), if readable."""
    try:
        text = (path / ".git").read_text()
    except OSError:
        return None
    if not text.startswith("gitdir:"):
        return None
    gitdir = Path(text.split(":", 1)[1].strip())
    # <repo>/.git/worktrees/<name> -> <repo>
    try:
        return str(gitdir.parents[2])
    except IndexError:
        return None
