"""A real ``vk-node serve``: an image uploaded over HTTP (also streamed without a length) and
attached to a task is in the worktree of the task's SCRIPT attempt, which lists it in its log."""

from __future__ import annotations

import hashlib
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx

_ENV = {
    "VK_NODE_EXECUTORS": "SCRIPT",
    "VK_NODE_IMAGE_MAX_BYTES": "65536",
    "VK_NODE_LOG_BATCH_INTERVAL_S": "0.05",
}


def _png() -> bytes:
    """A real 1x1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\x10\x20\x30")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def test_uploaded_image_reaches_the_attempt_worktree(
    start_node, tmp_path: Path, git_repo: Path
) -> None:
    """Upload (201, then 200 for the same bytes), a streamed body over the limit is 413, attach
    to a task, start a SCRIPT attempt: its log lists .vibe-images/<sha256>.png."""
    node = start_node(tmp_path / "node", _ENV)
    data = _png()
    digest = hashlib.sha256(data).hexdigest()
    with httpx.Client(base_url=node.url + "/api", timeout=10) as http:
        headers = {"content-type": "image/png"}
        r = http.post("/images", content=data, headers=headers, params={"filename": "s.png"})
        assert r.status_code == 201, r.text
        image = r.json()
        assert image["file_path"] == f"{digest}.png"
        assert http.post("/images", content=data, headers=headers).status_code == 200

        def stream() -> Iterator[bytes]:  # chunked: no Content-Length to refuse it by
            yield data
            for _ in range(100):
                yield b"\x00" * 1024

        r = http.post("/images", content=stream(), headers=headers)
        assert r.status_code == 413, r.text
        assert r.json()["code"] == "payload_too_large"
        served = http.get(f"/images/{image['id']}")
        assert served.content == data
        assert served.headers["x-content-type-options"] == "nosniff"

        project = http.post("/projects", json={"name": "p", "git_repo_path": str(git_repo)}).json()
        task = http.post(
            "/tasks",
            json={"project_id": project["id"], "title": "look", "description": "ls .vibe-images"},
        ).json()
        r = http.post(f"/tasks/{task['id']}/images", json={"image_ids": [image["id"]]})
        assert r.status_code == 200, r.text
        r = http.post(
            "/task-attempts",
            json={"task_id": task["id"], "executor": "SCRIPT", "base_branch": "main"},
        )
        assert r.status_code == 202, r.text
        attempt = r.json()
        deadline = time.monotonic() + 15
        while True:
            runs = http.get(f"/task-attempts/{attempt['id']}/processes").json()
            if runs and runs[0]["status"] != "running":
                break
            assert time.monotonic() < deadline, "the run did not end"
            time.sleep(0.05)
        assert runs[0]["status"] == "completed", node.log()
        logs = http.get(f"/execution-processes/{runs[0]['id']}/logs").json()
        lines = [e["content"] for e in logs["entries"] if e["output_type"] == "stdout"]
        assert f"{digest}.png" in "".join(lines)
    assert (node.data_dir / "images" / f"{digest}.png").read_bytes() == data
    assert node.terminate() == 0, node.log()
