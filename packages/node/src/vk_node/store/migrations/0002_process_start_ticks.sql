-- Crash recovery identifies a run's process by pid AND its start time (/proc/<pid>/stat field 22,
-- clock ticks since boot), so a reused pid is never mistaken for ours (DESIGN.md §7).
ALTER TABLE execution_processes ADD COLUMN pid_start_ticks INTEGER;
