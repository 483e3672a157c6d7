"""The migrations build exactly the schema of spec/hive-store.md §3 (plus DESIGN.md additions)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from vk_hive.store.migrate import load_migrations, migrate

# --- the expected description, written from the spec ----------------------------------------------

_TYPE_ALIASES = {
    "ts": "timestamp with time zone",
    "bool": "boolean",
    "int": "integer",
    "varchar20": "character varying(20)",
}

# "column type" (nullable) or "column type NN" (NOT NULL), one per line.
EXPECTED_COLUMNS: dict[str, str] = {
    "organizations": """
        id uuid NN | name text NN | slug text NN | is_personal bool NN | created_at ts NN
        updated_at ts NN""",
    "users": """
        id uuid NN | email text NN | first_name text | last_name text | username text
        created_at ts NN | updated_at ts NN""",
    "organization_member_metadata": """
        organization_id uuid NN | user_id uuid NN | role member_role NN | joined_at ts NN
        last_seen_at ts""",
    "organization_invitations": """
        id uuid NN | organization_id uuid NN | invited_by_user_id uuid | email text NN
        role member_role NN | status invitation_status NN | expires_at ts NN | created_at ts NN
        updated_at ts NN | token_hash text NN""",
    "auth_sessions": """
        id uuid NN | user_id uuid NN | session_secret_hash text | refresh_token_id uuid
        refresh_token_issued_at ts | created_at ts NN | last_used_at ts | revoked_at ts
        csrf_token text""",
    "login_links": """
        id uuid NN | user_id uuid NN | token_hash text NN | expires_at ts NN | used_at ts
        created_at ts NN""",
    "revoked_refresh_tokens": """
        token_id uuid NN | user_id uuid NN | revoked_at ts NN | revoked_reason text NN""",
    "oauth_accounts": """
        id uuid NN | user_id uuid NN | provider text NN | provider_user_id text NN | email text
        username text | display_name text | avatar_url text | created_at ts NN
        updated_at ts NN""",
    "oauth_handoffs": """
        id uuid NN | provider text NN | state text NN | return_to text NN | app_challenge text NN
        app_code_hash text | status text NN | error_code text | expires_at ts NN | authorized_at ts
        redeemed_at ts | user_id uuid | session_id uuid | encrypted_provider_tokens text
        created_at ts NN | updated_at ts NN""",
    "personal_access_tokens": """
        id uuid NN | user_id uuid NN | name text NN | token_prefix text NN | token_hash text NN
        created_at ts NN | last_used_at ts | expires_at ts | revoked_at ts""",
    "nodes": """
        id uuid NN | organization_id uuid NN | name text NN | machine_id text NN
        status node_status NN | capabilities jsonb NN | public_url text | last_heartbeat_at ts
        connected_at ts | disconnected_at ts | created_at ts NN | updated_at ts NN
        session_id uuid""",
    "node_api_keys": """
        id uuid NN | organization_id uuid NN | name text NN | key_hash text NN | key_prefix text NN
        created_by uuid | last_used_at ts | revoked_at ts | created_at ts NN | node_id uuid
        takeover_count int NN | takeover_window_start ts | blocked_at ts | blocked_reason text""",
    "swarm_projects": """
        id uuid NN | organization_id uuid NN | name text NN | description text | metadata jsonb NN
        created_at ts NN | updated_at ts NN""",
    "swarm_project_nodes": """
        id uuid NN | swarm_project_id uuid NN | node_id uuid NN | local_project_id uuid NN
        git_repo_path text NN | os_type text | linked_at ts NN | is_owner bool NN""",
    "node_local_projects": """
        id uuid NN | node_id uuid NN | local_project_id uuid NN | name text NN
        git_repo_path text NN | default_branch text NN | swarm_project_id uuid
        last_seen_at ts NN | created_at ts NN""",
    "labels": """
        id uuid NN | organization_id uuid NN | project_id uuid | origin_node_id uuid | name text NN
        icon text NN | color text NN | version bigint NN | deleted_at ts | created_at ts NN
        updated_at ts NN""",
    "swarm_templates": """
        id uuid NN | organization_id uuid NN | name text NN | content text NN | description text
        metadata jsonb NN | version bigint NN | created_at ts NN | updated_at ts NN
        deleted_at ts""",
    "shared_tasks": """
        id uuid NN | organization_id uuid NN | project_id uuid | swarm_project_id uuid
        creator_user_id uuid | assignee_user_id uuid | deleted_by_user_id uuid | title text NN
        description text | status task_status NN | executor text NN | version bigint NN
        deleted_at ts | shared_at ts | archived_at ts | executing_node_id uuid | owner_node_id uuid
        owner_name text | source_node_id uuid | source_task_id uuid | created_at ts NN
        updated_at ts NN""",
    "shared_task_labels": """
        shared_task_id uuid NN | label_id uuid NN | created_at ts NN""",
    "project_activity_counters": """
        project_id uuid NN | swarm_project_id uuid | last_seq bigint NN""",
    "activity": """
        seq bigint NN | event_id uuid NN | project_id uuid NN | assignee_user_id uuid
        event_type text NN | payload jsonb NN | created_at ts NN | swarm_project_id uuid""",
    "node_task_assignments": """
        id uuid NN | task_id uuid NN | node_id uuid NN | node_project_id uuid NN
        local_task_id uuid | local_attempt_id uuid | execution_status text NN | assigned_at ts NN
        started_at ts | completed_at ts | created_at ts NN | lease_expires_at ts
        fencing_token bigint NN""",
    "node_op_log": """
        node_id uuid NN | idempotency_key text NN | seq bigint NN | op_type text NN
        entity_id uuid NN | applied_at ts NN | reject_code text | reject_reason text
        fencing_token bigint | epoch integer NN""",
    "node_op_cursors": """
        node_id uuid NN | applied_through_seq bigint NN | updated_at ts NN | epoch integer NN""",
    "node_lease_tokens": """
        fencing_token bigint NN | assignment_id uuid NN | task_id uuid NN | holder_node_id uuid
        granted_at ts NN | ended_at ts""",
    "node_task_attempts": """
        id uuid NN | assignment_id uuid | shared_task_id uuid NN | node_id uuid NN
        executor text NN | executor_variant text | branch text NN | target_branch text NN
        container_ref text | worktree_deleted bool NN | setup_completed_at ts | created_at ts NN
        updated_at ts NN | sync_state varchar20 NN | sync_requested_at ts | last_full_sync_at ts
        backfill_request_id uuid""",
    "node_execution_processes": """
        id uuid NN | attempt_id uuid NN | node_id uuid NN | run_reason text NN
        executor_action jsonb | before_head_commit text | after_head_commit text | status text NN
        exit_code int | dropped bool NN | pid bigint | started_at ts NN | completed_at ts
        created_at ts NN""",
    "node_task_output_logs": """
        id bigint NN | assignment_id uuid | output_type text NN | content text NN
        timestamp ts NN | created_at ts NN | execution_process_id uuid | local_log_id bigint""",
    "node_task_progress_events": """
        id bigint NN | assignment_id uuid | event_type text NN | message text | metadata jsonb
        timestamp ts NN | created_at ts NN | shared_task_id uuid | node_id uuid
        attempt_id uuid | execution_process_id uuid | event_id uuid""",
    "organization_webhooks": """
        id uuid NN | organization_id uuid NN | name text NN | url text NN | events jsonb NN
        headers jsonb NN | secret text | payload_template text | active bool NN
        created_by uuid | created_at ts NN | updated_at ts NN""",
    "organization_webhook_deliveries": """
        id uuid NN | webhook_id uuid NN | event text NN | body text NN | node_id uuid
        status text NN | attempt_count int NN | next_attempt_at ts | created_at ts NN
        updated_at ts NN""",
    "organization_webhook_attempts": """
        id bigint NN | delivery_id uuid NN | attempt int NN | status_code int
        duration_ms int NN | error text | attempted_at ts NN""",
    "schema_migrations": """
        version int NN | name text NN | applied_at ts NN""",
}

EXPECTED_ENUMS = {
    "member_role": ["admin", "member"],
    "invitation_status": ["pending", "accepted", "declined", "expired"],
    "task_status": ["todo", "in-progress", "in-review", "done", "cancelled"],
    "node_status": ["pending", "online", "offline", "busy", "draining"],
}

_NOT_NULL = "IS NOT NULL"

# Per table: "[U ](key) [WHERE predicate]" in PostgreSQL's own rendering (pg_get_indexdef).
EXPECTED_INDEXES: dict[str, list[str]] = {
    "organizations": ["U (id)", "U (slug)"],
    "users": ["U (id)", "U (email)", "(lower(email))"],
    "organization_member_metadata": [
        "U (organization_id, user_id)",
        "(user_id)",
        "(organization_id, role)",
    ],
    "organization_invitations": [
        "U (id)",
        "U (token_hash)",
        "U (organization_id, lower(email)) WHERE status = 'pending'::invitation_status",
        "(organization_id)",
        "(status, expires_at)",
    ],
    "auth_sessions": ["U (id)", "(user_id)", "(refresh_token_id)", "U (session_secret_hash)"],
    "login_links": ["U (id)", "U (token_hash)", "(user_id)"],
    "revoked_refresh_tokens": ["U (token_id)", "(user_id)"],
    "oauth_accounts": ["U (id)", "U (provider, provider_user_id)", "(user_id)"],
    "oauth_handoffs": ["U (id)", "U (state)", "(status)", "(user_id)"],
    "personal_access_tokens": ["U (id)", "U (token_hash)", "(token_prefix)", "(user_id)"],
    "nodes": [
        "U (id)",
        "(organization_id, status)",
        "(last_heartbeat_at) WHERE status = ANY (ARRAY['online'::node_status, "
        "'busy'::node_status])",
    ],
    "node_api_keys": ["U (id)", "(organization_id)", "(key_prefix)", "(node_id)"],
    "swarm_projects": ["U (id)", "U (organization_id, name)", "(organization_id)"],
    "swarm_project_nodes": [
        "U (id)",
        "U (swarm_project_id, node_id)",
        "U (node_id, local_project_id)",
        "(swarm_project_id)",
        "(node_id)",
    ],
    "node_local_projects": [
        "U (id)",
        "U (node_id, local_project_id)",
        "(node_id)",
        f"(swarm_project_id) WHERE swarm_project_id {_NOT_NULL}",
        "(last_seen_at)",
    ],
    "labels": [
        "U (id)",
        "U (organization_id, project_id, name, deleted_at) NULLS NOT DISTINCT",
        "(organization_id)",
        "(project_id)",
        "(origin_node_id)",
        f"(deleted_at) WHERE deleted_at {_NOT_NULL}",
    ],
    "swarm_templates": [
        "U (id)",
        "U (organization_id, name, deleted_at) NULLS NOT DISTINCT",
        "(organization_id)",
        "(deleted_at) WHERE deleted_at IS NULL",
    ],
    "shared_tasks": [
        "U (id)",
        "(organization_id, status)",
        "(organization_id, assignee_user_id)",
        "(project_id)",
        f"(organization_id, deleted_at) WHERE deleted_at {_NOT_NULL}",
        f"(executing_node_id) WHERE executing_node_id {_NOT_NULL}",
        f"(swarm_project_id) WHERE swarm_project_id {_NOT_NULL}",
        f"(project_id, source_node_id, source_task_id) WHERE source_task_id {_NOT_NULL}",
        "U (source_node_id, source_task_id) WHERE (source_node_id IS NOT NULL) AND "
        "(source_task_id IS NOT NULL) AND (deleted_at IS NULL)",
    ],
    "shared_task_labels": ["U (shared_task_id, label_id)", "(label_id)"],
    "project_activity_counters": [
        "U (project_id)",
        f"(swarm_project_id) WHERE swarm_project_id {_NOT_NULL}",
    ],
    "activity": [
        "U (created_at, project_id, seq)",
        "U (created_at, event_id)",
        "(project_id, seq DESC)",
        f"(swarm_project_id, seq) WHERE swarm_project_id {_NOT_NULL}",
        f"(swarm_project_id, created_at) WHERE swarm_project_id {_NOT_NULL}",
    ],
    "node_task_assignments": [
        "U (id)",
        "U (task_id) WHERE completed_at IS NULL",
        "(node_id)",
        "(lease_expires_at) WHERE (completed_at IS NULL) AND (lease_expires_at IS NOT NULL)",
    ],
    "node_op_log": [
        "U (node_id, idempotency_key)",
        "(node_id, seq)",
    ],
    "node_op_cursors": ["U (node_id)"],
    "node_lease_tokens": ["U (fencing_token)", "(assignment_id)"],
    "node_task_attempts": [
        "U (id)",
        "(assignment_id)",
        "(shared_task_id)",
        "(node_id)",
        "(node_id, sync_state) WHERE (sync_state)::text <> 'complete'::text",
        "(node_id) WHERE (sync_state)::text = 'pending_backfill'::text",
        f"(backfill_request_id) WHERE backfill_request_id {_NOT_NULL}",
    ],
    "node_execution_processes": [
        "U (id)",
        "(attempt_id)",
        "(node_id)",
        "(status) WHERE status = 'running'::text",
    ],
    "node_task_output_logs": [
        "U (id)",
        "U (execution_process_id, local_log_id)",
        "(assignment_id)",
        "(assignment_id, created_at)",
        "(execution_process_id)",
    ],
    "node_task_progress_events": [
        "U (id)",
        "U (node_id, event_id)",
        "(assignment_id)",
        "(assignment_id, created_at)",
        '(shared_task_id, "timestamp", id)',
        "(attempt_id)",
    ],
    "organization_webhooks": ["U (id)", "(organization_id)"],
    "organization_webhook_deliveries": [
        "U (id)",
        "(webhook_id, created_at)",
        "(next_attempt_at) WHERE status = 'pending'::text",
    ],
    "organization_webhook_attempts": ["U (id)", "(delivery_id, attempt)"],
    "schema_migrations": ["U (version)"],
}

# Indexes the spec names; other code (ON CONFLICT targets, error mapping) relies on these names.
NAMED_INDEXES = {
    ("node_task_assignments", "idx_task_assignments_active"),
    ("shared_tasks", "idx_shared_tasks_source_unique"),
    ("organization_invitations", "uniq_pending_invite_per_email_per_org"),
    ("nodes", "idx_nodes_heartbeat"),
}

# (table, column) -> (referenced table, ON DELETE action).
EXPECTED_FOREIGN_KEYS: dict[tuple[str, str], tuple[str, str]] = {
    ("organization_member_metadata", "organization_id"): ("organizations", "CASCADE"),
    ("organization_member_metadata", "user_id"): ("users", "CASCADE"),
    ("organization_invitations", "organization_id"): ("organizations", "CASCADE"),
    ("organization_invitations", "invited_by_user_id"): ("users", "SET NULL"),
    ("auth_sessions", "user_id"): ("users", "CASCADE"),
    ("login_links", "user_id"): ("users", "CASCADE"),
    ("revoked_refresh_tokens", "user_id"): ("users", "CASCADE"),
    ("oauth_accounts", "user_id"): ("users", "CASCADE"),
    ("oauth_handoffs", "user_id"): ("users", "NO ACTION"),
    ("oauth_handoffs", "session_id"): ("auth_sessions", "SET NULL"),
    ("personal_access_tokens", "user_id"): ("users", "CASCADE"),
    ("nodes", "organization_id"): ("organizations", "CASCADE"),
    ("node_api_keys", "organization_id"): ("organizations", "CASCADE"),
    ("node_api_keys", "created_by"): ("users", "SET NULL"),
    ("node_api_keys", "node_id"): ("nodes", "SET NULL"),
    ("swarm_projects", "organization_id"): ("organizations", "CASCADE"),
    ("swarm_project_nodes", "swarm_project_id"): ("swarm_projects", "CASCADE"),
    ("swarm_project_nodes", "node_id"): ("nodes", "CASCADE"),
    ("node_local_projects", "node_id"): ("nodes", "CASCADE"),
    ("node_local_projects", "swarm_project_id"): ("swarm_projects", "SET NULL"),
    ("labels", "organization_id"): ("organizations", "CASCADE"),
    ("labels", "origin_node_id"): ("nodes", "SET NULL"),
    ("swarm_templates", "organization_id"): ("organizations", "CASCADE"),
    ("shared_tasks", "organization_id"): ("organizations", "CASCADE"),
    ("shared_tasks", "swarm_project_id"): ("swarm_projects", "SET NULL"),
    ("shared_tasks", "creator_user_id"): ("users", "SET NULL"),
    ("shared_tasks", "assignee_user_id"): ("users", "SET NULL"),
    ("shared_tasks", "deleted_by_user_id"): ("users", "SET NULL"),
    ("shared_tasks", "executing_node_id"): ("nodes", "SET NULL"),
    ("shared_tasks", "owner_node_id"): ("nodes", "SET NULL"),
    ("shared_tasks", "source_node_id"): ("nodes", "SET NULL"),
    ("shared_task_labels", "shared_task_id"): ("shared_tasks", "CASCADE"),
    ("shared_task_labels", "label_id"): ("labels", "CASCADE"),
    ("project_activity_counters", "swarm_project_id"): ("swarm_projects", "CASCADE"),
    ("activity", "assignee_user_id"): ("users", "SET NULL"),
    ("node_task_assignments", "task_id"): ("shared_tasks", "CASCADE"),
    ("node_task_assignments", "node_id"): ("nodes", "CASCADE"),
    ("node_task_assignments", "node_project_id"): ("swarm_project_nodes", "CASCADE"),
    ("node_op_cursors", "node_id"): ("nodes", "CASCADE"),
    ("node_lease_tokens", "assignment_id"): ("node_task_assignments", "CASCADE"),
    ("node_task_attempts", "assignment_id"): ("node_task_assignments", "CASCADE"),
    ("node_task_attempts", "shared_task_id"): ("shared_tasks", "CASCADE"),
    ("node_task_attempts", "node_id"): ("nodes", "CASCADE"),
    ("node_execution_processes", "attempt_id"): ("node_task_attempts", "CASCADE"),
    ("node_execution_processes", "node_id"): ("nodes", "CASCADE"),
    ("node_task_output_logs", "assignment_id"): ("node_task_assignments", "CASCADE"),
    ("node_task_output_logs", "execution_process_id"): ("node_execution_processes", "SET NULL"),
    ("node_task_progress_events", "assignment_id"): ("node_task_assignments", "CASCADE"),
    ("node_task_progress_events", "shared_task_id"): ("shared_tasks", "CASCADE"),
    ("node_task_progress_events", "node_id"): ("nodes", "CASCADE"),
    ("node_task_progress_events", "attempt_id"): ("node_task_attempts", "CASCADE"),
    ("node_task_progress_events", "execution_process_id"): (
        "node_execution_processes",
        "SET NULL",
    ),
    ("organization_webhooks", "organization_id"): ("organizations", "CASCADE"),
    ("organization_webhooks", "created_by"): ("users", "SET NULL"),
    ("organization_webhook_deliveries", "webhook_id"): ("organization_webhooks", "CASCADE"),
    ("organization_webhook_deliveries", "node_id"): ("nodes", "CASCADE"),
    ("organization_webhook_attempts", "delivery_id"): (
        "organization_webhook_deliveries",
        "CASCADE",
    ),
}

_UPDATED_AT_TABLES = [
    "organizations",
    "users",
    "shared_tasks",
    "organization_invitations",
    "oauth_accounts",
    "oauth_handoffs",
    "nodes",
    "labels",
    "node_task_attempts",
    "swarm_projects",
    "swarm_templates",
    "organization_webhooks",
    "organization_webhook_deliveries",
]

# (table, trigger name, function, timing/event)
EXPECTED_TRIGGERS = {
    *((t, f"trg_{t}_updated_at", "set_updated_at", "BEFORE UPDATE") for t in _UPDATED_AT_TABLES),
    ("auth_sessions", "trg_auth_sessions_last_used_at", "set_last_used_at", "BEFORE UPDATE"),
    ("activity", "trg_activity_notify", "activity_notify", "AFTER INSERT"),
    (
        "node_task_assignments",
        "trg_node_task_assignments_lease_tokens",
        "record_lease_token",
        "AFTER INSERT OR UPDATE",
    ),
}


# --- catalog readers ------------------------------------------------------------------------------


def _parse_columns(text: str) -> list[tuple[str, str, bool]]:
    columns = []
    for item in text.replace("\n", "|").split("|"):
        words = item.split()
        if not words:
            continue
        name, typ, *rest = words
        columns.append((name, _TYPE_ALIASES.get(typ, typ), rest == ["NN"]))
    return columns


async def _columns(conn: asyncpg.Connection) -> dict[str, list[tuple[str, str, bool]]]:
    rows = await conn.fetch(
        """
        SELECT c.relname AS table, a.attname AS column,
               format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS not_null
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
        ORDER BY c.relname, a.attnum
        """
    )
    out: dict[str, list[tuple[str, str, bool]]] = {}
    for r in rows:
        out.setdefault(r["table"], []).append((r["column"], r["type"], r["not_null"]))
    return out


def _index_shape(indexdef: str, unique: bool) -> str:
    head, _, predicate = indexdef.partition(" WHERE ")
    key = head.split(" USING btree ", 1)[1]
    shape = ("U " if unique else "") + key
    if predicate:
        assert predicate.startswith("(")
        assert predicate.endswith(")")
        shape += " WHERE " + predicate[1:-1]
    return shape


async def _indexes(conn: asyncpg.Connection) -> dict[str, list[tuple[str, str]]]:
    rows = await conn.fetch(
        """
        SELECT t.relname AS table, i.relname AS index, x.indisunique AS unique,
               pg_get_indexdef(x.indexrelid) AS def
        FROM pg_index x
        JOIN pg_class t ON t.oid = x.indrelid
        JOIN pg_class i ON i.oid = x.indexrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace
        WHERE n.nspname = 'public' AND NOT t.relispartition
        ORDER BY 1, 2
        """
    )
    out: dict[str, list[tuple[str, str]]] = {}
    for r in rows:
        out.setdefault(r["table"], []).append((r["index"], _index_shape(r["def"], r["unique"])))
    return out


async def _snapshot(conn: asyncpg.Connection) -> dict[str, Any]:
    """Everything that defines the schema, as comparable data."""
    rows = await conn.fetch(
        """
        SELECT c.relname, c.relkind::text, pg_get_partkeydef(c.oid) AS partkey
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' ORDER BY 1
        """
    )
    triggers = await conn.fetch(
        "SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid) FROM pg_trigger "
        "WHERE NOT tgisinternal ORDER BY 1, 2"
    )
    constraints = await conn.fetch(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2"
    )
    functions = await conn.fetch(
        "SELECT proname, md5(prosrc) FROM pg_proc WHERE pronamespace = 'public'::regnamespace "
        "ORDER BY 1"
    )
    migrations = await conn.fetch("SELECT version, name, applied_at FROM schema_migrations")
    return {
        "relations": [tuple(r) for r in rows],
        "columns": await _columns(conn),
        "indexes": await _indexes(conn),
        "triggers": [tuple(r) for r in triggers],
        "constraints": [tuple(r) for r in constraints],
        "functions": [tuple(r) for r in functions],
        "migrations": [tuple(r) for r in migrations],
    }


@pytest_asyncio.fixture
async def empty_conn(pg_database: str) -> AsyncIterator[asyncpg.Connection]:
    """An open connection to an empty database."""
    conn = await asyncpg.connect(pg_database)
    try:
        yield conn
    finally:
        await conn.close()


# --- tests ---------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_migrate_builds_every_table_with_the_specified_columns(empty_conn: Any) -> None:
    """Migrating an empty database creates exactly the specified tables, types, nullability."""
    applied = await migrate(empty_conn)
    assert applied == [f"{m.version:04d}_{m.name}" for m in load_migrations()]
    actual = await _columns(empty_conn)
    assert sorted(actual) == sorted(EXPECTED_COLUMNS)
    for table, text in EXPECTED_COLUMNS.items():
        assert actual[table] == _parse_columns(text), table


@pytest.mark.asyncio
async def test_migrate_creates_the_four_enums_with_their_values(empty_conn: Any) -> None:
    """The four enums hold exactly the spec's values, in the spec's order."""
    await migrate(empty_conn)
    rows = await empty_conn.fetch(
        """
        SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder) AS labels
        FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid
        WHERE t.typnamespace = 'public'::regnamespace GROUP BY t.typname
        """
    )
    assert {r["typname"]: list(r["labels"]) for r in rows} == EXPECTED_ENUMS


@pytest.mark.asyncio
async def test_migrate_creates_every_index_including_partial_and_unique(empty_conn: Any) -> None:
    """Every table carries exactly the specified indexes (keys, uniqueness, partial predicates)."""
    await migrate(empty_conn)
    actual = await _indexes(empty_conn)
    assert sorted(actual) == sorted(EXPECTED_INDEXES)
    for table, shapes in EXPECTED_INDEXES.items():
        assert sorted(shape for _, shape in actual[table]) == sorted(shapes), table
    names = {(table, name) for table, idx in actual.items() for name, _ in idx}
    assert names >= NAMED_INDEXES


@pytest.mark.asyncio
async def test_migrate_creates_foreign_keys_with_their_delete_actions(empty_conn: Any) -> None:
    """Each reference points at the specified table with the specified ON DELETE behaviour."""
    await migrate(empty_conn)
    rows = await empty_conn.fetch(
        """
        SELECT c.conrelid::regclass::text AS table, a.attname AS column,
               c.confrelid::regclass::text AS ref, c.confdeltype::text AS action
        FROM pg_constraint c
        JOIN pg_class t ON t.oid = c.conrelid
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
        WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace
          AND NOT t.relispartition
        """
    )
    actions = {"a": "NO ACTION", "c": "CASCADE", "n": "SET NULL", "r": "RESTRICT"}
    actual = {(r["table"], r["column"]): (r["ref"], actions[r["action"]]) for r in rows}
    assert actual == EXPECTED_FOREIGN_KEYS


@pytest.mark.asyncio
async def test_migrate_creates_the_triggers_and_fencing_sequence(empty_conn: Any) -> None:
    """Row triggers sit on exactly the specified tables; the fencing sequence starts at 1."""
    await migrate(empty_conn)
    rows = await empty_conn.fetch(
        """
        SELECT c.relname AS table, t.tgname AS name, p.proname AS function,
               pg_get_triggerdef(t.oid) AS def
        FROM pg_trigger t
        JOIN pg_class c ON c.oid = t.tgrelid
        JOIN pg_proc p ON p.oid = t.tgfoid
        WHERE NOT t.tgisinternal AND NOT c.relispartition
        """
    )
    actual = set()
    for r in rows:
        timing = next(
            w for w in ("BEFORE UPDATE", "AFTER INSERT OR UPDATE", "AFTER INSERT") if w in r["def"]
        )
        assert "FOR EACH ROW" in r["def"]
        actual.add((r["table"], r["name"], r["function"], timing))
    assert actual == EXPECTED_TRIGGERS
    definer = await empty_conn.fetchval(
        "SELECT prosecdef FROM pg_proc WHERE proname = 'activity_notify'"
    )
    assert definer is True
    seq = await empty_conn.fetchrow(
        "SELECT data_type, start_value, increment_by FROM pg_sequences "
        "WHERE sequencename = 'node_fencing_token_seq'"
    )
    assert tuple(seq) == ("bigint", 1, 1)


@pytest.mark.asyncio
async def test_activity_is_range_partitioned_by_day_with_three_partitions(empty_conn: Any) -> None:
    """activity is RANGE-partitioned on created_at; migrate makes today, +1 d, +2 d (UTC)."""
    await migrate(empty_conn)
    partkey = await empty_conn.fetchval("SELECT pg_get_partkeydef('activity'::regclass)")
    assert partkey == "RANGE (created_at)"
    now = await empty_conn.fetchval("SELECT now()")
    rows = await empty_conn.fetch(
        """
        SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) AS bound
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'activity'::regclass ORDER BY 1
        """
    )
    today = now.astimezone(dt.UTC).date()
    days = [today + dt.timedelta(days=d) for d in range(3)]
    assert [r["relname"] for r in rows] == [f"activity_p_{d:%Y%m%d}" for d in days]
    await empty_conn.execute("SET TIME ZONE 'UTC'")
    first_bound = await empty_conn.fetchval(
        "SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE relname = $1",
        rows[0]["relname"],
    )
    start, end = days[0], days[1]
    assert first_bound == (
        f"FOR VALUES FROM ('{start:%Y-%m-%d} 00:00:00+00') TO ('{end:%Y-%m-%d} 00:00:00+00')"
    )


@pytest.mark.asyncio
async def test_second_migrate_changes_nothing(empty_conn: Any) -> None:
    """Running migrate again applies nothing and leaves the catalog exactly as it was."""
    await migrate(empty_conn)
    before = await _snapshot(empty_conn)
    assert await migrate(empty_conn) == []
    assert await _snapshot(empty_conn) == before


@pytest.mark.asyncio
async def test_concurrent_migrations_apply_each_migration_once(pg_database: str) -> None:
    """Two hives migrating one empty database at once apply every migration exactly once."""
    first, second = await asyncio.gather(migrate(pg_database), migrate(pg_database))
    names = [f"{m.version:04d}_{m.name}" for m in load_migrations()]
    assert sorted(first + second) == names
    conn = await asyncpg.connect(pg_database)
    try:
        count = await conn.fetchval("SELECT count(*) FROM schema_migrations")
    finally:
        await conn.close()
    assert count == len(names)
