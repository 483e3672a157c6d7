"""Images on a real node app (real SQLite file, real images dir, real git worktrees): upload with
magic-byte checks and a size limit, content-addressed dedup, serving with nosniff, attach and
detach, cleanup with their task, the copy into an attempt's worktree, and the attacks a web page
or a hostile file name could try."""

from __future__ import annotations

import hashlib
import struct
import zlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar

from vk_node.context import NodeContext
from vk_node.settings import NodeSettings

from .conftest import run_script_attempt, settings_with

Client = httpx.AsyncClient

pytestmark = pytest.mark.asyncio


def png(seed: int = 0) -> bytes:
    """A real 1x1 PNG (a different pixel per seed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixel = zlib.compress(b"\x00" + bytes([seed % 256, 0, 0]))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", pixel) + chunk(b"IEND", b"")


GIF = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"


def node_ctx(app: Litestar) -> NodeContext:
    ctx: NodeContext = app.state.node
    return ctx


async def upload(client: Client, data: bytes, media: str = "image/png", **params: str) -> Any:
    return await client.post(
        "/api/images", content=data, headers={"content-type": media}, params=params
    )


async def _task(client: Client, git_repo: Path, description: str = "d") -> dict[str, Any]:
    r = await client.post("/api/projects", json={"name": "p", "git_repo_path": str(git_repo)})
    assert r.status_code == 201, r.text
    r = await client.post(
        "/api/tasks",
        json={"project_id": r.json()["id"], "title": "t", "description": description},
    )
    assert r.status_code == 201, r.text
    task: dict[str, Any] = r.json()
    return task


def _files(ctx: NodeContext) -> list[str]:
    directory = ctx.settings.images_dir
    return sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []


async def _rows(ctx: NodeContext) -> int:
    async with ctx.store.read() as conn, conn.execute("SELECT COUNT(*) FROM images") as cur:
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def test_upload_stores_by_hash_dedups_and_serves_with_nosniff(
    client: Client, app: Litestar
) -> None:
    """An upload is stored as <sha256>.png (201); the same bytes again are the same image (200),
    one file and one row; GET serves the bytes with their type and nosniff, also at /file."""
    data = png()
    first = await upload(client, data, filename="shot.png")
    assert first.status_code == 201, first.text
    image = first.json()
    digest = hashlib.sha256(data).hexdigest()
    assert image["hash"] == digest
    assert image["file_path"] == f"{digest}.png"
    assert image["original_name"] == "shot.png"
    assert image["mime_type"] == "image/png"
    assert image["size_bytes"] == len(data)

    again = await upload(client, data, filename="other-name.png")
    assert again.status_code == 200
    assert again.json()["id"] == image["id"]
    ctx = node_ctx(app)
    assert _files(ctx) == [f"{digest}.png"]
    assert await _rows(ctx) == 1

    for path in (f"/api/images/{image['id']}", f"/api/images/{image['id']}/file"):
        r = await client.get(path)
        assert r.status_code == 200
        assert r.content == data
        assert r.headers["content-type"] == "image/png"
        assert r.headers["x-content-type-options"] == "nosniff"
    meta = await client.get(f"/api/images/{image['id']}/metadata")
    assert meta.json() == image


async def test_wrong_magic_bytes_and_types_are_refused(client: Client, app: Litestar) -> None:
    """HTML declared as PNG, a GIF declared as PNG, an empty body and an unaccepted type are
    refused with 4xx problems; nothing is stored."""
    html = b"<html><script>alert(1)</script></html>"
    for data, media, status, code in (
        (html, "image/png", 422, "invalid_image"),
        (GIF, "image/png", 422, "invalid_image"),
        (b"", "image/png", 422, "invalid_image"),
        (b"<svg onload='alert(1)'/>", "image/svg+xml", 415, "unsupported_media_type"),
        (html, "text/html", 415, "unsupported_media_type"),
    ):
        r = await upload(client, data, media)
        assert r.status_code == status, (media, r.text)
        assert r.json()["code"] == code
    assert (await upload(client, GIF, "image/gif")).status_code == 201
    ctx = node_ctx(app)
    assert await _rows(ctx) == 1
    assert len(_files(ctx)) == 1


@pytest.fixture
def client(served: Client) -> Client:
    """The app over a real socket in the test's loop (the test also reads the store)."""
    return served


@pytest.fixture
def node_settings(tmp_path: Path) -> NodeSettings:
    return settings_with(tmp_path, VK_NODE_IMAGE_MAX_BYTES="4096")


async def test_size_limit_is_413(client: Client, app: Litestar) -> None:
    """A body over VK_NODE_IMAGE_MAX_BYTES is 413 (a streamed one without a length: the e2e
    test); one at the limit is stored."""
    too_big = png() + b"\x00" * 5000
    r = await upload(client, too_big)
    assert r.status_code == 413
    assert r.json()["code"] == "payload_too_large"

    at_limit = png() + b"\x00" * (4096 - len(png()))
    assert (await upload(client, at_limit)).status_code == 201
    assert await _rows(node_ctx(app)) == 1


