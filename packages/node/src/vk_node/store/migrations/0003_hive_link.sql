-- The hive link (DESIGN.md §2, §5): hive assignments this node accepted, so a restart knows which
-- attempts run for the hive and with which fencing token (lease deadlines are monotonic and never
-- stored), and the link's last known state, read by `vk-node status`.
CREATE TABLE hive_assignments (
    assignment_id     BLOB PRIMARY KEY,
    shared_task_id    BLOB NOT NULL,
    swarm_project_id  BLOB NOT NULL,
    local_project_id  BLOB NOT NULL,
    local_task_id     BLOB,
    local_attempt_id  BLOB,
    fencing_token     INTEGER NOT NULL CHECK (fencing_token >= 1),
    status            TEXT NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'starting', 'running', 'completed', 'failed',
                                        'cancelled')),
    terminal_seq      INTEGER,
    retired_at        TEXT,
    created_at        TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    updated_at        TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);

CREATE INDEX idx_hive_assignments_live ON hive_assignments (local_task_id) WHERE retired_at IS NULL;

CREATE TABLE hive_link_state (
    id                INTEGER PRIMARY KEY CHECK (id = 1),
    state             TEXT NOT NULL
                      CHECK (state IN ('disconnected', 'connecting', 'connected', 'stopped')),
    hive_url          TEXT NOT NULL DEFAULT '',
    node_id           BLOB,
    organization_id   BLOB,
    connected_since   TEXT,
    last_error        TEXT,
    backoff_until     TEXT,
    pid               INTEGER,
    updated_at        TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);
