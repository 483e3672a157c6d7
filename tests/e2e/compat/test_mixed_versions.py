"""Mixed releases on the wire: nodes and the hive are upgraded at different times, so for a while
a node of the previous release talks to the current hive, and a node of the current release to
the hive of the previous release. Both pairs must keep working: the node links, a task made and
edited on the node reaches the hive (the node learns its shared id and keeps its edit), a task
made and edited on the hive reaches the node, and a dispatched SCRIPT task runs on the node to
``in-review``. A cluster mixing a previous and a current node behind either hive also converges.

"Current" is this checkout, as the suite runs it (``vk-hive``/``vk-node`` of its ``.venv``).
"Previous" is :data:`PREVIOUS`: the last release before the sync protocol's latest compatible
change (a ``features`` field on ``auth_result`` and the ``progress.append`` / ``label.upsert`` ops
a node sends only to a hive announcing them; before it: an appended field on ``op_ack``, a
``features`` field on ``auth``, and no echo of a node's own task events to the nodes announcing
that feature). Its ``packages`` and ``constraints`` trees
are taken from git history and installed, under that release's own lock, into two fresh venvs
once per module (``tests/support/venvs.py``). When the wire changes again, move :data:`PREVIOUS`
to the last release before that change.

Every process is real: a PostgreSQL database per cluster (migrated by that cluster's hive),
``vk-hive serve`` and ``vk-node serve`` on real sockets (``tests/support/cluster.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from support.cluster import Cluster, ClusterNode
from support.venvs import INSTALL_TIMEOUT_S, extract_release, fresh_venvs

PREVIOUS = "8cafb46f7794677540bd139c5c6213ed156e067d"
"""The previous release (vk-node and vk-hive 0.2.0 as landed before the ``progress.append`` /
``label.upsert`` ops): the last one before that wire change."""

NODE_ENV = {"VK_NODE_EXECUTORS": "SCRIPT"}
INSTALL_AND_RUN_TIMEOUT_S = 2 * INSTALL_TIMEOUT_S + 120
"""The first test builds the module's venvs (two installs side by side) before its cluster."""


