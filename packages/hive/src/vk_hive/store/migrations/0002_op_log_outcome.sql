-- node_op_log keeps each op's outcome: NULL reject_code = applied, else the code and reason of its
-- op_rejected. A node that missed the op_rejected (the connection dropped after the commit) is
-- told again when it resends the op or reconnects behind the hive's applied-through seq, so its
-- outbox never holds as applied an op the hive skipped. fencing_token is the token the op carried.
ALTER TABLE node_op_log
    ADD COLUMN reject_code   text,
    ADD COLUMN reject_reason text,
    ADD COLUMN fencing_token bigint;
CREATE INDEX idx_node_op_log_rejected ON node_op_log (node_id, seq) WHERE reject_code IS NOT NULL;
