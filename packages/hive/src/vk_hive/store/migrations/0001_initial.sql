-- Hive schema, first version: every table of spec/hive-store.md §3 without ElectricSQL objects,
-- plus what DESIGN.md needs (per-node applied-through cursors, personal access tokens, task executor,
-- log rows keyed by (execution process, local log id)).

-- Functions ---------------------------------------------------------------------------------------

CREATE FUNCTION set_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

CREATE FUNCTION set_last_used_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.last_used_at := now();
    RETURN NEW;
END
$$;

-- Enums -------------------------------------------------------------------------------------------

CREATE TYPE member_role AS ENUM ('admin', 'member');
CREATE TYPE invitation_status AS ENUM ('pending', 'accepted', 'declined', 'expired');
CREATE TYPE task_status AS ENUM ('todo', 'in-progress', 'in-review', 'done', 'cancelled');
CREATE TYPE node_status AS ENUM ('pending', 'online', 'offline', 'busy', 'draining');

-- Tenancy -----------------------------------------------------------------------------------------

CREATE TABLE organizations (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL,
    slug        text NOT NULL UNIQUE,
    is_personal boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email      text NOT NULL UNIQUE,
    first_name text,
    last_name  text,
    username   text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_users_email_lower ON users (lower(email));

CREATE TABLE organization_member_metadata (
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role            member_role NOT NULL DEFAULT 'member',
    joined_at       timestamptz NOT NULL DEFAULT now(),
    last_seen_at    timestamptz,
    PRIMARY KEY (organization_id, user_id)
);
CREATE INDEX idx_member_metadata_user ON organization_member_metadata (user_id);
CREATE INDEX idx_member_metadata_org_role ON organization_member_metadata (organization_id, role);

CREATE TABLE organization_invitations (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id    uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    invited_by_user_id uuid REFERENCES users (id) ON DELETE SET NULL,
    email              text NOT NULL,
    role               member_role NOT NULL DEFAULT 'member',
    status             invitation_status NOT NULL DEFAULT 'pending',
    token              text NOT NULL UNIQUE,
    expires_at         timestamptz NOT NULL DEFAULT (now() + interval '7 days'),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX uniq_pending_invite_per_email_per_org
    ON organization_invitations (organization_id, lower(email)) WHERE status = 'pending';
CREATE INDEX idx_invitations_org ON organization_invitations (organization_id);
CREATE INDEX idx_invitations_status_expires ON organization_invitations (status, expires_at);

-- Auth --------------------------------------------------------------------------------------------

CREATE TABLE auth_sessions (
    id                      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id                 uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_secret_hash     text,
    refresh_token_id        uuid,
    refresh_token_issued_at timestamptz,
    created_at              timestamptz NOT NULL DEFAULT now(),
    last_used_at            timestamptz,
    revoked_at              timestamptz
);
CREATE INDEX idx_auth_sessions_user ON auth_sessions (user_id);
CREATE INDEX idx_auth_sessions_refresh_token ON auth_sessions (refresh_token_id);

CREATE TABLE revoked_refresh_tokens (
    token_id       uuid PRIMARY KEY,
    user_id        uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    revoked_at     timestamptz NOT NULL DEFAULT now(),
    revoked_reason text NOT NULL
);
CREATE INDEX idx_revoked_refresh_tokens_user ON revoked_refresh_tokens (user_id);

CREATE TABLE oauth_accounts (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id          uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider         text NOT NULL,
    provider_user_id text NOT NULL,
    email            text,
    username         text,
    display_name     text,
    avatar_url       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (provider, provider_user_id)
);
CREATE INDEX idx_oauth_accounts_user ON oauth_accounts (user_id);

CREATE TABLE oauth_handoffs (
    id                        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    provider                  text NOT NULL,
    state                     text NOT NULL UNIQUE,
    return_to                 text NOT NULL,
    app_challenge             text NOT NULL,
    app_code_hash             text,
    status                    text NOT NULL DEFAULT 'pending',
    error_code                text,
    expires_at                timestamptz NOT NULL DEFAULT (now() + interval '10 minutes'),
    authorized_at             timestamptz,
    redeemed_at               timestamptz,
    user_id                   uuid REFERENCES users (id),
    session_id                uuid REFERENCES auth_sessions (id) ON DELETE SET NULL,
    encrypted_provider_tokens text,
    created_at                timestamptz NOT NULL DEFAULT now(),
    updated_at                timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_oauth_handoffs_status ON oauth_handoffs (status);
CREATE INDEX idx_oauth_handoffs_user ON oauth_handoffs (user_id);

CREATE TABLE personal_access_tokens (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         text NOT NULL,
    token_prefix text NOT NULL,
    token_hash   text NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    expires_at   timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX idx_personal_access_tokens_prefix ON personal_access_tokens (token_prefix);
CREATE INDEX idx_personal_access_tokens_user ON personal_access_tokens (user_id);

-- Swarm -------------------------------------------------------------------------------------------

CREATE TABLE nodes (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id   uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name              text NOT NULL,
    machine_id        text NOT NULL,
    status            node_status NOT NULL DEFAULT 'pending',
    capabilities      jsonb NOT NULL DEFAULT '{}'::jsonb,
    public_url        text,
    last_heartbeat_at timestamptz,
    connected_at      timestamptz,
    disconnected_at   timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_nodes_org_status ON nodes (organization_id, status);
CREATE INDEX idx_nodes_heartbeat ON nodes (last_heartbeat_at) WHERE status IN ('online', 'busy');

CREATE TABLE node_api_keys (
    id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id       uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name                  text NOT NULL,
    key_hash              text NOT NULL,
    key_prefix            text NOT NULL,
    created_by            uuid REFERENCES users (id) ON DELETE SET NULL,
    last_used_at          timestamptz,
    revoked_at            timestamptz,
    created_at            timestamptz NOT NULL DEFAULT now(),
    node_id               uuid REFERENCES nodes (id) ON DELETE SET NULL,
    takeover_count        integer NOT NULL DEFAULT 0,
    takeover_window_start timestamptz,
    blocked_at            timestamptz,
    blocked_reason        text
);
CREATE INDEX idx_node_api_keys_org ON node_api_keys (organization_id);
CREATE INDEX idx_node_api_keys_prefix ON node_api_keys (key_prefix);
CREATE INDEX idx_node_api_keys_node ON node_api_keys (node_id);

CREATE TABLE swarm_projects (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name            text NOT NULL,
    description     text,
    metadata        jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, name)
);
CREATE INDEX idx_swarm_projects_org ON swarm_projects (organization_id);

CREATE TABLE swarm_project_nodes (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    swarm_project_id uuid NOT NULL REFERENCES swarm_projects (id) ON DELETE CASCADE,
    node_id          uuid NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    local_project_id uuid NOT NULL,
    git_repo_path    text NOT NULL,
    os_type          text,
    linked_at        timestamptz NOT NULL DEFAULT now(),
    is_owner         boolean NOT NULL DEFAULT false,
    UNIQUE (swarm_project_id, node_id),
    UNIQUE (node_id, local_project_id)
);
CREATE INDEX idx_swarm_project_nodes_project ON swarm_project_nodes (swarm_project_id);
CREATE INDEX idx_swarm_project_nodes_node ON swarm_project_nodes (node_id);

CREATE TABLE node_local_projects (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    node_id          uuid NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    local_project_id uuid NOT NULL,
    name             text NOT NULL,
    git_repo_path    text NOT NULL,
    default_branch   text NOT NULL DEFAULT 'main',
    swarm_project_id uuid REFERENCES swarm_projects (id) ON DELETE SET NULL,
    last_seen_at     timestamptz NOT NULL DEFAULT now(),
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (node_id, local_project_id)
);
CREATE INDEX idx_node_local_projects_node ON node_local_projects (node_id);
CREATE INDEX idx_node_local_projects_swarm_project
    ON node_local_projects (swarm_project_id) WHERE swarm_project_id IS NOT NULL;
CREATE INDEX idx_node_local_projects_last_seen ON node_local_projects (last_seen_at);

CREATE TABLE labels (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    project_id      uuid,
    origin_node_id  uuid REFERENCES nodes (id) ON DELETE SET NULL,
    name            text NOT NULL,
    icon            text NOT NULL DEFAULT 'tag',
    color           text NOT NULL DEFAULT '#6b7280',
    version         bigint NOT NULL DEFAULT 1,
    deleted_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT uniq_labels_org_project_name
        UNIQUE NULLS NOT DISTINCT (organization_id, project_id, name, deleted_at)
);
CREATE INDEX idx_labels_org ON labels (organization_id);
CREATE INDEX idx_labels_project ON labels (project_id);
CREATE INDEX idx_labels_origin_node ON labels (origin_node_id);
CREATE INDEX idx_labels_deleted_at ON labels (deleted_at) WHERE deleted_at IS NOT NULL;

CREATE TABLE swarm_templates (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name            text NOT NULL,
    content         text NOT NULL DEFAULT '',
    description     text,
    metadata        jsonb NOT NULL DEFAULT '{}'::jsonb,
    version         bigint NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz,
    CONSTRAINT uniq_swarm_templates_org_name
        UNIQUE NULLS NOT DISTINCT (organization_id, name, deleted_at)
);
CREATE INDEX idx_swarm_templates_org ON swarm_templates (organization_id);
CREATE INDEX idx_swarm_templates_live ON swarm_templates (deleted_at) WHERE deleted_at IS NULL;

-- Tasks -------------------------------------------------------------------------------------------

CREATE TABLE shared_tasks (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id    uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    project_id         uuid,
    swarm_project_id   uuid REFERENCES swarm_projects (id) ON DELETE SET NULL,
    creator_user_id    uuid REFERENCES users (id) ON DELETE SET NULL,
    assignee_user_id   uuid REFERENCES users (id) ON DELETE SET NULL,
    deleted_by_user_id uuid REFERENCES users (id) ON DELETE SET NULL,
    title              text NOT NULL,
    description        text,
    status             task_status NOT NULL DEFAULT 'todo',
    executor           text NOT NULL DEFAULT 'CLAUDE_CODE',
    version            bigint NOT NULL DEFAULT 1,
    deleted_at         timestamptz,
    shared_at          timestamptz DEFAULT now(),
    archived_at        timestamptz,
    executing_node_id  uuid REFERENCES nodes (id) ON DELETE SET NULL,
    owner_node_id      uuid REFERENCES nodes (id) ON DELETE SET NULL,
    owner_name         text,
    source_node_id     uuid REFERENCES nodes (id) ON DELETE SET NULL,
    source_task_id     uuid,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT shared_tasks_text_size
        CHECK (octet_length(title) + coalesce(octet_length(description), 0) <= 51200)
);
CREATE INDEX idx_shared_tasks_org_status ON shared_tasks (organization_id, status);
CREATE INDEX idx_shared_tasks_org_assignee ON shared_tasks (organization_id, assignee_user_id);
CREATE INDEX idx_shared_tasks_project ON shared_tasks (project_id);
CREATE INDEX idx_shared_tasks_org_deleted
    ON shared_tasks (organization_id, deleted_at) WHERE deleted_at IS NOT NULL;
CREATE INDEX idx_shared_tasks_executing_node
    ON shared_tasks (executing_node_id) WHERE executing_node_id IS NOT NULL;
CREATE INDEX idx_shared_tasks_swarm_project
    ON shared_tasks (swarm_project_id) WHERE swarm_project_id IS NOT NULL;
CREATE INDEX idx_shared_tasks_source
    ON shared_tasks (project_id, source_node_id, source_task_id) WHERE source_task_id IS NOT NULL;
CREATE UNIQUE INDEX idx_shared_tasks_source_unique
    ON shared_tasks (source_node_id, source_task_id)
    WHERE source_node_id IS NOT NULL AND source_task_id IS NOT NULL AND deleted_at IS NULL;

CREATE TABLE shared_task_labels (
    shared_task_id uuid NOT NULL REFERENCES shared_tasks (id) ON DELETE CASCADE,
    label_id       uuid NOT NULL REFERENCES labels (id) ON DELETE CASCADE,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (shared_task_id, label_id)
);
CREATE INDEX idx_shared_task_labels_label ON shared_task_labels (label_id);

-- Activity feed -----------------------------------------------------------------------------------

CREATE TABLE project_activity_counters (
    project_id       uuid PRIMARY KEY,
    swarm_project_id uuid REFERENCES swarm_projects (id) ON DELETE CASCADE,
    last_seq         bigint NOT NULL DEFAULT 0
);
CREATE INDEX idx_activity_counters_swarm_project
    ON project_activity_counters (swarm_project_id) WHERE swarm_project_id IS NOT NULL;

CREATE TABLE activity (
    seq              bigint NOT NULL,
    event_id         uuid NOT NULL DEFAULT gen_random_uuid(),
    project_id       uuid NOT NULL,
    assignee_user_id uuid REFERENCES users (id) ON DELETE SET NULL,
    event_type       text NOT NULL,
    payload          jsonb NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    swarm_project_id uuid,
    PRIMARY KEY (created_at, project_id, seq),
    UNIQUE (created_at, event_id)
) PARTITION BY RANGE (created_at);
CREATE INDEX idx_activity_project_seq ON activity (project_id, seq DESC);
CREATE INDEX idx_activity_swarm_project_seq
    ON activity (swarm_project_id, seq ASC) WHERE swarm_project_id IS NOT NULL;
CREATE INDEX idx_activity_swarm_project_created
    ON activity (swarm_project_id, created_at) WHERE swarm_project_id IS NOT NULL;

-- One partition per UTC day, activity_p_YYYYMMDD covering [day 00:00, +24 h).
CREATE FUNCTION ensure_activity_partition(ts timestamptz) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    day_start timestamptz := to_timestamp(floor(extract(epoch FROM ts) / 86400) * 86400);
    day_end   timestamptz := day_start + interval '1 day';
    part      text := 'activity_p_' || to_char(day_start AT TIME ZONE 'UTC', 'YYYYMMDD');
BEGIN
    BEGIN
        EXECUTE format(
            'CREATE TABLE IF NOT EXISTS %I PARTITION OF activity FOR VALUES FROM (%L) TO (%L)',
            part, day_start, day_end
        );
    EXCEPTION WHEN duplicate_table OR unique_violation THEN
        NULL;  -- created concurrently by someone else
    END;
    RETURN part;
END
$$;

-- Ensures the partitions of ts, ts+24 h and ts+48 h; returns their names.
CREATE FUNCTION ensure_activity_partitions(ts timestamptz) RETURNS SETOF text
LANGUAGE sql AS $$
    SELECT ensure_activity_partition(ts + make_interval(days => d)) FROM generate_series(0, 2) AS d
$$;

-- Retention: drops every daily partition whose upper bound is <= cutoff; returns the dropped names.
CREATE FUNCTION drop_activity_partitions_before(cutoff timestamptz) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    part text;
BEGIN
    FOR part IN
        SELECT c.relname
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'activity'::regclass
          AND c.relname ~ '^activity_p_[0-9]{8}$'
          AND (to_date(substring(c.relname FROM 12), 'YYYYMMDD')::timestamp AT TIME ZONE 'UTC')
              + interval '1 day' <= cutoff
        ORDER BY c.relname
    LOOP
        EXECUTE format('ALTER TABLE activity DETACH PARTITION %I', part);
        EXECUTE format('DROP TABLE %I', part);
        RETURN NEXT part;
    END LOOP;
END
$$;

CREATE FUNCTION activity_notify() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    PERFORM pg_notify(
        'activity',
        json_build_object(
            'seq', NEW.seq,
            'event_id', NEW.event_id,
            'project_id', NEW.project_id,
            'event_type', NEW.event_type,
            'created_at', NEW.created_at
        )::text
    );
    RETURN NEW;
END
$$;

CREATE TRIGGER trg_activity_notify AFTER INSERT ON activity
    FOR EACH ROW EXECUTE FUNCTION activity_notify();

-- Dispatch & sync ---------------------------------------------------------------------------------

CREATE SEQUENCE node_fencing_token_seq AS bigint START WITH 1 INCREMENT BY 1;

CREATE TABLE node_task_assignments (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    task_id          uuid NOT NULL REFERENCES shared_tasks (id) ON DELETE CASCADE,
    node_id          uuid NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    node_project_id  uuid NOT NULL REFERENCES swarm_project_nodes (id) ON DELETE CASCADE,
    local_task_id    uuid,
    local_attempt_id uuid,
    execution_status text NOT NULL DEFAULT 'pending',
    assigned_at      timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    completed_at     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    lease_expires_at timestamptz,
    fencing_token    bigint NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX idx_task_assignments_active
    ON node_task_assignments (task_id) WHERE completed_at IS NULL;
CREATE INDEX idx_task_assignments_node ON node_task_assignments (node_id);
CREATE INDEX idx_task_assignments_lease
    ON node_task_assignments (lease_expires_at)
    WHERE completed_at IS NULL AND lease_expires_at IS NOT NULL;

CREATE TABLE node_op_log (
    node_id         uuid NOT NULL,
    idempotency_key text NOT NULL,
    seq             bigint NOT NULL,
    op_type         text NOT NULL,
    entity_id       uuid NOT NULL,
    applied_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (node_id, idempotency_key)
);
CREATE INDEX idx_node_op_log_node_seq ON node_op_log (node_id, seq);

CREATE TABLE node_op_cursors (
    node_id             uuid PRIMARY KEY REFERENCES nodes (id) ON DELETE CASCADE,
    applied_through_seq bigint NOT NULL DEFAULT 0,
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE node_task_attempts (
    id                  uuid PRIMARY KEY,
    assignment_id       uuid REFERENCES node_task_assignments (id) ON DELETE CASCADE,
    shared_task_id      uuid NOT NULL REFERENCES shared_tasks (id) ON DELETE CASCADE,
    node_id             uuid NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    executor            text NOT NULL,
    executor_variant    text,
    branch              text NOT NULL,
    target_branch       text NOT NULL,
    container_ref       text,
    worktree_deleted    boolean NOT NULL DEFAULT false,
    setup_completed_at  timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    sync_state          varchar(20) NOT NULL DEFAULT 'partial',
    sync_requested_at   timestamptz,
    last_full_sync_at   timestamptz,
    backfill_request_id uuid
);
CREATE INDEX idx_node_task_attempts_assignment ON node_task_attempts (assignment_id);
CREATE INDEX idx_node_task_attempts_shared_task ON node_task_attempts (shared_task_id);
CREATE INDEX idx_node_task_attempts_node ON node_task_attempts (node_id);
CREATE INDEX idx_node_task_attempts_incomplete
    ON node_task_attempts (node_id, sync_state) WHERE sync_state <> 'complete';
CREATE INDEX idx_node_task_attempts_pending_backfill
    ON node_task_attempts (node_id) WHERE sync_state = 'pending_backfill';
CREATE INDEX idx_node_task_attempts_backfill_request
    ON node_task_attempts (backfill_request_id) WHERE backfill_request_id IS NOT NULL;

CREATE TABLE node_execution_processes (
    id                 uuid PRIMARY KEY,
    attempt_id         uuid NOT NULL REFERENCES node_task_attempts (id) ON DELETE CASCADE,
    node_id            uuid NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    run_reason         text NOT NULL,
    executor_action    jsonb,
    before_head_commit text,
    after_head_commit  text,
    status             text NOT NULL,
    exit_code          integer,
    dropped            boolean NOT NULL DEFAULT false,
    pid                bigint,
    started_at         timestamptz NOT NULL,
    completed_at       timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_node_execution_processes_attempt ON node_execution_processes (attempt_id);
CREATE INDEX idx_node_execution_processes_node ON node_execution_processes (node_id);
CREATE INDEX idx_node_execution_processes_running
    ON node_execution_processes (status) WHERE status = 'running';

CREATE TABLE node_task_output_logs (
    id                   bigserial PRIMARY KEY,
    assignment_id        uuid REFERENCES node_task_assignments (id) ON DELETE CASCADE,
    output_type          text NOT NULL,
    content              text NOT NULL,
    "timestamp"          timestamptz NOT NULL DEFAULT now(),
    created_at           timestamptz NOT NULL DEFAULT now(),
    execution_process_id uuid REFERENCES node_execution_processes (id) ON DELETE SET NULL,
    local_log_id         bigint,
    CONSTRAINT uniq_output_logs_process_local UNIQUE (execution_process_id, local_log_id)
);
CREATE INDEX idx_output_logs_assignment ON node_task_output_logs (assignment_id);
CREATE INDEX idx_output_logs_assignment_created ON node_task_output_logs (assignment_id, created_at);
CREATE INDEX idx_output_logs_execution_process ON node_task_output_logs (execution_process_id);

CREATE TABLE node_task_progress_events (
    id            bigserial PRIMARY KEY,
    assignment_id uuid NOT NULL REFERENCES node_task_assignments (id) ON DELETE CASCADE,
    event_type    text NOT NULL,
    message       text,
    metadata      jsonb,
    "timestamp"   timestamptz NOT NULL DEFAULT now(),
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_progress_events_assignment ON node_task_progress_events (assignment_id);
CREATE INDEX idx_progress_events_assignment_created
    ON node_task_progress_events (assignment_id, created_at);

-- updated_at / last_used_at triggers --------------------------------------------------------------

CREATE TRIGGER trg_organizations_updated_at BEFORE UPDATE ON organizations
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER trg_users_updated_at BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER trg_shared_tasks_updated_at BEFORE UPDATE ON shared_tasks
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER trg_organization_invitations_updated_at BEFORE UPDATE ON organization_invitations
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER trg_oauth_accounts_updated_at BEFORE UPDATE ON oauth_accounts
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER trg_oauth_handoffs_updated_at BEFORE UPDATE ON oauth_handoffs
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER trg_nodes_updated_at BEFORE UPDATE ON nodes
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER trg_labels_updated_at BEFORE UPDATE ON labels
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER trg_node_task_attempts_updated_at BEFORE UPDATE ON node_task_attempts
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER trg_swarm_projects_updated_at BEFORE UPDATE ON swarm_projects
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER trg_swarm_templates_updated_at BEFORE UPDATE ON swarm_templates
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER trg_auth_sessions_last_used_at BEFORE UPDATE ON auth_sessions
    FOR EACH ROW EXECUTE FUNCTION set_last_used_at();
