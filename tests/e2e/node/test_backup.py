"""``vk-node backup`` / ``vk-node restore`` against a real ``vk-node serve`` process."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

import httpx


def _json(result: Any) -> dict[str, Any]:
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    return dict(json.loads(result.stdout))


def _identity(data_dir: Path) -> str:
    """The node identity kept in the store (read as ``vk-node status`` reads it)."""
    uri = (data_dir / "db.sqlite").absolute().as_uri() + "?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
        row = conn.execute("SELECT machine_id FROM node_identity WHERE id = 1").fetchone()
    return str(row[0]) if row else ""


def _titles(node: Any, project_id: str) -> set[str]:
    response = httpx.get(f"{node.url}/api/tasks", params={"project_id": project_id}, timeout=10)
    assert response.status_code == 200, response.text
    return {task["title"] for task in response.json()}


def test_backup_while_writing_then_restore_into_a_fresh_data_dir(
    start_node, vk_node_cli, git_repo: Path, tmp_path: Path
) -> None:
    node = start_node(tmp_path / "node")
    with httpx.Client(base_url=node.url + "/api", timeout=10) as http:
        project = http.post("/projects", json={"name": "demo", "git_repo_path": str(git_repo)})
        assert project.status_code == 201, project.text
        pid = project.json()["id"]
        for i in range(5):
            created = http.post("/tasks", json={"project_id": pid, "title": f"before-{i}"})
            assert created.status_code == 201, created.text
    identity = _identity(node.data_dir)
    assert identity

    # Writes go on in a loop while the backup runs.
    stop = threading.Event()
    written: list[str] = []

    def writer() -> None:
        with httpx.Client(base_url=node.url + "/api", timeout=10) as http:
            while not stop.is_set() and len(written) < 2000:
                title = f"during-{len(written)}"
                response = http.post("/tasks", json={"project_id": pid, "title": title})
                assert response.status_code == 201, response.text
                written.append(title)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        backup_path = tmp_path / "node-backup.sqlite"
        report = _json(vk_node_cli(["backup", str(backup_path), "--json"], node.data_dir))
    finally:
        stop.set()
        thread.join(timeout=30)
    assert report["path"] == str(backup_path)
    assert report["size_bytes"] == backup_path.stat().st_size > 0
    counts = report["counts"]
    assert counts["machine_id"] == identity
    assert counts["projects"] == 1
    assert 5 <= counts["tasks"] <= 5 + len(written)
    assert any("worktrees" in item for item in report["not_included"])

    # The text form ends with one line naming the file, its size and counts.
    text = vk_node_cli(["backup", str(tmp_path / "second.sqlite")], node.data_dir)
    assert text.returncode == 0, text.stderr
    last = text.stdout.strip().splitlines()[-1]
    assert str(tmp_path / "second.sqlite") in last, last
    assert "1 projects" in last, last
    assert "not in the backup:" in text.stdout

    # An existing file is kept unless --force.
    again = vk_node_cli(["backup", str(backup_path)], node.data_dir)
    assert again.returncode == 1
    assert "--force" in again.stderr, again.stderr
    assert backup_path.stat().st_size == report["size_bytes"]

    # While the node runs, restore into its data dir and a second serve are refused.
    refused = vk_node_cli(["restore", str(backup_path)], node.data_dir)
    assert refused.returncode == 1, refused.stdout
    assert "stop it first" in refused.stderr, refused.stderr
    second = vk_node_cli(["serve", "--port", "1"], node.data_dir)
    assert second.returncode == 1
    assert "stop it first" in second.stderr, second.stderr
    assert node.terminate() == 0

    # Restore into a fresh data dir, start there: the same tasks and the same identity.
    fresh = tmp_path / "restored"
    restored = vk_node_cli(["restore", str(backup_path)], fresh)
    assert restored.returncode == 0, restored.stderr
    assert "new op epoch" in restored.stdout
    assert f"{counts['tasks']} tasks" in restored.stdout.strip().splitlines()[-1]
    back = start_node(fresh)
    titles = _titles(back, pid)
    assert len(titles) == counts["tasks"]
    assert {f"before-{i}" for i in range(5)} <= titles
    during = sorted(int(t.split("-")[1]) for t in titles if t.startswith("during-"))
    assert during == list(range(len(during)))  # a snapshot: a prefix of the writes, no holes
    assert _identity(fresh) == identity

    # Restoring over an existing store keeps the old one aside.
    assert back.terminate() == 0
    over = _json(vk_node_cli(["restore", str(tmp_path / "second.sqlite"), "--json"], fresh))
    assert len(over["kept_aside"]) >= 1
    assert all(Path(p).exists() for p in over["kept_aside"])


def test_restore_refuses_what_is_not_a_store(vk_node_cli, tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database at all" * 100)
    result = vk_node_cli(["restore", str(junk)], tmp_path / "data")
    assert result.returncode == 1
    assert "not a readable SQLite database" in result.stderr, result.stderr
    assert not (tmp_path / "data" / "db.sqlite").exists()
    missing = vk_node_cli(["restore", str(tmp_path / "nope.sqlite")], tmp_path / "data")
    assert missing.returncode == 1
    assert "no backup file" in missing.stderr
