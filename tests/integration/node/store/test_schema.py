"""The migrations build exactly the schema of spec/node-store.md §3 (with DESIGN.md §3's outbox)."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from vk_node.store import Store, migrate
from vk_node.store.migrate import load_migrations, split_statements

# --- the expected description, written from the spec ----------------------------------------------
# One column per "|"-separated item: "name TYPE [NN] [PK] [=default]". NOW is the timestamp default.
# The reference's hive_synced_at columns are absent on purpose (the outbox replaces them).

NOW = "strftime('%Y-%m-%d %H:%M:%f', 'now')"
TS = "TEXT NN =NOW"

EXPECTED_COLUMNS: dict[str, str] = {
    "projects": f"""
        id BLOB PK | name TEXT NN | git_repo_path TEXT NN ='' | setup_script TEXT ='' |
        dev_script TEXT ='' | cleanup_script TEXT | copy_files TEXT |
        parallel_setup_script BOOLEAN NN =0 | remote_project_id BLOB | is_remote BOOLEAN NN =0 |
        source_node_id BLOB | source_node_name TEXT | source_node_public_url TEXT |
        source_node_status TEXT ='unknown' | remote_last_synced_at TEXT |
        github_enabled INTEGER NN =0 | github_owner TEXT | github_repo TEXT |
        github_open_issues INTEGER NN =0 | github_open_prs INTEGER NN =0 |
        github_last_synced_at TEXT | created_at {TS} | updated_at {TS}""",
    "tasks": f"""
        id BLOB PK | project_id BLOB NN | title TEXT NN | description TEXT |
        status TEXT NN ='todo' | parent_task_id BLOB | shared_task_id BLOB |
        remote_assignee_user_id BLOB | remote_assignee_name TEXT | remote_assignee_username TEXT |
        remote_version INTEGER NN =1 | remote_last_synced_at TEXT | remote_stream_node_id BLOB |
        remote_stream_url TEXT | archived_at TEXT | activity_at TEXT | created_at {TS} |
        updated_at {TS}""",
    "task_attempts": f"""
        id BLOB PK | task_id BLOB NN | executor TEXT | branch TEXT NN ='main' |
        target_branch TEXT NN ='main' | container_ref TEXT | worktree_deleted BOOLEAN NN =FALSE |
        setup_completed_at DATETIME | hive_assignment_id TEXT | origin_node_id TEXT |
        created_at {TS} | updated_at {TS}""",
    "execution_processes": f"""
        id BLOB PK | task_attempt_id BLOB NN | run_reason TEXT NN ='setupscript' |
        executor_action TEXT NN ='' | executor_action_type TEXT GENERATED |
        status TEXT NN ='running' | exit_code INTEGER | dropped BOOLEAN NN =0 |
        before_head_commit TEXT | after_head_commit TEXT | pid INTEGER | server_instance_id TEXT |
        completion_reason TEXT | completion_message TEXT | resume_state TEXT |
        fence_attempt_count INTEGER NN =0 | started_at {TS} | completed_at TEXT |
        created_at {TS} | updated_at {TS} | pid_start_ticks INTEGER""",
    "execution_process_logs": f"""
        execution_id BLOB NN | logs TEXT NN | byte_size INTEGER NN | inserted_at {TS}""",
    "log_entries": f"""
        id INTEGER PK | execution_id BLOB NN | output_type TEXT NN | content TEXT NN |
        timestamp {TS}""",
    "merges": f"""
        id BLOB PK | task_attempt_id BLOB NN | merge_type TEXT NN | merge_commit TEXT |
        pr_number INTEGER | pr_url TEXT | pr_status TEXT | pr_merged_at TEXT |
        pr_merge_commit_sha TEXT | target_branch_name TEXT NN | created_at {TS}""",
    "executor_sessions": f"""
        id BLOB PK | task_attempt_id BLOB NN | execution_process_id BLOB NN | session_id TEXT |
        prompt TEXT | summary TEXT | created_at {TS} | updated_at {TS}""",
    "node_outbox": f"""
        id BLOB PK | seq INTEGER NN | op_type TEXT NN | entity_type TEXT NN | entity_id BLOB NN |
        payload TEXT NN | idempotency_key TEXT NN | fencing_token INTEGER | created_at {TS} |
        acked_at TEXT | rejected_at TEXT | reject_code TEXT | reject_reason TEXT | task_id BLOB""",
    "shared_activity_cursors": f"""
        remote_project_id BLOB PK | last_seq INTEGER NN | updated_at {TS}""",
    "cached_nodes": f"""
        id BLOB PK | organization_id BLOB NN | name TEXT NN | machine_id TEXT NN |
        status TEXT NN ='pending' | capabilities TEXT NN ='{{}}' | public_url TEXT |
        last_heartbeat_at TEXT | connected_at TEXT | disconnected_at TEXT | created_at TEXT NN |
        updated_at TEXT NN | last_synced_at {TS}""",
    "labels": f"""
        id BLOB PK | project_id BLOB | name TEXT NN | icon TEXT NN ='tag' |
        color TEXT NN ='#6b7280' | shared_label_id BLOB | version INTEGER NN =1 |
        synced_at TEXT | created_at {TS} | updated_at {TS}""",
    "task_labels": f"id BLOB PK | task_id BLOB NN | label_id BLOB NN | created_at {TS}",
    "templates": f"""
        id BLOB PK | template_name TEXT NN | content TEXT NN | created_at {TS} |
        updated_at {TS}""",
    "task_variables": f"""
        id TEXT PK | task_id BLOB NN | name TEXT NN | value TEXT NN | created_at {TS} |
        updated_at {TS}""",
    "activity_dismissals": "id BLOB PK | task_id BLOB NN | dismissed_at TEXT NN =NOW",
    "images": f"""
        id BLOB PK | file_path TEXT NN | original_name TEXT NN | mime_type TEXT |
        size_bytes INTEGER | hash TEXT NN | created_at {TS} | updated_at {TS}""",
    "task_images": f"id BLOB PK | task_id BLOB NN | image_id BLOB NN | created_at {TS}",
    "drafts": """
        id TEXT PK | task_attempt_id BLOB NN | draft_type TEXT NN | retry_process_id BLOB |
        prompt TEXT NN ='' | queued INTEGER NN =0 | sending INTEGER NN =0 |
        version INTEGER NN =0 | variant TEXT | image_ids TEXT |
        created_at DATETIME NN =CURRENT_TIMESTAMP | updated_at DATETIME NN =CURRENT_TIMESTAMP""",
    "queued_messages": f"""
        id BLOB PK | task_attempt_id BLOB NN | content TEXT NN | variant TEXT |
        position INTEGER NN | created_at {TS}""",
    "webhooks": f"""
        id BLOB PK | project_id BLOB | name TEXT NN | url TEXT NN |
        events TEXT NN ='["executor_finish"]' | headers TEXT NN ='{{}}' | secret TEXT |
        payload_template TEXT | override_global INTEGER NN =0 | active INTEGER NN =1 |
        created_at {TS} | updated_at {TS}""",
    "hive_assignments": f"""
        assignment_id BLOB PK | shared_task_id BLOB NN | swarm_project_id BLOB NN |
        local_project_id BLOB NN | local_task_id BLOB | local_attempt_id BLOB |
        fencing_token INTEGER NN | status TEXT NN ='pending' | terminal_seq INTEGER |
        retired_at TEXT | created_at {TS} | updated_at {TS}""",
    "hive_link_state": f"""
        id INTEGER PK | state TEXT NN | hive_url TEXT NN ='' | node_id BLOB |
        organization_id BLOB | connected_since TEXT | last_error TEXT | backoff_until TEXT |
        pid INTEGER | updated_at {TS} | hive_features TEXT NN =''""",
    "node_identity": f"""id INTEGER PK | machine_id TEXT NN | created_at {TS}""",
    "webhook_deliveries": f"""
        id BLOB PK | webhook_id BLOB NN | event TEXT NN | body TEXT NN |
        status TEXT NN ='pending' | attempt_count INTEGER NN =0 | next_attempt_at TEXT |
        created_at {TS} | updated_at {TS}""",
    "webhook_delivery_attempts": f"""
        id INTEGER PK | delivery_id BLOB NN | attempt INTEGER NN | status_code INTEGER |
        duration_ms INTEGER NN | error TEXT | attempted_at {TS}""",
}

# name -> (table, unique, "key columns", "partial WHERE" or None). Expression keys are spelled as
# in the spec; a trailing " DESC" marks a descending key. Autoindexes of UNIQUE constraints are
# listed by their columns under "<table>:unique(...)".
EXPECTED_INDEXES: dict[str, tuple[str, bool, str, str | None]] = {
    "idx_projects_is_remote": ("projects", False, "is_remote", None),
    "idx_projects_source_node": ("projects", False, "source_node_id", "source_node_id IS NOT NULL"),
    "idx_projects_git_repo_path_local": ("projects", True, "git_repo_path", "is_remote = 0"),
    "idx_projects_git_repo_path_remote": (
        "projects",
        True,
        "git_repo_path, source_node_id",
        "is_remote = 1",
    ),
    "idx_projects_remote_project_id": (
        "projects",
        True,
        "remote_project_id",
        "remote_project_id IS NOT NULL",
    ),
    "idx_tasks_project_id": ("tasks", False, "project_id", None),
    "idx_tasks_status": ("tasks", False, "status", None),
    "idx_tasks_parent_task_id": ("tasks", False, "parent_task_id", None),
    "idx_tasks_shared_task_id": ("tasks", True, "shared_task_id", "shared_task_id IS NOT NULL"),
    "idx_tasks_activity_at_created_at": (
        "tasks",
        False,
        "COALESCE(activity_at, created_at) DESC",
        None,
    ),
    "idx_tasks_project_activity": (
        "tasks",
        False,
        "project_id, COALESCE(activity_at, created_at) DESC",
        None,
    ),
    "idx_tasks_project_shared": (
        "tasks",
        False,
        "project_id, shared_task_id",
        "shared_task_id IS NOT NULL",
    ),
    "idx_task_attempts_task_id_created_at": (
        "task_attempts",
        False,
        "task_id, created_at DESC",
        None,
    ),
    "idx_task_attempts_created_at": ("task_attempts", False, "created_at DESC", None),
    "idx_task_attempts_hive_assignment": (
        "task_attempts",
        False,
        "hive_assignment_id",
        "hive_assignment_id IS NOT NULL",
    ),
    "idx_task_attempts_origin_node_id": ("task_attempts", False, "origin_node_id", None),
    "idx_execution_processes_status": ("execution_processes", False, "status", None),
    "idx_execution_processes_type": ("execution_processes", False, "run_reason", None),
    "idx_execution_processes_attempt_type_created": (
        "execution_processes",
        False,
        "task_attempt_id, executor_action_type, created_at DESC",
        None,
    ),
    "idx_execution_processes_attempt_created": (
        "execution_processes",
        False,
        "task_attempt_id, created_at",
        None,
    ),
    "idx_execution_processes_pid_running": (
        "execution_processes",
        False,
        "pid",
        "status = 'running' AND pid IS NOT NULL",
    ),
    "idx_execution_processes_instance_running": (
        "execution_processes",
        False,
        "server_instance_id",
        "status = 'running' AND server_instance_id IS NOT NULL",
    ),
    "idx_execution_processes_resume_state": (
        "execution_processes",
        False,
        "resume_state",
        "status = 'running'",
    ),
    "idx_execution_process_logs_execution_inserted": (
        "execution_process_logs",
        False,
        "execution_id, inserted_at",
        None,
    ),
    "idx_log_entries_execution_id": ("log_entries", False, "execution_id, id", None),
    "idx_log_entries_execution_timestamp": ("log_entries", False, "execution_id, timestamp", None),
    "idx_merges_task_attempt_id": ("merges", False, "task_attempt_id", None),
    "idx_merges_open_pr": (
        "merges",
        False,
        "task_attempt_id, pr_status",
        "merge_type = 'pr' AND pr_status = 'open'",
    ),
    "idx_executor_sessions_task_attempt_id": ("executor_sessions", False, "task_attempt_id", None),
    "idx_executor_sessions_execution_process_id": (
        "executor_sessions",
        False,
        "execution_process_id",
        None,
    ),
    "idx_executor_sessions_session_id": ("executor_sessions", False, "session_id", None),
    "node_outbox:unique(seq)": ("node_outbox", True, "seq", None),
    "node_outbox:unique(idempotency_key)": ("node_outbox", True, "idempotency_key", None),
    "idx_node_outbox_unacked_seq": ("node_outbox", False, "seq", "acked_at IS NULL"),
    "idx_node_outbox_unacked_entity": ("node_outbox", False, "entity_id", "acked_at IS NULL"),
    "idx_node_outbox_entity_seq": ("node_outbox", False, "entity_id, seq", None),
    "idx_hive_assignments_live": ("hive_assignments", False, "local_task_id", "retired_at IS NULL"),
    "idx_cached_nodes_organization_id": ("cached_nodes", False, "organization_id", None),
    "idx_cached_nodes_status": ("cached_nodes", False, "status", None),
    "idx_labels_project_id": ("labels", False, "project_id", None),
    "idx_labels_synced_at": ("labels", False, "synced_at", None),
    "idx_labels_shared_label_id": (
        "labels",
        True,
        "shared_label_id",
        "shared_label_id IS NOT NULL",
    ),
    "task_labels:unique(task_id, label_id)": ("task_labels", True, "task_id, label_id", None),
    "idx_task_labels_task_id": ("task_labels", False, "task_id", None),
    "idx_task_labels_label_id": ("task_labels", False, "label_id", None),
    "task_variables:unique(task_id, name)": ("task_variables", True, "task_id, name", None),
    "idx_task_variables_task_id": ("task_variables", False, "task_id", None),
    "activity_dismissals:unique(task_id)": ("activity_dismissals", True, "task_id", None),
    "idx_activity_dismissals_task_id": ("activity_dismissals", False, "task_id", None),
    "images:unique(hash)": ("images", True, "hash", None),
    "idx_images_hash": ("images", False, "hash", None),
    "task_images:unique(task_id, image_id)": ("task_images", True, "task_id, image_id", None),
    "idx_task_images_task_id": ("task_images", False, "task_id", None),
    "idx_task_images_image_id": ("task_images", False, "image_id", None),
    "drafts:unique(task_attempt_id, draft_type)": (
        "drafts",
        True,
        "task_attempt_id, draft_type",
        None,
    ),
    "idx_drafts_task_attempt_id": ("drafts", False, "task_attempt_id", None),
    "idx_drafts_draft_type": ("drafts", False, "draft_type", None),
    "idx_drafts_queued_sending": ("drafts", False, "queued, sending", "queued = 1"),
    "idx_queued_messages_attempt_position": (
        "queued_messages",
        False,
        "task_attempt_id, position",
        None,
    ),
    "idx_webhooks_project_id": ("webhooks", False, "project_id", None),
    "idx_webhook_deliveries_webhook_id": (
        "webhook_deliveries",
        False,
        "webhook_id, created_at",
        None,
    ),
    "idx_webhook_deliveries_due": (
        "webhook_deliveries",
        False,
        "next_attempt_at",
        "status = 'pending'",
    ),
    "idx_webhook_delivery_attempts_delivery_id": (
        "webhook_delivery_attempts",
        False,
        "delivery_id, attempt",
        None,
    ),
}

# table -> {(from column, parent table, parent column, ON DELETE)}
EXPECTED_FKS: dict[str, set[tuple[str, str, str, str]]] = {
    "tasks": {
        ("project_id", "projects", "id", "CASCADE"),
        ("parent_task_id", "tasks", "id", "SET NULL"),
    },
    "task_attempts": {("task_id", "tasks", "id", "CASCADE")},
    "execution_processes": {("task_attempt_id", "task_attempts", "id", "CASCADE")},
    "execution_process_logs": {("execution_id", "execution_processes", "id", "CASCADE")},
    "log_entries": {("execution_id", "execution_processes", "id", "CASCADE")},
    "merges": {("task_attempt_id", "task_attempts", "id", "CASCADE")},
    "executor_sessions": {
        ("task_attempt_id", "task_attempts", "id", "CASCADE"),
        ("execution_process_id", "execution_processes", "id", "CASCADE"),
    },
    "labels": {("project_id", "projects", "id", "CASCADE")},
    "task_labels": {
        ("task_id", "tasks", "id", "CASCADE"),
        ("label_id", "labels", "id", "CASCADE"),
    },
    "task_variables": {("task_id", "tasks", "id", "CASCADE")},
    "activity_dismissals": {("task_id", "tasks", "id", "CASCADE")},
    "task_images": {
        ("task_id", "tasks", "id", "CASCADE"),
        ("image_id", "images", "id", "CASCADE"),
    },
    "drafts": {
        ("task_attempt_id", "task_attempts", "id", "CASCADE"),
        ("retry_process_id", "execution_processes", "id", "CASCADE"),
    },
    "queued_messages": {("task_attempt_id", "task_attempts", "id", "CASCADE")},
    "webhooks": {("project_id", "projects", "id", "CASCADE")},
    "webhook_deliveries": {("webhook_id", "webhooks", "id", "CASCADE")},
    "webhook_delivery_attempts": {("delivery_id", "webhook_deliveries", "id", "CASCADE")},
}

EXPECTED_VIEW_COLUMNS = [
    "execution_process_id", "task_attempt_id", "container_ref", "branch", "target_branch",
    "run_reason", "status", "resume_state", "pid", "before_head_commit", "after_head_commit",
    "session_id", "created_at",
]  # fmt: skip

# Row CHECKs that must exist (a fragment of each table's CREATE statement, whitespace-normalized).
EXPECTED_CHECKS: dict[str, list[str]] = {
    "tasks": ["status IN ('todo', 'inprogress', 'inreview', 'done', 'cancelled')"],
    "execution_processes": [
        "run_reason IN ('setupscript', 'cleanupscript', 'codingagent', 'devserver')",
        "status IN ('running', 'completed', 'failed', 'killed')",
        "('result_success', 'result_error', 'eof', 'killed', 'error')",
        "('pending', 'resumed', 'abandoned')",
    ],
    "log_entries": [
        "output_type IN ('stdout', 'stderr', 'system', 'json_patch', 'session_id', 'finished',"
        " 'refresh_required')"
    ],
    "merges": [
        "merge_type IN ('direct', 'pr')",
        "pr_status IN ('open', 'merged', 'closed')",
        "(merge_type = 'direct' AND merge_commit IS NOT NULL AND pr_number IS NULL"
        " AND pr_url IS NULL) OR (merge_type = 'pr' AND pr_number IS NOT NULL"
        " AND pr_url IS NOT NULL AND pr_status IS NOT NULL AND merge_commit IS NULL)",
    ],
    "node_outbox": [
        "op_type IN ('task.upsert', 'attempt.upsert', 'execution.upsert', 'logs.append',"
        " 'assignment.status', 'progress.append', 'label.upsert')",
        "rejected_at IS NULL OR acked_at IS NOT NULL",
    ],
    "shared_activity_cursors": ["last_seq >= 0"],
    "cached_nodes": ["status IN ('pending', 'online', 'offline', 'busy', 'draining')"],
    "templates": ["content <> ''"],
    "task_variables": ["name GLOB '[A-Z]*' AND name NOT GLOB '*[^A-Z0-9_]*'"],
    "drafts": ["draft_type IN ('follow_up', 'retry')"],
    "webhook_deliveries": ["status IN ('pending', 'delivered', 'failed')"],
}


def _norm(sql: str) -> str:
    sql = re.sub(r"\s+", " ", sql).strip()
    return sql.replace("( ", "(").replace(" )", ")")


def _parse_columns(text: str) -> list[tuple[str, str, bool, str | None, bool, bool]]:
    out = []
    for item in text.split("|"):
        words = item.split()
        if not words:
            continue
        name, typ, flags = words[0], words[1], words[2:]
        default = next((f[1:] for f in flags if f.startswith("=")), None)
        if default == "NOW":
            default = NOW
        out.append((name, typ, "NN" in flags, default, "PK" in flags, "GENERATED" in flags))
    return out


def _actual_columns(conn: sqlite3.Connection, table: str) -> list[tuple]:
    rows = conn.execute(f"PRAGMA table_xinfo({table})").fetchall()
    return [(r[1], r[2], bool(r[3]), r[4], bool(r[5]), r[6] != 0) for r in rows]


def _actual_indexes(conn: sqlite3.Connection) -> dict[str, tuple[str, bool, str, str | None]]:
    found: dict[str, tuple[str, bool, str, str | None]] = {}
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    for table in tables:
        for _, name, unique, origin, partial in conn.execute(f"PRAGMA index_list({table})"):
            if origin == "pk":
                continue
            keys = []
            for info in conn.execute(f"PRAGMA index_xinfo({name})"):
                if not info[5]:  # auxiliary (rowid) columns
                    continue
                keys.append(("<expr>" if info[1] == -2 else info[2]) + (" DESC" if info[3] else ""))
            sql = conn.execute(
                "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", (name,)
            ).fetchone()[0]
            where = _norm(sql.split(" WHERE ", 1)[1]) if sql and " WHERE " in sql else None
            key = name if origin == "c" else f"{table}:unique({', '.join(keys)})"
            found[key] = (table, bool(unique), ", ".join(keys), where)
            assert bool(partial) == (where is not None)
    return found


def _dump(path: Path) -> list[tuple[str, str, str, str | None]]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
        ).fetchall()
    conn.close()
    return rows


def _exists(path: Path) -> bool:
    return path.exists()


def _wal_size(path: Path) -> int:
    wal = path.with_name(path.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


def _inspect(path: Path, fn):  # type: ignore[no-untyped-def]
    conn = sqlite3.connect(path)
    try:
        return fn(conn)
    finally:
        conn.close()


@pytest.mark.asyncio
async def test_every_table_has_exactly_the_specified_columns(node_db_path: Path) -> None:
    """Each table has the spec's columns in order with their type, NOT NULL, default and PK."""
    assert await migrate(node_db_path) == [m.label for m in load_migrations()]

    def check(conn: sqlite3.Connection) -> None:
        tables = {
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        }
        assert tables == set(EXPECTED_COLUMNS) | {"schema_migrations"}
        for table, text in EXPECTED_COLUMNS.items():
            assert _actual_columns(conn, table) == _parse_columns(text), table

    _inspect(node_db_path, check)


