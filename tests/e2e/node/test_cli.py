"""The ``vk-node`` commands ``migrate``, ``status`` and ``config show`` as real processes."""

from __future__ import annotations

import json
from pathlib import Path

import httpx


def test_migrate_twice_is_idempotent(vk_node_cli, tmp_path: Path) -> None:
    """The first migrate applies the migrations, the second says the store is up to date."""
    data = tmp_path / "node"
    first = vk_node_cli(["migrate"], data)
    assert first.returncode == 0, first.stderr
    assert "applied 0001_initial" in first.stdout
    second = vk_node_cli(["migrate"], data)
    assert second.returncode == 0, second.stderr
    assert "up to date" in second.stdout


def test_config_show_masks_the_api_key(vk_node_cli, tmp_path: Path) -> None:
    """config show prints effective settings with sources, and the API key only masked."""
    secret = "vk_supersecretvalue-abcd-9876"
    env = {"VK_NODE_API_KEY": secret, "VK_NODE_PORT": "4123"}
    text = vk_node_cli(["config", "show"], tmp_path, env)
    assert text.returncode == 0, text.stderr
    assert secret not in text.stdout + text.stderr
    assert "vk_s…9876" in text.stdout
    assert "env VK_NODE_PORT" in text.stdout
    as_json = vk_node_cli(["config", "show", "--json"], tmp_path, env)
    shown = json.loads(as_json.stdout)
    assert shown["settings"]["api_key"] == "vk_s…9876"
    assert shown["settings"]["port"] == 4123
    assert shown["sources"]["api_key"] == "env VK_NODE_API_KEY"


def test_invalid_setting_exits_2(vk_node_cli, tmp_path: Path) -> None:
    """An invalid environment value stops every command with exit code 2 and names the setting."""
    result = vk_node_cli(["status"], tmp_path, {"VK_NODE_MAX_CONCURRENT": "lots"})
    assert result.returncode == 2
    assert "VK_NODE_MAX_CONCURRENT" in result.stderr


def test_status_counts_and_backlog(vk_node_cli, start_node, git_repo: Path, tmp_path: Path) -> None:
    """status reports the store, counts, the outbox backlog of a linked project and the
    standalone hive link, as text and as JSON."""
    data = tmp_path / "node"
    node = start_node(data)
    with httpx.Client(base_url=node.url + "/api", timeout=10) as http:
        project = http.post("/projects", json={"name": "p", "git_repo_path": str(git_repo)})
        pid = project.json()["id"]
        http.post(f"/projects/{pid}/link", json={"swarm_project_id": "1" * 32})
        for title in ("a", "b", "c"):
            http.post("/tasks", json={"project_id": pid, "title": title})
    assert node.terminate() == 0
    text = vk_node_cli(["status"], data)
    assert text.returncode == 0, text.stderr
    assert "tasks:          3" in text.stdout
    assert "standalone (VK_HIVE_URL unset)" in text.stdout
    report = json.loads(vk_node_cli(["status", "--json"], data).stdout)
    assert report["projects"] == 1
    assert report["linked_projects"] == 1
    assert report["tasks"] == 3
    assert report["outbox_unacked"] == 3
    assert report["oldest_unacked_age_s"] is not None
    assert report["oldest_unacked_age_s"] >= 0
    assert report["attempts"] == 0
    assert report["schema_version"] >= 1
