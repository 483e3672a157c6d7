"""Task variables: ``NAME=value`` pairs of a task, inherited down the subtask chain and expanded
in prompts as ``${NAME}``.

Resolution (:func:`resolve`): system variables first (``TASK_ID``, ``PARENT_TASK_ID``,
``TASK_TITLE``, ``TASK_DESCRIPTION``, ``TASK_LABEL`` (first label by name), ``PROJECT_ID``,
``PROJECT_TITLE``, ``IS_SUBTASK``), then user variables walking up ``parent_task_id`` where the
nearest definition wins; user variables override system ones.
"""

from __future__ import annotations

import re
import sqlite3
from uuid import UUID, uuid4

import aiosqlite

from vk_node.errors import Conflict, NotFound
from vk_node.store.codec import now_db, uuid_to_db
from vk_node.store.models import TaskVariable
from vk_node.store.repositories import projects, tasks
from vk_node.store.sql import execute, fetch_all, fetch_model, fetch_models, fetch_value

__all__ = [
    "create",
    "delete",
    "expand",
    "find_by_id",
    "find_by_task_id",
    "find_inherited",
    "resolve",
    "system_variables",
    "update",
    "upsert_for_task",
]

NAME_PATTERN = re.compile(r"^[A-Z][A-Z0-9_]*$")
_REFERENCE = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")


async def find_by_id(conn: aiosqlite.Connection, variable_id: UUID) -> TaskVariable | None:
    return await fetch_model(
        conn, TaskVariable, "SELECT * FROM task_variables WHERE id = ?", (str(variable_id),)
    )


async def find_by_task_id(conn: aiosqlite.Connection, task_id: UUID) -> list[TaskVariable]:
    return await fetch_models(
        conn,
        TaskVariable,
        "SELECT * FROM task_variables WHERE task_id = ? ORDER BY name",
        (uuid_to_db(task_id),),
    )


def _check_name(name: str) -> None:
    if not NAME_PATTERN.match(name):
        raise Conflict(f"invalid variable name {name!r} (expected [A-Z][A-Z0-9_]*)")


async def create(conn: aiosqlite.Connection, task_id: UUID, name: str, value: str) -> TaskVariable:
    """Define a variable on a task; :class:`Conflict` on a bad or duplicate name."""
    _check_name(name)
    variable_id = uuid4()
    now = now_db()
    try:
        await execute(
            conn,
            """INSERT INTO task_variables (id, task_id, name, value, created_at, updated_at)
               VALUES (?, ?, ?, ?, ?, ?)""",
            (str(variable_id), uuid_to_db(task_id), name, value, now, now),
        )
    except sqlite3.IntegrityError as exc:
        raise Conflict(f"variable {name} cannot be created: {exc}") from exc
    found = await find_by_id(conn, variable_id)
    assert found is not None
    return found


async def upsert_for_task(
    conn: aiosqlite.Connection, task_id: UUID, name: str, value: str
) -> TaskVariable:
    """Create or overwrite the task's variable ``name``."""
    _check_name(name)
    now = now_db()
    await execute(
        conn,
        """INSERT INTO task_variables (id, task_id, name, value, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT (task_id, name) DO UPDATE SET value = excluded.value,
               updated_at = excluded.updated_at""",
        (str(uuid4()), uuid_to_db(task_id), name, value, now, now),
    )
    found = await fetch_model(
        conn,
        TaskVariable,
        "SELECT * FROM task_variables WHERE task_id = ? AND name = ?",
        (uuid_to_db(task_id), name),
    )
    assert found is not None
    return found


async def update(
    conn: aiosqlite.Connection, variable_id: UUID, *, name: str, value: str
) -> TaskVariable:
    _check_name(name)
    try:
        changed = await execute(
            conn,
            "UPDATE task_variables SET name = ?, value = ?, updated_at = ? WHERE id = ?",
            (name, value, now_db(), str(variable_id)),
        )
    except sqlite3.IntegrityError as exc:
        raise Conflict(f"variable {name} already exists on the task") from exc
    if not changed:
        raise NotFound(f"task variable {variable_id} not found")
    found = await find_by_id(conn, variable_id)
    assert found is not None
    return found


async def delete(conn: aiosqlite.Connection, variable_id: UUID) -> bool:
    return bool(await execute(conn, "DELETE FROM task_variables WHERE id = ?", (str(variable_id),)))


async def find_inherited(conn: aiosqlite.Connection, task_id: UUID) -> dict[str, str]:
    """User variables visible to a task: its own and its ancestors', the nearest winning."""
    rows = await fetch_all(
        conn,
        """WITH RECURSIVE chain (id, parent_task_id, depth) AS (
               SELECT id, parent_task_id, 0 FROM tasks WHERE id = ?
               UNION ALL
               SELECT t.id, t.parent_task_id, chain.depth + 1
               FROM tasks t JOIN chain ON t.id = chain.parent_task_id
               WHERE chain.depth < 64
           )
           SELECT v.name, v.value FROM task_variables v JOIN chain ON v.task_id = chain.id
           ORDER BY chain.depth DESC""",
        (uuid_to_db(task_id),),
    )
    return {r["name"]: r["value"] for r in rows}  # deeper ancestors first, nearest overwrites


async def system_variables(conn: aiosqlite.Connection, task_id: UUID) -> dict[str, str]:
    """The built-in variables of a task."""
    task = await tasks.get(conn, task_id)
    project = await projects.get(conn, task.project_id)
    label = await fetch_value(
        conn,
        """SELECT l.name FROM task_labels tl JOIN labels l ON l.id = tl.label_id
           WHERE tl.task_id = ? ORDER BY l.name LIMIT 1""",
        (uuid_to_db(task_id),),
    )
    return {
        "TASK_ID": str(task.id),
        "PARENT_TASK_ID": "" if task.parent_task_id is None else str(task.parent_task_id),
        "TASK_TITLE": task.title,
        "TASK_DESCRIPTION": task.description or "",
        "TASK_LABEL": label or "",
        "PROJECT_ID": str(project.id),
        "PROJECT_TITLE": project.name,
        "IS_SUBTASK": "true" if task.parent_task_id is not None else "false",
    }


async def resolve(conn: aiosqlite.Connection, task_id: UUID) -> dict[str, str]:
    """System variables overlaid with the inherited user variables."""
    return {**await system_variables(conn, task_id), **await find_inherited(conn, task_id)}


def expand(text: str, variables: dict[str, str]) -> str:
    """Replace every ``${NAME}`` with its value; unknown names are left as written (one pass, so
    values are never expanded again)."""
    return _REFERENCE.sub(lambda m: variables.get(m.group(1), m.group(0)), text)
