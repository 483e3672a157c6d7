"""``/api/task-attempts/{id}/drafts/{follow_up|retry}``: the unsent follow-up or retry prompt of
an attempt, with its queue flag and version."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

import msgspec
from litestar import Controller, delete, get, post, put
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK

from vk_node.api.deps import Db
from vk_node.api.types import Description, Name
from vk_node.errors import Conflict, NotFound, Unprocessable
from vk_node.store.models import Draft
from vk_node.store.repositories import drafts as drafts_repo
from vk_node.store.repositories import execution_processes as processes_repo
from vk_node.store.repositories import task_attempts as attempts_repo
from vk_shared.openapi import answers

__all__ = ["DraftController"]

DraftType = Literal["follow_up", "retry"]


class DraftSave(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    prompt: Description = ""
    variant: Name | None = None
    image_ids: Annotated[list[UUID], msgspec.Meta(max_length=64)] | None = None
    retry_process_id: UUID | None = None
    """Retry drafts only: the execution process to retry from (of this attempt)."""


class DraftQueue(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    queued: bool
    expected_version: Annotated[int, msgspec.Meta(ge=0, le=2**62)] | None = None
    """Optional compare-and-set: only change the draft when it is at this version."""


class DraftController(Controller):
    path = "/task-attempts/{attempt_id:uuid}/drafts/{draft_type:str}"
    tags: list[str] | None = ["drafts"]

    @get("/", summary="The attempt's draft of that type")
    async def get_draft(
        self, store: Db, attempt_id: FromPath[UUID], draft_type: FromPath[DraftType]
    ) -> Draft:
        async with store.read() as conn:
            await attempts_repo.get(conn, attempt_id)
            draft = await drafts_repo.find_by_task_attempt_and_type(conn, attempt_id, draft_type)
        if draft is None:
            raise NotFound(f"no {draft_type} draft for attempt {attempt_id}")
        return draft

    @put(
        "/",
        summary="Save (create or overwrite) the draft; bumps its version",
        opt=answers(409, 422),
    )
    async def save(
        self,
        store: Db,
        attempt_id: FromPath[UUID],
        draft_type: FromPath[DraftType],
        data: JSONBody[DraftSave],
    ) -> Draft:
        async with store.transaction() as conn:
            await attempts_repo.get(conn, attempt_id)
            if data.retry_process_id is not None:
                if draft_type != "retry":
                    raise Unprocessable("retry_process_id is only for retry drafts")
                process = await processes_repo.find_by_id(conn, data.retry_process_id)
                if process is None or process.task_attempt_id != attempt_id:
                    raise Unprocessable("retry_process_id is not a process of this attempt")
            return await drafts_repo.upsert(
                conn,
                attempt_id,
                draft_type,
                prompt=data.prompt,
                retry_process_id=data.retry_process_id,
                variant=data.variant,
                image_ids=data.image_ids,
            )

    @post("/queue", status_code=HTTP_200_OK, summary="Queue or unqueue the draft", opt=answers(409))
    async def queue(
        self,
        store: Db,
        attempt_id: FromPath[UUID],
        draft_type: FromPath[DraftType],
        data: JSONBody[DraftQueue],
    ) -> Draft:
        """409 when the draft changed meanwhile (version) or is queued with a blank prompt."""
        async with store.transaction() as conn:
            await attempts_repo.get(conn, attempt_id)
            if (
                await drafts_repo.find_by_task_attempt_and_type(conn, attempt_id, draft_type)
                is None
            ):
                raise NotFound(f"no {draft_type} draft for attempt {attempt_id}")
            changed = await drafts_repo.set_queued(
                conn, attempt_id, draft_type, data.queued, expected_version=data.expected_version
            )
            if not changed:
                raise Conflict("the draft changed meanwhile, or its prompt is blank")
            draft = await drafts_repo.find_by_task_attempt_and_type(conn, attempt_id, draft_type)
        assert draft is not None
        return draft

    @delete("/", summary="Discard the draft")
    async def remove(
        self, store: Db, attempt_id: FromPath[UUID], draft_type: FromPath[DraftType]
    ) -> None:
        async with store.transaction() as conn:
            await attempts_repo.get(conn, attempt_id)
            if not await drafts_repo.delete(conn, attempt_id, draft_type):
                raise NotFound(f"no {draft_type} draft for attempt {attempt_id}")
