"""``/api/templates``: reusable prompt snippets, referenced as ``@name``."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID, uuid4

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.params import FromPath, JSONBody

from vk_node.api.deps import Db
from vk_node.api.types import Description
from vk_node.errors import NotFound
from vk_node.store.models import Template
from vk_node.store.repositories import templates as templates_repo
from vk_shared.openapi import answers

__all__ = ["TemplateController"]

TemplateName = Annotated[
    str, msgspec.Meta(min_length=1, max_length=255, pattern=r"^[^\x00-\x20\x7f]+$")
]
Content = Annotated[Description, msgspec.Meta(min_length=1)]


class TemplateCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    template_name: TemplateName
    """No whitespace (it is referenced as ``@name``)."""
    content: Content


class TemplateUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    template_name: TemplateName | msgspec.UnsetType = msgspec.UNSET
    content: Content | msgspec.UnsetType = msgspec.UNSET


class TemplateController(Controller):
    path = "/templates"
    tags: list[str] | None = ["templates"]

    @get("/", summary="All templates by name")
    async def list_templates(self, store: Db) -> list[Template]:
        async with store.read() as conn:
            return await templates_repo.find_all(conn)

    @post("/", summary="Create a template", opt=answers(409))
    async def create(self, store: Db, data: JSONBody[TemplateCreate]) -> Template:
        async with store.transaction() as conn:
            return await templates_repo.create(
                conn, uuid4(), template_name=data.template_name, content=data.content
            )

    @get("/{template_id:uuid}", summary="One template")
    async def get_template(self, store: Db, template_id: FromPath[UUID]) -> Template:
        async with store.read() as conn:
            found = await templates_repo.find_by_id(conn, template_id)
        if found is None:
            raise NotFound(f"template {template_id} not found")
        return found

    @patch("/{template_id:uuid}", summary="Rename or rewrite a template", opt=answers(409))
    async def update(
        self, store: Db, template_id: FromPath[UUID], data: JSONBody[TemplateUpdate]
    ) -> Template:
        async with store.transaction() as conn:
            current = await templates_repo.find_by_id(conn, template_id)
            if current is None:
                raise NotFound(f"template {template_id} not found")
            return await templates_repo.update(
                conn,
                template_id,
                template_name=current.template_name
                if data.template_name is msgspec.UNSET
                else data.template_name,
                content=current.content if data.content is msgspec.UNSET else data.content,
            )

    @delete("/{template_id:uuid}", summary="Delete a template")
    async def remove(self, store: Db, template_id: FromPath[UUID]) -> None:
        async with store.transaction() as conn:
            if not await templates_repo.delete(conn, template_id):
                raise NotFound(f"template {template_id} not found")
