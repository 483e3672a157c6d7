"""What the maintenance job runs, at the repository level: partitions, the retention lock,
stale nodes, expiry sweeps."""

from __future__ import annotations

import datetime as dt
import uuid

import asyncpg
import pytest

from integration.hive.store._world import World
from vk_hive.auth import repository as auth_repo
from vk_hive.auth.browser import issue_login_link, redeem_login_link
from vk_hive.auth.crypto import sha256_hex
from vk_hive.jobs.maintenance import expire_credentials
from vk_hive.store.db import Database
from vk_hive.store.repositories import activity, assignments, nodes, shared_tasks
from vk_hive.store.repositories.shared_tasks import NewTask
from vk_hive.tenancy import repository as tenancy_repo

RETENTION = dt.timedelta(days=2)


@pytest.mark.asyncio
async def test_prune_drops_old_partitions_and_skips_when_locked(hive_db: Database) -> None:
    """Pruning drops partitions past retention; while another session holds the lock it skips."""
    async with hive_db.acquire() as conn:
        old = await conn.fetchval("SELECT ensure_activity_partition(now() - interval '5 days')")
        async with hive_db.acquire() as other, other.transaction():
            await other.execute("SELECT pg_advisory_xact_lock($1)", activity.RETENTION_LOCK_KEY)
            async with conn.transaction():
                assert await activity.drop_partitions_before(conn, RETENTION) is None
        async with conn.transaction():
            dropped = await activity.drop_partitions_before(conn, RETENTION)
        assert dropped == [old]
        assert len(await activity.ensure_partitions(conn)) == 3
        await activity.append(conn, uuid.uuid4(), "task.created", {})


@pytest.mark.asyncio
async def test_stale_nodes_go_offline_and_fail_their_assignments(world: World) -> None:
    """A node silent past the threshold goes offline and its active assignment fails."""
    async with world.db.acquire() as conn:
        task = await shared_tasks.create(
            conn,
            NewTask(organization_id=world.org_id, swarm_project_id=world.project.id, title="a"),
        )
        await assignments.create(conn, task.task.id, world.node.id, world.link.id)
        await conn.execute(
            "UPDATE nodes SET last_heartbeat_at = now() - interval '10 minutes' WHERE id = $1",
            world.node.id,
        )
        async with conn.transaction():
            stale = await nodes.mark_stale_offline(conn, dt.timedelta(seconds=90))
            failed = await assignments.fail_node_assignments(conn, world.node.id)
    assert world.node.id in stale
    assert task.task.id in failed


@pytest.mark.asyncio
async def test_expiry_sweeps_mark_invitations_and_handoffs(world: World) -> None:
    """Expired pending invitations and unredeemed handoffs are marked expired; fresh ones stay."""
    async with world.db.acquire() as conn:
        await _invite(conn, world.org_id, "old@example.com", dt.timedelta(days=-1))
        fresh = await _invite(conn, world.org_id, "new@example.com", dt.timedelta(days=1))
        await conn.execute(
            "INSERT INTO oauth_handoffs (provider, state, return_to, app_challenge, expires_at, "
            "encrypted_provider_tokens) VALUES ('github', $1, 'http://x', 'c', "
            "now() - interval '1 minute', 'secret')",
            uuid.uuid4().hex,
        )
        assert await tenancy_repo.expire_invitations(conn) >= 1
        assert await auth_repo.expire_stale_handoffs(conn) >= 1
        status = await conn.fetchval(
            "SELECT status FROM organization_invitations WHERE id = $1", fresh
        )
        wiped = await conn.fetchval(
            "SELECT count(*) FROM oauth_handoffs WHERE encrypted_provider_tokens IS NOT NULL "
            "AND status = 'expired'"
        )
    assert status == "pending"
    assert wiped == 0


@pytest.mark.asyncio
async def test_login_links_are_deleted_a_day_after_they_expired(world: World) -> None:
    """Maintenance deletes login links (used or not) that expired more than a day ago and keeps
    live ones and recently expired ones."""
    async with world.db.acquire() as conn:
        user = await auth_repo.upsert_user(conn, email=f"{uuid.uuid4().hex[:8]}@example.com")
        live = await issue_login_link(conn, user.id)
        for hours in (2, 30):
            old = await issue_login_link(conn, user.id)
            await conn.execute(
                "UPDATE login_links SET expires_at = now() - make_interval(hours => $2) "
                "WHERE token_hash = $1",
                sha256_hex(old.token),
                hours,
            )
    _, _, _, deleted = await expire_credentials(world.db)
    assert deleted == 1
    async with world.db.acquire() as conn:
        left = await conn.fetchval("SELECT count(*) FROM login_links WHERE user_id = $1", user.id)
        assert left == 2
        assert await redeem_login_link(conn, live.token) == user.id


async def _invite(
    conn: asyncpg.Connection, org_id: uuid.UUID, email: str, offset: dt.timedelta
) -> uuid.UUID:
    invite_id: uuid.UUID = await conn.fetchval(
        "INSERT INTO organization_invitations (organization_id, email, token_hash, expires_at) "
        "VALUES ($1, $2, $3, now() + $4::interval) RETURNING id",
        org_id,
        email,
        uuid.uuid4().hex,
        offset,
    )
    return invite_id
