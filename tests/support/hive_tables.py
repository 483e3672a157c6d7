"""Piccolo model of the hive's tables: one ``Table`` class per table of ``migrations/*.sql``.

The versioned SQL files in ``vk_hive/store/migrations`` are the schema (``migrate.py`` runs them,
never piccolo) and the hive reaches the database through asyncpg only; piccolo is a development
dependency and this model a second, independent description of the schema that the migrations
must match (docs/architecture.md, "Storage", says why piccolo is not used at run time). The
integration test ``tests/integration/hive/store/test_tables_match_migrations.py`` migrates a fresh
database and compares every class here with the catalog (columns, types, nullability, foreign
keys with their ON DELETE/ON UPDATE actions, unique and check constraints, PG enum labels).

No engine is bound at import: every class gets ``db=PLACEHOLDER_ENGINE``, a ``PostgresEngine``
with an empty config that never opens a connection. It only tells piccolo which SQL dialect to
render (``ddl_for``) so piccolo never looks for a ``piccolo_conf.py``. Code that wants to run
piccolo queries must bind a real engine first (``Table._meta.db = engine``).

What piccolo can't express stays SQL-only (in ``0001_initial.sql``):

- the PG enum types ``member_role``, ``invitation_status``, ``task_status``, ``node_status``: their
  columns are modelled as ``Text(choices=...)`` and the types are mirrored by the ``StrEnum``
  classes here (``PG_ENUMS`` maps each to its PG type name); piccolo's DDL renders them as TEXT;
- composite primary keys (``COMPOSITE_PRIMARY_KEYS``): ``organization_member_metadata``,
  ``shared_task_labels``, ``node_op_log`` and ``activity``. Piccolo always adds a single-column
  primary key, so these classes carry piccolo's synthetic ``id`` SERIAL column that the database
  does not have (``ddl_for`` output for them has it too);
- the partitioning of ``activity`` (``PARTITION BY RANGE (created_at)``, its daily partitions
  ``activity_p_YYYYMMDD`` and the functions ``ensure_activity_partition(s)`` /
  ``drop_activity_partitions_before``) and the ``activity_notify`` trigger; ``Activity`` models
  its columns and its ``UNIQUE (created_at, event_id)``;
- the ``schema_migrations`` bookkeeping table (created by ``migrate.py``);
- every index (plain, expression, partial and partial-unique indexes such as
  ``uniq_pending_invite_per_email_per_org`` or ``idx_task_assignments_active``);
- the sequence ``node_fencing_token_seq``;
- the trigger functions ``set_updated_at`` / ``set_last_used_at`` and their triggers;
- the exact spelling of defaults: piccolo renders ``now()`` as ``current_timestamp``, intervals
  as ``INTERVAL '7 days 0 hours ...'`` and columns without a SQL default as ``DEFAULT null``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, TypeVar

from piccolo.columns import (
    JSONB,
    UUID,
    BigInt,
    BigSerial,
    Boolean,
    ForeignKey,
    Integer,
    OnDelete,
    OnUpdate,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.defaults.timestamptz import TimestamptzNow, TimestamptzOffset
from piccolo.constraints import Check, Unique
from piccolo.engine.postgres import PostgresEngine
from piccolo.table import Table

# Never connects: it only selects piccolo's Postgres dialect for DDL rendering.
PLACEHOLDER_ENGINE = PostgresEngine(config={})

# --- PG enum types (CREATE TYPE ... AS ENUM in 0001_initial.sql) ----------------------------------


class MemberRole(StrEnum):
    admin = "admin"
    member = "member"


class InvitationStatus(StrEnum):
    pending = "pending"
    accepted = "accepted"
    declined = "declined"
    expired = "expired"


class TaskStatus(StrEnum):
    todo = "todo"
    in_progress = "in-progress"
    in_review = "in-review"
    done = "done"
    cancelled = "cancelled"


class NodeStatus(StrEnum):
    pending = "pending"
    online = "online"
    offline = "offline"
    busy = "busy"
    draining = "draining"


PG_ENUMS: dict[str, type[StrEnum]] = {
    "member_role": MemberRole,
    "invitation_status": InvitationStatus,
    "task_status": TaskStatus,
    "node_status": NodeStatus,
}

# --- column helpers -------------------------------------------------------------------------------

_T = TypeVar("_T", bound=Table)


def _fk(references: type[_T], *, null: bool, on_delete: OnDelete, **kwargs: Any) -> ForeignKey[_T]:
    """A foreign key as the SQL writes it: ON UPDATE is never given, so it is NO ACTION."""
    return ForeignKey(
        references, null=null, on_delete=on_delete, on_update=OnUpdate.no_action, **kwargs
    )


def _uuid_pk() -> UUID:
    """``uuid PRIMARY KEY DEFAULT gen_random_uuid()``."""
    return UUID(primary_key=True)


def _now() -> Timestamptz:
    """``timestamptz NOT NULL DEFAULT now()``."""
    return Timestamptz(default=TimestamptzNow())


def _ts() -> Timestamptz:
    """Nullable ``timestamptz`` without default."""
    return Timestamptz(null=True, default=None)


def _text() -> Text:
    """Nullable ``text`` without default."""
    return Text(null=True, default=None)


def _req_text() -> Text:
    """``text NOT NULL`` without default (piccolo would otherwise default to ``''``)."""
    return Text(default=None)


def _uuid() -> UUID:
    """Nullable ``uuid`` without default."""
    return UUID(null=True, default=None)


_CASCADE = OnDelete.cascade
_SET_NULL = OnDelete.set_null
_NO_ACTION = OnDelete.no_action

# --- Tenancy --------------------------------------------------------------------------------------


class Organization(Table, tablename="organizations", db=PLACEHOLDER_ENGINE):
    id = _uuid_pk()
    name = _req_text()
    slug = Text(unique=True, default=None)
    is_personal = Boolean(default=False)
    created_at = _now()
    updated_at = _now()


class User(Table, tablename="users", db=PLACEHOLDER_ENGINE):
    id = _uuid_pk()
    email = Text(unique=True, default=None)
    first_name = _text()
    last_name = _text()
    username = _text()
    created_at = _now()
    updated_at = _now()


class OrganizationMemberMetadata(
    Table, tablename="organization_member_metadata", db=PLACEHOLDER_ENGINE
):
    # PRIMARY KEY (organization_id, user_id): see COMPOSITE_PRIMARY_KEYS.
    organization_id = _fk(Organization, null=False, on_delete=_CASCADE)
    user_id = _fk(User, null=False, on_delete=_CASCADE)
    role = Text(choices=MemberRole, default=MemberRole.member)
    joined_at = _now()
    last_seen_at = _ts()


class OrganizationInvitation(Table, tablename="organization_invitations", db=PLACEHOLDER_ENGINE):
    id = _uuid_pk()
    organization_id = _fk(Organization, null=False, on_delete=_CASCADE)
    invited_by_user_id = _fk(User, null=True, on_delete=_SET_NULL)
    email = _req_text()
    role = Text(choices=MemberRole, default=MemberRole.member)
    status = Text(choices=InvitationStatus, default=InvitationStatus.pending)
    token_hash = Text(unique=True, default=None)
    expires_at = Timestamptz(default=TimestamptzOffset(days=7))
    created_at = _now()
    updated_at = _now()


# --- Auth -----------------------------------------------------------------------------------------


class AuthSession(Table, tablename="auth_sessions", db=PLACEHOLDER_ENGINE):
    id = _uuid_pk()
    user_id = _fk(User, null=False, on_delete=_CASCADE)
    session_secret_hash = Text(unique=True, null=True, default=None)
    refresh_token_id = _uuid()
    refresh_token_issued_at = _ts()
    created_at = _now()
    last_used_at = _ts()
    revoked_at = _ts()
    csrf_token = _text()


class LoginLink(Table, tablename="login_links", db=PLACEHOLDER_ENGINE):
    id = _uuid_pk()
    user_id = _fk(User, null=False, on_delete=_CASCADE)
    token_hash = Text(unique=True, default=None)
    expires_at = Timestamptz(default=None)
    used_at = _ts()
    created_at = _now()


class RevokedRefreshToken(Table, tablename="revoked_refresh_tokens", db=PLACEHOLDER_ENGINE):
    token_id = UUID(primary_key=True, default=None)
    user_id = _fk(User, null=False, on_delete=_CASCADE)
    revoked_at = _now()
    revoked_reason = _req_text()


class OAuthAccount(Table, tablename="oauth_accounts", db=PLACEHOLDER_ENGINE):
    id = _uuid_pk()
    user_id = _fk(User, null=False, on_delete=_CASCADE)
    provider = _req_text()
    provider_user_id = _req_text()
    email = _text()
    username = _text()
    display_name = _text()
    avatar_url = _text()
    created_at = _now()
    updated_at = _now()

    oauth_accounts_provider_provider_user_id_key = Unique([provider, provider_user_id])


class OAuthHandoff(Table, tablename="oauth_handoffs", db=PLACEHOLDER_ENGINE):
    id = _uuid_pk()
    provider = _req_text()
    state = Text(unique=True, default=None)
    return_to = _req_text()
    app_challenge = _req_text()
    app_code_hash = _text()
    status = Text(default="pending")
    error_code = _text()
    expires_at = Timestamptz(default=TimestamptzOffset(minutes=10))
    authorized_at = _ts()
    redeemed_at = _ts()
    user_id = _fk(User, null=True, on_delete=_NO_ACTION)
    session_id = _fk(AuthSession, null=True, on_delete=_SET_NULL)
    encrypted_provider_tokens = _text()
    created_at = _now()
    updated_at = _now()


class PersonalAccessToken(Table, tablename="personal_access_tokens", db=PLACEHOLDER_ENGINE):
    id = _uuid_pk()
    user_id = _fk(User, null=False, on_delete=_CASCADE)
    name = _req_text()
    token_prefix = _req_text()
    token_hash = Text(unique=True, default=None)
    created_at = _now()
    last_used_at = _ts()
    expires_at = _ts()
    revoked_at = _ts()


# --- Swarm ----------------------------------------------------------------------------------------


class Node(Table, tablename="nodes", db=PLACEHOLDER_ENGINE):
    id = _uuid_pk()
    organization_id = _fk(Organization, null=False, on_delete=_CASCADE)
    name = _req_text()
    machine_id = _req_text()
    status = Text(choices=NodeStatus, default=NodeStatus.pending)
    capabilities = JSONB(default={})
    public_url = _text()
    last_heartbeat_at = _ts()
    connected_at = _ts()
    disconnected_at = _ts()
    created_at = _now()
    updated_at = _now()
    session_id = UUID(null=True, default=None)


class NodeApiKey(Table, tablename="node_api_keys", db=PLACEHOLDER_ENGINE):
    id = _uuid_pk()
    organization_id = _fk(Organization, null=False, on_delete=_CASCADE)
    name = _req_text()
    key_hash = _req_text()
    key_prefix = _req_text()
    created_by = _fk(User, null=True, on_delete=_SET_NULL)
    last_used_at = _ts()
    revoked_at = _ts()
    created_at = _now()
    node_id = _fk(Node, null=True, on_delete=_SET_NULL)
    takeover_count = Integer(default=0)
    takeover_window_start = _ts()
    blocked_at = _ts()
    blocked_reason = _text()


class SwarmProject(Table, tablename="swarm_projects", db=PLACEHOLDER_ENGINE):
    id = _uuid_pk()
    organization_id = _fk(Organization, null=False, on_delete=_CASCADE)
    name = _req_text()
    description = _text()
    metadata = JSONB(default={})
    created_at = _now()
    updated_at = _now()

    swarm_projects_organization_id_name_key = Unique([organization_id, name])


class SwarmProjectNode(Table, tablename="swarm_project_nodes", db=PLACEHOLDER_ENGINE):
    id = _uuid_pk()
    swarm_project_id = _fk(SwarmProject, null=False, on_delete=_CASCADE)
    node_id = _fk(Node, null=False, on_delete=_CASCADE)
    local_project_id = UUID(default=None)
    git_repo_path = _req_text()
    os_type = _text()
    linked_at = _now()
    is_owner = Boolean(default=False)

    swarm_project_nodes_swarm_project_id_node_id_key = Unique([swarm_project_id, node_id])
    swarm_project_nodes_node_id_local_project_id_key = Unique([node_id, local_project_id])


class NodeLocalProject(Table, tablename="node_local_projects", db=PLACEHOLDER_ENGINE):
    id = _uuid_pk()
    node_id = _fk(Node, null=False, on_delete=_CASCADE)
    local_project_id = UUID(default=None)
    name = _req_text()
    git_repo_path = _req_text()
    default_branch = Text(default="main")
    swarm_project_id = _fk(SwarmProject, null=True, on_delete=_SET_NULL)
    last_seen_at = _now()
    created_at = _now()

    node_local_projects_node_id_local_project_id_key = Unique([node_id, local_project_id])


class Label(Table, tablename="labels", db=PLACEHOLDER_ENGINE):
    id = _uuid_pk()
    organization_id = _fk(Organization, null=False, on_delete=_CASCADE)
    project_id = _uuid()
    origin_node_id = _fk(Node, null=True, on_delete=_SET_NULL)
    name = _req_text()
    icon = Text(default="tag")
    color = Text(default="#6b7280")
    version = BigInt(default=1)
    deleted_at = _ts()
    created_at = _now()
    updated_at = _now()

    uniq_labels_org_project_name = Unique(
        [organization_id, project_id, name, deleted_at], nulls_distinct=False
    )


class SwarmTemplate(Table, tablename="swarm_templates", db=PLACEHOLDER_ENGINE):
    id = _uuid_pk()
    organization_id = _fk(Organization, null=False, on_delete=_CASCADE)
    name = _req_text()
    content = Text(default="")
    description = _text()
    metadata = JSONB(default={})
    version = BigInt(default=1)
    created_at = _now()
    updated_at = _now()
    deleted_at = _ts()

    uniq_swarm_templates_org_name = Unique(
        [organization_id, name, deleted_at], nulls_distinct=False
    )


# --- Tasks ----------------------------------------------------------------------------------------


class SharedTask(Table, tablename="shared_tasks", db=PLACEHOLDER_ENGINE):
    id = _uuid_pk()
    organization_id = _fk(Organization, null=False, on_delete=_CASCADE)
    project_id = _uuid()
    swarm_project_id = _fk(SwarmProject, null=True, on_delete=_SET_NULL)
    creator_user_id = _fk(User, null=True, on_delete=_SET_NULL)
    assignee_user_id = _fk(User, null=True, on_delete=_SET_NULL)
    deleted_by_user_id = _fk(User, null=True, on_delete=_SET_NULL)
    title = _req_text()
    description = _text()
    status = Text(choices=TaskStatus, default=TaskStatus.todo)
    executor = Text(default="CLAUDE_CODE")
    version = BigInt(default=1)
    deleted_at = _ts()
    shared_at = Timestamptz(null=True, default=TimestamptzNow())
    archived_at = _ts()
    executing_node_id = _fk(Node, null=True, on_delete=_SET_NULL)
    owner_node_id = _fk(Node, null=True, on_delete=_SET_NULL)
    owner_name = _text()
    source_node_id = _fk(Node, null=True, on_delete=_SET_NULL)
    source_task_id = _uuid()
    created_at = _now()
    updated_at = _now()

    shared_tasks_text_size = Check(
        "octet_length(title) + coalesce(octet_length(description), 0) <= 51200"
    )


class SharedTaskLabel(Table, tablename="shared_task_labels", db=PLACEHOLDER_ENGINE):
    # PRIMARY KEY (shared_task_id, label_id): see COMPOSITE_PRIMARY_KEYS.
    shared_task_id = _fk(SharedTask, null=False, on_delete=_CASCADE)
    label_id = _fk(Label, null=False, on_delete=_CASCADE)
    created_at = _now()


# --- Activity feed --------------------------------------------------------------------------------


class ProjectActivityCounter(Table, tablename="project_activity_counters", db=PLACEHOLDER_ENGINE):
    project_id = UUID(primary_key=True, default=None)
    swarm_project_id = _fk(SwarmProject, null=True, on_delete=_CASCADE)
    last_seq = BigInt(default=0)


class Activity(Table, tablename="activity", db=PLACEHOLDER_ENGINE):
    """Columns and unique key only: partitioning, composite PK and trigger are SQL-only."""

    # PRIMARY KEY (created_at, project_id, seq): see COMPOSITE_PRIMARY_KEYS.
    seq = BigInt(default=None)
    event_id = UUID()
    project_id = UUID(default=None)
    assignee_user_id = _fk(User, null=True, on_delete=_SET_NULL)
    event_type = _req_text()
    payload = JSONB(default=None)
    created_at = _now()
    swarm_project_id = _uuid()

    activity_created_at_event_id_key = Unique([created_at, event_id])


# --- Dispatch & sync ------------------------------------------------------------------------------


class NodeTaskAssignment(Table, tablename="node_task_assignments", db=PLACEHOLDER_ENGINE):
    id = _uuid_pk()
    task_id = _fk(SharedTask, null=False, on_delete=_CASCADE)
    node_id = _fk(Node, null=False, on_delete=_CASCADE)
    node_project_id = _fk(SwarmProjectNode, null=False, on_delete=_CASCADE)
    local_task_id = _uuid()
    local_attempt_id = _uuid()
    execution_status = Text(default="pending")
    assigned_at = _now()
    started_at = _ts()
    completed_at = _ts()
    created_at = _now()
    lease_expires_at = _ts()
    fencing_token = BigInt(default=0)


class NodeLeaseToken(Table, tablename="node_lease_tokens", db=PLACEHOLDER_ENGINE):
    # Filled by the trigger record_lease_token (migration 0003): every token a lease ever had.
    fencing_token = BigInt(primary_key=True, default=None)
    assignment_id = _fk(NodeTaskAssignment, null=False, on_delete=_CASCADE, index=True)
    task_id = UUID(default=None)
    holder_node_id = _uuid()
    granted_at = _now()
    ended_at = _ts()


class NodeOpLog(Table, tablename="node_op_log", db=PLACEHOLDER_ENGINE):
    # PRIMARY KEY (node_id, idempotency_key): see COMPOSITE_PRIMARY_KEYS. No FK on node_id.
    node_id = UUID(default=None)
    idempotency_key = _req_text()
    seq = BigInt(default=None)
    op_type = _req_text()
    entity_id = UUID(default=None)
    applied_at = _now()
    reject_code = _text()
    reject_reason = _text()
    fencing_token = BigInt(null=True, default=None)
    epoch = Integer(default=0)


class NodeOpCursor(Table, tablename="node_op_cursors", db=PLACEHOLDER_ENGINE):
    node_id = _fk(Node, null=False, on_delete=_CASCADE, primary_key=True)
    applied_through_seq = BigInt(default=0)
    updated_at = _now()
    epoch = Integer(default=0)


class NodeTaskAttempt(Table, tablename="node_task_attempts", db=PLACEHOLDER_ENGINE):
    id = UUID(primary_key=True, default=None)
    assignment_id = _fk(NodeTaskAssignment, null=True, on_delete=_CASCADE)
    shared_task_id = _fk(SharedTask, null=False, on_delete=_CASCADE)
    node_id = _fk(Node, null=False, on_delete=_CASCADE)
    executor = _req_text()
    executor_variant = _text()
    branch = _req_text()
    target_branch = _req_text()
    container_ref = _text()
    worktree_deleted = Boolean(default=False)
    setup_completed_at = _ts()
    created_at = _now()
    updated_at = _now()
    sync_state = Varchar(length=20, default="partial")
    sync_requested_at = _ts()
    last_full_sync_at = _ts()
    backfill_request_id = _uuid()


class NodeExecutionProcess(Table, tablename="node_execution_processes", db=PLACEHOLDER_ENGINE):
    id = UUID(primary_key=True, default=None)
    attempt_id = _fk(NodeTaskAttempt, null=False, on_delete=_CASCADE)
    node_id = _fk(Node, null=False, on_delete=_CASCADE)
    run_reason = _req_text()
    executor_action = JSONB(null=True, default=None)
    before_head_commit = _text()
    after_head_commit = _text()
    status = _req_text()
    exit_code = Integer(null=True, default=None)
    dropped = Boolean(default=False)
    pid = BigInt(null=True, default=None)
    started_at = Timestamptz(default=None)
    completed_at = _ts()
    created_at = _now()


class NodeTaskOutputLog(Table, tablename="node_task_output_logs", db=PLACEHOLDER_ENGINE):
    id = BigSerial(primary_key=True)
    assignment_id = _fk(NodeTaskAssignment, null=True, on_delete=_CASCADE)
    output_type = _req_text()
    content = _req_text()
    timestamp = _now()
    created_at = _now()
    execution_process_id = _fk(NodeExecutionProcess, null=True, on_delete=_SET_NULL)
    local_log_id = BigInt(null=True, default=None)

    uniq_output_logs_process_local = Unique([execution_process_id, local_log_id])


class NodeTaskProgressEvent(Table, tablename="node_task_progress_events", db=PLACEHOLDER_ENGINE):
    id = BigSerial(primary_key=True)
    assignment_id = _fk(NodeTaskAssignment, null=True, on_delete=_CASCADE)
    event_type = _req_text()
    message = _text()
    metadata = JSONB(null=True, default=None)
    timestamp = _now()
    created_at = _now()
    shared_task_id = _fk(SharedTask, null=True, on_delete=_CASCADE)
    node_id = _fk(Node, null=True, on_delete=_CASCADE)
    attempt_id = _fk(NodeTaskAttempt, null=True, on_delete=_CASCADE)
    execution_process_id = _fk(NodeExecutionProcess, null=True, on_delete=_SET_NULL)
    event_id = UUID(null=True, default=None)

    uniq_progress_events_node_event = Unique([node_id, event_id])


# --- organization webhooks ------------------------------------------------------------------------


class OrganizationWebhook(Table, tablename="organization_webhooks", db=PLACEHOLDER_ENGINE):
    id = _uuid_pk()
    organization_id = _fk(Organization, null=False, on_delete=_CASCADE)
    name = _req_text()
    url = _req_text()
    events = JSONB(default=None)
    headers = JSONB(default={})
    secret = _text()
    payload_template = _text()
    active = Boolean(default=True)
    created_by = _fk(User, null=True, on_delete=_SET_NULL)
    created_at = _now()
    updated_at = _now()


class OrganizationWebhookDelivery(
    Table, tablename="organization_webhook_deliveries", db=PLACEHOLDER_ENGINE
):
    id = UUID(primary_key=True, default=None)
    webhook_id = _fk(OrganizationWebhook, null=False, on_delete=_CASCADE)
    event = _req_text()
    body = _req_text()
    node_id = _fk(Node, null=True, on_delete=_CASCADE)
    status = Text(default="pending")
    attempt_count = Integer(default=0)
    next_attempt_at = _ts()
    created_at = _now()
    updated_at = _now()

    organization_webhook_deliveries_status_check = Check(
        "status IN ('pending', 'delivered', 'failed', 'superseded')"
    )


class OrganizationWebhookAttempt(
    Table, tablename="organization_webhook_attempts", db=PLACEHOLDER_ENGINE
):
    id = BigSerial(primary_key=True)
    delivery_id = _fk(OrganizationWebhookDelivery, null=False, on_delete=_CASCADE)
    attempt = Integer(default=None)
    status_code = Integer(null=True, default=None)
    duration_ms = Integer(default=None)
    error = _text()
    attempted_at = _now()


# --- registry -------------------------------------------------------------------------------------

# Every table, in dependency order (a table comes after every table it references).
TABLES: tuple[type[Table], ...] = (
    Organization,
    User,
    OrganizationMemberMetadata,
    OrganizationInvitation,
    AuthSession,
    RevokedRefreshToken,
    OAuthAccount,
    OAuthHandoff,
    PersonalAccessToken,
    LoginLink,
    Node,
    NodeApiKey,
    SwarmProject,
    SwarmProjectNode,
    NodeLocalProject,
    Label,
    SwarmTemplate,
    SharedTask,
    SharedTaskLabel,
    ProjectActivityCounter,
    Activity,
    NodeTaskAssignment,
    NodeLeaseToken,
    NodeOpLog,
    NodeOpCursor,
    NodeTaskAttempt,
    NodeExecutionProcess,
    NodeTaskOutputLog,
    NodeTaskProgressEvent,
    OrganizationWebhook,
    OrganizationWebhookDelivery,
    OrganizationWebhookAttempt,
)

# Tables whose SQL primary key spans several columns. Piccolo can't declare that, so their classes
# carry piccolo's synthetic ``id`` column, which the database does not have.
COMPOSITE_PRIMARY_KEYS: dict[type[Table], tuple[str, ...]] = {
    OrganizationMemberMetadata: ("organization_id", "user_id"),
    SharedTaskLabel: ("shared_task_id", "label_id"),
    NodeOpLog: ("node_id", "idempotency_key"),
    Activity: ("created_at", "project_id", "seq"),
}


def ddl_for(table: type[Table]) -> list[str]:
    """Piccolo's CREATE TABLE DDL for ``table`` (plus its constraint statements).

    For checks and comparisons only: migrations are the versioned SQL files, never this output.
    Differs from the SQL where the module docstring says piccolo can't express the schema.
    """
    return list(table.create_table().ddl)
