"""Command line of the hive server: ``vk-hive``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from vk_hive import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vk-hive",
        description="vk-swarm hive: organizations, auth, node registry, shared tasks and leases.",
    )
    parser.add_argument("--version", action="version", version=f"vk-hive {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("serve", help="run the hive server (migrates the database first)")
    sub.add_parser("migrate", help="apply pending PostgreSQL migrations and exit")
    admin = sub.add_parser("admin", help="administrative commands")
    admin_sub = admin.add_subparsers(dest="admin_command", metavar="SUBCOMMAND")
    admin_sub.add_parser("bootstrap", help="create or find a user with a personal organization")
    admin_sub.add_parser("create-api-key", help="create a node API key for an organization")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    print(f"vk-hive {args.command}: not built yet", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
