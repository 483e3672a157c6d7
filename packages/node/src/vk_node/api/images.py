"""``/api/images`` (upload, read, delete) and ``/api/tasks/{id}/images`` (attach, list, detach).

An upload is the image's raw bytes with its ``Content-Type`` (``image/png``, ``image/jpeg``,
``image/gif``, ``image/webp``) and an optional ``filename`` query parameter — not JSON, so the
API guard lets exactly these types through for ``POST /api/images`` (a web page still cannot send
them cross-site: they are not CORS-safelisted, and a foreign ``Origin`` is refused anyway). The
body is read in chunks and refused with 413 as soon as it passes ``VK_NODE_IMAGE_MAX_BYTES``.
Rules of storage and lifetime: :mod:`vk_node.services.images`.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.response import File
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from vk_node.api.deps import Ctx, Db
from vk_node.context import NodeContext
from vk_node.errors import InvalidInput, PayloadTooLarge
from vk_node.services import images as service
from vk_node.store.models import Image
from vk_shared.jsoncheck import refuse_bad_url
from vk_shared.openapi import answers, parameters, raw_body, raw_response

__all__ = ["ImageController", "TaskImageController", "image_response"]

_SERVE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Cache-Control": "private, max-age=86400, immutable",
}


_FILENAME = {
    "description": "The image's original file name (metadata only; default image.<ext>)",
    "schema": {"type": "string", "maxLength": 255, "pattern": r"^[^/\\\x00-\x1f\x7f]*$"},
}


class TaskImageIds(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    image_ids: Annotated[list[UUID], msgspec.Meta(min_length=1, max_length=64)]


async def _read_limited(request: Request[Any, Any, Any], limit: int) -> bytes:
    too_large = PayloadTooLarge(f"the image is larger than the limit of {limit} bytes")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


async def image_response(ctx: NodeContext, image_id: UUID) -> File:
    """The image's file as a response (404 when unknown): its own type, ``nosniff``, a CSP that
    lets nothing in it run (also served to the board's pages)."""
    image, path = await service.image_file(ctx.store, ctx.settings.images_dir, image_id)
    return File(
        path=path,
        filename=path.name,
        media_type=image.mime_type,
        content_disposition_type="inline",
        headers=_SERVE_HEADERS,
    )


class ImageController(Controller):
    """Upload, serve and delete images (attaching them is :class:`TaskImageController`'s)."""

    path = "/images"
    tags: list[str] | None = ["images"]

    @post(
        "/",
        summary="Upload an image (raw body: image/png, image/jpeg, image/gif or image/webp)",
        # The body is an image, not JSON: only the URL is checked before the handler, and the
        # handler enforces the image size limit itself while reading.
        before_request=refuse_bad_url,
        request_max_body_size=None,
        responses={
            HTTP_200_OK: ResponseSpec(Image, description="The same bytes were uploaded before")
        },
        opt={
            **answers(422),
            **raw_body(*service.MEDIA_TYPES),
            **parameters(filename=_FILENAME),
        },
    )
    async def upload(
        self,
        ctx: Ctx,
        request: Request[Any, Any, Any],
        filename: FromQuery[str | None] = None,
    ) -> Response[Image]:
        """201 with the stored image; 200 with the existing one when the same bytes were
        uploaded before. 400 for a missing or wrong ``Content-Type`` or a bad file name, 413 over
        the size limit, 422 when the bytes are not the declared image type."""
        media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if media_type not in service.MEDIA_TYPES:
            raise InvalidInput(
                f"Content-Type must be one of {', '.join(service.MEDIA_TYPES)}, "
                f"not {media_type or 'missing'!r}"
            )
        data = await _read_limited(request, ctx.settings.image_max_bytes)
        image, created = await service.save_upload(
            ctx.store, ctx.settings.images_dir, data, media_type, filename
        )
        return Response(image, status_code=HTTP_201_CREATED if created else HTTP_200_OK)

    @get(
        ["/{image_id:uuid}", "/{image_id:uuid}/file"],
        summary="The image's bytes (its own Content-Type)",
        opt=raw_response(*service.MEDIA_TYPES),
    )
    async def serve(self, ctx: Ctx, image_id: FromPath[UUID]) -> File:
        return await image_response(ctx, image_id)

    @get("/{image_id:uuid}/metadata", summary="The image's record")
    async def metadata(self, ctx: Ctx, image_id: FromPath[UUID]) -> Image:
        image, _ = await service.image_file(ctx.store, ctx.settings.images_dir, image_id)
        return image

    @delete("/{image_id:uuid}", summary="Delete an image (detaches it from its tasks)")
    async def remove(self, ctx: Ctx, image_id: FromPath[UUID]) -> None:
        await service.delete_image(ctx.store, ctx.settings.images_dir, image_id)


class TaskImageController(Controller):
    path = "/tasks/{task_id:uuid}/images"
    tags: list[str] | None = ["images"]

    @get("/", summary="Images attached to a task")
    async def list_task_images(self, store: Db, task_id: FromPath[UUID]) -> list[Image]:
        return await service.task_images(store, task_id)

    @post("/", status_code=HTTP_200_OK, summary="Attach images to a task", opt=answers(422))
    async def attach(
        self, store: Db, task_id: FromPath[UUID], data: JSONBody[TaskImageIds]
    ) -> list[Image]:
        """Already attached images stay; returns the task's images. 422 for an unknown image
        or more than 64 images on the task."""
        return await service.attach(store, task_id, data.image_ids)

    @delete("/{image_id:uuid}", summary="Detach an image (deleted when no task uses it)")
    async def detach(self, ctx: Ctx, task_id: FromPath[UUID], image_id: FromPath[UUID]) -> None:
        await service.detach(ctx.store, ctx.settings.images_dir, task_id, image_id)
