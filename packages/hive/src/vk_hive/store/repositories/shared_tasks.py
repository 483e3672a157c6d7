"""Shared tasks: the hive's copy of every task, with optimistic versions and an activity trail.

Every mutation bumps ``version`` and appends its activity event (``task.created``,
``task.updated``, ``task.reassigned``, ``task.deleted``) in the same transaction. Status changes
follow ``vk_shared.status``: an illegal transition raises InvalidTransition, never coerced.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
import msgspec

from vk_hive.errors import InvalidInput, InvalidTransition, NotFound, VersionConflict
from vk_hive.store.models import (
    BulkSnapshot,
    SharedTask,
    SharedTaskWithOwner,
    SharedTaskWithUser,
    SourceTaskVersion,
    UserData,
    from_row,
    from_rows,
)
from vk_hive.store.repositories import activity
from vk_shared.protocol import MAX_TASK_TEXT_BYTES
from vk_shared.status import Author, TaskStatus, is_legal, may_transition

_COLUMNS = """id, organization_id, project_id, swarm_project_id, creator_user_id,
    assignee_user_id, deleted_by_user_id, title, description, status, executor, version,
    deleted_at, shared_at, archived_at, executing_node_id, owner_node_id, owner_name,
    source_node_id, source_task_id, created_at, updated_at"""


class Keep(enum.Enum):
    """Marker for "leave this field as it is" where None means "clear it"."""

    KEEP = "keep"


KEEP = Keep.KEEP


class NewTask(msgspec.Struct, kw_only=True):
    organization_id: uuid.UUID
    swarm_project_id: uuid.UUID
    title: str
    description: str | None = None
    executor: str = "CLAUDE_CODE"
    creator_user_id: uuid.UUID | None = None
    assignee_user_id: uuid.UUID | None = None


class NodeTaskData(msgspec.Struct, kw_only=True):
    """A node's view of a task (``task.upsert`` op), already validated and canonicalised."""

    organization_id: uuid.UUID
    swarm_project_id: uuid.UUID
    source_task_id: uuid.UUID
    title: str
    description: str | None = None
    status: TaskStatus = TaskStatus.TODO
    shared_task_id: uuid.UUID | None = None
    assignee_user_id: uuid.UUID | None = None
    owner_name: str | None = None
    executor: str | None = None
    archived_at: dt.datetime | None = None
    origin_seq: int | None = None
    """The outbox seq of the node op carrying this data; its activity event names it as
    ``origin`` so the node can tell an echo of an older write of its own from newer news."""


def _origin(node_id: uuid.UUID, data: NodeTaskData) -> dict[str, Any] | None:
    if data.origin_seq is None:
        return None
    return {"node_id": str(node_id), "seq": data.origin_seq}


def _check_text(title: str, description: str | None) -> None:
    size = len(title.encode()) + len((description or "").encode())
    if size > MAX_TASK_TEXT_BYTES:
        raise InvalidInput(f"title and description exceed {MAX_TASK_TEXT_BYTES} bytes")
    if "\x00" in title or "\x00" in (description or ""):
        raise InvalidInput("title and description must not contain NUL bytes")


def _check_transition(frm: TaskStatus, to: TaskStatus, author: Author | None) -> None:
    """``author=None`` accepts any legal transition (an operator via REST)."""
    if frm == to:
        return
    ok = is_legal(frm, to) if author is None else may_transition(author, frm, to)
    if not ok:
        by = "" if author is None else f" by {author.value}"
        raise InvalidTransition(f"illegal status transition {frm.value} -> {to.value}{by}")


async def _user_data(conn: asyncpg.Connection, user_id: uuid.UUID | None) -> UserData | None:
    if user_id is None:
        return None
    row = await conn.fetchrow(
        "SELECT id, first_name, last_name, username FROM users WHERE id = $1", user_id
    )
    return None if row is None else from_row(UserData, row)


