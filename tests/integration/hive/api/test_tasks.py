"""Tasks over REST: optimistic versions, the status machine, dispatch, logs and activity."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from vk_hive.store.models import NewOutputLog, Node, NodeRegistration
from vk_hive.store.repositories import executions, nodes, project_links

from .conftest import Actor, Hive
from .world import mirror_run


async def _project(hive: Hive, actor: Actor) -> str:
    r = await hive.client.post(
        "/v1/swarm/projects",
        json={"organization_id": str(actor.personal_org_id), "name": f"p-{uuid.uuid4().hex[:6]}"},
        headers=actor.headers,
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def _script_node(hive: Hive, actor: Actor, project: str) -> Node:
    """A node of the actor's organization that runs SCRIPT, linked to ``project``."""
    async with hive.db.transaction() as conn:
        node = await nodes.create(
            conn,
            actor.personal_org_id,
            NodeRegistration(name="n", machine_id="mn", capabilities={"executors": ["SCRIPT"]}),
        )
        await project_links.link_node(conn, uuid.UUID(project), node.id, uuid.uuid4(), "/r")
    return node


async def _task(hive: Hive, actor: Actor, project: str, **extra: object) -> dict[str, object]:
    r = await hive.client.post(
        "/v1/tasks",
        json={
            "project_id": project,
            "title": "Fix it",
            "description": "d",
            "executor": "SCRIPT",
            **extra,
        },
        headers=actor.headers,
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


@pytest.mark.asyncio
async def test_patch_checks_version_and_status_machine(hive: Hive) -> None:
    """PATCH with a stale version is 409; an illegal status change is 409; legal ones apply and
    bump the version."""
    alice = await hive.user()
    project = await _project(hive, alice)
    task = (await _task(hive, alice, project))["task"]
    url = f"/v1/tasks/{task['id']}"  # type: ignore[index]
    r = await hive.client.patch(url, json={"version": 1, "title": "New"}, headers=alice.headers)
    assert r.status_code == 200
    assert r.json()["version"] == 2
    r = await hive.client.patch(url, json={"version": 1, "title": "Stale"}, headers=alice.headers)
    assert r.status_code == 409
    r = await hive.client.patch(url, json={"status": "done"}, headers=alice.headers)
    assert r.status_code == 409  # todo -> done is not a transition
    r = await hive.client.patch(url, json={"status": "in-progress"}, headers=alice.headers)
    assert r.json()["status"] == "in-progress"
    r = await hive.client.patch(url, json={"status": "inreview"}, headers=alice.headers)
    assert r.status_code == 400  # node spelling is not the REST enum
    r = await hive.client.patch(
        url, json={"status": "cancelled", "archived": True}, headers=alice.headers
    )
    assert r.json()["status"] == "cancelled"
    assert r.json()["archived_at"] is not None
    r = await hive.client.delete(url, params={"version": 1}, headers=alice.headers)
    assert r.status_code == 409
    r = await hive.client.delete(url, headers=alice.headers)
    assert r.status_code == 204
    assert (await hive.client.get(url, headers=alice.headers)).status_code == 404
    r = await hive.client.get("/v1/activity", params={"project_id": project}, headers=alice.headers)
    types = [e["event_type"] for e in r.json()["events"]]
    assert types[0] == "task.created"
    assert types[-1] == "task.deleted"
    r2 = await hive.client.get(
        "/v1/activity",
        params={"project_id": project, "after": 2, "limit": 1},
        headers=alice.headers,
    )
    assert [e["seq"] for e in r2.json()["events"]] == [3]
    assert r2.json()["next_after"] == 3


@pytest.mark.asyncio
async def test_task_text_limit_and_member_permissions(hive: Hive) -> None:
    """Title + description over 50 KiB is refused; a plain member cannot edit another's task."""
    alice, bob = await hive.user(), await hive.user()
    org = await hive.org_with(alice, bob)
    r = await hive.client.post(
        "/v1/swarm/projects", json={"organization_id": str(org), "name": "p"}, headers=alice.headers
    )
    project = r.json()["id"]
    r = await hive.client.post(
        "/v1/tasks",
        json={"project_id": project, "title": "t" * 30_000, "description": "d" * 30_000},
        headers=alice.headers,
    )
    assert r.status_code == 400
    task = (await _task(hive, alice, project))["task"]
    assert (
        await hive.client.get(f"/v1/tasks/{task['id']}", headers=bob.headers)
    ).status_code == 200  # type: ignore[index]
    r = await hive.client.patch(f"/v1/tasks/{task['id']}", json={"title": "x"}, headers=bob.headers)  # type: ignore[index]
    assert r.status_code == 403
    listed = await hive.client.get("/v1/tasks", params={"project_id": project}, headers=bob.headers)
    assert [t["id"] for t in listed.json()] == [task["id"]]  # type: ignore[index]


@pytest.mark.asyncio
async def test_a_dispatched_create_writes_one_event_showing_the_task_in_progress(
    hive: Hive,
) -> None:
    """A create with start_attempt that a node takes writes ONE activity event, task.created,
    already in progress on that node at the task's first version, and the response shows the
    same task; one that no node can take is created todo, also with one event."""
    alice = await hive.user()
    project = await _project(hive, alice)
    undispatched = await _task(hive, alice, project, start_attempt=True)
    node = await _script_node(hive, alice, project)
    created = await _task(hive, alice, project, start_attempt=True)
    async with hive.db.acquire() as conn:
        rows = await conn.fetch(
            "SELECT event_type, payload FROM activity WHERE swarm_project_id = $1 ORDER BY seq",
            uuid.UUID(project),
        )
    events = [(r["event_type"], _payload(r["payload"])["task"]) for r in rows]
    assert [(kind, t["id"], t["status"], t["version"]) for kind, t in events] == [
        ("task.created", undispatched["task"]["id"], "todo", 1),  # type: ignore[index]
        ("task.created", created["task"]["id"], "in-progress", 1),  # type: ignore[index]
    ]
    assert events[1][1]["executing_node_id"] == str(node.id)
    assert created["task"] == events[1][1]
    assert created["assignment"]["node_id"] == str(node.id)  # type: ignore[index]


def _payload(value: object) -> dict[str, Any]:
    decoded = json.loads(value) if isinstance(value, str) else value
    assert isinstance(decoded, dict)
    return decoded


@pytest.mark.asyncio
async def test_dispatch_claims_a_lease_on_an_eligible_node(hive: Hive) -> None:
    """start_attempt dispatches to a linked online node that can run the executor: the task goes
    in-progress with an assignment holding a fencing token; a second assign is 409; logs page."""
    alice = await hive.user()
    project = await _project(hive, alice)
    none = await _task(hive, alice, project, start_attempt=True)
    assert none["assignment"] is None
    assert "no node" in str(none["dispatch_error"])
    async with hive.db.transaction() as conn:
        cannot = await nodes.create(
            conn,
            alice.personal_org_id,
            NodeRegistration(name="a", machine_id="ma", capabilities={"executors": ["CODEX"]}),
        )
        can = await nodes.create(
            conn,
            alice.personal_org_id,
            NodeRegistration(name="b", machine_id="mb", capabilities={"executors": ["SCRIPT"]}),
        )
        for node in (cannot, can):
            await project_links.link_node(conn, uuid.UUID(project), node.id, uuid.uuid4(), "/r")
    created = await _task(hive, alice, project, start_attempt=True)
    assignment = created["assignment"]
    assert assignment is not None
    assert assignment["node_id"] == str(can.id)  # type: ignore[index]
    assert assignment["fencing_token"] > 0  # type: ignore[index]
    assert assignment["lease_expires_at"] is not None  # type: ignore[index]
    task = created["task"]
    assert task["status"] == "in-progress"  # type: ignore[index]
    assert task["executing_node_id"] == str(can.id)  # type: ignore[index]
    r = await hive.client.post(f"/v1/tasks/{task['id']}/assign", json={}, headers=alice.headers)  # type: ignore[index]
    assert r.status_code == 409
    r = await hive.client.post(
        f"/v1/tasks/{none['task']['id']}/assign",
        json={"node_id": str(cannot.id)},
        headers=alice.headers,  # type: ignore[index]
    )
    assert r.status_code == 409
    assert "cannot run SCRIPT" in r.json()["detail"]
    listed = await hive.client.get(f"/v1/tasks/{task['id']}/assignments", headers=alice.headers)  # type: ignore[index]
    assert [a["id"] for a in listed.json()] == [assignment["id"]]  # type: ignore[index]
    async with hive.db.acquire() as conn:
        await executions.insert_logs(
            conn,
            uuid.UUID(str(assignment["id"])),  # type: ignore[index]
            None,
            [
                NewOutputLog(output_type="stdout", content=f"line {i}", local_log_id=i)
                for i in range(5)
            ],
        )
    url = f"/v1/tasks/{task['id']}/logs"  # type: ignore[index]
    page = (await hive.client.get(url, params={"limit": 3}, headers=alice.headers)).json()
    assert [x["content"] for x in page["logs"]] == ["line 0", "line 1", "line 2"]
    page2 = (
        await hive.client.get(url, params={"after": page["next_after"]}, headers=alice.headers)
    ).json()
    assert [x["content"] for x in page2["logs"]] == ["line 3", "line 4"]


@pytest.mark.asyncio
async def test_executions_and_process_logs_cover_runs_with_and_without_an_assignment(
    hive: Hive,
) -> None:
    """GET /v1/tasks/{id}/executions lists every mirrored attempt of the task — the dispatched
    one and one the node started by itself — with its processes; a process's logs page by id
    cursor; another organization's member gets 404 for the process (and 403 for the task), and
    so does an unknown process id."""
    alice, mallory = await hive.user(), await hive.user()
    project = await _project(hive, alice)
    node = await _script_node(hive, alice, project)
    created = await _task(hive, alice, project, start_attempt=True)
    task_id = uuid.UUID(str(created["task"]["id"]))  # type: ignore[index]
    assignment_id = uuid.UUID(str(created["assignment"]["id"]))  # type: ignore[index]
    async with hive.db.transaction() as conn:
        runs = [
            await mirror_run(conn, node.id, task_id, assignment_id=assignment, branch=branch)
            for assignment, branch in ((assignment_id, "vk/dispatched"), (None, "vk/own"))
        ]
        own_process = runs[1][1]
        await executions.insert_logs(
            conn,
            None,
            own_process.id,
            [
                NewOutputLog(output_type="stdout", content=f"own {i}", local_log_id=i)
                for i in range(4)
            ],
        )
    r = await hive.client.get(f"/v1/tasks/{task_id}/executions", headers=alice.headers)
    assert r.status_code == 200, r.text
    listed = {a["branch"]: a for a in r.json()}
    assert set(listed) == {"vk/dispatched", "vk/own"}
    assert listed["vk/dispatched"]["assignment_id"] == str(assignment_id)
    assert listed["vk/own"]["assignment_id"] is None
    assert [p["id"] for p in listed["vk/own"]["processes"]] == [str(own_process.id)]
    assert listed["vk/own"]["processes"][0]["status"] == "running"
    url = f"/v1/execution-processes/{own_process.id}/logs"
    page = (await hive.client.get(url, params={"limit": 3}, headers=alice.headers)).json()
    assert page["execution_process_id"] == str(own_process.id)
    assert [x["content"] for x in page["logs"]] == ["own 0", "own 1", "own 2"]
    rest = await hive.client.get(
        url, params={"after_id": page["next_after_id"]}, headers=alice.headers
    )
    assert [x["content"] for x in rest.json()["logs"]] == ["own 3"]
    for who, path in (
        (mallory, url),
        (alice, f"/v1/execution-processes/{uuid.uuid4()}/logs"),
    ):
        refused = await hive.client.get(path, headers=who.headers)
        assert refused.status_code == 404, refused.text
        assert refused.json()["code"] == "not_found"
    foreign = await hive.client.get(f"/v1/tasks/{task_id}/executions", headers=mallory.headers)
    assert foreign.status_code == 403
