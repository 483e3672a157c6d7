"""``vk-hive export`` / ``vk-hive import``: one organization as JSON Lines.

Every line is one JSON object with a ``kind``: first a ``header`` (``format_version``,
``exported_at``, ``hive_version``, ``organization_id``), then the rows of the organization kind
by kind in the order of :data:`KINDS` (parents before children), last an ``end`` line with the
count of each kind — a file cut short at a line boundary has no ``end`` and is refused.

What is not exported: secrets and credentials (password-less users carry no hashes anyway;
personal access tokens, sessions, OAuth accounts, login links, invitations and node API keys are
left out), the per-node op log and op cursors (they name the nodes' outbox sequences), and lease
tokens beyond those of open assignments. Nodes come back ``offline`` with their history: API keys
are not carried over, so each node gets a new key on the importing hive (a new node there); ids
are kept, so the swarm project and task ids nodes hold keep their meaning.

Export reads in one ``REPEATABLE READ`` read-only transaction (one snapshot) through server-side
cursors, so the organization is never held in memory. Import checks every line against the
types of its kind (msgspec), that every id it refers to came earlier in the file, and that the
organization does not exist yet; it writes in one transaction, so a bad line imports nothing.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Union

import asyncpg
import msgspec

__all__ = [
    "FORMAT_VERSION",
    "KINDS",
    "TransferError",
    "export_organization",
    "import_organization",
]

FORMAT_VERSION = 1
_BATCH = 500


class TransferError(Exception):
    """An export or import that cannot go on; the message says why (and names the line)."""


def _row(tag: str) -> dict[str, Any]:
    return {"tag_field": "kind", "tag": tag, "kw_only": True, "forbid_unknown_fields": True}


# --- line types ----------------------------------------------------------------------------------


class Header(msgspec.Struct, **_row("header")):
    format_version: int
    exported_at: dt.datetime
    hive_version: str
    organization_id: uuid.UUID


class End(msgspec.Struct, **_row("end")):
    counts: dict[str, int]


class Organization(msgspec.Struct, **_row("organization")):
    id: uuid.UUID
    name: str
    slug: str
    is_personal: bool
    created_at: dt.datetime
    updated_at: dt.datetime


class User(msgspec.Struct, **_row("user")):
    id: uuid.UUID
    email: str
    first_name: str | None
    last_name: str | None
    username: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


class Member(msgspec.Struct, **_row("member")):
    organization_id: uuid.UUID
    user_id: uuid.UUID
    role: str
    joined_at: dt.datetime
    last_seen_at: dt.datetime | None


class Node(msgspec.Struct, **_row("node")):
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    machine_id: str
    status: str
    capabilities: Any
    public_url: str | None
    last_heartbeat_at: dt.datetime | None
    connected_at: dt.datetime | None
    disconnected_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


class SwarmProject(msgspec.Struct, **_row("swarm_project")):
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    description: str | None
    metadata: Any
    created_at: dt.datetime
    updated_at: dt.datetime


class SwarmTemplate(msgspec.Struct, **_row("swarm_template")):
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    content: str
    description: str | None
    metadata: Any
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime
    deleted_at: dt.datetime | None


class Label(msgspec.Struct, **_row("label")):
    id: uuid.UUID
    organization_id: uuid.UUID
    project_id: uuid.UUID | None
    origin_node_id: uuid.UUID | None
    name: str
    icon: str
    color: str
    version: int
    deleted_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


class ProjectNode(msgspec.Struct, **_row("project_node")):
    id: uuid.UUID
    swarm_project_id: uuid.UUID
    node_id: uuid.UUID
    local_project_id: uuid.UUID
    git_repo_path: str
    os_type: str | None
    linked_at: dt.datetime
    is_owner: bool


class NodeLocalProject(msgspec.Struct, **_row("node_local_project")):
    id: uuid.UUID
    node_id: uuid.UUID
    local_project_id: uuid.UUID
    name: str
    git_repo_path: str
    default_branch: str
    swarm_project_id: uuid.UUID | None
    last_seen_at: dt.datetime
    created_at: dt.datetime


class SharedTask(msgspec.Struct, **_row("shared_task")):
    id: uuid.UUID
    organization_id: uuid.UUID
    project_id: uuid.UUID | None
    swarm_project_id: uuid.UUID | None
    creator_user_id: uuid.UUID | None
    assignee_user_id: uuid.UUID | None
    deleted_by_user_id: uuid.UUID | None
    title: str
    description: str | None
    status: str
    executor: str
    version: int
    deleted_at: dt.datetime | None
    shared_at: dt.datetime | None
    archived_at: dt.datetime | None
    executing_node_id: uuid.UUID | None
    owner_node_id: uuid.UUID | None
    owner_name: str | None
    source_node_id: uuid.UUID | None
    source_task_id: uuid.UUID | None
    created_at: dt.datetime
    updated_at: dt.datetime


class TaskLabel(msgspec.Struct, **_row("task_label")):
    shared_task_id: uuid.UUID
    label_id: uuid.UUID
    created_at: dt.datetime


class TaskAssignment(msgspec.Struct, **_row("task_assignment")):
    id: uuid.UUID
    task_id: uuid.UUID
    node_id: uuid.UUID
    node_project_id: uuid.UUID
    local_task_id: uuid.UUID | None
    local_attempt_id: uuid.UUID | None
    execution_status: str
    assigned_at: dt.datetime
    started_at: dt.datetime | None
    completed_at: dt.datetime | None
    created_at: dt.datetime
    lease_expires_at: dt.datetime | None
    fencing_token: int


class TaskAttempt(msgspec.Struct, **_row("task_attempt")):
    id: uuid.UUID
    assignment_id: uuid.UUID | None
    shared_task_id: uuid.UUID
    node_id: uuid.UUID
    executor: str
    executor_variant: str | None
    branch: str
    target_branch: str
    container_ref: str | None
    worktree_deleted: bool
    setup_completed_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    sync_state: str
    sync_requested_at: dt.datetime | None
    last_full_sync_at: dt.datetime | None
    backfill_request_id: uuid.UUID | None


class ExecutionProcess(msgspec.Struct, **_row("execution_process")):
    id: uuid.UUID
    attempt_id: uuid.UUID
    node_id: uuid.UUID
    run_reason: str
    executor_action: Any
    before_head_commit: str | None
    after_head_commit: str | None
    status: str
    exit_code: int | None
    dropped: bool
    pid: int | None
    started_at: dt.datetime
    completed_at: dt.datetime | None
    created_at: dt.datetime


class OutputLog(msgspec.Struct, **_row("output_log")):
    id: int
    assignment_id: uuid.UUID | None
    output_type: str
    content: str
    timestamp: dt.datetime
    created_at: dt.datetime
    execution_process_id: uuid.UUID | None
    local_log_id: int | None


class ProgressEvent(msgspec.Struct, **_row("progress_event")):
    id: int
    assignment_id: uuid.UUID
    event_type: str
    message: str | None
    metadata: Any
    timestamp: dt.datetime
    created_at: dt.datetime


class ActivityCounter(msgspec.Struct, **_row("activity_counter")):
    project_id: uuid.UUID
    swarm_project_id: uuid.UUID | None
    last_seq: int


class Activity(msgspec.Struct, **_row("activity")):
    seq: int
    event_id: uuid.UUID
    project_id: uuid.UUID
    assignee_user_id: uuid.UUID | None
    event_type: str
    payload: Any
    created_at: dt.datetime
    swarm_project_id: uuid.UUID | None


# --- what each kind is ---------------------------------------------------------------------------

# Which rows belong to organization $1.
_ORG_TASKS = "(SELECT id FROM shared_tasks WHERE organization_id = $1)"
_ORG_ASSIGNMENTS = """(SELECT a.id FROM node_task_assignments a
    JOIN shared_tasks t ON t.id = a.task_id WHERE t.organization_id = $1)"""
_ORG_ATTEMPTS = """(SELECT a.id FROM node_task_attempts a
    JOIN shared_tasks t ON t.id = a.shared_task_id WHERE t.organization_id = $1)"""
_ORG_PROCESSES = """(SELECT p.id FROM node_execution_processes p
    JOIN node_task_attempts a ON a.id = p.attempt_id
    JOIN shared_tasks t ON t.id = a.shared_task_id WHERE t.organization_id = $1)"""
_ORG_FEEDS = """(SELECT id FROM swarm_projects WHERE organization_id = $1
    UNION SELECT project_id FROM shared_tasks WHERE organization_id = $1
                                                AND project_id IS NOT NULL)"""
_ORG_USERS = """(SELECT user_id FROM organization_member_metadata WHERE organization_id = $1
    UNION SELECT creator_user_id FROM shared_tasks WHERE organization_id = $1
    UNION SELECT assignee_user_id FROM shared_tasks WHERE organization_id = $1
    UNION SELECT deleted_by_user_id FROM shared_tasks WHERE organization_id = $1
    UNION SELECT assignee_user_id FROM activity WHERE project_id IN (
        SELECT id FROM swarm_projects WHERE organization_id = $1
        UNION SELECT project_id FROM shared_tasks WHERE organization_id = $1
                                                  AND project_id IS NOT NULL))"""


@dataclass(frozen=True)
class Kind:
    """One kind of line: its row type, table, which rows belong to the organization, and which
    of its fields name rows of other kinds (checked on import)."""

    name: str
    struct: type[msgspec.Struct]
    table: str
    where: str
    order: str = "id"
    refs: dict[str, str] = field(default_factory=dict)
    conflict: str = ""
    """An ``ON CONFLICT`` clause for the insert (users may exist already: shared by orgs)."""
    serial: bool = False
    """``id`` comes from a bigserial sequence, moved past the imported ids afterwards."""

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.struct.__struct_fields__)

    def select(self) -> str:
        cols = ", ".join(f'"{c}"' for c in self.columns)
        return f"SELECT {cols} FROM {self.table} WHERE {self.where} ORDER BY {self.order}"  # noqa: S608

    def insert(self) -> str:
        cols = ", ".join(f'"{c}"' for c in self.columns)
        args = ", ".join(f"${i}" for i in range(1, len(self.columns) + 1))
        return f"INSERT INTO {self.table} ({cols}) VALUES ({args}) {self.conflict}"  # noqa: S608


_ORG = {"organization_id": "organization"}
KINDS: tuple[Kind, ...] = (
    Kind("organization", Organization, "organizations", "id = $1"),
    Kind("user", User, "users", f"id IN {_ORG_USERS}", conflict="ON CONFLICT (id) DO NOTHING"),
    Kind(
        "member",
        Member,
        "organization_member_metadata",
        "organization_id = $1",
        order="user_id",
        refs={**_ORG, "user_id": "user"},
    ),
    Kind("node", Node, "nodes", "organization_id = $1", refs=_ORG),
    Kind("swarm_project", SwarmProject, "swarm_projects", "organization_id = $1", refs=_ORG),
    Kind("swarm_template", SwarmTemplate, "swarm_templates", "organization_id = $1", refs=_ORG),
    Kind(
        "label",
        Label,
        "labels",
        "organization_id = $1",
        refs={**_ORG, "origin_node_id": "node"},
    ),
    Kind(
        "project_node",
        ProjectNode,
        "swarm_project_nodes",
        "swarm_project_id IN (SELECT id FROM swarm_projects WHERE organization_id = $1)",
        refs={"swarm_project_id": "swarm_project", "node_id": "node"},
    ),
    Kind(
        "node_local_project",
        NodeLocalProject,
        "node_local_projects",
        "node_id IN (SELECT id FROM nodes WHERE organization_id = $1)",
        refs={"node_id": "node", "swarm_project_id": "swarm_project"},
    ),
    Kind(
        "shared_task",
        SharedTask,
        "shared_tasks",
        "organization_id = $1",
        refs={
            **_ORG,
            "swarm_project_id": "swarm_project",
            "creator_user_id": "user",
            "assignee_user_id": "user",
            "deleted_by_user_id": "user",
            "executing_node_id": "node",
            "owner_node_id": "node",
            "source_node_id": "node",
        },
    ),
    Kind(
        "task_label",
        TaskLabel,
        "shared_task_labels",
        f"shared_task_id IN {_ORG_TASKS}",
        order="shared_task_id, label_id",
        refs={"shared_task_id": "shared_task", "label_id": "label"},
    ),
    Kind(
        "task_assignment",
        TaskAssignment,
        "node_task_assignments",
        f"task_id IN {_ORG_TASKS}",
        order="assigned_at, id",
        refs={"task_id": "shared_task", "node_id": "node", "node_project_id": "project_node"},
    ),
    Kind(
        "task_attempt",
        TaskAttempt,
        "node_task_attempts",
        f"shared_task_id IN {_ORG_TASKS}",
        refs={
            "assignment_id": "task_assignment",
            "shared_task_id": "shared_task",
            "node_id": "node",
        },
    ),
    Kind(
        "execution_process",
        ExecutionProcess,
        "node_execution_processes",
        f"attempt_id IN {_ORG_ATTEMPTS}",
        refs={"attempt_id": "task_attempt", "node_id": "node"},
    ),
    Kind(
        "output_log",
        OutputLog,
        "node_task_output_logs",
        f"assignment_id IN {_ORG_ASSIGNMENTS} OR execution_process_id IN {_ORG_PROCESSES}",
        refs={"assignment_id": "task_assignment", "execution_process_id": "execution_process"},
        serial=True,
    ),
    Kind(
        "progress_event",
        ProgressEvent,
        "node_task_progress_events",
        f"assignment_id IN {_ORG_ASSIGNMENTS}",
        refs={"assignment_id": "task_assignment"},
        serial=True,
    ),
    Kind(
        "activity_counter",
        ActivityCounter,
        "project_activity_counters",
        f"project_id IN {_ORG_FEEDS}",
        order="project_id",
        refs={"swarm_project_id": "swarm_project"},
    ),
    Kind(
        "activity",
        Activity,
        "activity",
        f"project_id IN {_ORG_FEEDS}",
        order="project_id, seq",
        refs={"assignee_user_id": "user", "swarm_project_id": "swarm_project"},
    ),
)
_BY_NAME = {kind.name: kind for kind in KINDS}
_RANK = {kind.name: i for i, kind in enumerate(KINDS)}
_REFERENCED = {target for kind in KINDS for target in kind.refs.values()}
_LINE_TYPES: tuple[type[msgspec.Struct], ...] = (Header, End, *(kind.struct for kind in KINDS))

Report = Callable[[str, int], None]
"""Progress: called with (kind, rows of that kind so far) every few thousand rows and at the end
of each kind."""

_PROGRESS_EVERY = 5000


# --- export --------------------------------------------------------------------------------------


async def export_organization(
    conn: asyncpg.Connection,
    organization_id: uuid.UUID,
    hive_version: str,
    progress: Report | None = None,
) -> AsyncIterator[bytes]:
    """The organization's lines (each ending with a newline), read in one snapshot."""
    encoder = msgspec.json.Encoder()
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        found = await conn.fetchval("SELECT 1 FROM organizations WHERE id = $1", organization_id)
        if found is None:
            raise TransferError(f"organization {organization_id} does not exist")
        header = Header(
            format_version=FORMAT_VERSION,
            exported_at=dt.datetime.now(dt.UTC),
            hive_version=hive_version,
            organization_id=organization_id,
        )
        yield encoder.encode(header) + b"\n"
        counts: dict[str, int] = {}
        for kind in KINDS:
            n = 0
            async for record in conn.cursor(kind.select(), organization_id, prefetch=1000):
                yield encoder.encode(kind.struct(**dict(record))) + b"\n"
                n += 1
                if progress is not None and n % _PROGRESS_EVERY == 0:
                    progress(kind.name, n)
            counts[kind.name] = n
            if progress is not None:
                progress(kind.name, n)
        yield encoder.encode(End(counts=counts)) + b"\n"


