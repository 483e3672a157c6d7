"""``vk-node backup PATH`` and ``vk-node restore PATH`` (see :mod:`vk_node.services.backup`).

Progress goes to stderr for big stores (every tenth of the pages); the result to stdout, its last
line naming the file, its size and what it holds, or one JSON object with ``--json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

import msgspec

from vk_node.services.backup import (
    BackupReport,
    RestoreReport,
    StoreCounts,
    backup_store,
    restore_store,
)
from vk_node.settings import NodeSettings
from vk_node.store import migrate

__all__ = ["run"]

_PROGRESS_FROM_PAGES = 8192
"""Stores of this many pages (32 MiB at 4 KiB pages) or more get progress lines."""


class _Progress:
    def __init__(self, verb: str) -> None:
        self.verb = verb
        self.shown = -1

    def __call__(self, done: int, total: int) -> None:
        if total < _PROGRESS_FROM_PAGES:
            return
        tenth = done * 10 // total
        if tenth > self.shown:
            self.shown = tenth
            print(f"{self.verb}: {tenth * 10}% ({done}/{total} pages)", file=sys.stderr, flush=True)


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _holds(counts: StoreCounts) -> str:
    identity = counts.machine_id or "none yet (the node makes one at its first start)"
    return (
        f"{counts.projects} projects, {counts.tasks} tasks, {counts.attempts} attempts; "
        f"node identity {identity}"
    )


def _print_backup(report: BackupReport, as_json: bool) -> None:
    if as_json:
        print(json.dumps(msgspec.to_builtins(report)))
        return
    print("not in the backup:")
    for item in report.not_included:
        print(f"  - {item}")
    print(f"backup written: {report.path} ({_size(report.size_bytes)}): {_holds(report.counts)}")


def _print_restore(report: RestoreReport, settings: NodeSettings, as_json: bool) -> None:
    if as_json:
        print(json.dumps(msgspec.to_builtins(report)))
        return
    for kept in report.kept_aside:
        print(f"previous store kept as {kept}")
    for label in report.migrations_applied:
        print(f"applied {label}")
    if settings.machine_id:
        print(f"note: VK_NODE_MACHINE_ID={settings.machine_id} overrides the stored identity")
    print(f"note: {report.note}")
    print(f"restored {report.source} to {report.path}: {_holds(report.counts)}")


def _migrate(path: Path) -> list[str]:
    return asyncio.run(migrate(path))


def run(args: argparse.Namespace, settings: NodeSettings) -> None:
    if args.command == "backup":
        report = backup_store(
            settings.db_path,
            Path(args.path),
            worktrees=settings.worktrees_dir,
            force=args.force,
            progress=_Progress("backup"),
        )
        _print_backup(report, args.json)
    else:
        restored = restore_store(
            Path(args.path), settings.db_path, migrate=_migrate, progress=_Progress("restore")
        )
        _print_restore(restored, settings, args.json)
