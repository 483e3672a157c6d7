"""Digest, label_sync, server time skew and the /v1/sync snapshot routes."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from vk_hive.store.repositories import shared_tasks
from vk_shared.digest import bucket_of, compute_buckets
from vk_shared.wire import Activity, Digest, DigestResult, LabelSync, TaskAssign

from .conftest import World, running_world

pytestmark = pytest.mark.asyncio


async def _versions(world: World) -> list[tuple[uuid.UUID, int]]:
    async with world.db.acquire() as conn:
        rows = await shared_tasks.find_by_swarm_project_id(conn, world.project_id)
    return [(r.task.id, r.task.version) for r in rows]


async def test_converged_digest_gets_an_empty_result(world: World) -> None:
    """A node whose tasks match the hive's gets an empty digest_result."""
    node = await world.node()
    for i in range(5):
        await world.create_task(title=f"t{i}")
    await node.client.send(Digest(buckets=compute_buckets(await _versions(world)), last_seq=0))
    result = await node.client.expect(DigestResult)
    assert result == DigestResult()


async def test_diverged_version_names_its_bucket_and_task(world: World) -> None:
    """One task at another version: its bucket and id come back; a node ahead must resend."""
    node = await world.node()
    for i in range(5):
        await world.create_task(title=f"t{i}")
    entries = await _versions(world)
    stale_id, _ = entries[2]
    diverged = [(i, v - 1 if i == stale_id else v) for i, v in entries]
    await node.client.send(Digest(buckets=compute_buckets(diverged), last_seq=7))
    result = await node.client.expect(DigestResult)
    assert result.mismatched_buckets == [bucket_of(stale_id)]
    assert stale_id in result.pull_entities
    assert all(bucket_of(t) == bucket_of(stale_id) for t in result.pull_entities)
    assert result.resend_from_seq == 1


async def test_label_changes_are_pushed_to_the_orgs_nodes(world: World) -> None:
    """Creating, updating and deleting a swarm label pushes label_sync to connected nodes."""
    node = await world.node()
    r = await world.http.post(
        "/v1/swarm/labels",
        json={"organization_id": str(world.org_id), "name": "urgent"},
        headers=world.headers,
    )
    assert r.status_code == 201, r.text
    label_id = uuid.UUID(r.json()["id"])
    created = await node.client.expect(LabelSync)
    assert created.label_id == label_id
    assert created.name == "urgent"
    assert not created.is_deleted
    r = await world.http.delete(f"/v1/swarm/labels/{label_id}", headers=world.headers)
    assert r.status_code == 200, r.text
    deleted = await node.client.expect(LabelSync, where=lambda m: m.is_deleted)
    assert deleted.version > created.version


async def test_snapshot_and_task_pull_over_rest_with_the_api_key(world: World) -> None:
    """The node's API key reads a linked project's snapshot and named tasks; others are refused."""
    node = await world.node()
    one = await world.create_task(title="one")
    two = await world.create_task(title="two")
    auth = {"Authorization": f"Bearer {node.api_key}"}
    r = await world.http.get(f"/v1/sync/projects/{world.project_id}/snapshot", headers=auth)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["latest_seq"] == 2
    assert {t["title"] for t in body["tasks"]} == {"one", "two"}
    # The same shape as the activity payload's task.
    event = await node.client.expect(Activity)
    assert set(event.payload["task"]) == set(body["tasks"][0])
    await world.http.delete(f"/v1/tasks/{two['task']['id']}", headers=world.headers)
    ids = f"{one['task']['id']},{two['task']['id']},{uuid.uuid4()}"
    r = await world.http.get("/v1/sync/tasks", params={"ids": ids}, headers=auth)
    assert r.status_code == 200, r.text
    assert [t["id"] for t in r.json()["tasks"]] == [one["task"]["id"]]
    assert r.json()["deleted_task_ids"] == [two["task"]["id"]]
    other = await world.project("not linked")
    r = await world.http.get(f"/v1/sync/projects/{other}/snapshot", headers=auth)
    assert r.status_code == 404
    r = await world.http.get(
        f"/v1/sync/projects/{world.project_id}/snapshot", headers=world.headers
    )
    assert r.status_code == 401


async def test_clock_skew_shifts_server_time_but_not_leases(hive_dsn: str) -> None:
    """VK_HIVE_CLOCK_SKEW_S moves the informative server_time; lease ttls stay relative."""
    async with running_world(hive_dsn, clock_skew_s=3600.0) as world:
        node = await world.node()
        skew = node.auth.server_time - dt.datetime.now(dt.UTC)
        assert dt.timedelta(minutes=59) < skew < dt.timedelta(minutes=61)
        await world.create_task(start_attempt=True)
        assign = await node.client.expect(TaskAssign)
        assert 25_000 < assign.lease_ttl_ms <= 30_000
