"""Pull requests of attempts through the GitHub CLI (spec §9): open one, attach an existing one,
and the monitor that follows open ones until GitHub says they were merged or closed.

Invariants:

- ``gh`` is given only checked identifiers — a PR number, an ``https`` URL of a pull request, or
  the attempt's branch — and only after ``--``, so nothing is read as an option. Its answer is
  decoded into :class:`GhPullRequest`; anything else is a 422 naming what it printed.
- A PR row (``merges``, type ``pr``) moves ``open → merged | closed`` and never back; an attempt
  holds a given PR once.
- A merged PR makes its task ``done`` in the transaction that records it, by the task store's
  ``update_status``, which queues the change for the hive like every status change when the
  project is linked (the same path as a direct merge). A task already done or cancelled stays.
- The monitor (:class:`PrMonitor`, owned by the node's lifespan) asks ``gh`` about each open PR
  every ``VK_NODE_PR_MONITOR_INTERVAL_S`` seconds. One PR's failure (``gh`` missing, no network,
  a PR gone) is logged and retried the next round; nothing stops the loop but shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from uuid import UUID

import aiosqlite
import msgspec
import structlog

from vk_node.errors import Conflict, DomainError, InvalidInput, Unprocessable
from vk_node.executor.branches import failure_reason, load_attempt, push_ref
from vk_node.executor.diff import WorktreeGone, live_worktree
from vk_node.store.models import Merge, Project, TaskAttempt
from vk_node.store.repositories import merges as merges_repo
from vk_node.store.repositories import tasks as tasks_repo
from vk_shared.status import NodeTaskStatus

if TYPE_CHECKING:
    from vk_node.executor.service import ExecutorService

__all__ = [
    "PR_URL_PATTERN",
    "GhPullRequest",
    "PrMonitor",
    "attach_pr",
    "create_pr",
    "refresh_open_prs",
]

log = structlog.get_logger("vk_node.executor.pull_requests")

PR_URL_PATTERN = (
    r"^https://[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?/[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}"
    r"/pull/[1-9][0-9]{0,9}$"
)
"""A pull request's web address (github.com or a GitHub Enterprise host)."""

_FIELDS = "number,url,state,mergedAt,mergeCommit"
_STATUS = {"OPEN": "open", "MERGED": "merged", "CLOSED": "closed"}


class _Commit(msgspec.Struct, frozen=True):
    oid: str = ""


class GhPullRequest(msgspec.Struct, frozen=True, kw_only=True):
    """What ``gh pr view --json number,url,state,mergedAt,mergeCommit`` prints."""

    number: int = 0
    url: str = ""
    state: Literal["OPEN", "CLOSED", "MERGED"]
    merged_at: datetime | None = msgspec.field(default=None, name="mergedAt")
    merge_commit: _Commit | None = msgspec.field(default=None, name="mergeCommit")


async def _require_gh() -> str:
    gh = await asyncio.to_thread(shutil.which, "gh")
    if gh is None:
        raise Unprocessable("gh is not installed on this node; install the GitHub CLI to use PRs")
    return gh


async def _gh_cwd(attempt: TaskAttempt, project: Project) -> str:
    """Where ``gh`` runs: the attempt's worktree, else the project's repository (it finds the
    GitHub repository from the remotes there)."""
    try:
        return str(await asyncio.to_thread(live_worktree, attempt))
    except WorktreeGone:
        return project.git_repo_path


async def _view(service: ExecutorService, gh: str, cwd: str, selector: str) -> GhPullRequest:
    viewed = await service.git.gh(cwd, gh, "pr", "view", "--json", _FIELDS, "--", selector)
    if not viewed.ok:
        raise Unprocessable(f"gh pr view {selector} failed: {failure_reason(viewed)}")
    try:
        pr = msgspec.json.decode(viewed.out, type=GhPullRequest)
    except msgspec.DecodeError:
        raise Unprocessable(
            f"gh pr view {selector} printed no pull request: {viewed.out[:200]!r}"
        ) from None
    if pr.number < 1 or re.fullmatch(PR_URL_PATTERN, pr.url) is None:
        raise Unprocessable(f"gh pr view {selector} printed no pull request number and URL")
    return pr


async def _record(
    conn: aiosqlite.Connection, merge: Merge, pr: GhPullRequest, task_id: UUID
) -> Merge:
    """Record what GitHub says of an open PR row; a merged PR makes the task done."""
    status = _STATUS[pr.state]
    if status == "open" or merge.pr_status != "open":
        return merge
    updated = await merges_repo.update_status(
        conn,
        merge.id,
        status,
        merge_commit_sha=(pr.merge_commit.oid or None) if pr.merge_commit else None,
        merged_at=pr.merged_at if status == "merged" else None,
    )
    if status == "merged":
        task = await tasks_repo.get(conn, task_id)
        if task.status not in (NodeTaskStatus.DONE, NodeTaskStatus.CANCELLED):
            await tasks_repo.update_status(conn, task_id, NodeTaskStatus.DONE)
    return updated


