"""`taskgroup gc [--dry-run]`: remove the kept weights (files and store rows) that no job needs.

Needed: linked to a queued or running job, or chosen at a budget of a succeeded job's result
(``search.store.checkpoints``); a row whose files are gone is dropped as well. ``--dry-run`` lists what would
go and removes nothing."""

from __future__ import annotations

import argparse

from api.commands import CliError
from api.commands.common import add_store_argument, existing_cli_store


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(name, help="remove kept weights no job needs (files and store rows)")
    p.add_argument("--dry-run", action="store_true", help="list what would be removed; remove nothing")
    add_store_argument(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from search.weights import WeightsError, collect_garbage

    store = existing_cli_store(args)
    if store is None:
        print("no results store here: nothing to collect")
        return 0
    try:
        report = collect_garbage(store, dry_run=args.dry_run)
    except (WeightsError, OSError) as exc:
        raise CliError(f"cannot remove kept weights: {exc}") from None
    verb = "would remove" if report.dry_run else "removed"
    for item in report.removed:
        print(f"  {item.training_key}  {item.size_bytes / 1e6:8.2f} MB  {item.reason}  {item.uri}")
    print(
        f"{verb} {len(report.removed)} checkpoint(s), {report.freed_bytes / 1e6:.2f} MB; "
        f"kept {report.kept} that jobs need"
    )
    return 0