async def _record(
    conn: asyncpg.Connection,
    event_type: str,
    task: SharedTask,
    origin: dict[str, Any] | None = None,
) -> SharedTaskWithUser:
    """Append the task's activity event (with the node op it comes from, if any); returns the
    task with its assignee's user data."""
    user = await _user_data(conn, task.assignee_user_id)
    if task.project_id is not None:
        payload = {"task": msgspec.to_builtins(task), "user": msgspec.to_builtins(user)}
        if origin is not None:
            payload["origin"] = origin
        await activity.append(
            conn,
            task.project_id,
            event_type,
            payload,
            swarm_project_id=task.swarm_project_id,
            assignee_user_id=task.assignee_user_id,
        )
    return SharedTaskWithUser(task=task, user=user)


async def _locked(conn: asyncpg.Connection, task_id: uuid.UUID) -> SharedTask:
    """Lock the task row for a write, after its project's activity counter (the hive's lock
    order, see ``activity.lock_projects``)."""
    project_id = await conn.fetchval("SELECT project_id FROM shared_tasks WHERE id = $1", task_id)
    if project_id is not None:
        await activity.lock_projects(conn, [project_id])
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM shared_tasks WHERE id = $1 AND deleted_at IS NULL FOR UPDATE",
        task_id,
    )
    if row is None:
        raise NotFound(f"task {task_id} not found")
    return from_row(SharedTask, row)


def _check_version(task: SharedTask, expected_version: int | None) -> None:
    if expected_version is not None and task.version != expected_version:
        raise VersionConflict(
            f"task {task.id} is at version {task.version}, not {expected_version}"
        )


# --- reads ---------------------------------------------------------------------------------------


async def find_by_id(conn: asyncpg.Connection, task_id: uuid.UUID) -> SharedTask | None:
    """The task unless soft-deleted."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM shared_tasks WHERE id = $1 AND deleted_at IS NULL", task_id
    )
    return None if row is None else from_row(SharedTask, row)


async def get(conn: asyncpg.Connection, task_id: uuid.UUID) -> SharedTask:
    task = await find_by_id(conn, task_id)
    if task is None:
        raise NotFound(f"task {task_id} not found")
    return task


async def organization_id(conn: asyncpg.Connection, task_id: uuid.UUID) -> uuid.UUID | None:
    """The task's organization, also for soft-deleted tasks (for access checks)."""
    org: uuid.UUID | None = await conn.fetchval(
        "SELECT organization_id FROM shared_tasks WHERE id = $1", task_id
    )
    return org


async def find_including_deleted(conn: asyncpg.Connection, task_id: uuid.UUID) -> SharedTask | None:
    """The task even when soft-deleted (``deleted_at`` tells)."""
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM shared_tasks WHERE id = $1", task_id)
    return None if row is None else from_row(SharedTask, row)


async def find_many(
    conn: asyncpg.Connection, task_ids: list[uuid.UUID], swarm_project_ids: list[uuid.UUID]
) -> list[SharedTask]:
    """The named tasks (soft-deleted ones too) that belong to one of ``swarm_project_ids``."""
    rows = await conn.fetch(
        f"""
        SELECT {_COLUMNS} FROM shared_tasks
        WHERE id = ANY($1::uuid[]) AND swarm_project_id = ANY($2::uuid[]) ORDER BY created_at, id
        """,
        task_ids,
        swarm_project_ids,
    )
    return from_rows(SharedTask, rows)


async def list_versions_for_linked_projects(
    conn: asyncpg.Connection, node_id: uuid.UUID
) -> list[tuple[uuid.UUID, int]]:
    """(id, version) of every live task in the swarm projects the node links (digest input)."""
    rows = await conn.fetch(
        """
        SELECT t.id, t.version FROM shared_tasks t
        JOIN swarm_project_nodes l ON l.swarm_project_id = t.swarm_project_id
        WHERE l.node_id = $1 AND t.deleted_at IS NULL
        """,
        node_id,
    )
    return [(r["id"], int(r["version"])) for r in rows]


