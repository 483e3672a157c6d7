-- Progress and labels from the node (docs/sync-protocol.md, "Progress and labels from a node").
--
-- hive_link_state.hive_features: the optional ops the hive announced in its last `auth_result`
-- (`features`, space-separated). The node writes an op kind into its outbox only while the hive
-- it talks to applies it ("Compatibility between releases").
--
-- node_outbox is rebuilt (SQLite cannot change a CHECK) to take the `progress.append` and
-- `label.upsert` ops; its rows, seqs and acks are kept as they are.
ALTER TABLE hive_link_state ADD COLUMN hive_features TEXT NOT NULL DEFAULT '';

CREATE TABLE node_outbox_new (
    id              BLOB PRIMARY KEY,
    seq             INTEGER NOT NULL UNIQUE CHECK (seq >= 1),
    op_type         TEXT NOT NULL
                    CHECK (op_type IN ('task.upsert', 'attempt.upsert', 'execution.upsert',
                                       'logs.append', 'assignment.status', 'progress.append',
                                       'label.upsert')),
    entity_type     TEXT NOT NULL
                    CHECK (entity_type IN ('task', 'attempt', 'execution', 'assignment',
                                           'progress', 'label')),
    entity_id       BLOB NOT NULL,
    payload         TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    fencing_token   INTEGER,
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    acked_at        TEXT,
    rejected_at     TEXT,
    reject_code     TEXT,
    reject_reason   TEXT,
    task_id         BLOB,
    CHECK (rejected_at IS NULL OR acked_at IS NOT NULL)
);

INSERT INTO node_outbox_new (id, seq, op_type, entity_type, entity_id, payload, idempotency_key,
    fencing_token, created_at, acked_at, rejected_at, reject_code, reject_reason, task_id)
SELECT id, seq, op_type, entity_type, entity_id, payload, idempotency_key, fencing_token,
    created_at, acked_at, rejected_at, reject_code, reject_reason, task_id
FROM node_outbox;

DROP TABLE node_outbox;
ALTER TABLE node_outbox_new RENAME TO node_outbox;

CREATE INDEX idx_node_outbox_unacked_seq ON node_outbox (seq) WHERE acked_at IS NULL;
CREATE INDEX idx_node_outbox_unacked_entity ON node_outbox (entity_id) WHERE acked_at IS NULL;
CREATE INDEX idx_node_outbox_entity_seq ON node_outbox (entity_id, seq);