@pytest.mark.asyncio
async def test_every_index_matches_the_spec(node_db_path: Path) -> None:
    """Every index exists with its table, uniqueness, key columns/expressions and partial WHERE."""
    await migrate(node_db_path)

    def check(conn: sqlite3.Connection) -> None:
        actual = _actual_indexes(conn)
        actual.pop("schema_migrations:unique(version)", None)
        expected = {
            name: (table, unique, re.sub(r"COALESCE\([^)]*\)", "<expr>", keys), where)
            for name, (table, unique, keys, where) in EXPECTED_INDEXES.items()
        }
        assert actual == expected
        sql = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index'"))
        for name, (_, _, keys, _) in EXPECTED_INDEXES.items():
            for expr in re.findall(r"COALESCE\([^)]*\)", keys):
                assert expr in sql[name], name

    _inspect(node_db_path, check)


@pytest.mark.asyncio
async def test_every_foreign_key_matches_the_spec(node_db_path: Path) -> None:
    """Every foreign key points at its parent column with the specified ON DELETE action."""
    await migrate(node_db_path)

    def check(conn: sqlite3.Connection) -> None:
        for table in EXPECTED_COLUMNS:
            actual = {
                (r[3], r[2], r[4], r[6]) for r in conn.execute(f"PRAGMA foreign_key_list({table})")
            }
            assert actual == EXPECTED_FKS.get(table, set()), table

    _inspect(node_db_path, check)


