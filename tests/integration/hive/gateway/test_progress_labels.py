"""``progress.append`` and ``label.upsert`` ops at the gateway (real hive, real PostgreSQL): stored
once, refused from a node that does not hold the run, read back over ``/v1/tasks/{id}/progress``,
and labels from a node announced to the other nodes by ``label_sync``."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from vk_hive.auth import repository as auth_repo
from vk_hive.auth.pat import issue_pat
from vk_hive.store.repositories import labels
from vk_hive.tenancy.repository import ensure_personal_organization
from vk_shared.protocol import HIVE_FEATURES
from vk_shared.wire import (
    LabelSync,
    LabelUpsert,
    LeaseRevoked,
    OpRejected,
    OutboxOp,
    ProgressAppend,
    ProgressEventType,
    TaskAssign,
)

from .conftest import Node, World, now, run_ops

pytestmark = pytest.mark.asyncio


def _progress(
    node: Node,
    attempt_id: uuid.UUID,
    event_type: ProgressEventType,
    *,
    token: int | None = None,
    event_id: uuid.UUID | None = None,
) -> OutboxOp:
    event_id = event_id or uuid.uuid4()
    payload = ProgressAppend(
        id=event_id,
        attempt_id=attempt_id,
        event_type=event_type,
        message=event_type.value,
        timestamp=now(),
    )
    return node.op(payload, entity_id=event_id, token=token)


async def _progress_page(world: World, task_id: uuid.UUID, **params: Any) -> dict[str, Any]:
    r = await world.http.get(f"/v1/tasks/{task_id}/progress", params=params, headers=world.headers)
    assert r.status_code == 200, r.text
    page: dict[str, Any] = r.json()
    return page


async def _stranger_headers(world: World) -> dict[str, str]:
    """A token of a user who is a member of another organization only."""
    async with world.db.transaction() as conn:
        user = await auth_repo.upsert_user(
            conn, email=f"s-{uuid.uuid4().hex[:6]}@example.com", username="stranger"
        )
        await ensure_personal_organization(conn, user.id, "stranger")
        pat = await issue_pat(conn, user.id, "test")
    return {"Authorization": f"Bearer {pat.token}"}


async def test_the_hive_announces_the_ops_it_applies(world: World) -> None:
    """``auth_result.features`` names the optional ops, so a node knows it may send them."""
    node = await world.node()
    assert set(node.auth.features) == set(HIVE_FEATURES)


async def test_progress_of_a_dispatched_run_is_stored_once_in_order(world: World) -> None:
    """The lease holder's milestones are stored with the assignment the hive knows, a resent
    event (same id, new op key) is not doubled, and the REST list pages oldest first; a user of
    another organization gets 403, as on the task's other routes."""
    node = await world.node()
    created = await world.create_task(start_attempt=True)
    assign = await node.client.expect(TaskAssign)
    task_id = uuid.UUID(created["task"]["id"])
    local_task, attempt_id, exec_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    token = assign.fencing_token
    first = uuid.uuid4()
    ops = [
        node.task_op(local_task, shared_task_id=task_id, status="inprogress", token=token),
        *run_ops(
            node,
            local_task,
            attempt_id,
            exec_id,
            token=token,
            shared_task_id=task_id,
            assignment_id=assign.assignment_id,
        ),
        _progress(node, attempt_id, ProgressEventType.AGENT_STARTED, token=token, event_id=first),
        _progress(node, attempt_id, ProgressEventType.FIRST_OUTPUT, token=token),
        _progress(node, attempt_id, ProgressEventType.AGENT_FINISHED, token=token),
    ]
    ack = await node.batch(*ops)
    assert ack.applied_through_seq == ops[-1].seq
    resent = _progress(
        node, attempt_id, ProgressEventType.AGENT_STARTED, token=token, event_id=first
    )
    assert (await node.batch(resent)).applied_through_seq == resent.seq

    page = await _progress_page(world, task_id)
    assert [e["event_type"] for e in page["events"]] == [
        "agent_started",
        "first_output",
        "agent_finished",
    ]
    assert page["next_after"] is None
    event = page["events"][0]
    assert event["node_id"] == str(node.id)
    assert event["node_name"].startswith("node-")
    assert event["attempt_id"] == str(attempt_id)
    assert event["assignment_id"] == str(assign.assignment_id)
    assert event["message"] == "agent_started"

    one = await _progress_page(world, task_id, limit=2)
    assert len(one["events"]) == 2
    two = await _progress_page(world, task_id, limit=2, after=one["next_after"])
    assert [e["event_type"] for e in two["events"]] == ["agent_finished"]
    assert two["next_after"] is None

    stranger = await world.http.get(
        f"/v1/tasks/{task_id}/progress", headers=await _stranger_headers(world)
    )
    assert stranger.status_code == 403
    bad = await world.http.get(
        f"/v1/tasks/{task_id}/progress", params={"limit": 0}, headers=world.headers
    )
    assert bad.status_code == 400