async def create_pr(
    service: ExecutorService, attempt_id: UUID, *, title: str | None, body: str | None
) -> Merge:
    """Push the attempt branch and open a pull request with the GitHub CLI (``gh``)."""
    gh = await _require_gh()
    attempt, task, project = await load_attempt(service, attempt_id)
    cwd = await _gh_cwd(attempt, project)
    git = service.git
    if not (await git.gh(cwd, gh, "auth", "status")).ok:
        raise Unprocessable("gh is not authenticated; run `gh auth login` on this node")
    await push_ref(git, project.git_repo_path, attempt.branch)
    created = await git.gh(
        cwd,
        gh,
        "pr",
        "create",
        "--base",
        attempt.target_branch,
        "--head",
        attempt.branch,
        "--title",
        title or task.title,
        "--body",
        body if body is not None else (task.description or ""),
        check=True,
    )
    match = re.search(r"https://\S+/pull/(\d+)", created.out)
    if match is None:
        raise Unprocessable(f"gh pr create printed no pull request URL: {created.out[:200]}")
    async with service.store.transaction() as conn:
        return await merges_repo.create_pr(
            conn, attempt_id, attempt.target_branch, int(match.group(1)), match.group(0)
        )


async def attach_pr(
    service: ExecutorService, attempt_id: UUID, *, number: int | None, url: str | None
) -> Merge:
    """Link an existing pull request to the attempt: the one at ``url``, the one numbered
    ``number`` in the project's GitHub repository, or (neither given) the one ``gh`` finds for
    the attempt's branch. Already merged: the task becomes done; closed: recorded as such."""
    if url is not None and re.fullmatch(PR_URL_PATTERN, url) is None:
        raise InvalidInput(f"not the https address of a pull request: {url!r}")
    if url is not None and number is not None and not url.endswith(f"/pull/{number}"):
        raise Unprocessable(f"pr_url {url!r} is not pull request #{number}")
    gh = await _require_gh()
    attempt, task, project = await load_attempt(service, attempt_id)
    selector = url if url is not None else str(number) if number is not None else attempt.branch
    pr = await _view(service, gh, await _gh_cwd(attempt, project), selector)
    async with service.store.transaction() as conn:
        held = await merges_repo.find_by_task_attempt_id(conn, attempt_id)
        if any(m.merge_type == "pr" and m.pr_url == pr.url for m in held):
            raise Conflict(f"pull request #{pr.number} is already attached to this attempt")
        merge = await merges_repo.create_pr(
            conn, attempt_id, attempt.target_branch, pr.number, pr.url
        )
        merge = await _record(conn, merge, pr, task.id)
    if merge.pr_status == "merged":
        await service.stop_dev_servers(attempt_id)
    log.info("pr.attached", attempt_id=str(attempt_id), pr=pr.number, status=merge.pr_status)
    return merge


async def _refresh(service: ExecutorService, gh: str, merge: Merge) -> bool:
    """Ask ``gh`` about one open PR row; whether it changed."""
    attempt, task, project = await load_attempt(service, merge.task_attempt_id)
    repo = project.git_repo_path
    cwd = repo if await asyncio.to_thread(Path(repo).is_dir) else str(service.settings.data_path)
    pr = await _view(service, gh, cwd, merge.pr_url or str(merge.pr_number))
    if pr.state == "OPEN":
        return False
    async with service.store.transaction() as conn:
        updated = await _record(conn, merge, pr, task.id)
    if updated.pr_status == "merged":
        await service.stop_dev_servers(attempt.id)
    log.info("pr.closed", merge_id=str(merge.id), pr=merge.pr_number, status=updated.pr_status)
    return True


async def refresh_open_prs(service: ExecutorService) -> int:
    """One round of the monitor: every open PR row asked about; how many changed."""
    async with service.store.read() as conn:
        rows = await merges_repo.get_open_prs(conn)
    if not rows:
        return 0
    try:
        gh = await _require_gh()
    except Unprocessable:
        log.warning("pr_monitor.gh_missing", open_prs=len(rows))
        return 0
    changed = 0
    for merge in rows:
        try:
            changed += await _refresh(service, gh, merge)
        except DomainError as exc:
            log.warning(
                "pr_monitor.refresh_failed",
                merge_id=str(merge.id),
                pr=merge.pr_number,
                error=exc.detail,
            )
    return changed


class PrMonitor:
    """Follows open pull requests in the background (see the module's invariants)."""

    def __init__(self, service: ExecutorService, interval_s: float) -> None:
        self.service = service
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="pr-monitor")

    async def _run(self) -> None:
        while True:
            try:
                await refresh_open_prs(self.service)
            except Exception:
                log.exception("pr_monitor.round_failed")
            await asyncio.sleep(self.interval_s)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