async def find_by_swarm_project_id(
    conn: asyncpg.Connection, swarm_project_id: uuid.UUID
) -> list[SharedTaskWithOwner]:
    """Live tasks of a project, most recently updated first, with the owner node's URL."""
    rows = await conn.fetch(
        f"""
        SELECT t.*, n.public_url AS owner_public_url
        FROM (SELECT {_COLUMNS} FROM shared_tasks
              WHERE swarm_project_id = $1 AND deleted_at IS NULL) t
        LEFT JOIN nodes n ON n.id = t.owner_node_id
        ORDER BY t.updated_at DESC, t.id
        """,
        swarm_project_id,
    )
    return [
        SharedTaskWithOwner(task=from_row(SharedTask, r), owner_public_url=r["owner_public_url"])
        for r in rows
    ]


async def find_by_source_task_id(
    conn: asyncpg.Connection, node_id: uuid.UUID, source_task_id: uuid.UUID
) -> SharedTask | None:
    row = await conn.fetchrow(
        f"""
        SELECT {_COLUMNS} FROM shared_tasks
        WHERE source_node_id = $1 AND source_task_id = $2 AND deleted_at IS NULL
        """,
        node_id,
        source_task_id,
    )
    return None if row is None else from_row(SharedTask, row)


async def list_source_task_versions_for_node(
    conn: asyncpg.Connection, node_id: uuid.UUID
) -> list[SourceTaskVersion]:
    rows = await conn.fetch(
        """
        SELECT id AS shared_task_id, source_task_id, version FROM shared_tasks
        WHERE source_node_id = $1 AND source_task_id IS NOT NULL AND deleted_at IS NULL
        ORDER BY source_task_id
        """,
        node_id,
    )
    return from_rows(SourceTaskVersion, rows)


async def bulk_fetch(conn: asyncpg.Connection, project_id: uuid.UUID) -> BulkSnapshot:
    """One consistent snapshot: live tasks with assignees, deleted ids, the latest activity seq."""
    if conn.is_in_transaction():
        return await _bulk_fetch(conn, project_id)
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        return await _bulk_fetch(conn, project_id)


async def _bulk_fetch(conn: asyncpg.Connection, project_id: uuid.UUID) -> BulkSnapshot:
    rows = await conn.fetch(
        f"""
        SELECT t.*, u.id AS u_id, u.first_name AS u_first_name, u.last_name AS u_last_name,
            u.username AS u_username
        FROM (SELECT {_COLUMNS} FROM shared_tasks
              WHERE project_id = $1 AND deleted_at IS NULL) t
        LEFT JOIN users u ON u.id = t.assignee_user_id
        ORDER BY t.created_at, t.id
        """,
        project_id,
    )
    tasks = []
    for r in rows:
        user = None
        if r["u_id"] is not None:
            user = UserData(
                id=r["u_id"],
                first_name=r["u_first_name"],
                last_name=r["u_last_name"],
                username=r["u_username"],
            )
        tasks.append(SharedTaskWithUser(task=from_row(SharedTask, r), user=user))
    deleted = await conn.fetch(
        "SELECT id FROM shared_tasks WHERE project_id = $1 AND deleted_at IS NOT NULL ORDER BY id",
        project_id,
    )
    seq = await conn.fetchval("SELECT max(seq) FROM activity WHERE project_id = $1", project_id)
    return BulkSnapshot(
        tasks=tasks, deleted_task_ids=[r["id"] for r in deleted], latest_seq=int(seq or 0)
    )


# --- writes --------------------------------------------------------------------------------------


async def create(conn: asyncpg.Connection, data: NewTask) -> SharedTaskWithUser:
    """Insert a todo task in a swarm project and record ``task.created``."""
    async with conn.transaction():
        return await _record(conn, "task.created", await insert(conn, data))


