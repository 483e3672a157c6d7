"""Images attached to tasks (spec node-store.md ``images`` / ``task_images``).

* An upload is a raw body of one of :data:`MEDIA_TYPES`; its bytes must be what the
  ``Content-Type`` says (magic bytes), or it is refused (422): a file named ``.png`` holding
  HTML is never stored or served as an image.
* Storage is content-addressed: the file is ``<images dir>/<sha256>.<ext>``; the same bytes
  uploaded twice are one file and one row. The client's file name is metadata only (a plain
  name: no path separators, no control characters), never part of a path on disk.
* A file is written to a temporary name in the images dir and renamed into place, so a reader
  never sees half an image. The row is written after the file; a file without a row (a crash in
  between) is overwritten by the next upload of the same bytes.
* An image lives while a task uses it. Detaching it from its last task or deleting that task
  deletes the row and the file; an upload never attached is deleted by the retention job once
  it is older than ``image_orphan_grace_s``.
* When an attempt's worktree is created, the task's images are copied into its
  :data:`WORKTREE_DIR` (``.vibe-images/<file>``, as the reference does; a ``.gitignore`` there
  keeps them out of the attempt's commits); an agent's prompt refers to those copies by absolute
  path (spec executor.md §2, §3).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final
from uuid import UUID

import aiosqlite
import structlog

from vk_node.errors import InvalidInput, NotFound, Unprocessable
from vk_node.store import Store
from vk_node.store.models import Image
from vk_node.store.repositories import images as images_repo
from vk_node.store.repositories import tasks as tasks_repo

__all__ = [
    "MEDIA_TYPES",
    "WORKTREE_DIR",
    "attach",
    "copy_into_worktree",
    "delete_image",
    "delete_unused",
    "detach",
    "image_file",
    "prompt_with_images",
    "purge_orphans",
    "require_existing",
    "save_upload",
    "sniff",
    "task_images",
]

log = structlog.get_logger("vk_node.images")

MEDIA_TYPES: Final = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/gif": "gif",
    "image/webp": "webp",
}
"""The image types an upload may declare, with the extension of their stored file."""
WORKTREE_DIR: Final = ".vibe-images"
"""Where an attempt's worktree holds copies of its task's images."""
MAX_IMAGES_PER_TASK: Final = 64
_NAME_MAX: Final = 255
_BAD_NAME: Final = re.compile(r"[/\\\x00-\x1f\x7f]")


def sniff(data: bytes) -> str | None:
    """The media type the bytes are (by their magic numbers), or None for none of ours."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _checked_name(filename: str | None, extension: str) -> str:
    if filename is None or filename == "":
        return f"image.{extension}"
    if len(filename) > _NAME_MAX or _BAD_NAME.search(filename):
        raise InvalidInput(
            "filename must be a plain file name (at most 255 characters, no '/', '\\' or "
            "control characters)"
        )
    return filename


def _write_file(directory: Path, name: str, data: bytes) -> None:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = directory / name
    if target.is_file() and target.stat().st_size == len(data):
        return  # content-addressed: the same name holds the same bytes
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


async def save_upload(
    store: Store, images_dir: Path, data: bytes, media_type: str, filename: str | None
) -> tuple[Image, bool]:
    """Store an uploaded image, or find the stored one with the same bytes; ``True`` when it is
    new."""
    extension = MEDIA_TYPES.get(media_type)
    if extension is None:
        raise Unprocessable(
            f"unsupported image type {media_type!r}; use one of {', '.join(MEDIA_TYPES)}",
            code="invalid_image",
        )
    name = _checked_name(filename, extension)
    if not data:
        raise Unprocessable(
            "the request body is empty: send the image's bytes", code="invalid_image"
        )
    actual = sniff(data)
    if actual != media_type:
        found = f"a {actual} image" if actual else "no image type this node accepts"
        raise Unprocessable(
            f"the body is not {media_type}: its bytes are {found}", code="invalid_image"
        )
    digest = hashlib.sha256(data).hexdigest()
    file_name = f"{digest}.{extension}"
    await asyncio.to_thread(_write_file, images_dir, file_name, data)

    async def body(conn: aiosqlite.Connection) -> tuple[Image, bool]:
        existing = await images_repo.find_by_hash(conn, digest)
        if existing is not None:
            return existing, False
        row = {"file_path": file_name, "original_name": name, "mime_type": media_type}
        return await images_repo.create(conn, hash=digest, size_bytes=len(data), **row), True

    image, created = await store.write(body)
    log.info(
        "image.stored" if created else "image.deduplicated",
        image_id=str(image.id),
        size=len(data),
        media_type=media_type,
    )
    return image, created


async def image_file(store: Store, images_dir: Path, image_id: UUID) -> tuple[Image, Path]:
    """The image's row and its file (404 when either is missing)."""
    async with store.read() as conn:
        image = await images_repo.find_by_id(conn, image_id)
    if image is None:
        raise NotFound(f"image {image_id} not found")
    path = images_dir / Path(image.file_path).name
    if not await asyncio.to_thread(path.is_file):
        raise NotFound(f"the file of image {image_id} is missing")
    return image, path


async def task_images(store: Store, task_id: UUID) -> list[Image]:
    async with store.read() as conn:
        await tasks_repo.get(conn, task_id)
        return await images_repo.find_by_task_id(conn, task_id)


