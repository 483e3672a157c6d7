"""``/v1/organizations/{org_id}/webhooks``: an organization's webhooks (admins only), test
deliveries and delivery history.

Events: ``task_finished`` (a coding-agent run of a shared task ended on any node) and
``node_offline`` (a node stayed offline for ``webhook_node_offline_grace_s``). Secrets and
header values are write-only: a response says ``has_secret`` and lists ``header_names``.
Requests are bounded by their types; the rules a schema cannot say (an absolute http(s) URL with
a host, no header the hive sets, known template placeholders, a public destination unless the
operator allows private networks) answer 422.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Annotated, Any

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from vk_hive.api.deps import Auth, Ctx, require_admin
from vk_hive.api.types import Name
from vk_hive.auth.principal import Principal
from vk_hive.context import HiveContext
from vk_hive.errors import NotFound, Unavailable, Unprocessable
from vk_hive.store.models import OrganizationWebhook, WebhookDelivery
from vk_hive.store.repositories import webhooks as webhooks_repo
from vk_hive.tenancy import repository as tenancy_repo
from vk_hive.webhooks.destination import check_destination
from vk_hive.webhooks.payload import PLACEHOLDERS, Event
from vk_shared import webhooks as rules
from vk_shared.openapi import answers
from vk_shared.webhooks import Headers, PayloadTemplate, Secret, Url

__all__ = ["OrganizationWebhookController"]

Events = Annotated[list[Event], msgspec.Meta(min_length=1, max_length=8)]
DeliveryLimit = Annotated[int, QueryParameter(ge=1, le=200)]
"""A query parameter (Litestar checks the bounds of a ``QueryParameter``, not a msgspec.Meta)."""


class WebhookIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Name
    url: Url
    events: Events
    headers: Headers = msgspec.field(default_factory=dict)
    """Sent with every delivery (values are write-only)."""
    secret: Secret | None = None
    """Signs deliveries (``X-VK-Signature``); write-only."""
    payload_template: PayloadTemplate | None = None
    """JSON with ``{{placeholder}}`` strings; ``null`` = the default body."""
    active: bool = True


class WebhookPatch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Name | msgspec.UnsetType = msgspec.UNSET
    url: Url | msgspec.UnsetType = msgspec.UNSET
    events: Events | msgspec.UnsetType = msgspec.UNSET
    headers: Headers | msgspec.UnsetType = msgspec.UNSET
    """Replaces all custom headers."""
    secret: Secret | msgspec.UnsetType | None = msgspec.UNSET
    """``null`` removes the secret."""
    payload_template: PayloadTemplate | msgspec.UnsetType | None = msgspec.UNSET
    active: bool | msgspec.UnsetType = msgspec.UNSET


class WebhookView(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    url: str
    events: list[str]
    header_names: list[str]
    has_secret: bool
    payload_template: str | None
    active: bool
    created_by: uuid.UUID | None
    created_at: dt.datetime
    updated_at: dt.datetime


def _view(hook: OrganizationWebhook) -> WebhookView:
    return WebhookView(
        id=hook.id,
        organization_id=hook.organization_id,
        name=hook.name,
        url=hook.url,
        events=hook.events,
        header_names=sorted(hook.headers),
        has_secret=bool(hook.secret),
        payload_template=hook.payload_template,
        active=hook.active,
        created_by=hook.created_by,
        created_at=hook.created_at,
        updated_at=hook.updated_at,
    )


async def _check(ctx: HiveContext, fields: Mapping[str, Any]) -> None:
    """The rules of the given fields, as 422s."""
    try:
        if "url" in fields:
            rules.check_url(fields["url"])
            await check_destination(
                fields["url"],
                allow_private=ctx.settings.webhook_allow_private_networks,
                must_resolve=False,
            )
        if "headers" in fields:
            rules.check_headers(fields["headers"], setter="hive")
        if fields.get("payload_template") is not None:
            rules.check_template(fields["payload_template"], PLACEHOLDERS)
    except ValueError as exc:
        raise Unprocessable(str(exc)) from None


async def _admin_hook(
    ctx: HiveContext, principal: Principal, org_id: uuid.UUID, webhook_id: uuid.UUID
) -> OrganizationWebhook:
    async with ctx.database.acquire() as conn:
        await _require_admin(conn, org_id, principal)
        hook = await webhooks_repo.find(conn, org_id, webhook_id)
    if hook is None:
        raise NotFound(f"webhook {webhook_id} not found")
    return hook


async def _require_admin(conn: Any, org_id: uuid.UUID, principal: Principal) -> None:
    if await tenancy_repo.get_organization(conn, org_id) is None:
        raise NotFound("organization not found")
    await require_admin(conn, org_id, principal)


class OrganizationWebhookController(Controller):
    path = "/organizations/{org_id:uuid}/webhooks"
    tags = ["webhooks"]

    @get("/", summary="The organization's webhooks (admin)")
    async def list_webhooks(
        self, ctx: Ctx, principal: Auth, org_id: FromPath[uuid.UUID]
    ) -> list[WebhookView]:
        async with ctx.database.acquire() as conn:
            await _require_admin(conn, org_id, principal)
            hooks = await webhooks_repo.list_for_organization(conn, org_id)
        return [_view(h) for h in hooks]

    @post(
        "/",
        summary="Create a webhook (admin)",
        status_code=HTTP_201_CREATED,
        opt=answers(422),
    )
    async def create(
        self, ctx: Ctx, principal: Auth, org_id: FromPath[uuid.UUID], data: JSONBody[WebhookIn]
    ) -> WebhookView:
        """422 for a URL that is not http(s) or not public (unless the hive allows private
        networks), a header the hive sets, or an unknown template placeholder."""
        async with ctx.database.acquire() as conn:
            await _require_admin(conn, org_id, principal)
        fields = msgspec.structs.asdict(data)
        await _check(ctx, fields)
        async with ctx.database.transaction() as conn:
            hook = await webhooks_repo.create(
                conn,
                org_id,
                name=data.name,
                url=data.url,
                events=list(dict.fromkeys(data.events)),
                headers=data.headers,
                secret=data.secret,
                payload_template=data.payload_template,
                active=data.active,
                created_by=principal.user_id,
            )
        return _view(hook)

    @get("/{webhook_id:uuid}", summary="One webhook (admin)", opt=answers(404))
    async def get_webhook(
        self,
        ctx: Ctx,
        principal: Auth,
        org_id: FromPath[uuid.UUID],
        webhook_id: FromPath[uuid.UUID],
    ) -> WebhookView:
        return _view(await _admin_hook(ctx, principal, org_id, webhook_id))

    @patch("/{webhook_id:uuid}", summary="Change a webhook (admin)", opt=answers(404, 422))
    async def update(
        self,
        ctx: Ctx,
        principal: Auth,
        org_id: FromPath[uuid.UUID],
        webhook_id: FromPath[uuid.UUID],
        data: JSONBody[WebhookPatch],
    ) -> WebhookView:
        await _admin_hook(ctx, principal, org_id, webhook_id)
        changes = {
            name: value
            for name, value in msgspec.structs.asdict(data).items()
            if value is not msgspec.UNSET
        }
        await _check(ctx, changes)
        if "events" in changes:
            changes["events"] = list(dict.fromkeys(changes["events"]))
        if "headers" in changes:
            changes["headers"] = dict(changes["headers"])
        async with ctx.database.transaction() as conn:
            hook = await webhooks_repo.update(conn, webhook_id, changes)
        return _view(hook)

    @delete(
        "/{webhook_id:uuid}",
        summary="Delete a webhook and its delivery history (admin)",
        status_code=HTTP_204_NO_CONTENT,
        opt=answers(404),
    )
    async def remove(
        self,
        ctx: Ctx,
        principal: Auth,
        org_id: FromPath[uuid.UUID],
        webhook_id: FromPath[uuid.UUID],
    ) -> None:
        async with ctx.database.transaction() as conn:
            await _require_admin(conn, org_id, principal)
            if not await webhooks_repo.delete(conn, org_id, webhook_id):
                raise NotFound(f"webhook {webhook_id} not found")

    @post(
        "/{webhook_id:uuid}/test",
        summary="Send a test delivery now and return its outcome (admin)",
        status_code=HTTP_200_OK,
        opt=answers(404, 503),
    )
    async def test(
        self,
        ctx: Ctx,
        principal: Auth,
        org_id: FromPath[uuid.UUID],
        webhook_id: FromPath[uuid.UUID],
    ) -> WebhookDelivery:
        """One try, no retries, even when the webhook is inactive; recorded (event ``test``)
        with the other deliveries. The outcome is in the body (a failed try is still 200)."""
        hook = await _admin_hook(ctx, principal, org_id, webhook_id)
        if ctx.webhooks is None:
            raise Unavailable("webhook deliveries are not running")
        return await ctx.webhooks.send_test(hook)

    @get(
        "/{webhook_id:uuid}/deliveries",
        summary="A webhook's deliveries, newest first, with their tries (admin)",
        opt=answers(404),
    )
    async def deliveries(
        self,
        ctx: Ctx,
        principal: Auth,
        org_id: FromPath[uuid.UUID],
        webhook_id: FromPath[uuid.UUID],
        limit: DeliveryLimit = 50,
    ) -> list[WebhookDelivery]:
        await _admin_hook(ctx, principal, org_id, webhook_id)
        async with ctx.database.acquire() as conn:
            return await webhooks_repo.list_deliveries(conn, webhook_id, limit=limit)