@pytest.mark.asyncio
async def test_checks_generated_column_trigger_and_view_exist(node_db_path: Path) -> None:
    """Row CHECKs, the generated action type, the drafts trigger and the view are all in place."""
    await migrate(node_db_path)

    def check(conn: sqlite3.Connection) -> None:
        sql = {
            name: _norm(text)
            for name, text in conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL"
            )
        }
        for table, fragments in EXPECTED_CHECKS.items():
            for fragment in fragments:
                assert _norm(fragment) in sql[table], (table, fragment)
        assert "GENERATED ALWAYS AS" in sql["execution_processes"]
        assert "json_extract(executor_action, '$.typ.type')" in sql["execution_processes"]
        assert "VIRTUAL" in sql["execution_processes"]
        assert "AFTER UPDATE ON drafts" in sql["trg_drafts_updated_at"]
        view = [r[1] for r in conn.execute("PRAGMA table_xinfo(v_workstream_state)")]
        assert view == EXPECTED_VIEW_COLUMNS
        kinds = dict(conn.execute("SELECT name, type FROM sqlite_master"))
        assert kinds["v_workstream_state"] == "view"
        assert kinds["trg_drafts_updated_at"] == "trigger"

    _inspect(node_db_path, check)


@pytest.mark.asyncio
async def test_migrate_twice_changes_nothing(node_db_path: Path) -> None:
    """A second migrate applies nothing and leaves sqlite_master byte-for-byte identical."""
    first = await migrate(node_db_path)
    before = _dump(node_db_path)
    assert first
    assert await migrate(node_db_path) == []
    assert _dump(node_db_path) == before
    versions = _inspect(
        node_db_path, lambda c: c.execute("SELECT version FROM schema_migrations").fetchall()
    )
    assert versions == [(m.version,) for m in load_migrations()]