async def insert(conn: asyncpg.Connection, data: NewTask) -> SharedTask:
    """Insert a todo task in a swarm project WITHOUT its ``task.created`` event: the caller
    records it (:func:`announce`) in the same transaction, once the task is as it is to be seen
    (e.g. dispatched at once)."""
    _check_text(data.title, data.description)
    row = await conn.fetchrow(
        f"""
        INSERT INTO shared_tasks (organization_id, project_id, swarm_project_id, title,
            description, executor, creator_user_id, assignee_user_id)
        SELECT $1, p.id, p.id, $3, $4, $5, $6, $7 FROM swarm_projects p
        WHERE p.id = $2 AND p.organization_id = $1
        RETURNING {_COLUMNS}
        """,
        data.organization_id,
        data.swarm_project_id,
        data.title,
        data.description,
        data.executor,
        data.creator_user_id,
        data.assignee_user_id,
    )
    if row is None:
        raise NotFound(f"swarm project {data.swarm_project_id} not found")
    return from_row(SharedTask, row)


async def update(
    conn: asyncpg.Connection,
    task_id: uuid.UUID,
    *,
    title: str | None = None,
    description: str | None = None,
    status: TaskStatus | None = None,
    archived_at: dt.datetime | Keep | None = KEEP,
    expected_version: int | None = None,
    author: Author | None = None,
) -> SharedTaskWithUser:
    """Change fields (None = keep); ``archived_at`` KEEP/None(clear)/value. Records task.updated.

    A status change must be legal for ``author`` (None: any legal transition, e.g. an operator).
    """
    async with conn.transaction():
        task = await _locked(conn, task_id)
        _check_version(task, expected_version)
        if status is not None:
            _check_transition(task.status, TaskStatus(status), author)
        _check_text(
            title if title is not None else task.title,
            description if description is not None else task.description,
        )
        row = await conn.fetchrow(
            f"""
            UPDATE shared_tasks SET title = COALESCE($2, title),
                description = COALESCE($3, description), status = COALESCE($4, status),
                archived_at = CASE WHEN $5 THEN archived_at ELSE $6 END, version = version + 1
            WHERE id = $1 RETURNING {_COLUMNS}
            """,
            task_id,
            title,
            description,
            None if status is None else TaskStatus(status).value,
            archived_at is KEEP,
            None if isinstance(archived_at, Keep) else archived_at,
        )
        return await _record(conn, "task.updated", from_row(SharedTask, row))


async def set_status(
    conn: asyncpg.Connection, task_id: uuid.UUID, status: TaskStatus, author: Author
) -> SharedTaskWithUser:
    """A status change by ``author`` (e.g. the hive starting a dispatched task)."""
    return await update(conn, task_id, status=status, author=author)


async def assign_task(
    conn: asyncpg.Connection,
    task_id: uuid.UUID,
    new_assignee: uuid.UUID | None,
    *,
    expected_previous: uuid.UUID | Keep | None = KEEP,
    expected_version: int | None = None,
) -> SharedTaskWithUser:
    """Change the assignee user; Conflict when the previous assignee or version differs."""
    async with conn.transaction():
        task = await _locked(conn, task_id)
        _check_version(task, expected_version)
        if not isinstance(expected_previous, Keep) and task.assignee_user_id != expected_previous:
            raise VersionConflict(f"task {task_id} has another assignee")
        row = await conn.fetchrow(
            f"""
            UPDATE shared_tasks SET assignee_user_id = $2, version = version + 1
            WHERE id = $1 RETURNING {_COLUMNS}
            """,
            task_id,
            new_assignee,
        )
        return await _record(conn, "task.reassigned", from_row(SharedTask, row))


