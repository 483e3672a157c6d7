-- A key is its node (DESIGN.md §10). A node's op sequence belongs to one node instance (one node
-- data dir): when the key is first used, or used from a new instance while the old one is offline
-- (a move), a new epoch starts and the applied-through cursor restarts at what the new instance
-- says it already had acknowledged. node_op_log rows keep the epoch they were applied in.
ALTER TABLE node_op_cursors ADD COLUMN epoch integer NOT NULL DEFAULT 0;
ALTER TABLE node_op_log ADD COLUMN epoch integer NOT NULL DEFAULT 0;

-- Rejections were re-sent by seq after a reconnect; a node now resends its unacknowledged ops and
-- hears their rejections again in the batch answer, so the seq index of rejected ops is unused.
DROP INDEX IF EXISTS idx_node_op_log_rejected;

-- Earlier versions let a second key adopt the node of the first by machine id, so one node could
-- have several keys. Keep the oldest key's binding; the others create their own node on next use.
UPDATE node_api_keys k SET node_id = NULL, takeover_count = 0, takeover_window_start = NULL
WHERE k.node_id IS NOT NULL
  AND EXISTS (SELECT 1 FROM node_api_keys o
              WHERE o.node_id = k.node_id
                AND (o.created_at, o.id) < (k.created_at, k.id));
