"""Maintenance jobs: activity partitions and retention, expiry of invitations and handoffs,
deletion of old login links."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from vk_hive.auth import repository as auth_repo
from vk_hive.auth.browser import delete_old_login_links
from vk_hive.jobs.runner import PeriodicJob
from vk_hive.store.db import Database
from vk_hive.store.repositories import activity
from vk_hive.tenancy import repository as tenancy_repo

__all__ = ["MaintenanceReport", "maintenance_jobs", "run_maintenance"]

log = structlog.get_logger("vk_hive.jobs")

ACTIVITY_RETENTION = dt.timedelta(days=2)
HANDOFF_KEEP_S = 24 * 3600.0


async def provision_partitions(db: Database) -> list[str]:
    async with db.transaction() as conn:
        return await activity.ensure_partitions(conn)


async def prune_activity(db: Database) -> list[str]:
    """Drop activity partitions past retention (skipped while another hive holds the lock)."""
    async with db.transaction() as conn:
        return await activity.drop_partitions_before(conn, ACTIVITY_RETENTION) or []


async def expire_credentials(db: Database) -> tuple[int, int, int, int]:
    async with db.transaction() as conn:
        invitations = await tenancy_repo.expire_invitations(conn)
        handoffs = await auth_repo.expire_stale_handoffs(conn)
        deleted = await auth_repo.delete_old_handoffs(conn, HANDOFF_KEEP_S)
        links = await delete_old_login_links(conn, HANDOFF_KEEP_S)
    return invitations, handoffs, deleted, links


@dataclass(frozen=True)
class MaintenanceReport:
    """What one maintenance run did."""

    partitions_ensured: list[str]
    partitions_dropped: list[str]
    finished_at: dt.datetime


async def run_maintenance(db: Database) -> MaintenanceReport:
    created = await provision_partitions(db)
    dropped = await prune_activity(db)
    invitations, handoffs, deleted, links = await expire_credentials(db)
    log.info(
        "maintenance.done",
        partitions=len(created),
        dropped_partitions=dropped,
        expired_invitations=invitations,
        expired_handoffs=handoffs,
        deleted_handoffs=deleted,
        deleted_login_links=links,
    )
    return MaintenanceReport(
        partitions_ensured=created,
        partitions_dropped=dropped,
        finished_at=dt.datetime.now(dt.UTC),
    )


def maintenance_jobs(
    db: Database,
    interval_s: float,
    on_report: Callable[[MaintenanceReport], None] | None = None,
) -> list[PeriodicJob]:
    """The periodic maintenance job; ``on_report`` receives each run's report (the metrics)."""

    async def run() -> None:
        report = await run_maintenance(db)
        if on_report is not None:
            on_report(report)

    return [PeriodicJob("maintenance", interval_s, run)]
