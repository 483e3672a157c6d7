"""``make bench`` / ``python benchmarks/run.py [--quick | --smoke] [--only NAME ...]``.

Runs the benchmarks against a real hive (``vk-hive serve`` on a fresh PostgreSQL database from
the chain of DESIGN.md §9, dropped at the end) and simulated nodes (real stores and the real
hive link, in worker processes). Prints ONE JSON LINE PER METRIC on stdout::

    {"metric": ..., "value": ..., "unit": ..., "baseline": ..., "ratio": ..., "target": ...,
     "met": true|false, ...details}

Progress goes to stderr; process logs go to the work directory (kept with ``--keep``).
Every line says which simulated nodes produced it: ``"mode": "hive"`` (protocol-only nodes,
thousands per process: the hive's capacity) or ``"mode": "e2e"`` (real links and node stores);
``--mode`` runs only those. Without ``--mode``, a full run measures apply, ack latency, log
shipping and dispatch in hive mode only (``--mode hive e2e`` adds their e2e variants; quick runs
and smoke runs have both), idle in both, node-local and the board end to end. ``--quick`` uses
smaller node counts and durations (about two minutes in total); ``--smoke`` the smallest that
still run every step and print every line (the test suite's check of the harness: its figures
mean nothing). All load goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for entry in (str(ROOT), str(ROOT / "tests")):
    if entry not in sys.path:
        sys.path.insert(0, entry)

from benchmarks.common import MODES, BenchContext, py_spy_path  # noqa: E402
from support.postgres import (  # noqa: E402
    DatabaseFactory,
    NoPostgresError,
    PostgresServer,
    find_server,
    release_server,
)

BENCHMARKS = ("apply", "ack_latency", "logs", "dispatch", "idle", "node_local", "board")
"""In run order; each is ``benchmarks/bench_<name>.py`` with ``async def run(ctx)``."""

E2E_ONLY = ("node_local", "board")
"""Benchmarks with real nodes only (skipped by ``--mode hive``)."""


async def _run(
    server: PostgresServer,
    names: list[str],
    scale: str,
    workdir: Path,
    profile: Path | None,
    modes: tuple[str, ...],
    full_e2e: bool,
) -> int:
    dbs = DatabaseFactory(server, prefix="vk_bench")
    ctx = BenchContext(
        scale=scale,
        workdir=workdir,
        dbs=dbs,
        profile_dir=profile,
        modes=modes,
        full_e2e=full_e2e,
    )
    ctx.note(f"postgres: {server.source}; work dir: {workdir}; scale={scale}; modes={modes}")
    failures = 0
    try:
        for name in names:
            module = importlib.import_module(f"benchmarks.bench_{name}")
            started = time.monotonic()
            ctx.note(f"{name}: start")
            try:
                await module.run(ctx)
                await ctx.profiles_done()
            except Exception as exc:
                failures += 1
                ctx.note(f"{name}: FAILED: {type(exc).__name__}: {exc}")
                import traceback

                traceback.print_exc(file=sys.stderr)
            ctx.note(f"{name}: {time.monotonic() - started:.1f}s")
    finally:
        await dbs.drop_all()
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sizes = parser.add_mutually_exclusive_group()
    sizes.add_argument(
        "--quick",
        dest="scale",
        action="store_const",
        const="quick",
        default="full",
        help="smaller N and shorter durations",
    )
    sizes.add_argument(
        "--smoke",
        dest="scale",
        action="store_const",
        const="smoke",
        help="the smallest N and durations that run every step (checks the harness; the figures "
        "mean nothing)",
    )
    parser.add_argument(
        "--only", nargs="+", choices=BENCHMARKS, metavar="NAME", help="run only these"
    )
    parser.add_argument(
        "--mode",
        nargs="+",
        choices=MODES,
        help="hive: protocol-only simulated nodes (hive capacity); e2e: real links and stores "
        "(default: both; a full run then measures e2e only for idle, node_local and board)",
    )
    parser.add_argument("--workdir", type=Path, help="where logs and node stores go")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="sample the hive and node workers with py-spy while measuring (collapsed stacks)",
    )
    args = parser.parse_args(argv)
    if args.profile is not None and not py_spy_path().exists():
        print(
            "[bench] --profile samples with py-spy, which is not installed here: "
            f"{sys.executable} -m pip install py-spy",
            file=sys.stderr,
        )
        return 2
    names = list(args.only or BENCHMARKS)
    if args.mode is not None and "e2e" not in args.mode:
        names = [n for n in names if n not in E2E_ONLY]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="vk-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        server = find_server()
    except NoPostgresError as exc:
        print(f"[bench] no PostgreSQL: {exc}", file=sys.stderr)
        return 2
    try:
        modes = tuple(m for m in MODES if args.mode is None or m in args.mode)
        full_e2e = args.scale != "full" or args.mode is not None
        failures = asyncio.run(
            _run(server, names, args.scale, workdir, args.profile, modes, full_e2e)
        )
    finally:
        release_server(server)
        if not args.keep and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
