"""The reads behind :func:`vk_hive.gateway.plan.plan`: one query per :class:`~.plan.Fact`.

:class:`FactReader` runs inside the batch's transaction, after the node's project counters were
locked; the fence facts (``ACTIVE_ASSIGNMENT``, ``LOCKED_ASSIGNMENT``) take their ``FOR SHARE``
row locks here, after the counters and before any task or assignment write of the op — the hive's
lock order.
"""

from __future__ import annotations

import uuid

import asyncpg

from vk_hive.gateway.plan import Fact, Facts, Need
from vk_hive.store.repositories import (
    assignments,
    executions,
    labels,
    node_local_projects,
    op_log,
    shared_tasks,
)

__all__ = ["FactReader"]


class FactReader:
    def __init__(self, conn: asyncpg.Connection, node_id: uuid.UUID) -> None:
        self._conn = conn
        self._node_id = node_id

    async def read(self, facts: Facts, need: Need) -> None:
        """Read the needed fact into ``facts``."""
        conn, node_id, key = self._conn, self._node_id, need.key
        match need.fact:
            case Fact.INVENTORY:
                found = await node_local_projects.find_by_node_and_project(conn, node_id, key)
                facts.inventory[key] = found is not None
            case Fact.TASK:
                facts.tasks[key] = await shared_tasks.find_including_deleted(conn, key)
            case Fact.OWN_TASK:
                facts.own_tasks[key] = await shared_tasks.find_by_source_task_id(conn, node_id, key)
            case Fact.RECORDED:
                facts.recorded[key] = await op_log.has_entity(conn, node_id, key)
            case Fact.ACTIVE_ASSIGNMENT:
                facts.active_assignments[key] = await assignments.find_active_for_task(
                    conn, key, lock=True
                )
            case Fact.LATEST_OWN_ASSIGNMENT:
                facts.latest_own_assignments[key] = await assignments.find_latest_by_task_id(
                    conn, key, node_id
                )
            case Fact.ASSIGNMENT:
                facts.assignments[key] = await assignments.find_by_id(conn, key)
            case Fact.LOCKED_ASSIGNMENT:
                facts.locked_assignments[key] = await assignments.find_by_id(conn, key, lock=True)
            case Fact.ATTEMPT:
                facts.attempts[key] = await executions.find_attempt(conn, key)
            case Fact.PROCESS:
                facts.processes[key] = await executions.find_process(conn, key)
            case Fact.LABEL:
                facts.labels[key] = await labels.find_including_deleted(conn, key)
