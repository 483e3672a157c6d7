-- Activity echoes of the node's own task writes are compared with the later ops of the same task
-- (acked ones included), so the outbox is looked up by (entity_id, seq).
CREATE INDEX idx_node_outbox_entity_seq ON node_outbox (entity_id, seq);