# --- import --------------------------------------------------------------------------------------


@dataclass
class _Importer:
    conn: asyncpg.Connection
    progress: Report | None
    organization_id: uuid.UUID | None = None
    seen: dict[str, set[Any]] = field(default_factory=lambda: {k: set() for k in _REFERENCED})
    counts: dict[str, int] = field(default_factory=dict)
    kind: Kind | None = None
    batch: list[tuple[Any, ...]] = field(default_factory=list)
    batch_first_line: int = 0
    reported: dict[str, int] = field(default_factory=dict)
    ended: bool = False

    async def line(self, number: int, row: msgspec.Struct) -> None:
        if self.ended:
            raise TransferError(f"line {number}: a line after the end line")
        if isinstance(row, Header):
            raise TransferError(f"line {number}: a second header")
        if isinstance(row, End):
            await self._flush()
            if {k: n for k, n in row.counts.items() if n} != self.counts:
                raise TransferError(
                    f"line {number}: the end line counts {row.counts}, the file holds "
                    f"{self.counts} (an edited or incomplete file)"
                )
            self.ended = True
            return
        name = row.__struct_config__.tag
        assert isinstance(name, str)
        kind = _BY_NAME[name]
        if self.kind is not kind:
            if self.kind is not None and _RANK[kind.name] < _RANK[self.kind.name]:
                raise TransferError(
                    f"line {number}: {kind.name} after {self.kind.name} (kinds come in the "
                    "export's order)"
                )
            await self._flush()
            self.kind = kind
        if isinstance(row, Organization):
            await self._organization(number, row)
        for field_name, target in kind.refs.items():
            value = getattr(row, field_name)
            if value is not None and value not in self.seen[target]:
                raise TransferError(
                    f"line {number}: {kind.name}.{field_name} = {value} names no {target} "
                    "earlier in the file"
                )
        if isinstance(row, Node):  # nodes come back offline: they need new API keys here
            row = msgspec.structs.replace(row, status="offline")
        if kind.name in self.seen:
            self.seen[kind.name].add(row.id)  # type: ignore[attr-defined]
        if not self.batch:
            self.batch_first_line = number
        self.batch.append(msgspec.structs.astuple(row))
        self.counts[kind.name] = self.counts.get(kind.name, 0) + 1
        if len(self.batch) >= _BATCH:
            await self._flush(final=False)

    async def _organization(self, number: int, row: Organization) -> None:
        if self.counts.get("organization"):
            raise TransferError(f"line {number}: a second organization")
        if row.id != self.organization_id:
            raise TransferError(
                f"line {number}: organization {row.id} is not the header's {self.organization_id}"
            )
        existing = await self.conn.fetchrow(
            "SELECT id, slug FROM organizations WHERE id = $1 OR slug = $2", row.id, row.slug
        )
        if existing is not None:
            raise TransferError(
                f"the target database already has organization {existing['id']} "
                f"(slug {existing['slug']!r}): import into a database without it"
            )

    async def _flush(self, *, final: bool = True) -> None:
        """Insert the batch; ``final`` when its kind ends here (progress is reported then, and
        every few thousand rows)."""
        kind, rows = self.kind, self.batch
        if kind is None:
            return
        if rows:
            await self._insert(kind, rows)
        done = self.counts.get(kind.name, 0)
        due = final or done % _PROGRESS_EVERY < len(rows)
        if self.progress is not None and due and self.reported.get(kind.name) != done:
            self.reported[kind.name] = done
            self.progress(kind.name, done)

    async def _insert(self, kind: Kind, rows: list[tuple[Any, ...]]) -> None:
        self.batch = []
        if kind.name == "activity":
            at = kind.columns.index("created_at")
            days = {row[at].astimezone(dt.UTC).date(): row[at] for row in rows}
            for _day, created_at in sorted(days.items()):
                await self.conn.execute("SELECT ensure_activity_partition($1)", created_at)
        last = self.batch_first_line + len(rows) - 1
        try:
            async with self.conn.transaction():  # a savepoint: the error below names the lines
                await self.conn.executemany(kind.insert(), rows)
        except asyncpg.PostgresError as exc:
            raise TransferError(
                f"lines {self.batch_first_line}-{last} ({kind.name}): the database refused "
                f"them: {exc}"
            ) from None

    async def finish(self) -> dict[str, int]:
        await self._flush()
        if not self.ended:
            raise TransferError("the file ends without its end line (cut short?)")
        if not self.counts.get("organization"):
            raise TransferError("the file holds no organization line")
        for kind in KINDS:
            if kind.serial:
                await self.conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{kind.table}', 'id'), "  # noqa: S608
                    f"greatest((SELECT max(id) FROM {kind.table}), 1))"
                )
        await self.conn.execute(
            """SELECT setval('node_fencing_token_seq',
                             greatest((SELECT max(fencing_token) FROM node_task_assignments),
                                      (SELECT last_value FROM node_fencing_token_seq)))"""
        )
        return self.counts