async def delete_task(
    conn: asyncpg.Connection,
    task_id: uuid.UUID,
    acting_user_id: uuid.UUID | None,
    *,
    expected_version: int | None = None,
) -> SharedTaskWithUser:
    """Soft delete (version+1) and record ``task.deleted``."""
    async with conn.transaction():
        task = await _locked(conn, task_id)
        _check_version(task, expected_version)
        row = await conn.fetchrow(
            f"""
            UPDATE shared_tasks SET deleted_at = now(), deleted_by_user_id = $2,
                version = version + 1
            WHERE id = $1 RETURNING {_COLUMNS}
            """,
            task_id,
            acting_user_id,
        )
        return await _record(conn, "task.deleted", from_row(SharedTask, row))


async def update_status_from_node(
    conn: asyncpg.Connection, task_id: uuid.UUID, status: TaskStatus
) -> SharedTaskWithUser:
    """A node-authored status change (in-progress → in-review/done); records task.updated."""
    return await update(conn, task_id, status=status, author=Author.NODE)


async def start_unannounced(
    conn: asyncpg.Connection, task_id: uuid.UUID, node_id: uuid.UUID
) -> None:
    """A todo task inserted by :func:`insert` in this transaction, dispatched before anyone saw
    it: in progress on ``node_id`` at its first version, no event (its ``task.created`` will
    show it so)."""
    await conn.execute(
        "UPDATE shared_tasks SET status = 'in-progress', executing_node_id = $2 "
        "WHERE id = $1 AND status = 'todo'",
        task_id,
        node_id,
    )


async def set_executing_node(
    conn: asyncpg.Connection, task_id: uuid.UUID, node_id: uuid.UUID | None
) -> None:
    await conn.execute(
        "UPDATE shared_tasks SET executing_node_id = $2 WHERE id = $1", task_id, node_id
    )


async def upsert_from_node(
    conn: asyncpg.Connection,
    node_id: uuid.UUID,
    data: NodeTaskData,
    *,
    status_author: Author | None = Author.NODE,
) -> tuple[SharedTaskWithUser, bool]:
    """Apply a node's ``task.upsert``; returns (task, was_created) and records activity.

    - ``shared_task_id`` naming a live task: that row is updated by id (whoever created it); its
      owner stays, the node becomes the executing node.
    - otherwise the row is found by (node, local task id) and updated, or inserted with the node
      as owner, source and executing node.
    Title/description/owner: last write wins; assignee = COALESCE(new, old); status changes must
    be node-authored transitions (``status_author=None``: any legal transition, for the node that
    owns the task); version+1 on every update.
    """
    _check_text(data.title, data.description)
    async with conn.transaction():
        if data.shared_task_id is not None:
            task = await _locked(conn, data.shared_task_id)
            if task.organization_id != data.organization_id:
                raise NotFound(f"task {data.shared_task_id} not found")
            updated = await _node_update(
                conn, node_id, task, data, by_id=True, author=status_author
            )
            return updated, False
        in_org = await conn.fetchval(
            "SELECT 1 FROM swarm_projects WHERE id = $1 AND organization_id = $2",
            data.swarm_project_id,
            data.organization_id,
        )
        if not in_org:
            raise NotFound(f"swarm project {data.swarm_project_id} not found")
        for _ in range(2):
            row = await conn.fetchrow(
                f"""
                SELECT {_COLUMNS} FROM shared_tasks WHERE source_node_id = $1
                  AND source_task_id = $2 AND deleted_at IS NULL FOR UPDATE
                """,
                node_id,
                data.source_task_id,
            )
            if row is not None:
                task = from_row(SharedTask, row)
                updated = await _node_update(
                    conn, node_id, task, data, by_id=False, author=status_author
                )
                return updated, False
            row = await conn.fetchrow(
                f"""
                INSERT INTO shared_tasks (organization_id, project_id, swarm_project_id, title,
                    description, status, executor, assignee_user_id, archived_at,
                    owner_node_id, owner_name, source_node_id, source_task_id, executing_node_id)
                VALUES ($1, $2, $2, $3, $4, $5, COALESCE($6, 'CLAUDE_CODE'), $7, $8,
                        $9, $10, $9, $11, $9)
                ON CONFLICT (source_node_id, source_task_id)
                    WHERE source_node_id IS NOT NULL AND source_task_id IS NOT NULL
                      AND deleted_at IS NULL
                DO NOTHING
                RETURNING {_COLUMNS}
                """,
                data.organization_id,
                data.swarm_project_id,
                data.title,
                data.description,
                TaskStatus(data.status).value,
                data.executor,
                data.assignee_user_id,
                data.archived_at,
                node_id,
                data.owner_name,
                data.source_task_id,
            )
            if row is not None:
                created = from_row(SharedTask, row)
                return await _record(conn, "task.created", created, _origin(node_id, data)), True
        raise RuntimeError("concurrent upsert kept conflicting")  # pragma: no cover


