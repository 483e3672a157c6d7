-- vk-node store, initial schema (spec/node-store.md §3, DESIGN.md §3).
--
-- Conventions: UUIDs are 16-byte BLOBs except task_attempts.hive_assignment_id,
-- task_attempts.origin_node_id and every id column of drafts and task_variables (hyphenated TEXT).
-- Timestamps are UTC TEXT 'YYYY-MM-DD HH:MM:SS.fff' (SQLite 3.40 has no 'subsec', hence strftime).
--
-- The reference's `hive_synced_at` columns (task_attempts, execution_processes, log_entries) and
-- their "unsynced" partial indexes are deliberately absent: node -> hive mirroring goes through the
-- durable outbox (node_outbox) written in the same transaction as each change.

CREATE TABLE projects (
    id                     BLOB PRIMARY KEY,
    name                   TEXT NOT NULL,
    git_repo_path          TEXT NOT NULL DEFAULT '',
    setup_script           TEXT DEFAULT '',
    dev_script             TEXT DEFAULT '',
    cleanup_script         TEXT,
    copy_files             TEXT,
    parallel_setup_script  BOOLEAN NOT NULL DEFAULT 0,
    remote_project_id      BLOB,
    is_remote              BOOLEAN NOT NULL DEFAULT 0,
    source_node_id         BLOB,
    source_node_name       TEXT,
    source_node_public_url TEXT,
    source_node_status     TEXT DEFAULT 'unknown',
    remote_last_synced_at  TEXT,
    github_enabled         INTEGER NOT NULL DEFAULT 0,
    github_owner           TEXT,
    github_repo            TEXT,
    github_open_issues     INTEGER NOT NULL DEFAULT 0,
    github_open_prs        INTEGER NOT NULL DEFAULT 0,
    github_last_synced_at  TEXT,
    created_at             TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    updated_at             TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);
CREATE INDEX idx_projects_is_remote ON projects (is_remote);
CREATE INDEX idx_projects_source_node ON projects (source_node_id)
    WHERE source_node_id IS NOT NULL;
CREATE UNIQUE INDEX idx_projects_git_repo_path_local ON projects (git_repo_path)
    WHERE is_remote = 0;
CREATE UNIQUE INDEX idx_projects_git_repo_path_remote ON projects (git_repo_path, source_node_id)
    WHERE is_remote = 1;
CREATE UNIQUE INDEX idx_projects_remote_project_id ON projects (remote_project_id)
    WHERE remote_project_id IS NOT NULL;

CREATE TABLE tasks (
    id                       BLOB PRIMARY KEY,
    project_id               BLOB NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    title                    TEXT NOT NULL,
    description              TEXT,
    status                   TEXT NOT NULL DEFAULT 'todo'
                             CHECK (status IN ('todo', 'inprogress', 'inreview', 'done', 'cancelled')),
    parent_task_id           BLOB REFERENCES tasks (id) ON DELETE SET NULL,
    shared_task_id           BLOB,
    remote_assignee_user_id  BLOB,
    remote_assignee_name     TEXT,
    remote_assignee_username TEXT,
    remote_version           INTEGER NOT NULL DEFAULT 1,
    remote_last_synced_at    TEXT,
    remote_stream_node_id    BLOB,
    remote_stream_url        TEXT,
    archived_at              TEXT,
    activity_at              TEXT,
    created_at               TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    updated_at               TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);
CREATE INDEX idx_tasks_project_id ON tasks (project_id);
CREATE INDEX idx_tasks_status ON tasks (status);
CREATE INDEX idx_tasks_parent_task_id ON tasks (parent_task_id);
CREATE UNIQUE INDEX idx_tasks_shared_task_id ON tasks (shared_task_id)
    WHERE shared_task_id IS NOT NULL;
CREATE INDEX idx_tasks_activity_at_created_at ON tasks (COALESCE(activity_at, created_at) DESC);
CREATE INDEX idx_tasks_project_activity
    ON tasks (project_id, COALESCE(activity_at, created_at) DESC);
CREATE INDEX idx_tasks_project_shared ON tasks (project_id, shared_task_id)
    WHERE shared_task_id IS NOT NULL;

CREATE TABLE task_attempts (
    id                 BLOB PRIMARY KEY,
    task_id            BLOB NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    executor           TEXT,
    branch             TEXT NOT NULL DEFAULT 'main',
    target_branch      TEXT NOT NULL DEFAULT 'main',
    container_ref      TEXT,
    worktree_deleted   BOOLEAN NOT NULL DEFAULT FALSE,
    setup_completed_at DATETIME,
    hive_assignment_id TEXT,
    origin_node_id     TEXT,
    created_at         TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    updated_at         TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);
