"""``vk-hive export`` and ``vk-hive import`` (the format: :mod:`vk_hive.store.transfer`).

Export writes the lines to stdout, or to ``--out FILE`` through a temporary file renamed at the
end (an export that failed leaves no half file behind); progress and the summary go to stderr.
Import reads ``FILE`` line by line into the configured database in one transaction.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import IO

import asyncpg

from vk_hive import __version__
from vk_hive.settings import HiveSettings
from vk_hive.store.migrate import load_migrations
from vk_hive.store.transfer import (
    TransferError,
    check_migrated,
    export_organization,
    import_organization,
)

__all__ = ["run"]

Connect = Callable[[HiveSettings], Awaitable[asyncpg.Connection]]


def _progress(verb: str) -> Callable[[str, int], None]:
    def report(kind: str, n: int) -> None:
        print(f"{verb}: {kind} {n}", file=sys.stderr, flush=True)

    return report


@contextlib.contextmanager
def _output(out: str | None) -> Iterator[IO[bytes]]:
    if out is None:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    target = Path(out).absolute()
    if target.is_dir():
        raise TransferError(f"{target} is a directory; give the export file's path")
    temp = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        with temp.open("wb") as handle:
            yield handle
        os.replace(temp, target)
    except FileNotFoundError:
        raise TransferError(f"the directory {target.parent} does not exist") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


async def _export(settings: HiveSettings, connect: Connect, org: str, out: str | None) -> None:
    try:
        org_id = uuid.UUID(org)
    except ValueError:
        raise TransferError(f"not an organization id: {org!r}") from None
    conn = await connect(settings)
    try:
        await check_migrated(conn, max(m.version for m in load_migrations()))
        lines = 0
        with _output(out) as handle:
            async for line in export_organization(conn, org_id, __version__, _progress("export")):
                handle.write(line)
                lines += 1
    finally:
        await conn.close()
    where = "stdout" if out is None else out
    print(f"exported organization {org_id}: {lines} lines to {where}", file=sys.stderr)


def _lines(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        yield from handle


async def _import(settings: HiveSettings, connect: Connect, file: str, as_json: bool) -> None:
    path = Path(file)
    if not await asyncio.to_thread(path.is_file):
        raise TransferError(f"no export file at {file}")
    conn = await connect(settings)
    try:
        await check_migrated(conn, max(m.version for m in load_migrations()))
        org_id, counts = await import_organization(conn, _lines(path), _progress("import"))
    finally:
        await conn.close()
    if as_json:
        print(json.dumps({"organization_id": str(org_id), "counts": counts}))
    else:
        shown = ", ".join(f"{n} {kind}" for kind, n in counts.items())
        print(f"imported organization {org_id}: {shown}")


async def run(args: argparse.Namespace, settings: HiveSettings, connect: Connect) -> None:
    if args.command == "export":
        await _export(settings, connect, args.organization_id, args.out)
    else:
        await _import(settings, connect, args.file, args.json)
