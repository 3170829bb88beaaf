"""The `taskgroup` command line: one subcommand per module of ``api.commands`` (a registry).

Every command turns bad input into a one-line error on stderr and exit status 2 (``CliError``),
never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from typing import NoReturn

from api.commands import COMMANDS, CliError


class Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line like every other error of the command (no usage dump)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="taskgroup",
        description="Which tasks should be learned together? Train candidate networks, solve the grouping.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more (INFO level)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        module.add_parser(sub, name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.run(args) or 0)
    except CliError as exc:
        message = " ".join(str(exc).split())  # one line, even when a driver's message has several
        print(f"taskgroup {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"taskgroup {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