CREATE INDEX idx_task_attempts_task_id_created_at ON task_attempts (task_id, created_at DESC);
CREATE INDEX idx_task_attempts_created_at ON task_attempts (created_at DESC);
CREATE INDEX idx_task_attempts_hive_assignment ON task_attempts (hive_assignment_id)
    WHERE hive_assignment_id IS NOT NULL;
CREATE INDEX idx_task_attempts_origin_node_id ON task_attempts (origin_node_id);

CREATE TABLE execution_processes (
    id                   BLOB PRIMARY KEY,
    task_attempt_id      BLOB NOT NULL REFERENCES task_attempts (id) ON DELETE CASCADE,
    run_reason           TEXT NOT NULL DEFAULT 'setupscript'
                         CHECK (run_reason IN ('setupscript', 'cleanupscript', 'codingagent',
                                               'devserver')),
    executor_action      TEXT NOT NULL DEFAULT '',
    executor_action_type TEXT GENERATED ALWAYS AS (
                             CASE WHEN json_valid(executor_action)
                                  THEN json_extract(executor_action, '$.typ.type') END
                         ) VIRTUAL,
    status               TEXT NOT NULL DEFAULT 'running'
                         CHECK (status IN ('running', 'completed', 'failed', 'killed')),
    exit_code            INTEGER,
    dropped              BOOLEAN NOT NULL DEFAULT 0,
    before_head_commit   TEXT,
    after_head_commit    TEXT,
    pid                  INTEGER,
    server_instance_id   TEXT,
    completion_reason    TEXT
                         CHECK (completion_reason IS NULL OR completion_reason IN
                                ('result_success', 'result_error', 'eof', 'killed', 'error')),
    completion_message   TEXT,
    resume_state         TEXT
                         CHECK (resume_state IS NULL OR resume_state IN
                                ('pending', 'resumed', 'abandoned')),
    fence_attempt_count  INTEGER NOT NULL DEFAULT 0,
    started_at           TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    completed_at         TEXT,
    created_at           TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    updated_at           TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);
CREATE INDEX idx_execution_processes_status ON execution_processes (status);
CREATE INDEX idx_execution_processes_type ON execution_processes (run_reason);
CREATE INDEX idx_execution_processes_attempt_type_created
    ON execution_processes (task_attempt_id, executor_action_type, created_at DESC);
CREATE INDEX idx_execution_processes_attempt_created
    ON execution_processes (task_attempt_id, created_at ASC);
CREATE INDEX idx_execution_processes_pid_running ON execution_processes (pid)
    WHERE status = 'running' AND pid IS NOT NULL;
CREATE INDEX idx_execution_processes_instance_running ON execution_processes (server_instance_id)
    WHERE status = 'running' AND server_instance_id IS NOT NULL;
CREATE INDEX idx_execution_processes_resume_state ON execution_processes (resume_state)
    WHERE status = 'running';

CREATE TABLE execution_process_logs (
    execution_id BLOB NOT NULL REFERENCES execution_processes (id) ON DELETE CASCADE,
    logs         TEXT NOT NULL,
    byte_size    INTEGER NOT NULL,
    inserted_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);
CREATE INDEX idx_execution_process_logs_execution_inserted
    ON execution_process_logs (execution_id, inserted_at);

CREATE TABLE log_entries (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id BLOB NOT NULL REFERENCES execution_processes (id) ON DELETE CASCADE,
    output_type  TEXT NOT NULL
                 CHECK (output_type IN ('stdout', 'stderr', 'system', 'json_patch', 'session_id',
                                        'finished', 'refresh_required')),
    content      TEXT NOT NULL,
    timestamp    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);
CREATE INDEX idx_log_entries_execution_id ON log_entries (execution_id, id);
CREATE INDEX idx_log_entries_execution_timestamp ON log_entries (execution_id, timestamp);

CREATE TABLE merges (
    id                  BLOB PRIMARY KEY,
    task_attempt_id     BLOB NOT NULL REFERENCES task_attempts (id) ON DELETE CASCADE,
    merge_type          TEXT NOT NULL CHECK (merge_type IN ('direct', 'pr')),
    merge_commit        TEXT,
    pr_number           INTEGER,
    pr_url              TEXT,
    pr_status           TEXT CHECK (pr_status IN ('open', 'merged', 'closed')),
    pr_merged_at        TEXT,
    pr_merge_commit_sha TEXT,
    target_branch_name  TEXT NOT NULL,
    created_at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    CHECK (
        (merge_type = 'direct' AND merge_commit IS NOT NULL
            AND pr_number IS NULL AND pr_url IS NULL)
        OR
        (merge_type = 'pr' AND pr_number IS NOT NULL AND pr_url IS NOT NULL
            AND pr_status IS NOT NULL AND merge_commit IS NULL)
    )
);
CREATE INDEX idx_merges_task_attempt_id ON merges (task_attempt_id);
CREATE INDEX idx_merges_open_pr ON merges (task_attempt_id, pr_status)
    WHERE merge_type = 'pr' AND pr_status = 'open';

