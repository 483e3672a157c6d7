"""Each package installed alone, exactly as users and the container install it: a plain
``pip install ./packages/<name>`` into a fresh virtual environment — no lock, the newest versions
the registry serves — gives a working CLI, and a hive and a node from two such environments link
over a real WebSocket and run a dispatched SCRIPT task to ``in-review``.

vk-shared is not published on an index: vk-node and vk-hive name it by its path in this
repository, so pip must build and install it from ``packages/shared``. The two environments are
built once per module (pip's own cache is shared, so repeated runs only rebuild the three local
packages).
"""

from __future__ import annotations

import json
import re
import tomllib
import uuid
from pathlib import Path

import httpx
import pytest

from support.cluster import Cluster
from support.venvs import INSTALL_TIMEOUT_S, ROOT, fresh_venvs, run


@pytest.fixture(scope="module")
def alone(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``{"hive": bin dir, "node": bin dir}`` of two fresh venvs, one package each."""
    return fresh_venvs(tmp_path_factory.mktemp("alone"))


def _version_of(package: str) -> str:
    data = tomllib.loads((ROOT / "packages" / package / "pyproject.toml").read_text("utf-8"))
    return str(data["project"]["version"])


@pytest.mark.timeout(2 * INSTALL_TIMEOUT_S + 120)
@pytest.mark.parametrize(
    ("package", "script", "module", "absent"),
    [("node", "vk-node", "vk_node", "vk_hive"), ("hive", "vk-hive", "vk_hive", "vk_node")],
)
def test_pip_install_into_fresh_venv_gives_working_cli(
    alone: dict[str, Path], tmp_path: Path, package: str, script: str, module: str, absent: str
) -> None:
    """`pip install ./packages/<pkg>` in a clean venv pulls vk-shared from the repository and
    installs a CLI whose --help and --version work, with nothing else of the workspace."""
    bin_dir = alone[package]
    work = tmp_path / "elsewhere"
    work.mkdir()

    help_out = run([str(bin_dir / script), "--help"], cwd=work).stdout
    assert help_out.startswith(f"usage: {script}")
    assert "serve" in help_out
    assert "migrate" in help_out

    version_out = run([str(bin_dir / script), "--version"], cwd=work).stdout.strip()
    assert version_out == f"{script} {_version_of(package)}"

    probe = (
        f"import importlib.util, json, vk_shared, {module}; "
        f"print(json.dumps({{'shared': vk_shared.__file__, 'pkg': {module}.__file__, "
        f"'absent': importlib.util.find_spec('{absent}') is not None}}))"
    )
    found = run([str(bin_dir / "python"), "-I", "-c", probe], cwd=work).stdout
    paths = json.loads(found)
    site = bin_dir.parent.resolve()
    assert Path(paths["shared"]).resolve().is_relative_to(site), paths
    assert Path(paths["pkg"]).resolve().is_relative_to(site), paths
    assert paths["absent"] is False, f"{absent} must not be installed by {package}"

    run([str(bin_dir / "python"), "-m", "pip", "check"], cwd=work)


@pytest.mark.timeout(2 * INSTALL_TIMEOUT_S + 180)
def test_a_hive_and_a_node_installed_alone_run_a_dispatched_task(
    alone: dict[str, Path], tmp_path: Path
) -> None:
    """A hive from a venv holding only vk-hive accepts the control channel of a node from a venv
    holding only vk-node (default settings, SCRIPT enabled): the node links, and a task created
    on the hive with ``start_attempt`` runs on it and reaches ``in-review``; the hive serves the
    board's pages and static files from its wheel, and the installed node's board shows the task
    as a hive task."""
    with Cluster(
        tmp_path / "cluster",
        nodes_count=1,
        test_env=False,
        hive_bin=alone["hive"],
        node_bin=alone["node"],
        node_env={"VK_NODE_EXECUTORS": "SCRIPT"},
    ) as cluster:
        node = cluster.nodes[0]
        assert node.process.link_status()["state"] == "connected"
        created = cluster.api.post(
            "/tasks",
            json={
                "project_id": cluster.swarm_project_id,
                "title": "installed alone",
                "description": "echo from-a-fresh-venv > proof.txt",
                "executor": "SCRIPT",
                "start_attempt": True,
            },
        )
        task_id = created["task"]["id"]
        assert created["assignment"]["node_id"] == node.node_id

        def in_review() -> bool:
            return bool(cluster.api.get(f"/tasks/{task_id}")["status"] == "in-review")

        cluster.wait(in_review, what="the dispatched task to reach in-review", timeout=60)
        [local] = node.process.local_tasks(task_id)
        attempts = node.process.sql(
            "SELECT container_ref FROM task_attempts WHERE task_id = ?", uuid.UUID(local["id"])
        )
        assert len(attempts) == 1
        worktree = Path(attempts[0]["container_ref"])
        assert (worktree / "proof.txt").read_text().strip() == "from-a-fresh-venv"

        # The board's templates and static files ship in the wheel.
        login = httpx.get(cluster.hive.url + "/login", timeout=10)
        assert login.status_code == 200, login.text
        stylesheet = re.search(r'href="(/static/[0-9a-f]{12}/board\.css)"', login.text)
        assert stylesheet is not None, login.text
        for name in ("board.css", "board.js"):
            path = stylesheet.group(1).replace("board.css", name)
            assert httpx.get(cluster.hive.url + path, timeout=10).status_code == 200, path

        # The board's templates and scripts ship in the installed package: the task page shows
        # the dispatched task with its hive badge and the board's own script is served.
        page = httpx.get(f"{node.process.url}/tasks/{local['id']}", headers={"Accept": "text/html"})
        assert page.status_code == 200, page.text
        assert "installed alone" in page.text
        assert f"swarm task {task_id}" in page.text
        assert "assigned by the hive" in page.text
        script = httpx.get(f"{node.process.url}/static/board.js")
        assert script.status_code == 200
        assert script.headers["content-type"].startswith("text/javascript")
