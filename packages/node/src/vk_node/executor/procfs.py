"""What the kernel says about a pid: alive?, start time, process group, descendants (Linux
``/proc``). A pid alone never identifies a process; pid + start time does."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

__all__ = ["ProcStat", "descendants", "is_alive", "read_stat", "signal_group", "signal_pids"]


class ProcStat:
    """The fields of ``/proc/<pid>/stat`` the executor needs."""

    __slots__ = ("pgid", "pid", "ppid", "start_ticks", "state")

    def __init__(self, pid: int, state: str, ppid: int, pgid: int, start_ticks: int) -> None:
        self.pid = pid
        self.state = state
        self.ppid = ppid
        self.pgid = pgid
        self.start_ticks = start_ticks


def read_stat(pid: int) -> ProcStat | None:
    """``None`` when the pid does not exist (or cannot be read)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes().decode("utf-8", "replace")
    except (OSError, ValueError):
        return None
    # The command name (field 2) is in parentheses and may contain spaces or ")".
    rest = raw[raw.rfind(")") + 2 :].split()
    try:
        # rest[0] is field 3 (state); field N is rest[N - 3].
        return ProcStat(pid, rest[0], int(rest[1]), int(rest[2]), int(rest[19]))
    except (IndexError, ValueError):
        return None


def is_alive(pid: int) -> bool:
    """The pid exists and is not a zombie."""
    stat = read_stat(pid)
    return stat is not None and stat.state not in ("Z", "X")


def descendants(pid: int) -> list[ProcStat]:
    """Every live descendant of ``pid`` (children, grandchildren, …) right now."""
    children: dict[int, list[ProcStat]] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    for name in names:
        if not name.isdigit():
            continue
        stat = read_stat(int(name))
        if stat is not None:
            children.setdefault(stat.ppid, []).append(stat)
    found: list[ProcStat] = []
    seen: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child.pid not in seen:
                seen.add(child.pid)
                found.append(child)
                todo.append(child.pid)
    return found


def signal_group(pgid: int, sig: signal.Signals) -> bool:
    """Send ``sig`` to a process group; ``False`` when the group no longer exists."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    return True


def signal_pids(processes: list[ProcStat], sig: signal.Signals) -> None:
    """Signal each process still running with the same start time (a reused pid is skipped)."""
    for proc in processes:
        now = read_stat(proc.pid)
        if now is None or now.start_ticks != proc.start_ticks:
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(proc.pid, sig)