CREATE TABLE executor_sessions (
    id                   BLOB PRIMARY KEY,
    task_attempt_id      BLOB NOT NULL REFERENCES task_attempts (id) ON DELETE CASCADE,
    execution_process_id BLOB NOT NULL REFERENCES execution_processes (id) ON DELETE CASCADE,
    session_id           TEXT,
    prompt               TEXT,
    summary              TEXT,
    created_at           TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    updated_at           TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);
CREATE INDEX idx_executor_sessions_task_attempt_id ON executor_sessions (task_attempt_id);
CREATE INDEX idx_executor_sessions_execution_process_id
    ON executor_sessions (execution_process_id);
CREATE INDEX idx_executor_sessions_session_id ON executor_sessions (session_id);

-- Durable node -> hive op log (DESIGN.md §3). `seq` is assigned inside the INSERT itself.
-- logs.append payloads hold only {execution_id, first_log_id, last_log_id}; the entries are read
-- from log_entries at send time. A rejected op (op_rejected) is acked with its rejection recorded.
CREATE TABLE node_outbox (
    id              BLOB PRIMARY KEY,
    seq             INTEGER NOT NULL UNIQUE CHECK (seq >= 1),
    op_type         TEXT NOT NULL
                    CHECK (op_type IN ('task.upsert', 'attempt.upsert', 'execution.upsert',
                                       'logs.append', 'assignment.status')),
    entity_type     TEXT NOT NULL
                    CHECK (entity_type IN ('task', 'attempt', 'execution', 'assignment')),
    entity_id       BLOB NOT NULL,
    payload         TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    fencing_token   INTEGER,
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    acked_at        TEXT,
    rejected_at     TEXT,
    reject_code     TEXT,
    reject_reason   TEXT,
    CHECK (rejected_at IS NULL OR acked_at IS NOT NULL)
);
CREATE INDEX idx_node_outbox_unacked_seq ON node_outbox (seq) WHERE acked_at IS NULL;
CREATE INDEX idx_node_outbox_unacked_entity ON node_outbox (entity_id) WHERE acked_at IS NULL;

CREATE TABLE shared_activity_cursors (
    remote_project_id BLOB PRIMARY KEY,
    last_seq          INTEGER NOT NULL CHECK (last_seq >= 0),
    updated_at        TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);

CREATE TABLE cached_nodes (
    id                BLOB PRIMARY KEY,
    organization_id   BLOB NOT NULL,
    name              TEXT NOT NULL,
    machine_id        TEXT NOT NULL,
    status            TEXT NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'online', 'offline', 'busy', 'draining')),
    capabilities      TEXT NOT NULL DEFAULT '{}',
    public_url        TEXT,
    last_heartbeat_at TEXT,
    connected_at      TEXT,
    disconnected_at   TEXT,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    last_synced_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);
CREATE INDEX idx_cached_nodes_organization_id ON cached_nodes (organization_id);
CREATE INDEX idx_cached_nodes_status ON cached_nodes (status);