async def find_by_source_task_ids(
    conn: asyncpg.Connection, node_id: uuid.UUID, source_task_ids: list[uuid.UUID]
) -> dict[uuid.UUID, SharedTask]:
    """Live tasks of the node by local task id (one query for a whole op batch)."""
    rows = await conn.fetch(
        f"""
        SELECT {_COLUMNS} FROM shared_tasks
        WHERE source_node_id = $1 AND source_task_id = ANY($2::uuid[]) AND deleted_at IS NULL
        """,
        node_id,
        source_task_ids,
    )
    tasks = from_rows(SharedTask, rows)
    return {t.source_task_id: t for t in tasks if t.source_task_id is not None}


def node_write(node_id: uuid.UUID, before: SharedTask | None, data: NodeTaskData) -> SharedTask:
    """The task after the node's owner write ``data`` — what :func:`write_many_from_node` stores,
    computed without I/O. ``before`` None: a new task (its id, timestamps and organization-side
    fields are placeholders until it is inserted). A write sets title, description and status,
    keeps an archive once set, takes the owner name only when the op did not name the shared
    id, makes the node the executing node, and bumps the version (a new task starts at 1)."""
    if before is None:
        stamp = dt.datetime.now(dt.UTC)
        return SharedTask(
            id=uuid.uuid4(),
            organization_id=data.organization_id,
            project_id=data.swarm_project_id,
            swarm_project_id=data.swarm_project_id,
            creator_user_id=None,
            assignee_user_id=None,
            deleted_by_user_id=None,
            title=data.title,
            description=data.description,
            status=TaskStatus(data.status),
            executor="CLAUDE_CODE",
            version=1,
            deleted_at=None,
            shared_at=None,
            archived_at=data.archived_at,
            executing_node_id=node_id,
            owner_node_id=node_id,
            owner_name=data.owner_name,
            source_node_id=node_id,
            source_task_id=data.source_task_id,
            created_at=stamp,
            updated_at=stamp,
        )
    owner_name = data.owner_name if data.shared_task_id is None else None
    return msgspec.structs.replace(
        before,
        title=data.title,
        description=data.description,
        status=TaskStatus(data.status),
        archived_at=data.archived_at if data.archived_at is not None else before.archived_at,
        owner_name=owner_name if owner_name is not None else before.owner_name,
        executing_node_id=node_id,
        version=before.version + 1,
    )


_CHANGING = ("title", "description", "status", "archived_at", "owner_name", "version")
"""The fields a chain of owner writes of one task changes between its snapshots."""