async def check_migrated(conn: asyncpg.Connection, latest: int) -> None:
    """The target database has every migration this hive knows."""
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    version = await conn.fetchval("SELECT max(version) FROM schema_migrations") if exists else None
    if version is None or version < latest:
        raise TransferError(
            f"the target database is not migrated (schema version {version or 0}, this hive "
            f"needs {latest}): run `vk-hive migrate` first"
        )


async def import_organization(
    conn: asyncpg.Connection,
    lines: Iterable[bytes],
    progress: Report | None = None,
) -> tuple[uuid.UUID, dict[str, int]]:
    """Read an export into the database in one transaction; the organization and the count of
    each kind. Any bad line raises :class:`TransferError` naming it, and nothing is written."""
    decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(Union[_LINE_TYPES])  # noqa: UP007
    header_decoder = msgspec.json.Decoder(Header)
    async with conn.transaction():
        importer = _Importer(conn, progress)
        number = 0
        for number, raw in enumerate(lines, start=1):
            if not raw.strip():
                raise TransferError(f"line {number}: an empty line")
            try:
                if number == 1:
                    header = header_decoder.decode(raw)
                    if header.format_version != FORMAT_VERSION:
                        raise TransferError(
                            f"line 1: format_version {header.format_version}, this hive reads "
                            f"{FORMAT_VERSION}"
                        )
                    importer.organization_id = header.organization_id
                    continue
                row = decoder.decode(raw)
            except msgspec.ValidationError as exc:
                raise TransferError(f"line {number}: {exc}") from None
            except msgspec.DecodeError as exc:
                raise TransferError(f"line {number}: not a JSON object ({exc})") from None
            await importer.line(number, row)
        if number == 0:
            raise TransferError("the file is empty")
        counts = await importer.finish()
    assert importer.organization_id is not None
    return importer.organization_id, counts
