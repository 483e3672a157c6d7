"""``/api/webhooks``: global and per-project webhooks, test deliveries and delivery history.

Secrets and header values are write-only (a response says ``has_secret`` and lists
``header_names``). Requests are bounded by their types (sizes, no control characters in a URL
or a header); :mod:`vk_node.services.webhooks` adds the rules a schema cannot say.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar
from uuid import UUID

import msgspec
from litestar import Controller, Request, delete, get, patch, post
from litestar.exceptions import ValidationException
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK

from vk_node.api.deps import Ctx, Db
from vk_node.api.types import Name, given_fields
from vk_node.errors import NotFound
from vk_node.services import webhooks as service
from vk_node.services.webhooks import WebhookView
from vk_node.store.models import WebhookDelivery
from vk_node.store.repositories import projects as projects_repo
from vk_node.store.repositories import webhook_deliveries as deliveries_repo
from vk_node.store.repositories import webhooks as webhooks_repo
from vk_node.webhooks.payload import Event
from vk_shared.openapi import answers
from vk_shared.webhooks import Headers, PayloadTemplate, Secret, Url

__all__ = ["WebhookController"]

Events = Annotated[list[Event], msgspec.Meta(min_length=1, max_length=8)]
Limit = Annotated[int, QueryParameter(ge=1, le=200)]


class WebhookCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Name
    url: Url
    project_id: UUID | None = None
    """``null`` = a global webhook."""
    events: Events = msgspec.field(default_factory=lambda: ["executor_finish"])
    headers: Headers = msgspec.field(default_factory=dict)
    """Sent with every delivery (values are write-only)."""
    secret: Secret | None = None
    """Signs deliveries (``X-VK-Signature``); write-only."""
    payload_template: PayloadTemplate | None = None
    """JSON with ``{{placeholder}}`` strings; ``null`` = the default body."""
    override_global: bool = False
    """Project webhooks only: the global webhooks stay silent for this project's events."""
    active: bool = True


class WebhookUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Name | msgspec.UnsetType = msgspec.UNSET
    url: Url | msgspec.UnsetType = msgspec.UNSET
    events: Events | msgspec.UnsetType = msgspec.UNSET
    headers: Headers | msgspec.UnsetType = msgspec.UNSET
    """Replaces all custom headers."""
    secret: Secret | msgspec.UnsetType | None = msgspec.UNSET
    """``null`` removes the secret."""
    payload_template: PayloadTemplate | msgspec.UnsetType | None = msgspec.UNSET
    override_global: bool | msgspec.UnsetType = msgspec.UNSET
    active: bool | msgspec.UnsetType = msgspec.UNSET


_Body = TypeVar("_Body", bound=msgspec.Struct)


async def _strictly(request: Request[Any, Any, Any], body: type[_Body]) -> _Body:
    """The body decoded again without the framework's lax conversions (``0`` is not
    ``false``): what the OpenAPI document says is exactly what is accepted."""
    try:
        return msgspec.json.decode(await request.body(), type=body)
    except msgspec.ValidationError as exc:
        raise ValidationException(
            f"Validation failed for {request.method} {request.url.path}: {exc}"
        ) from None


class WebhookController(Controller):
    path = "/webhooks"
    tags: list[str] | None = ["webhooks"]

    @get("/", summary="Webhooks: all, or one project's when project_id is given", opt=answers(404))
    async def list_webhooks(
        self, store: Db, project_id: FromQuery[UUID | None] = None
    ) -> list[WebhookView]:
        async with store.read() as conn:
            if project_id is None:
                hooks = await webhooks_repo.find_all(conn)
            else:
                await projects_repo.get(conn, project_id)
                hooks = await webhooks_repo.find_for_project(conn, project_id)
        return [service.view(h) for h in hooks]

    @post("/", summary="Create a webhook", opt=answers(404, 409, 422))
    async def create(
        self, store: Db, request: Request[Any, Any, Any], data: JSONBody[WebhookCreate]
    ) -> WebhookView:
        """422 for a URL that is not http(s), a reserved header, an unknown template
        placeholder, or ``override_global`` on a global webhook."""
        data = await _strictly(request, WebhookCreate)
        hook = await service.create(
            store,
            name=data.name,
            url=data.url,
            project_id=data.project_id,
            events=data.events,
            headers=data.headers,
            secret=data.secret,
            payload_template=data.payload_template,
            override_global=data.override_global,
            active=data.active,
        )
        return service.view(hook)

    @get("/{webhook_id:uuid}", summary="One webhook")
    async def get_webhook(self, store: Db, webhook_id: FromPath[UUID]) -> WebhookView:
        return service.view(await service.get(store, webhook_id))

    @patch("/{webhook_id:uuid}", summary="Change a webhook", opt=answers(409, 422))
    async def update(
        self,
        store: Db,
        request: Request[Any, Any, Any],
        webhook_id: FromPath[UUID],
        data: JSONBody[WebhookUpdate],
    ) -> WebhookView:
        data = await _strictly(request, WebhookUpdate)
        return service.view(await service.update(store, webhook_id, given_fields(data)))

    @delete("/{webhook_id:uuid}", summary="Delete a webhook (and its delivery history)")
    async def remove(self, store: Db, webhook_id: FromPath[UUID]) -> None:
        async with store.transaction() as conn:
            if not await webhooks_repo.delete(conn, webhook_id):
                raise NotFound(f"webhook {webhook_id} not found")

    @post(
        "/{webhook_id:uuid}/test",
        summary="Send a test delivery now and return its outcome",
        status_code=HTTP_200_OK,
        opt=answers(409),
    )
    async def test(self, ctx: Ctx, webhook_id: FromPath[UUID]) -> WebhookDelivery:
        """One try, no retries, even when the webhook is inactive; the delivery (event
        ``test``) is recorded with the others."""
        hook = await service.get(ctx.store, webhook_id)
        return await ctx.webhooks.send_test(hook)

    @get("/{webhook_id:uuid}/deliveries", summary="A webhook's deliveries, newest first")
    async def deliveries(
        self, store: Db, webhook_id: FromPath[UUID], limit: Limit = 50
    ) -> list[WebhookDelivery]:
        """Each with its tries: when, HTTP status, duration and error."""
        async with store.read() as conn:
            if await webhooks_repo.find_by_id(conn, webhook_id) is None:
                raise NotFound(f"webhook {webhook_id} not found")
            return await deliveries_repo.find_for_webhook(conn, webhook_id, limit=limit)
