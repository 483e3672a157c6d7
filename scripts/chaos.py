"""``make chaos``: run seeded fault-injection schedules against a real hive and real nodes and check
the sync invariants after each (``tests/support/chaos.py`` describes schedules and checks).

    .venv/bin/python scripts/chaos.py --schedules 20            # seeds from a random base
    .venv/bin/python scripts/chaos.py --seed 1234 --schedules 1  # replay one schedule
    .venv/bin/python scripts/chaos.py --hives 2 --schedules 20  # two hive processes

Schedule ``i`` of a run uses seed ``base + i``. Each schedule gets a fresh database (a copy of a
migrated template) and its own directory under ``--workdir``; passing schedules' directories are
removed, failing ones are kept and their report (seed, replay command, violations, events) is
printed. Exit status 1 when any schedule failed. ``--json`` appends one line per schedule to a
file (for long runs).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.chaos import (  # noqa: E402
    drop_database,
    format_failure,
    migrated_template,
    run_schedule,
    summarize,
)
from support.postgres import DatabaseFactory, NoPostgresError, find_server  # noqa: E402


def _interrupt_on_sigterm() -> None:
    """SIGTERM (a CI timeout, ``kill``) unwinds like Ctrl-C, so the processes, proxies and
    databases of the running schedule are cleaned up."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)


def main(argv: Sequence[str] | None = None) -> int:
    _interrupt_on_sigterm()
    parser = argparse.ArgumentParser(prog="chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--schedules", type=int, default=20)
    parser.add_argument("--seed", type=int, default=None, help="base seed (default: random)")
    parser.add_argument("--duration", type=float, default=12.0, help="seconds of events")
    parser.add_argument("--nodes", type=int, default=None, help="2 or 3 (default: by seed)")
    parser.add_argument(
        "--hives", type=int, choices=[1, 2], default=1, help="hive processes on the database"
    )
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep passing schedules' dirs")
    parser.add_argument("--json", type=Path, default=None, help="append results here")
    parser.add_argument("--stop-on-failure", action="store_true")
    args = parser.parse_args(argv)

    base = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10**9)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="vk-chaos-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        server = find_server()
    except NoPostgresError as exc:
        print(f"chaos: {exc}", file=sys.stderr)
        return 2
    print(
        f"chaos: PostgreSQL from {server.source}; base seed {base}; {args.hives} hive(s); "
        f"work dir {workdir}"
    )
    factory = DatabaseFactory(server, prefix="vk_chaos")
    results = []
    try:
        template = migrated_template(factory)
        for i in range(args.schedules):
            seed = base + i
            dsn = asyncio.run(factory.create("s", template=template))
            result = run_schedule(
                seed,
                dsn,
                workdir / f"seed-{seed}",
                duration=args.duration,
                nodes=args.nodes,
                hives=args.hives,
                keep=args.keep,
            )
            results.append(result)
            drop_database(factory, dsn)
            status = "ok" if result.ok else "FAILED"
            print(
                f"[{i + 1}/{args.schedules}] seed {seed}: {status} "
                f"({result.elapsed_s:.1f}s, {sum(result.stats.values())} events)",
                flush=True,
            )
            if not result.ok:
                print(format_failure(result, args.duration, args.nodes, args.hives), flush=True)
            if args.json is not None:
                with args.json.open("a") as f:
                    record = {
                        "seed": seed,
                        "ok": result.ok,
                        "elapsed_s": round(result.elapsed_s, 1),
                        "violations": [str(v) for v in result.violations],
                        "error": result.error,
                        "stats": result.stats,
                        "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
                    }
                    f.write(json.dumps(record) + "\n")
            if not result.ok and args.stop_on_failure:
                break
    finally:
        asyncio.run(factory.drop_all())
    summary = summarize(results)
    print(f"chaos: {json.dumps(summary)}")
    return 0 if summary["failed"] == 0 else 1


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt as exc:
        print(f"chaos: interrupted ({exc or 'Ctrl-C'}); the running schedule was cleaned up")
        raise SystemExit(130) from None
