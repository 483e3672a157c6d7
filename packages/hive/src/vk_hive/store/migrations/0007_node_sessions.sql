-- Several hive processes over one database (docs/operations.md, "Several hive processes").
--
-- nodes.session_id names the node's current control-channel session, whichever hive process
-- serves it. A session that ends marks the node offline only while it is still the current one,
-- so a node that moved to another process is never shown offline by the session it left.
ALTER TABLE nodes ADD COLUMN session_id uuid;