async def test_file_names_cannot_reach_the_file_system(client: Client, app: Litestar) -> None:
    """A file name with a path (or control characters) is refused; what is stored on disk is
    always the hash, inside the images dir."""
    for name in ("../../etc/passwd", "/etc/passwd", "a/b.png", "a\\b.png", "x\x01.png", "n" * 256):
        r = await upload(client, png(), filename=name)
        assert r.status_code == 400, (name, r.text)
    # A literal "%00" is just characters. The query is spelled out: httpx releases differ in
    # whether they escape a "%" given in ``params``.
    r = await client.post(
        "/api/images?filename=%2500.png", content=png(), headers={"content-type": "image/png"}
    )
    assert r.status_code == 201, r.text
    r = await client.post(
        "/api/images?filename=a%00.png",
        content=png(),
        headers={"content-type": "image/png"},
    )
    assert r.status_code == 400
    ctx = node_ctx(app)
    assert _files(ctx) == [f"{hashlib.sha256(png()).hexdigest()}.png"]
    assert not any(p.name.startswith(".upload-") for p in ctx.settings.images_dir.iterdir())


async def test_cross_site_upload_is_refused(client: Client, app: Litestar) -> None:
    """A web page cannot upload: a foreign Origin, a cross-site fetch or a form-encodable type
    is refused before the handler, and nothing is stored."""
    for headers in (
        {"content-type": "image/png", "origin": "http://evil.example"},
        {"content-type": "image/png", "sec-fetch-site": "cross-site"},
        {"content-type": "multipart/form-data; boundary=x"},
        {"content-type": "text/plain"},
        {"content-type": "application/x-www-form-urlencoded"},
    ):
        r = await client.post("/api/images", content=png(), headers=headers)
        assert r.status_code in (403, 415), headers
    # Image types pass the guard only for the upload route.
    r = await client.post("/api/projects", content=png(), headers={"content-type": "image/png"})
    assert r.status_code == 415
    assert await _rows(node_ctx(app)) == 0


async def test_attach_list_detach_and_delete_with_the_task(
    client: Client, app: Litestar, git_repo: Path
) -> None:
    """Images attach to tasks (unknown ones 422); detaching from the last task deletes the image;
    deleting a task deletes the images no other task uses and keeps shared ones."""
    one = (await upload(client, png(1))).json()
    two = (await upload(client, png(2))).json()
    task = await _task(client, git_repo)
    other = (
        await client.post("/api/tasks", json={"project_id": task["project_id"], "title": "o"})
    ).json()
    url = f"/api/tasks/{task['id']}/images"
    r = await client.post(url, json={"image_ids": [one["id"], two["id"]]})
    assert r.status_code == 200, r.text
    assert [i["id"] for i in r.json()] == [one["id"], two["id"]]
    r = await client.post(url, json={"image_ids": [one["id"]]})  # again: no duplicate
    assert len(r.json()) == 2
    r = await client.post(url, json={"image_ids": ["7d1c0b6e-0c57-4c4e-9d8c-000000000000"]})
    assert r.status_code == 422
    r = await client.post(url, json={"image_ids": []})
    assert r.status_code == 400
    await client.post(f"/api/tasks/{other['id']}/images", json={"image_ids": [two["id"]]})
    ctx = node_ctx(app)

    third = (await upload(client, png(3))).json()
    await client.post(url, json={"image_ids": [third["id"]]})
    assert (await client.delete(f"{url}/{third['id']}")).status_code == 204
    assert (await client.get(f"/api/images/{third['id']}")).status_code == 404
    assert (await client.delete(f"{url}/{third['id']}")).status_code == 404

    assert (await client.delete(f"/api/tasks/{task['id']}")).status_code == 204
    assert (await client.get(f"/api/images/{one['id']}")).status_code == 404
    assert (await client.get(f"/api/images/{two['id']}")).status_code == 200
    assert await _rows(ctx) == 1
    assert _files(ctx) == [two["file_path"]]
    r = await client.get(f"/api/tasks/{other['id']}/images")
    assert [i["id"] for i in r.json()] == [two["id"]]


async def test_images_are_copied_into_the_attempt_worktree(
    client: Client, app: Litestar, git_repo: Path
) -> None:
    """Starting an attempt copies the task's images into <worktree>/.vibe-images/, ignored by
    git; the SCRIPT run sees them there."""
    image = (await upload(client, png(7))).json()
    task = await _task(client, git_repo, description="ls .vibe-images; git status --porcelain")
    await client.post(f"/api/tasks/{task['id']}/images", json={"image_ids": [image["id"]]})
    attempt, run = await run_script_attempt(client, task["id"])
    copy = Path(attempt["container_ref"]) / ".vibe-images" / image["file_path"]
    assert copy.read_bytes() == png(7)
    assert run["status"] == "completed"
    logs = (await client.get(f"/api/execution-processes/{run['id']}/logs")).json()
    out = [e["content"] for e in logs["entries"] if e["output_type"] == "stdout"]
    assert image["file_path"] in "".join(out)
    assert ".vibe-images" not in "".join(out)  # git status: nothing to commit there


async def test_a_task_can_be_created_with_its_images(
    client: Client, app: Litestar, git_repo: Path
) -> None:
    """POST /api/tasks with image_ids attaches them; an unknown image is 422 and creates no
    task."""
    task = await _task(client, git_repo)
    image = (await upload(client, png(9))).json()
    body = {"project_id": task["project_id"], "title": "with image", "image_ids": [image["id"]]}
    r = await client.post("/api/tasks", json=body)
    assert r.status_code == 201, r.text
    listed = (await client.get(f"/api/tasks/{r.json()['id']}/images")).json()
    assert [i["id"] for i in listed] == [image["id"]]
    body["image_ids"] = ["7d1c0b6e-0c57-4c4e-9d8c-000000000000"]
    assert (await client.post("/api/tasks", json=body)).status_code == 422
    tasks = (await client.get("/api/tasks", params={"project_id": task["project_id"]})).json()
    assert sorted(t["title"] for t in tasks) == ["t", "with image"]