@pytest.fixture(scope="module")
def previous(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``{"hive": bin dir, "node": bin dir}`` of :data:`PREVIOUS`, each package in its own venv
    installed from that release's tree under that release's lock."""
    tree = extract_release(PREVIOUS, tmp_path_factory.mktemp("previous-tree"))
    return fresh_venvs(
        tmp_path_factory.mktemp("previous"),
        source=tree,
        constraints=tree / "constraints" / "locked.txt",
    )


# --- what every pairing must do ------------------------------------------------------------------


def _linked(cluster: Cluster, node: ClusterNode) -> None:
    """The node's link is connected and the hive lists it online, linking the swarm project."""
    cluster.wait(
        lambda: node.process.link_status()["state"] == "connected",
        what=f"{node.name}'s link to be connected",
    )
    cluster.wait_online(node)


def _node_task_reaches_the_hive(cluster: Cluster, node: ClusterNode) -> dict[str, Any]:
    """A task made on the node appears on the hive owned by it and the node learns its shared
    id; then a title edit on the node reaches the hive. The hive's task after the edit."""
    title = f"made on {node.name}"
    local = node.api.post("/tasks", json={"project_id": node.project_id, "title": title})

    def on_hive() -> list[dict[str, Any]]:
        return [t for t in cluster.hive_tasks() if t["source_task_id"] == local["id"]]

    [task] = cluster.wait(on_hive, what=f"{node.name}'s task to appear on the hive")
    assert task["title"] == title
    assert task["owner_node_id"] == node.node_id
    assert task["source_node_id"] == node.node_id

    def shared_id() -> str | None:
        found: str | None = node.api.get(f"/tasks/{local['id']}")["shared_task_id"]
        return found

    learned = cluster.wait(shared_id, what=f"{node.name} to learn its task's shared id")
    assert learned == task["id"]
    [row] = node.process.local_tasks(task["id"])
    assert row["id"] == local["id"]

    edited_title = f"edited on {node.name}"
    node.api.patch(f"/tasks/{local['id']}", json={"title": edited_title})

    def edited_on_hive() -> dict[str, Any]:
        now: dict[str, Any] = cluster.api.get(f"/tasks/{task['id']}")
        return now if now["title"] == edited_title else {}

    edited = cluster.wait(edited_on_hive, what=f"{node.name}'s title edit to reach the hive")
    assert edited["version"] > task["version"]
    return edited


def _copies(node: ClusterNode, task_id: str) -> list[tuple[str, int]]:
    """``(title, remote_version)`` of each of the node's local copies of the hive task."""
    return [(r["title"], r["remote_version"]) for r in node.process.local_tasks(task_id)]


def _hive_task_reaches(cluster: Cluster, nodes: list[ClusterNode]) -> None:
    """A task made and then renamed on the hive reaches every node with the new title and the
    hive's version."""
    task = cluster.api.post(
        "/tasks", json={"project_id": cluster.swarm_project_id, "title": "made on the hive"}
    )["task"]
    edited = cluster.api.patch(
        f"/tasks/{task['id']}", json={"version": task["version"], "title": "edited on the hive"}
    )
    assert edited["version"] > task["version"]
    for node in nodes:
        _wait_for_copy(cluster, node, edited)


def _wait_for_copy(cluster: Cluster, node: ClusterNode, edited: dict[str, Any]) -> None:
    """Until the node holds one copy of the hive task ``edited``, with its title and version."""
    expected = [(edited["title"], edited["version"])]
    seen: list[tuple[str, int]] = []

    def arrived() -> bool:
        seen[:] = _copies(node, edited["id"])
        return seen == expected

    cluster.wait(
        arrived,
        what=lambda: f"the hive's task to reach {node.name} as {expected} (its copies: {seen})",
    )


def _keeps_its_edit(cluster: Cluster, node: ClusterNode, edited: dict[str, Any]) -> None:
    """The node's copy of the task it made still holds its edit at the hive's version, and so
    does the hive. Called after a later hive event reached the node: the activity stream is
    applied in order, so the echo of its own edit (when the hive sends one) came before."""
    assert _copies(node, edited["id"]) == [(edited["title"], edited["version"])], node.name
    now = cluster.api.get(f"/tasks/{edited['id']}")
    assert (now["title"], now["version"]) == (edited["title"], edited["version"])


def _dispatched_task_runs_on(cluster: Cluster, node: ClusterNode) -> None:
    """A hive task with ``start_attempt`` for the node runs there as a SCRIPT to ``in-review``."""
    script = f"echo ran-on-{node.name} > proof.txt"
    task_id = cluster.dispatch(node, f"dispatched to {node.name}", script)["task"]["id"]

    def in_review() -> bool:
        return bool(cluster.api.get(f"/tasks/{task_id}")["status"] == "in-review")

    cluster.wait(in_review, what=f"the task dispatched to {node.name} to reach in-review")
    [local] = node.process.local_tasks(task_id)
    attempts = node.api.get("/task-attempts", params={"task_id": local["id"]})
    assert len(attempts) == 1
    proof = Path(attempts[0]["container_ref"]) / "proof.txt"
    assert proof.read_text().strip() == f"ran-on-{node.name}"


def _one_node_and_the_hive_interoperate(cluster: Cluster) -> None:
    [node] = cluster.nodes
    _linked(cluster, node)
    edited = _node_task_reaches_the_hive(cluster, node)
    _hive_task_reaches(cluster, [node])
    _keeps_its_edit(cluster, node, edited)
    _dispatched_task_runs_on(cluster, node)


# --- the pairings --------------------------------------------------------------------------------


@pytest.mark.timeout(INSTALL_AND_RUN_TIMEOUT_S)
def test_a_previous_node_works_with_the_current_hive(
    previous: dict[str, Path], tmp_path: Path
) -> None:
    """Hive upgraded first: a node of the previous release links to the current hive, and ops
    flow both ways and a dispatched task runs on it."""
    with Cluster(
        tmp_path / "cluster", nodes_count=1, node_bin=previous["node"], node_env=NODE_ENV
    ) as cluster:
        _one_node_and_the_hive_interoperate(cluster)


@pytest.mark.timeout(INSTALL_AND_RUN_TIMEOUT_S)
def test_a_current_node_works_with_the_previous_hive(
    previous: dict[str, Path], tmp_path: Path
) -> None:
    """Nodes upgraded first: a node of the current release links to the hive of the previous
    release, and ops flow both ways and a dispatched task runs on it."""
    with Cluster(
        tmp_path / "cluster", nodes_count=1, hive_bin=previous["hive"], node_env=NODE_ENV
    ) as cluster:
        _one_node_and_the_hive_interoperate(cluster)


@pytest.mark.timeout(INSTALL_AND_RUN_TIMEOUT_S)
@pytest.mark.parametrize("hive_release", ["current", "previous"])
def test_a_previous_and_a_current_node_converge_through_either_hive(
    previous: dict[str, Path], tmp_path: Path, hive_release: str
) -> None:
    """Half the nodes upgraded, behind the current or the previous hive: a task made and edited
    on either node reaches the hive and the other node with its edit, the maker keeps its edit,
    and a hive task reaches both."""
    hive_bin = previous["hive"] if hive_release == "previous" else None
    with Cluster(
        tmp_path / "cluster", nodes_count=0, hive_bin=hive_bin, node_env=NODE_ENV
    ) as cluster:
        old = cluster.add_node("node-previous", bin_dir=previous["node"])
        new = cluster.add_node("node-current")
        for node in (old, new):
            _linked(cluster, node)
        edits = {node.name: _node_task_reaches_the_hive(cluster, node) for node in (old, new)}
        _hive_task_reaches(cluster, [old, new])
        for maker, other in ((old, new), (new, old)):
            edited = edits[maker.name]
            _keeps_its_edit(cluster, maker, edited)
            assert _copies(other, edited["id"]) == [(edited["title"], edited["version"])], (
                f"{other.name}'s copy of {maker.name}'s task"
            )