async def test_progress_from_a_node_without_the_run_is_refused(world: World) -> None:
    """A node may only report on its own attempts, and on a leased task only with the current
    token; the refusals store nothing and revoke no lease."""
    holder = await world.node()
    created = await world.create_task(start_attempt=True)
    assign = await holder.client.expect(TaskAssign)
    task_id = uuid.UUID(created["task"]["id"])
    local_task, attempt_id, exec_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    token = assign.fencing_token
    ops = run_ops(
        holder,
        local_task,
        attempt_id,
        exec_id,
        token=token,
        shared_task_id=task_id,
        assignment_id=assign.assignment_id,
    )
    await holder.batch(*ops)

    intruder = await world.node()
    foreign = _progress(intruder, attempt_id, ProgressEventType.AGENT_FINISHED, token=token)
    await intruder.batch(foreign)
    rejected = await intruder.client.expect(OpRejected)
    assert (rejected.seq, rejected.code) == (foreign.seq, "forbidden")

    stale = _progress(holder, attempt_id, ProgressEventType.AGENT_FAILED, token=token + 1)
    await holder.batch(stale)
    rejected = await holder.client.expect(OpRejected)
    assert (rejected.seq, rejected.code) == (stale.seq, "stale_fencing_token")
    assert not [m for m in await holder.client.drain() if isinstance(m, LeaseRevoked)]

    assert (await _progress_page(world, task_id))["events"] == []


async def test_progress_of_a_run_the_node_started_by_itself(world: World) -> None:
    """A run of the node's own task has no assignment: its events name the task and attempt."""
    node = await world.node()
    local_task, attempt_id, exec_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    ops = [
        node.task_op(local_task, status="inprogress"),
        *run_ops(node, local_task, attempt_id, exec_id),
        _progress(node, attempt_id, ProgressEventType.AGENT_STARTED),
        _progress(node, attempt_id, ProgressEventType.MERGED),
    ]
    ack = await node.batch(*ops)
    task_id = ack.tasks[0].id
    page = await _progress_page(world, task_id)
    assert [(e["event_type"], e["assignment_id"]) for e in page["events"]] == [
        ("agent_started", None),
        ("merged", None),
    ]
    runs = await world.http.get(f"/v1/tasks/{task_id}/executions", headers=world.headers)
    assert [a["id"] for a in runs.json()] == [str(attempt_id)]
    assert [p["id"] for p in runs.json()[0]["processes"]] == [str(exec_id)]


async def test_a_label_from_a_node_reaches_the_hive_and_the_other_nodes(world: World) -> None:
    """``label.upsert`` creates the swarm label under the node's id for it, an edit bumps its
    version, each is announced by ``label_sync``; another organization's label id and an
    unlinked project are refused."""
    author, peer = await world.node(), await world.node()
    label_id = uuid.uuid4()

    def upsert(node: Node, name: str, *, project: uuid.UUID | None = None) -> OutboxOp:
        payload = LabelUpsert(
            id=label_id, project_id=project or node.local_project_id, name=name, color="#0e8a16"
        )
        return node.op(payload, entity_id=label_id)

    await author.batch(upsert(author, "needs-review"))
    sync = await peer.client.expect(LabelSync, where=lambda m: m.label_id == label_id)
    assert (sync.name, sync.project_id, sync.version) == ("needs-review", world.project_id, 1)
    await author.batch(upsert(author, "reviewed"))
    sync = await peer.client.expect(LabelSync, where=lambda m: m.label_id == label_id)
    assert (sync.name, sync.version) == ("reviewed", 2)
    async with world.db.acquire() as conn:
        label = await labels.find_by_id(conn, label_id)
    assert label is not None
    assert (label.organization_id, label.origin_node_id) == (world.org_id, author.id)
    r = await world.http.get(
        "/v1/swarm/labels", params={"organization_id": str(world.org_id)}, headers=world.headers
    )
    assert "reviewed" in [item["name"] for item in r.json()]

    other_org = await world.other_org()
    foreign = await world.node(
        api_key=await world.api_key(other_org), project_id=await world.project("x", other_org)
    )
    steal = upsert(foreign, "mine now")
    await foreign.batch(steal)
    rejected = await foreign.client.expect(OpRejected)
    assert (rejected.seq, rejected.code) == (steal.seq, "forbidden")

    unlinked = await world.node(link=False)
    loose = upsert(unlinked, "loose")
    await unlinked.batch(loose)
    rejected = await unlinked.client.expect(OpRejected)
    assert rejected.code == "project_not_linked"
    async with world.db.acquire() as conn:
        label = await labels.find_by_id(conn, label_id)
    assert label is not None
    assert label.name == "reviewed"