async def require_existing(store: Store, image_ids: list[UUID]) -> None:
    """422 when one of the images does not exist."""
    if not image_ids:
        return
    async with store.read() as conn:
        for image_id in image_ids:
            if await images_repo.find_by_id(conn, image_id) is None:
                raise Unprocessable(f"image {image_id} not found")


async def attach(store: Store, task_id: UUID, image_ids: list[UUID]) -> list[Image]:
    """Attach images to a task (already attached ones stay); returns the task's images.
    422 when an image does not exist or the task would hold too many."""

    async def body(conn: aiosqlite.Connection) -> list[Image]:
        await tasks_repo.get(conn, task_id)
        for image_id in image_ids:
            if await images_repo.find_by_id(conn, image_id) is None:
                raise Unprocessable(f"image {image_id} not found")
        await images_repo.associate(conn, task_id, image_ids)
        attached = await images_repo.find_by_task_id(conn, task_id)
        if len(attached) > MAX_IMAGES_PER_TASK:
            raise Unprocessable(f"a task holds at most {MAX_IMAGES_PER_TASK} images")
        return attached

    return await store.write(body)


async def detach(store: Store, images_dir: Path, task_id: UUID, image_id: UUID) -> None:
    """Detach an image from a task (404 when it is not attached); an image no task uses any
    more is deleted."""

    async def body(conn: aiosqlite.Connection) -> None:
        await tasks_repo.get(conn, task_id)
        if not await images_repo.detach(conn, task_id, image_id):
            raise NotFound(f"image {image_id} is not attached to task {task_id}")

    await store.write(body)
    await delete_unused(store, images_dir, [image_id])


async def delete_image(store: Store, images_dir: Path, image_id: UUID) -> None:
    """Delete an image, detaching it from every task (404 when unknown)."""

    async def body(conn: aiosqlite.Connection) -> Image:
        image = await images_repo.find_by_id(conn, image_id)
        if image is None:
            raise NotFound(f"image {image_id} not found")
        await images_repo.delete(conn, image_id)
        return image

    image = await store.write(body)
    await _unlink(images_dir, [image])


async def delete_unused(store: Store, images_dir: Path, image_ids: Iterable[UUID]) -> int:
    """Delete those of ``image_ids`` that no task uses (rows, then files); returns how many."""
    wanted = list(image_ids)
    if not wanted:
        return 0

    async def body(conn: aiosqlite.Connection) -> list[Image]:
        return await images_repo.delete_unused(conn, wanted)

    deleted = await store.write(body)
    await _unlink(images_dir, deleted)
    return len(deleted)


async def purge_orphans(store: Store, images_dir: Path, grace: timedelta) -> int:
    """Delete images no task uses that were uploaded longer than ``grace`` ago."""
    cutoff = datetime.now(UTC) - grace
    async with store.read() as conn:
        orphans = await images_repo.find_orphaned_images(conn)
    return await delete_unused(store, images_dir, [i.id for i in orphans if i.created_at < cutoff])


async def _unlink(images_dir: Path, images: list[Image]) -> None:
    for image in images:
        path = images_dir / Path(image.file_path).name
        try:
            await asyncio.to_thread(path.unlink, True)
        except OSError as exc:
            log.warning("image.unlink_failed", path=str(path), error=str(exc))
        log.info("image.deleted", image_id=str(image.id))


async def copy_into_worktree(
    store: Store, images_dir: Path, task_id: UUID, worktree: Path
) -> list[Path]:
    """Best effort: copy the task's images into ``<worktree>/.vibe-images/``; returns the
    copies (failures are logged, never raised)."""
    async with store.read() as conn:
        images = await images_repo.find_by_task_id(conn, task_id)
    copies: list[Path] = []
    if images:
        try:  # the copies are the run's input, never part of its changes
            await asyncio.to_thread(_write_file, worktree / WORKTREE_DIR, ".gitignore", b"*\n")
        except OSError as exc:
            log.warning("worktree.image_copy_failed", error=str(exc))
    for image in images:
        name = Path(image.file_path).name
        try:
            data = await asyncio.to_thread((images_dir / name).read_bytes)
            await asyncio.to_thread(_write_file, worktree / WORKTREE_DIR, name, data)
            copies.append(worktree / WORKTREE_DIR / name)
        except OSError as exc:
            log.warning("worktree.image_copy_failed", image_id=str(image.id), error=str(exc))
    return copies


_REFERENCE: Final = re.compile(
    r"(?<![\w./-])" + re.escape(WORKTREE_DIR) + r"/([0-9a-f]{64}\.[a-z]+)"
)


def prompt_with_images(prompt: str, worktree: str | None, images: list[Image]) -> str:
    """The agent's prompt with image paths canonicalised: references to ``.vibe-images/<file>``
    become the absolute paths of the worktree's copies, and attached images the prompt does not
    mention are listed after it."""
    if worktree is None or not images:
        return prompt
    base = Path(worktree) / WORKTREE_DIR
    rewritten = _REFERENCE.sub(lambda m: str(base / m.group(1)), prompt)
    unmentioned = [str(base / i.file_path) for i in images if i.file_path not in prompt]
    if not unmentioned:
        return rewritten
    return rewritten + "\n\nAttached images:\n" + "\n".join(f"- {p}" for p in unmentioned)
