"""The executor core: profiles, worktrees, processes, log capture, the run chain, recovery and
merges (spec/executor.md, DESIGN.md §7)."""
