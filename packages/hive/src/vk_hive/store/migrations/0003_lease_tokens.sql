-- node_lease_tokens: every fencing token an assignment row ever carried, with who held it and
-- when it was current. A row of node_task_assignments keeps only its latest token (a reclaim or
-- a takeover gives the same row a new one), so without this table an op applied under an
-- earlier token could not be checked afterwards against the lease that allowed it. Filled by a
-- trigger, so every code path that hands out or retires a token is covered.
--   holder_node_id: the node the token was granted to; NULL for a token that only retired a
--                   lease (a reclaim frees the row: nobody holds the new token)
--   granted_at / ended_at: wall time (clock_timestamp) the token became current / stopped being
--                   current (a newer token, or the assignment was closed); ended_at NULL = current
CREATE TABLE node_lease_tokens (
    fencing_token  bigint PRIMARY KEY,
    assignment_id  uuid NOT NULL REFERENCES node_task_assignments (id) ON DELETE CASCADE,
    task_id        uuid NOT NULL,
    holder_node_id uuid,
    granted_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    ended_at       timestamptz
);
CREATE INDEX idx_node_lease_tokens_assignment ON node_lease_tokens (assignment_id);

CREATE FUNCTION record_lease_token() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND (NEW.fencing_token <> OLD.fencing_token
                             OR (NEW.completed_at IS NOT NULL AND OLD.completed_at IS NULL)) THEN
        UPDATE node_lease_tokens SET ended_at = clock_timestamp()
        WHERE fencing_token = OLD.fencing_token AND ended_at IS NULL;
    END IF;
    IF NEW.completed_at IS NULL AND (TG_OP = 'INSERT' OR NEW.fencing_token <> OLD.fencing_token) THEN
        INSERT INTO node_lease_tokens (fencing_token, assignment_id, task_id, holder_node_id)
        VALUES (NEW.fencing_token, NEW.id, NEW.task_id,
                CASE WHEN NEW.lease_expires_at IS NULL THEN NULL ELSE NEW.node_id END)
        ON CONFLICT (fencing_token) DO NOTHING;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER trg_node_task_assignments_lease_tokens
    AFTER INSERT OR UPDATE ON node_task_assignments
    FOR EACH ROW EXECUTE FUNCTION record_lease_token();

-- Tokens of assignments that exist already (no history before this migration).
INSERT INTO node_lease_tokens (fencing_token, assignment_id, task_id, holder_node_id, granted_at,
                               ended_at)
SELECT fencing_token, id, task_id,
       CASE WHEN lease_expires_at IS NULL THEN NULL ELSE node_id END, assigned_at, completed_at
FROM node_task_assignments
WHERE fencing_token > 0
ON CONFLICT (fencing_token) DO NOTHING;
