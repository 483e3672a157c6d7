"""Milestones of a run and labels of linked projects go into the outbox (real SQLite), only while
the hive announced those ops; a hive without them gets a stand-in it refuses."""

from __future__ import annotations

from uuid import uuid4

import pytest

from vk_node.link.sender import for_hive
from vk_node.store import Store, outbox
from vk_node.store.repositories import execution_processes, labels, link_state, log_entries
from vk_shared.protocol import FEATURE_PROGRESS_OPS, HIVE_FEATURES
from vk_shared.wire.ops import (
    AssignmentStatus,
    LabelUpsert,
    OpType,
    OutboxOp,
    ProgressAppend,
    ProgressEventType,
)

from . import _seed

pytestmark = pytest.mark.asyncio


async def _ops(store: Store) -> list[OutboxOp]:
    async with store.read() as conn:
        return await outbox.peek_unacked(conn, 1000)


def _milestones(ops: list[OutboxOp]) -> list[ProgressEventType]:
    return [op.payload.event_type for op in ops if isinstance(op.payload, ProgressAppend)]


async def test_no_milestones_before_a_hive_announced_them(store: Store) -> None:
    """A node that has not met a hive applying ``progress.append`` writes none."""
    async with store.transaction() as conn:
        _, _, _, e = await _seed.world(conn)
        await log_entries.append_many(conn, e.id, [("stdout", "hello")])
        await execution_processes.update_completion(conn, e.id, status="completed", exit_code=0)
    assert _milestones(await _ops(store)) == []


async def test_a_main_run_reports_started_first_output_and_its_end(store: Store) -> None:
    """The coding agent's process reports started, its first output once, and finished or
    failed; a setup script reports nothing; each op names the run's task for its token."""
    async with store.transaction() as conn:
        await link_state.save_hive_features(conn, list(HIVE_FEATURES))
        _, t, a, e = await _seed.world(conn)
        await log_entries.append_many(conn, e.id, [("stdout", "one"), ("stderr", "two")])
        await log_entries.append_many(conn, e.id, [("stdout", "three")])
        await execution_processes.update_completion(conn, e.id, status="completed", exit_code=0)
        failed = await _seed.process(conn, a)
        await execution_processes.update_completion(conn, failed.id, status="killed")
        setup = await _seed.process(conn, a, run_reason="setupscript")
        await log_entries.append_many(conn, setup.id, [("stdout", "installing")])
    ops = await _ops(store)
    assert _milestones(ops) == [
        ProgressEventType.AGENT_STARTED,
        ProgressEventType.FIRST_OUTPUT,
        ProgressEventType.AGENT_FINISHED,
        ProgressEventType.AGENT_STARTED,
        ProgressEventType.AGENT_FAILED,
    ]
    progress = [op for op in ops if isinstance(op.payload, ProgressAppend)]
    assert {op.payload.attempt_id for op in progress} == {a.id}  # type: ignore[union-attr]
    assert all(op.entity_id == op.payload.id for op in progress)  # type: ignore[union-attr]
    async with store.read() as conn:
        queued = await outbox.peek_to_send(conn, progress[0].seq, 1)
    assert queued[0].task_id == t.id


async def test_an_unlinked_project_reports_nothing(store: Store) -> None:
    async with store.transaction() as conn:
        await link_state.save_hive_features(conn, list(HIVE_FEATURES))
        await _seed.world(conn, linked=False)
    assert await _ops(store) == []


async def test_a_label_of_a_linked_project_is_published_under_its_own_id(store: Store) -> None:
    """Creating or editing a label of a linked project writes ``label.upsert`` and makes the label
    its own hive copy; global labels and labels of unlinked projects stay local."""
    async with store.transaction() as conn:
        await link_state.save_hive_features(conn, list(HIVE_FEATURES))
        linked = await _seed.project(conn)
        loose = await _seed.project(conn, linked=False, name="loose")
        label = await labels.create(conn, uuid4(), name="bug", project_id=linked.id)
        await labels.update(conn, label.id, name="defect", icon="bug", color="#d73a4a")
        await labels.create(conn, uuid4(), name="global")
        await labels.create(conn, uuid4(), name="local", project_id=loose.id)
        stored = await labels.find_by_id(conn, label.id)
    assert stored is not None
    assert stored.shared_label_id == label.id
    payloads = [op.payload for op in await _ops(store) if op.op_type == OpType.LABEL_UPSERT]
    assert payloads == [
        LabelUpsert(id=label.id, project_id=linked.id, name="bug", icon="tag", color="#6b7280"),
        LabelUpsert(id=label.id, project_id=linked.id, name="defect", icon="bug", color="#d73a4a"),
    ]


async def test_an_op_a_hive_does_not_know_goes_as_a_stand_in_it_refuses(store: Store) -> None:
    """After a hive downgrade, a queued ``progress.append`` is sent as an ``assignment.status``
    of no assignment (the older hive answers ``op_rejected``), so no seq is skipped."""
    async with store.transaction() as conn:
        await link_state.save_hive_features(conn, list(HIVE_FEATURES))
        await _seed.world(conn)
    (progress,) = [op for op in await _ops(store) if isinstance(op.payload, ProgressAppend)]
    assert for_hive(progress, frozenset(HIVE_FEATURES)) is progress
    stand_in = for_hive(progress, frozenset({"label_ops"}))
    assert (stand_in.seq, stand_in.idempotency_key) == (progress.seq, progress.idempotency_key)
    assert isinstance(stand_in.payload, AssignmentStatus)
    assert stand_in.payload.assignment_id == progress.entity_id
    assert FEATURE_PROGRESS_OPS in (stand_in.payload.message or "")