# One statement for every task of the batch: the new ones inserted with the state their whole
# chain of ops leaves (and the chain's length as version), the existing ones updated to it —
# only if still at the version the batch planned from, a live task the node owns. ``t.id =
# ANY(...)`` keeps the plan an index lookup of the batch's tasks whatever the table's statistics
# say (joined to the unnest alone, a table the planner believes small is scanned whole).
_WRITE_MANY = f"""
    WITH inserted AS (
        INSERT INTO shared_tasks (organization_id, project_id, swarm_project_id, title,
            description, status, executor, archived_at, owner_node_id, owner_name,
            source_node_id, source_task_id, executing_node_id, version)
        SELECT i.org, i.project, i.project, i.title, i.description, i.status::task_status,
            'CLAUDE_CODE', i.archived_at, $1, i.owner_name, $1, i.source, $1, i.version
        FROM unnest($2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[],
                    $7::timestamptz[], $8::text[], $9::uuid[], $10::bigint[])
            WITH ORDINALITY AS i(org, project, title, description, status, archived_at,
                                 owner_name, source, version, n)
        ORDER BY i.n
        RETURNING {_COLUMNS}
    ), updated AS (
        UPDATE shared_tasks AS t SET title = u.title, description = u.description,
            status = u.status::task_status, archived_at = u.archived_at,
            owner_name = u.owner_name, executing_node_id = $1, version = u.version
        FROM unnest($11::uuid[], $12::bigint[], $13::text[], $14::text[], $15::text[],
                    $16::timestamptz[], $17::text[], $18::bigint[])
            AS u(id, expected, title, description, status, archived_at, owner_name, version)
        WHERE t.id = ANY($11::uuid[]) AND t.id = u.id AND t.version = u.expected
          AND t.deleted_at IS NULL AND t.owner_node_id = $1
        RETURNING {", ".join(f"t.{c.strip()}" for c in _COLUMNS.split(","))}
    )
    SELECT * FROM inserted UNION ALL SELECT * FROM updated
"""


async def write_many_from_node(
    conn: asyncpg.Connection,
    node_id: uuid.UUID,
    before: Mapping[uuid.UUID, SharedTask | None],
    items: Sequence[NodeTaskData],
) -> list[SharedTask]:
    """Apply the owner writes ``items`` (``task.upsert`` ops of the node's own tasks, in op
    order, several per task allowed) with one statement for the tasks and one for their
    events: the same rows, versions and events as applying them one at a time. ``before``: each
    task by local id as it is in the database now (None: new). Returns the task after each item,
    in item order; each item's event (``task.created`` for the first write of a new task, else
    ``task.updated``, naming the op as origin) is appended in item order.

    For the op-batch fast path: the caller holds the projects' activity counters (so nothing
    else writes these tasks meanwhile) and has checked text, links and transitions. Raises
    :class:`NotFound` when a task is no longer at the planned version, or no longer a live task
    the node owns."""
    if not items:
        return []
    for data in items:
        _check_text(data.title, data.description)
    states: dict[uuid.UUID, SharedTask] = {}
    steps: list[SharedTask] = []
    for data in items:
        local = data.source_task_id
        previous = states[local] if local in states else before.get(local)
        states[local] = step = node_write(node_id, previous, data)
        steps.append(step)
    new: list[SharedTask] = []
    old: list[tuple[SharedTask, SharedTask]] = []
    for local, state in states.items():
        stored = before.get(local)
        if stored is None:
            new.append(state)
        else:
            old.append((stored, state))
    rows = await conn.fetch(
        _WRITE_MANY,
        node_id,
        [t.organization_id for t in new],
        [t.swarm_project_id for t in new],
        [t.title for t in new],
        [t.description for t in new],
        [TaskStatus(t.status).value for t in new],
        [t.archived_at for t in new],
        [t.owner_name for t in new],
        [t.source_task_id for t in new],
        [t.version for t in new],
        [b.id for b, _ in old],
        [b.version for b, _ in old],
        [t.title for _, t in old],
        [t.description for _, t in old],
        [TaskStatus(t.status).value for _, t in old],
        [t.archived_at for _, t in old],
        [t.owner_name for _, t in old],
        [t.version for _, t in old],
    )
    if len(rows) != len(states):
        raise NotFound("a task of the batch is no longer a live task of this node")
    written = {task.source_task_id: task for task in from_rows(SharedTask, rows)}
    snapshots = [
        # The last write of a task is the row as stored; an earlier one differs from it only in
        # the fields a write changes.
        written[step.source_task_id]
        if step is states[data.source_task_id]
        else msgspec.structs.replace(
            written[step.source_task_id], **{f: getattr(step, f) for f in _CHANGING}
        )
        for step, data in zip(steps, items, strict=True)
    ]
    await _announce_node_writes(conn, node_id, before, items, snapshots)
    return snapshots


