-- The local task each outbox op is about, kept on the row (DESIGN.md §3): the sender stamps the
-- fencing token of the task's current assignment on task, attempt, execution and logs ops at send
-- time, and reads the task from here instead of looking it up per op. NULL for
-- assignment.status (stamped by its assignment, which is the op's entity_id). Written at enqueue.
ALTER TABLE node_outbox ADD COLUMN task_id BLOB;

-- Backfill the ops written before this column existed.
UPDATE node_outbox SET task_id = entity_id WHERE entity_type = 'task';

UPDATE node_outbox
SET task_id = (SELECT a.task_id FROM task_attempts a WHERE a.id = node_outbox.entity_id)
WHERE entity_type = 'attempt';

-- An attempt deleted since: its payload names the task (hyphenated text), matched against the
-- BLOB ids of the task itself or of the task's own ops.
UPDATE node_outbox
SET task_id = COALESCE(
    (SELECT t.id FROM tasks t
     WHERE lower(hex(t.id)) = replace(json_extract(node_outbox.payload, '$.task_id'), '-', '')),
    (SELECT o.entity_id FROM node_outbox o
     WHERE o.entity_type = 'task'
       AND lower(hex(o.entity_id))
           = replace(json_extract(node_outbox.payload, '$.task_id'), '-', '')
     LIMIT 1))
WHERE entity_type = 'attempt' AND task_id IS NULL;

-- execution.upsert and logs.append: the entity is the execution process.
UPDATE node_outbox
SET task_id = (SELECT a.task_id FROM execution_processes e
               JOIN task_attempts a ON a.id = e.task_attempt_id
               WHERE e.id = node_outbox.entity_id)
WHERE entity_type = 'execution';
