"""Git and pull request actions on an attempt's branch, under ``/api/task-attempts/{id}``:
push, rebase, rename, change the base branch, branch status, attach a PR, the PR rows."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Controller, get, post
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK

from vk_node.api.deps import Ctx, Db
from vk_node.api.types import BranchName
from vk_node.executor import branches
from vk_node.executor.branches import BranchStatus
from vk_node.executor.pull_requests import PR_URL_PATTERN, attach_pr
from vk_node.store.models import Merge, TaskAttempt
from vk_node.store.repositories import merges as merges_repo
from vk_node.store.repositories import task_attempts as attempts_repo
from vk_shared.openapi import answers

__all__ = ["AttemptGitController"]

PrNumber = Annotated[int, msgspec.Meta(ge=1, le=2_147_483_647)]
PrUrl = Annotated[str, msgspec.Meta(max_length=600, pattern=PR_URL_PATTERN)]


class Push(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    force: bool = False
    """Overwrite origin's copy of the branch (``git push --force``), commits it has that the
    local branch lacks included."""


class Rebase(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    new_base_branch: BranchName | None = None
    """Rebase onto this existing branch, which becomes the attempt's base branch."""


class RenameBranch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    new_branch_name: BranchName


class ChangeTargetBranch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    target_branch: BranchName


class AttachPr(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pr_number: PrNumber | None = None
    """The PR's number in the project's GitHub repository."""
    pr_url: PrUrl | None = None
    """The PR's web address, ``https://<host>/<owner>/<repo>/pull/<number>``."""


class AttemptGitController(Controller):
    path = "/task-attempts"
    tags: list[str] | None = ["attempts"]

    @get(
        "/{attempt_id:uuid}/branch-status",
        summary="How the attempt branch stands",
        opt=answers(404),
    )
    async def branch_status(self, ctx: Ctx, attempt_id: FromPath[UUID]) -> BranchStatus:
        """Commits ahead of and behind the base branch and ``origin``'s copy, uncommitted
        changes, and whether a rebase is in progress in the worktree."""
        return await branches.branch_status(ctx.executor, attempt_id)

    @post(
        "/{attempt_id:uuid}/push",
        status_code=HTTP_200_OK,
        summary="Push the attempt branch to origin",
        opt=answers(404, 409, 422),
    )
    async def push(
        self, ctx: Ctx, attempt_id: FromPath[UUID], data: JSONBody[Push]
    ) -> BranchStatus:
        """Pushes the branch to the same name on the repository's ``origin`` remote and tracks
        it. 409 ``push_rejected`` when origin has commits the branch lacks (unless ``force``),
        409 while a run of the attempt goes on; 422 with git's error line otherwise."""
        return await branches.push_branch(ctx.executor, attempt_id, force=data.force)

    @post(
        "/{attempt_id:uuid}/rebase",
        status_code=HTTP_200_OK,
        summary="Rebase the attempt branch onto its base branch",
        opt=answers(404, 409, 422),
    )
    async def rebase(
        self, ctx: Ctx, attempt_id: FromPath[UUID], data: JSONBody[Rebase]
    ) -> BranchStatus:
        """Replays the branch's own commits onto the base branch (or ``new_base_branch``, which
        then becomes the base). On conflicts the rebase is aborted — branch and worktree stay as
        they were — and the answer is 409 ``rebase_conflict`` naming the files. 409 also while
        anything of the attempt runs, or its worktree is gone or has uncommitted changes."""
        return await branches.rebase_branch(ctx.executor, attempt_id, data.new_base_branch)

    @post(
        "/{attempt_id:uuid}/rebase/abort",
        status_code=HTTP_200_OK,
        summary="Abort a rebase in progress",
        opt=answers(404, 409, 422),
    )
    async def abort_rebase(self, ctx: Ctx, attempt_id: FromPath[UUID]) -> BranchStatus:
        """Aborts a rebase left in progress in the worktree (one started there by hand or by an
        agent; the node's own rebase never leaves one). 409 when no rebase is in progress."""
        return await branches.abort_rebase(ctx.executor, attempt_id)

    @post(
        "/{attempt_id:uuid}/rename-branch",
        status_code=HTTP_200_OK,
        summary="Rename the attempt branch",
        opt=answers(404, 409, 422),
    )
    async def rename_branch(
        self, ctx: Ctx, attempt_id: FromPath[UUID], data: JSONBody[RenameBranch]
    ) -> TaskAttempt:
        """Renames the branch (its worktree follows); child tasks' attempts based on the old
        name are retargeted. 422 for a name git refuses; 409 while anything of the attempt
        runs, when the name is taken or a PR from the old name is open."""
        return await branches.rename_branch(ctx.executor, attempt_id, data.new_branch_name)

    @post(
        "/{attempt_id:uuid}/change-target-branch",
        status_code=HTTP_200_OK,
        summary="Change the attempt's base branch",
        opt=answers(404, 409, 422),
    )
    async def change_target_branch(
        self, ctx: Ctx, attempt_id: FromPath[UUID], data: JSONBody[ChangeTargetBranch]
    ) -> TaskAttempt:
        """Makes an existing branch the base the attempt is diffed, merged and rebased against
        (the attempt branch itself does not move). 422 when the branch does not exist."""
        return await branches.change_target_branch(ctx.executor, attempt_id, data.target_branch)

    @post(
        "/{attempt_id:uuid}/pr/attach",
        status_code=HTTP_200_OK,
        summary="Attach an existing pull request",
        opt=answers(404, 409, 422),
    )
    async def attach_pr(
        self, ctx: Ctx, attempt_id: FromPath[UUID], data: JSONBody[AttachPr]
    ) -> Merge:
        """Links a pull request to the attempt — by ``pr_url``, by ``pr_number``, or (neither
        given) the one GitHub has for the attempt's branch — asking ``gh pr view``. Already
        merged: the task becomes done; open: the PR monitor follows it. 409 when that PR is
        attached already; 422 when ``gh`` is missing or fails."""
        return await attach_pr(ctx.executor, attempt_id, number=data.pr_number, url=data.pr_url)

    @get("/{attempt_id:uuid}/merges", summary="Merges and pull requests of an attempt")
    async def merges(self, store: Db, attempt_id: FromPath[UUID]) -> list[Merge]:
        """Newest first; a PR row carries its ``pr_status`` as the PR monitor last saw it."""
        async with store.read() as conn:
            await attempts_repo.get(conn, attempt_id)
            return await merges_repo.find_by_task_attempt_id(conn, attempt_id)
