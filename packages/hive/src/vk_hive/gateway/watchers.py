"""The user activity stream sessions (``/v1/ws``) of this hive process, by organization, by
streamed project and by followed execution process.

:class:`WatcherRegistry` is the :class:`~vk_hive.gateway.ports.Watchers` the activity fan-out
and the node status broadcasts consult besides the node :class:`~vk_hive.gateway.ports.Directory`
— node sessions never see it. It knows which organization each project it heard of belongs to;
an event of a project it does not know (created after the sessions' ``hello``) is
:meth:`~WatcherRegistry.adopt`-ed once the fan-out has read the project's organization, and the
organization's sessions start streaming it from its first event. Like the registry of nodes, it
keeps its own indexes, so dropping a session never asks the session what it watched.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from vk_hive.gateway.ports import Watcher

__all__ = ["WatcherRegistry"]


class WatcherRegistry:
    """In-memory index of the user stream sessions of this process."""

    def __init__(self) -> None:
        self._by_org: dict[uuid.UUID, dict[Watcher, None]] = {}
        self._org_of_project: dict[uuid.UUID, uuid.UUID | None] = {}
        self._streaming: dict[uuid.UUID, dict[Watcher, None]] = {}
        self._following: dict[uuid.UUID, dict[Watcher, None]] = {}
        self._projects_of: dict[Watcher, set[uuid.UUID]] = {}
        self._processes_of: dict[Watcher, set[uuid.UUID]] = {}

    def __len__(self) -> int:
        return len(self._projects_of)

    def add(self, watcher: Watcher, projects: Iterable[uuid.UUID]) -> None:
        """Register ``watcher`` with the projects of its organization it streams."""
        self._by_org.setdefault(watcher.organization_id, {})[watcher] = None
        self._projects_of.setdefault(watcher, set())
        self._processes_of.setdefault(watcher, set())
        for project_id in projects:
            self.subscribe(watcher, project_id)

    def remove(self, watcher: Watcher) -> None:
        org = self._by_org.get(watcher.organization_id)
        if org is not None:
            org.pop(watcher, None)
            if not org:
                del self._by_org[watcher.organization_id]
        for project_id in self._projects_of.pop(watcher, set()):
            _discard(self._streaming, project_id, watcher)
        for process_id in self._processes_of.pop(watcher, set()):
            _discard(self._following, process_id, watcher)

    def subscribe(self, watcher: Watcher, project_id: uuid.UUID) -> None:
        """``watcher`` streams the project (which belongs to its organization)."""
        projects = self._projects_of.get(watcher)
        if projects is None:
            return
        self._org_of_project[project_id] = watcher.organization_id
        self._streaming.setdefault(project_id, {})[watcher] = None
        projects.add(project_id)

    def follow(self, watcher: Watcher, execution_process_id: uuid.UUID) -> None:
        processes = self._processes_of.get(watcher)
        if processes is not None:
            self._following.setdefault(execution_process_id, {})[watcher] = None
            processes.add(execution_process_id)

    def unfollow(self, watcher: Watcher, execution_process_id: uuid.UUID) -> None:
        processes = self._processes_of.get(watcher)
        if processes is not None:
            processes.discard(execution_process_id)
            _discard(self._following, execution_process_id, watcher)

    def watchers(self) -> list[Watcher]:
        return list(self._projects_of)

    def for_org(self, organization_id: uuid.UUID) -> list[Watcher]:
        return list(self._by_org.get(organization_id, ()))

    def for_project(self, project_id: uuid.UUID) -> list[Watcher] | None:
        """Watchers streaming the project; None when there are watchers and the project's
        organization is not known yet."""
        if project_id in self._org_of_project or not self._by_org:
            return list(self._streaming.get(project_id, ()))
        return None

    def adopt(self, project_id: uuid.UUID, organization_id: uuid.UUID | None) -> list[Watcher]:
        """The project belongs to ``organization_id`` (None: it does not exist): its
        organization's watchers start streaming it."""
        self._org_of_project[project_id] = organization_id
        if organization_id is None:
            return []
        adopted = self.for_org(organization_id)
        for watcher in adopted:
            watcher.watch_project(project_id)
        return adopted

    def following(self, execution_process_id: uuid.UUID) -> list[Watcher]:
        return list(self._following.get(execution_process_id, ()))


def _discard(index: dict[uuid.UUID, dict[Watcher, None]], key: uuid.UUID, watcher: Watcher) -> None:
    members = index.get(key)
    if members is not None:
        members.pop(watcher, None)
        if not members:
            del index[key]
