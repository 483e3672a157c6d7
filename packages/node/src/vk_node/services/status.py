"""``vk-node migrate`` and ``vk-node status``: what the store holds and what waits for the hive."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from vk_node.settings import NodeSettings
from vk_node.store import Store, migrate, outbox
from vk_node.store.files import secure_data_dir
from vk_node.store.repositories import link_state as link_state_repo
from vk_node.store.repositories import node_identity
from vk_node.store.repositories import projects as projects_repo
from vk_node.store.repositories import task_attempts as attempts_repo
from vk_node.store.repositories import tasks as tasks_repo

__all__ = ["StatusReport", "collect_status", "migrate_store", "render_status"]


class StatusReport(msgspec.Struct, frozen=True, kw_only=True):
    store_path: str
    store_exists: bool
    schema_version: int
    projects: int
    linked_projects: int
    tasks: int
    attempts: int
    outbox_unacked: int
    outbox_last_acked_seq: int
    oldest_unacked_age_s: float | None
    """Seconds since the oldest unacked op was written (``None`` when nothing waits)."""
    hive_link: str
    hive_urls: list[str] = msgspec.field(default_factory=list)
    """The configured hive URLs, in the order the link tries them (empty when standalone)."""
    link_state: str | None = None
    """Last state the running daemon recorded: ``connecting``, ``connected``, ``disconnected``,
    ``stopped`` (``None`` when no link ever ran on this store)."""
    link_hive_url: str | None = None
    """The hive URL the daemon was connected to (or trying, or tried last)."""
    link_connected_since: datetime | None = None
    link_last_error: str | None = None
    link_backoff_until: datetime | None = None
    link_node_id: str | None = None
    link_updated_at: datetime | None = None
    machine_id: str | None = None
    """This instance's id on the hive (``VK_NODE_MACHINE_ID`` when set; ``None`` before the first
    start)."""


async def migrate_store(settings: NodeSettings) -> list[str]:
    """Create the data dir (``0700``, tightening an existing one) and apply pending migrations;
    the labels applied (empty = current)."""
    await asyncio.to_thread(secure_data_dir, settings.data_path)
    await asyncio.to_thread(settings.worktrees_dir.mkdir, parents=True, exist_ok=True)
    return await migrate(settings.db_path)


def _hive_link(settings: NodeSettings) -> str:
    if settings.standalone:
        return "standalone (VK_HIVE_URL unset)"
    return f"configured: {', '.join(settings.hive_urls)}"


async def collect_status(settings: NodeSettings) -> StatusReport:
    """Read the store without creating or migrating it."""
    path: Path = settings.db_path
    if not await asyncio.to_thread(path.exists):
        return StatusReport(
            store_path=str(path),
            store_exists=False,
            schema_version=0,
            projects=0,
            linked_projects=0,
            tasks=0,
            attempts=0,
            outbox_unacked=0,
            outbox_last_acked_seq=0,
            oldest_unacked_age_s=None,
            hive_link=_hive_link(settings),
            hive_urls=list(settings.hive_urls),
        )
    store = await Store.open(path, migrate=False)
    try:
        async with store.read() as conn:
            projects = await projects_repo.find_local_projects(conn)
            tasks = await tasks_repo.count(conn)
            attempts = await attempts_repo.count(conn)
            unacked = await outbox.backlog_count(conn)
            acked_through = await outbox.last_acked_seq(conn)
            oldest = await outbox.oldest_unacked_created_at(conn)
            try:
                link = await link_state_repo.get(conn)
            except Exception:  # an older schema without the link table
                link = None
            try:
                stored_id = await node_identity.get(conn)
            except Exception:  # an older schema without the identity table
                stored_id = None
        age = None if oldest is None else max(0.0, (datetime.now(UTC) - oldest).total_seconds())
        return StatusReport(
            store_path=str(path),
            store_exists=True,
            schema_version=store.schema_version,
            projects=len(projects),
            linked_projects=sum(p.remote_project_id is not None for p in projects),
            tasks=tasks,
            attempts=attempts,
            outbox_unacked=unacked,
            outbox_last_acked_seq=acked_through,
            oldest_unacked_age_s=age,
            hive_link=_hive_link(settings),
            hive_urls=list(settings.hive_urls),
            link_state=None if link is None else link.state,
            link_hive_url=None if link is None or not link.hive_url else link.hive_url,
            link_connected_since=None if link is None else link.connected_since,
            link_last_error=None if link is None else link.last_error,
            link_backoff_until=None if link is None else link.backoff_until,
            link_node_id=None if link is None or link.node_id is None else str(link.node_id),
            link_updated_at=None if link is None else link.updated_at,
            machine_id=settings.machine_id or stored_id,
        )
    finally:
        await store.close()


def render_status(report: StatusReport) -> str:
    """The human-readable form printed by ``vk-node status``."""
    if not report.store_exists:
        store = f"{report.store_path} (not created yet; run `vk-node migrate` or `serve`)"
    else:
        store = report.store_path
    age = "n/a" if report.oldest_unacked_age_s is None else f"{report.oldest_unacked_age_s:.0f} s"
    lines = [
        f"store:          {store}",
        f"schema version: {report.schema_version}",
        f"projects:       {report.projects} ({report.linked_projects} linked)",
        f"tasks:          {report.tasks}",
        f"attempts:       {report.attempts}",
        f"outbox backlog: {report.outbox_unacked} unacked (acked through seq "
        f"{report.outbox_last_acked_seq}; oldest unacked age: {age})",
        f"hive link:      {report.hive_link}",
    ]
    if report.machine_id is not None:
        lines.append(f"machine id:     {report.machine_id}")
    if report.link_state is not None:
        lines.append(f"link state:     {_link_line(report)}")
    return "\n".join(lines)


def _ts(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def _link_line(report: StatusReport) -> str:
    """The link state the daemon recorded (``vk-node status`` only reads the store file)."""
    parts = [report.link_state or "unknown"]
    if report.link_state == "connected" and report.link_connected_since is not None:
        parts.append(f"since {_ts(report.link_connected_since)}")
    if report.link_hive_url:
        parts.append(f"hive {report.link_hive_url}")
    if report.link_node_id:
        parts.append(f"node id {report.link_node_id}")
    if report.link_state != "connected" and report.link_last_error:
        parts.append(f"last error: {report.link_last_error}")
    if report.link_state == "disconnected" and report.link_backoff_until is not None:
        parts.append(f"next attempt at {_ts(report.link_backoff_until)}")
    if report.link_updated_at is not None:
        parts.append(f"(recorded {_ts(report.link_updated_at)})")
    return "; ".join(parts)