@pytest.mark.asyncio
async def test_store_open_sets_pragmas_and_migrates(node_db_path: Path) -> None:
    """Store.open creates the directory, migrates, and sets WAL, FKs and the other pragmas."""
    store = await Store.open(node_db_path)
    try:
        assert _exists(node_db_path)
        assert store.schema_version == load_migrations()[-1].version
        assert store.applied_migrations == [m.label for m in load_migrations()]
        async with store.transaction() as conn:
            values = {}
            for name in ("journal_mode", "foreign_keys", "synchronous", "temp_store",
                         "cache_size", "wal_autocheckpoint", "busy_timeout"):  # fmt: skip
                async with conn.execute(f"PRAGMA {name}") as cur:
                    row = await cur.fetchone()
                    assert row is not None
                    values[name] = row[0]
        assert values == {
            "journal_mode": "wal", "foreign_keys": 1, "synchronous": 1, "temp_store": 2,
            "cache_size": -64000, "wal_autocheckpoint": 2000, "busy_timeout": 5000,
        }  # fmt: skip
    finally:
        await store.close()
    reopened = await Store.open(node_db_path)
    try:
        assert reopened.applied_migrations == []
    finally:
        await reopened.close()
    assert _wal_size(node_db_path) == 0


def test_split_statements_keeps_trigger_bodies_whole() -> None:
    """The migration splitter yields whole statements, a trigger body with its inner ';' as one."""
    parts = split_statements(
        "-- c\nCREATE TABLE a (x);\nCREATE TRIGGER t AFTER UPDATE ON a BEGIN\n"
        "  UPDATE a SET x = 1;\nEND;\n-- trailing comment\n"
    )
    assert len(parts) == 2
    assert parts[1].startswith("CREATE TRIGGER")
    assert parts[1].endswith("END;")
