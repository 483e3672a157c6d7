-- The optional ops the hive announced in its last `auth_result` (`features`, space-separated).
-- A node writes an op kind into its outbox only while the hive it talks to applies it
-- (docs/sync-protocol.md, "Compatibility between releases").
ALTER TABLE hive_link_state ADD COLUMN hive_features TEXT NOT NULL DEFAULT '';
