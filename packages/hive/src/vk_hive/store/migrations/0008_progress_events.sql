-- Progress events written by nodes (docs/sync-protocol.md, "Progress and labels from a node").
--
-- A `progress.append` op names the node's attempt; the hive takes the task and the assignment
-- from its copy of that attempt. An attempt the node started by itself has no assignment, so
-- `assignment_id` becomes nullable and every row names its task, node and attempt. `event_id` is
-- the node's id of the event: a resent op (a new epoch, a restored outbox) never doubles a row.
ALTER TABLE node_task_progress_events ALTER COLUMN assignment_id DROP NOT NULL;
ALTER TABLE node_task_progress_events
    ADD COLUMN shared_task_id uuid REFERENCES shared_tasks (id) ON DELETE CASCADE;
ALTER TABLE node_task_progress_events
    ADD COLUMN node_id uuid REFERENCES nodes (id) ON DELETE CASCADE;
ALTER TABLE node_task_progress_events
    ADD COLUMN attempt_id uuid REFERENCES node_task_attempts (id) ON DELETE CASCADE;
ALTER TABLE node_task_progress_events
    ADD COLUMN execution_process_id uuid
        REFERENCES node_execution_processes (id) ON DELETE SET NULL;
ALTER TABLE node_task_progress_events ADD COLUMN event_id uuid;
ALTER TABLE node_task_progress_events
    ADD CONSTRAINT uniq_progress_events_node_event UNIQUE (node_id, event_id);
CREATE INDEX idx_progress_events_task ON node_task_progress_events (shared_task_id, "timestamp", id);
CREATE INDEX idx_progress_events_attempt ON node_task_progress_events (attempt_id);
