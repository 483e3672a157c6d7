-- This node instance's identity (DESIGN.md §10): generated on first start and kept with the store,
-- so two nodes on one host are two nodes, and the id survives restarts and host renames. It lives
-- in the database (not beside it) because it names this store's outbox sequence: a fresh store is
-- a new instance, for which the hive starts a new op-sequence epoch. The row is written by the
-- node at start (vk_node.link.identity), not here: a store that already has history keeps the
-- id it used before this table existed.
CREATE TABLE node_identity (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    machine_id  TEXT NOT NULL CHECK (length(machine_id) BETWEEN 1 AND 255),
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);
