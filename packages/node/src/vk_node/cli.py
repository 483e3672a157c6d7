"""Command line of the node daemon: ``vk-node``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from vk_node import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vk-node",
        description="vk-swarm node: runs coding agents in git worktrees, keeps a local SQLite store "
        "and syncs with a hive when one is configured.",
    )
    parser.add_argument("--version", action="version", version=f"vk-node {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("serve", help="run the node daemon (migrates the store first)")
    sub.add_parser("migrate", help="apply pending SQLite migrations and exit")
    sub.add_parser("status", help="show the store, outbox backlog and hive link state")
    config = sub.add_parser("config", help="inspect settings")
    config_sub = config.add_subparsers(dest="config_command", metavar="SUBCOMMAND")
    config_sub.add_parser("show", help="print the effective settings (secrets masked)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    print(f"vk-node {args.command}: not built yet", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