async def _announce_node_writes(
    conn: asyncpg.Connection,
    node_id: uuid.UUID,
    before: Mapping[uuid.UUID, SharedTask | None],
    items: Sequence[NodeTaskData],
    snapshots: Sequence[SharedTask],
) -> None:
    """One event per write, in order, in one statement: ``task.created`` for the first write of
    a new task, ``task.updated`` for every other; with the assignee's user data."""
    users = await _users(conn, {t.assignee_user_id for t in snapshots if t.assignee_user_id})
    created: set[uuid.UUID] = set()
    events: list[activity.NewEvent] = []
    for data, task in zip(items, snapshots, strict=True):
        if task.project_id is None:
            continue
        local = data.source_task_id
        event_type = "task.updated"
        if before.get(local) is None and local not in created:
            created.add(local)
            event_type = "task.created"
        user = users.get(task.assignee_user_id) if task.assignee_user_id else None
        payload: dict[str, Any] = {
            "task": msgspec.to_builtins(task),
            "user": msgspec.to_builtins(user),
        }
        origin = _origin(node_id, data)
        if origin is not None:
            payload["origin"] = origin
        events.append(
            activity.NewEvent(
                project_id=task.project_id,
                swarm_project_id=task.swarm_project_id,
                event_type=event_type,
                payload=payload,
                assignee_user_id=task.assignee_user_id,
            )
        )
    await activity.append_batch(conn, events)


async def _users(conn: asyncpg.Connection, user_ids: set[uuid.UUID]) -> dict[uuid.UUID, UserData]:
    if not user_ids:
        return {}
    rows = await conn.fetch(
        "SELECT id, first_name, last_name, username FROM users WHERE id = ANY($1::uuid[])",
        list(user_ids),
    )
    return {u.id: u for u in from_rows(UserData, rows)}


async def _node_update(
    conn: asyncpg.Connection,
    node_id: uuid.UUID,
    task: SharedTask,
    data: NodeTaskData,
    *,
    by_id: bool,
    author: Author | None,
) -> SharedTaskWithUser:
    _check_transition(task.status, TaskStatus(data.status), author)
    row = await conn.fetchrow(
        f"""
        UPDATE shared_tasks SET title = $2, description = $3, status = $4,
            assignee_user_id = COALESCE($5, assignee_user_id),
            archived_at = COALESCE($6, archived_at),
            owner_node_id = CASE WHEN $7 THEN owner_node_id ELSE $8 END,
            owner_name = CASE WHEN $7 THEN owner_name ELSE COALESCE($9, owner_name) END,
            executing_node_id = $8, version = version + 1
        WHERE id = $1 RETURNING {_COLUMNS}
        """,
        task.id,
        data.title,
        data.description,
        TaskStatus(data.status).value,
        data.assignee_user_id,
        data.archived_at,
        by_id,
        node_id,
        data.owner_name,
    )
    updated = from_row(SharedTask, row)
    return await _record(conn, "task.updated", updated, _origin(node_id, data))


async def announce(
    conn: asyncpg.Connection, task_id: uuid.UUID, event_type: str = "task.updated"
) -> SharedTaskWithUser:
    """Record an activity event for the task as it is now (after a bulk change such as a merge)."""
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM shared_tasks WHERE id = $1", task_id)
    if row is None:
        raise NotFound(f"task {task_id} not found")
    return await _record(conn, event_type, from_row(SharedTask, row))