CREATE TABLE labels (
    id              BLOB PRIMARY KEY,
    project_id      BLOB REFERENCES projects (id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    icon            TEXT NOT NULL DEFAULT 'tag',
    color           TEXT NOT NULL DEFAULT '#6b7280',
    shared_label_id BLOB,
    version         INTEGER NOT NULL DEFAULT 1,
    synced_at       TEXT,
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    updated_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);
CREATE INDEX idx_labels_project_id ON labels (project_id);
CREATE INDEX idx_labels_synced_at ON labels (synced_at);
CREATE UNIQUE INDEX idx_labels_shared_label_id ON labels (shared_label_id)
    WHERE shared_label_id IS NOT NULL;

CREATE TABLE task_labels (
    id         BLOB PRIMARY KEY,
    task_id    BLOB NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    label_id   BLOB NOT NULL REFERENCES labels (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    UNIQUE (task_id, label_id)
);
CREATE INDEX idx_task_labels_task_id ON task_labels (task_id);
CREATE INDEX idx_task_labels_label_id ON task_labels (label_id);

CREATE TABLE templates (
    id            BLOB PRIMARY KEY,
    template_name TEXT NOT NULL
                  CHECK (template_name <> ''
                         AND template_name NOT GLOB ('*[' || char(32, 9, 10, 13) || ']*')),
    content       TEXT NOT NULL CHECK (content <> ''),
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    updated_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);

CREATE TABLE task_variables (
    id         TEXT PRIMARY KEY,
    task_id    BLOB NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    -- An upper-case identifier: a letter, then letters, digits or '_' (GLOB has no repetition,
    -- so the rule is "starts with A-Z and contains nothing outside A-Z0-9_").
    name       TEXT NOT NULL CHECK (name GLOB '[A-Z]*' AND name NOT GLOB '*[^A-Z0-9_]*'),
    value      TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    UNIQUE (task_id, name)
);
CREATE INDEX idx_task_variables_task_id ON task_variables (task_id);

CREATE TABLE activity_dismissals (
    id           BLOB PRIMARY KEY,
    task_id      BLOB NOT NULL UNIQUE REFERENCES tasks (id) ON DELETE CASCADE,
    dismissed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);
CREATE INDEX idx_activity_dismissals_task_id ON activity_dismissals (task_id);

CREATE TABLE images (
    id            BLOB PRIMARY KEY,
    file_path     TEXT NOT NULL,
    original_name TEXT NOT NULL,
    mime_type     TEXT,
    size_bytes    INTEGER,
    hash          TEXT NOT NULL UNIQUE,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    updated_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);
CREATE INDEX idx_images_hash ON images (hash);

CREATE TABLE task_images (
    id         BLOB PRIMARY KEY,
    task_id    BLOB NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    image_id   BLOB NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    UNIQUE (task_id, image_id)
);
CREATE INDEX idx_task_images_task_id ON task_images (task_id);
CREATE INDEX idx_task_images_image_id ON task_images (image_id);

-- drafts.id and task_variables.id are hyphenated TEXT (spec §1). Their foreign-key columns are
-- 16-byte BLOBs like the parent keys: a TEXT value never equals a BLOB key, so TEXT there would
-- fail every foreign-key check (and every join) with foreign_keys ON.
CREATE TABLE drafts (
    id               TEXT PRIMARY KEY,
    task_attempt_id  BLOB NOT NULL REFERENCES task_attempts (id) ON DELETE CASCADE,
    draft_type       TEXT NOT NULL CHECK (draft_type IN ('follow_up', 'retry')),
    retry_process_id BLOB REFERENCES execution_processes (id) ON DELETE CASCADE,
    prompt           TEXT NOT NULL DEFAULT '',
    queued           INTEGER NOT NULL DEFAULT 0,
    sending          INTEGER NOT NULL DEFAULT 0,
    version          INTEGER NOT NULL DEFAULT 0,
    variant          TEXT,
    image_ids        TEXT,
    created_at       DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at       DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (task_attempt_id, draft_type)
);
CREATE INDEX idx_drafts_task_attempt_id ON drafts (task_attempt_id);
CREATE INDEX idx_drafts_draft_type ON drafts (draft_type);
CREATE INDEX idx_drafts_queued_sending ON drafts (queued, sending) WHERE queued = 1;
CREATE TRIGGER trg_drafts_updated_at
AFTER UPDATE ON drafts
FOR EACH ROW
BEGIN
    UPDATE drafts SET updated_at = CURRENT_TIMESTAMP WHERE id = NEW.id;
END;

CREATE TABLE queued_messages (
    id              BLOB PRIMARY KEY,
    task_attempt_id BLOB NOT NULL REFERENCES task_attempts (id) ON DELETE CASCADE,
    content         TEXT NOT NULL,
    variant         TEXT,
    position        INTEGER NOT NULL,
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);
CREATE INDEX idx_queued_messages_attempt_position ON queued_messages (task_attempt_id, position);

CREATE TABLE webhooks (
    id               BLOB PRIMARY KEY,
    project_id       BLOB REFERENCES projects (id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    url              TEXT NOT NULL,
    events           TEXT NOT NULL DEFAULT '["executor_finish"]',
    headers          TEXT NOT NULL DEFAULT '{}',
    secret           TEXT,
    payload_template TEXT,
    override_global  INTEGER NOT NULL DEFAULT 0,
    active           INTEGER NOT NULL DEFAULT 1,
    created_at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    updated_at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);
CREATE INDEX idx_webhooks_project_id ON webhooks (project_id);

CREATE VIEW v_workstream_state AS
SELECT
    ep.id                 AS execution_process_id,
    ta.id                 AS task_attempt_id,
    ta.container_ref      AS container_ref,
    ta.branch             AS branch,
    ta.target_branch      AS target_branch,
    ep.run_reason         AS run_reason,
    ep.status             AS status,
    ep.resume_state       AS resume_state,
    ep.pid                AS pid,
    ep.before_head_commit AS before_head_commit,
    ep.after_head_commit  AS after_head_commit,
    es.session_id         AS session_id,
    ep.created_at         AS created_at
FROM execution_processes ep
JOIN task_attempts ta ON ta.id = ep.task_attempt_id
LEFT JOIN executor_sessions es ON es.execution_process_id = ep.id;
