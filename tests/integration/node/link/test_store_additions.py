"""Store additions for the hive link: commit notifications, assignments, link state, node cache."""

from __future__ import annotations

from pathlib import Path
from uuid import uuid4

import pytest

from vk_node.store import Store, outbox
from vk_node.store.repositories import cached_nodes, link_state
from vk_node.store.repositories import hive_assignments as repo
from vk_shared.status import ExecutionStatus


async def _enqueue_then_fail(store: Store) -> None:
    async with store.transaction() as conn:
        await outbox.enqueue_assignment_status(conn, uuid4(), ExecutionStatus.RUNNING)
        raise RuntimeError("roll back")


@pytest.mark.asyncio
async def test_outbox_listeners_fire_after_commits_that_enqueued_only(tmp_path: Path) -> None:
    """Listeners run after a commit that appended ops, never for rollbacks or op-free writes."""
    async with await Store.open(tmp_path / "db.sqlite") as store:
        calls: list[int] = []
        remove = store.add_outbox_listener(lambda: calls.append(1))
        async with store.transaction() as conn:
            await outbox.enqueue_assignment_status(conn, uuid4(), ExecutionStatus.RUNNING)
        assert calls == [1]
        with pytest.raises(RuntimeError, match="roll back"):
            await _enqueue_then_fail(store)
        async with store.transaction() as conn:
            await link_state.save(
                conn,
                state="connecting",
                hive_url="http://h",
                node_id=None,
                organization_id=None,
                connected_since=None,
                last_error=None,
                backoff_until=None,
                pid=1,
            )
        assert calls == [1]
        async with store.read() as conn:
            assert await outbox.last_seq(conn) == 1
        remove()
        async with store.transaction() as conn:
            await outbox.enqueue_assignment_status(conn, uuid4(), ExecutionStatus.RUNNING)
        assert calls == [1]


@pytest.mark.asyncio
async def test_assignments_keep_the_highest_token_and_retire_once_their_terminal_op_is_acked(
    tmp_path: Path,
) -> None:
    """Tokens only go up; an assignment retires when the ack covers its terminal op."""
    async with await Store.open(tmp_path / "db.sqlite") as store:
        a = uuid4()
        async with store.transaction() as conn:
            row, new = await repo.record(
                conn,
                assignment_id=a,
                shared_task_id=uuid4(),
                swarm_project_id=uuid4(),
                local_project_id=uuid4(),
                fencing_token=5,
            )
            assert new
            assert row.status == ExecutionStatus.PENDING
            _, new = await repo.record(
                conn,
                assignment_id=a,
                shared_task_id=row.shared_task_id,
                swarm_project_id=row.swarm_project_id,
                local_project_id=row.local_project_id,
                fencing_token=4,
            )
            assert not new
            assert await repo.update_token(conn, a, 9)
            assert not await repo.update_token(conn, a, 8)
            await repo.set_status(conn, a, ExecutionStatus.COMPLETED, terminal_seq=12)
            assert await repo.retire_acked(conn, 11) == []
            assert await repo.retire_acked(conn, 12) == [a]
            found = await repo.find(conn, a)
            assert found is not None
            assert found.fencing_token == 9
            assert found.retired_at is not None
            assert await repo.list_live(conn) == []


@pytest.mark.asyncio
async def test_node_status_pushes_insert_then_update_cached_nodes(tmp_path: Path) -> None:
    """A pushed status creates an unknown node and later only changes what the push carries."""
    async with await Store.open(tmp_path / "db.sqlite") as store:
        node, org = uuid4(), uuid4()
        async with store.transaction() as conn:
            first = await cached_nodes.upsert_status(
                conn, node_id=node, organization_id=org, status="online", name="n1"
            )
            second = await cached_nodes.upsert_status(
                conn, node_id=node, organization_id=org, status="offline"
            )
        assert (first.name, first.status) == ("n1", "online")
        assert (second.name, second.status) == ("n1", "offline")
