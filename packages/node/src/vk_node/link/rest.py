"""The hive's node-sync REST endpoints (docs/sync-protocol.md, Snapshots), with the node API key
as Bearer token: a project snapshot after ``resync_required`` and named tasks after a digest."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import httpx

from vk_node.link.activity import RemoteTask, parse_task

__all__ = ["Snapshot", "SyncClient", "SyncError"]

_PULL_CHUNK = 100


class SyncError(Exception):
    """The hive did not answer a sync request usefully (the message says why; no secrets)."""


class Snapshot:
    def __init__(self, latest_seq: int, tasks: list[RemoteTask]) -> None:
        self.latest_seq = latest_seq
        self.tasks = tasks


def _tasks(items: Any) -> list[RemoteTask]:
    if not isinstance(items, list):
        return []
    return [t for t in (parse_task(item) for item in items) if t is not None]


class SyncClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout_s: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url,
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout_s,
            transport=transport,
        )

    @property
    def base_url(self) -> str:
        return str(self._client.base_url)

    @base_url.setter
    def base_url(self, value: str) -> None:
        """Requests go to another hive from now on (the one the link's session is on)."""
        self._client.base_url = value

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _get(self, path: str, params: dict[str, str] | None = None) -> Any:
        try:
            response = await self._client.get(path, params=params)
        except httpx.HTTPError as exc:
            raise SyncError(f"GET {path}: {type(exc).__name__}: {exc}") from None
        if response.status_code != 200:
            raise SyncError(f"GET {path}: HTTP {response.status_code}: {response.text[:300]}")
        try:
            return response.json()
        except ValueError:
            raise SyncError(f"GET {path}: not JSON") from None

    async def snapshot(self, swarm_project_id: UUID) -> Snapshot:
        """``GET /v1/sync/projects/{id}/snapshot`` → ``{latest_seq, tasks}``."""
        body = await self._get(f"/v1/sync/projects/{swarm_project_id}/snapshot")
        if not isinstance(body, dict):
            raise SyncError("snapshot: not an object")
        latest = body.get("latest_seq") or 0
        return Snapshot(int(latest) if isinstance(latest, int) else 0, _tasks(body.get("tasks")))

    async def tasks(self, ids: Sequence[UUID]) -> list[RemoteTask]:
        """``GET /v1/sync/tasks?ids=…`` in chunks; tasks the hive does not return are absent."""
        found: list[RemoteTask] = []
        for start in range(0, len(ids), _PULL_CHUNK):
            chunk = ids[start : start + _PULL_CHUNK]
            body = await self._get("/v1/sync/tasks", {"ids": ",".join(str(i) for i in chunk)})
            items = body.get("tasks") if isinstance(body, dict) else body
            found.extend(_tasks(items))
        return found
