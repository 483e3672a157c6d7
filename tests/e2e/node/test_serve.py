"""A real standalone ``vk-node serve`` process: every local feature over HTTP, then SIGTERM."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx


def test_standalone_node_serves_local_features(node_process, git_repo: Path) -> None:
    """Without VK_HIVE_URL the node serves projects, tasks, subtasks, archive, labels, templates
    and variables over HTTP, refuses an attempt whose executor it does not enable, and SIGTERM
    stops it with exit 0 and a checkpointed WAL."""
    repo = git_repo
    with httpx.Client(base_url=node_process.url + "/api", timeout=10) as http:
        assert http.get("/health").json()["hive"] == "standalone"
        project = http.post("/projects", json={"name": "demo", "git_repo_path": str(repo)}).json()
        task = http.post("/tasks", json={"project_id": project["id"], "title": "t1"}).json()
        sub = http.post(
            "/tasks",
            json={"project_id": project["id"], "title": "t2", "parent_task_id": task["id"]},
        ).json()
        assert [c["id"] for c in http.get(f"/tasks/{task['id']}/children").json()] == [sub["id"]]
        edited = http.patch(f"/tasks/{task['id']}", json={"description": "more"}).json()
        assert edited["description"] == "more"
        assert http.post(f"/tasks/{task['id']}/archive").json()["archived_at"]
        assert http.post(f"/tasks/{task['id']}/unarchive").json()["archived_at"] is None
        # No executor is enabled on this node: the attempt is refused and nothing is recorded.
        attempt = http.post(
            "/task-attempts",
            json={"task_id": task["id"], "executor": "SCRIPT", "base_branch": "main"},
        )
        assert attempt.status_code == 422, attempt.text
        assert "SCRIPT" in attempt.json()["detail"]
        assert http.get("/task-attempts", params={"task_id": task["id"]}).json() == []
        label = http.post("/labels", json={"name": "bug", "project_id": project["id"]}).json()
        labels = http.put(f"/tasks/{task['id']}/labels", json={"label_ids": [label["id"]]})
        assert [x["name"] for x in labels.json()] == ["bug"]
        tmpl = http.post("/templates", json={"template_name": "t", "content": "c"})
        assert tmpl.status_code == 201
        assert http.post(f"/tasks/{task['id']}/variables", json={"name": "ENV", "value": "x"})
        resolved = http.get(f"/tasks/{sub['id']}/variables/resolved").json()
        assert {"name": "ENV", "value": "x", "source": "inherited"} in resolved
        bad = http.get("/execution-processes/00000000-0000-0000-0000-000000000000/logs")
        assert bad.status_code == 404
        assert http.get(node_process.url + "/schema").status_code == 200

    assert node_process.terminate() == 0, node_process.log()
    db = node_process.data_dir / "db.sqlite"
    wal = db.with_name("db.sqlite-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM tasks").fetchone()[0] == 2
