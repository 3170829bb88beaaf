"""`taskgroup solve LOSSES`: the best grouping for each budget from a loss table trained elsewhere.

No training, no Ray, no torch: reads the table (the paper's tab-separated files, CSV or JSON; see
``docs/loss-tables.md``) and hands it with the options to :func:`grouping.service.solve_tables` (the same
service ``POST /solve`` calls), then prints the budget curve as a table, as JSON, or writes it to a file.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from api.commands import CliError
from api.commands.common import checked_output

SERVE_BY_HELP = (
    "which chosen network serves a task in the scoring total: 'selection' (the one chosen on the selection "
    "losses; default) or 'scoring' (the lowest scoring loss, as the paper's released evaluation does)"
)


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(
        name,
        help="solve the grouping of a loss table (no training)",
        description="Choose the networks to train for every budget from a per-network per-task loss table "
        "(Standley et al., ICML 2020), exactly. Prints the budget curve.",
    )
    p.add_argument(
        "losses", type=Path, metavar="LOSSES", help="selection losses: .txt/.tsv (paper), .csv, .json"
    )
    p.add_argument("--scoring", type=Path, metavar="TEST_LOSSES", help="scoring (test) losses, same format")
    budgets = p.add_mutually_exclusive_group()
    budgets.add_argument("--budget", metavar="B", help="one budget in SNT")
    budgets.add_argument(
        "--budgets",
        metavar="SWEEP",
        help="START:STOP[:STEP] (step 0.5 by default) or a list 1,2.5,4; default 1:n:0.5",
    )
    p.add_argument(
        "--hoa", action="store_true", help="predict the 3+-task networks from the pairs first (HOA)"
    )
    p.add_argument(
        "--objective", choices=["sum", "relative"], default="sum", help="default: sum (the paper's)"
    )
    p.add_argument("--serve-by", choices=["selection", "scoring"], default="selection", help=SERVE_BY_HELP)
    p.add_argument(
        "--weights", metavar="T=W,...", help="per-task weights: s=1,d=2 or a JSON object (default 1)"
    )
    p.add_argument(
        "--method",
        choices=["auto", "dp", "milp"],
        default="auto",
        help="exact solver: dp (dense tables, at most 20 tasks), milp (sparse tables of any size), auto",
    )
    p.add_argument(
        "--time-limit",
        metavar="SECONDS",
        help="stop the sparse solver after this long; each grouping then reports its optimality gap",
    )
    p.add_argument("--tasks", metavar="NAMES", help="task names for the loss columns, e.g. s,d,n,k,e")
    p.add_argument(
        "--input-format", choices=["paper", "csv", "json"], help="default: from the file extension"
    )
    p.add_argument(
        "--format", choices=["table", "json"], default="table", help="output format (default: table)"
    )
    p.add_argument("-o", "--output", type=Path, metavar="FILE", help="write the budget curve as JSON to FILE")
    p.set_defaults(run=run)


def _read(path: Path, fmt: str | None, tasks: list[str] | None) -> Any:
    from grouping.io import LossTableError, read_loss_tables

    try:
        return read_loss_tables(path, fmt, tasks)
    except LossTableError as exc:
        raise CliError(str(exc)) from None


def options_from_args(args: argparse.Namespace) -> Any:
    """The :class:`grouping.service.SolveOptions` of the flags; a one-line error naming the flag."""
    from pydantic import ValidationError

    from grouping.service import SolveOptions
    from grouping.validation import format_validation_error

    try:
        return SolveOptions(
            budgets=args.budget if args.budget is not None else args.budgets,
            objective=args.objective,
            serve_by=args.serve_by,
            weights=args.weights,
            hoa=args.hoa,
            method=args.method,
            time_limit=args.time_limit,
        )
    except ValidationError as exc:
        raise CliError(format_validation_error(exc, flags=True)) from None


def run(args: argparse.Namespace) -> int:
    from grouping.service import solve_tables

    options = options_from_args(args)
    output = checked_output(args.output)
    tasks = [t.strip() for t in args.tasks.split(",")] if args.tasks else None
    loaded = _read(args.losses, args.input_format, tasks)
    scoring = loaded.scoring
    if args.scoring is not None:
        scoring = _read(args.scoring, args.input_format, tasks).selection
    try:
        curve = solve_tables(loaded.selection, scoring, options)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    data = curve.model_dump(mode="json")
    if output is not None:
        try:
            output.write_text(json.dumps(data, indent=2) + "\n")
        except OSError as exc:
            raise CliError(f"{output}: cannot write: {exc.strerror}") from None
        print(f"budget curve ({len(curve.curve)} budgets) written to {output}")
        return 0
    if args.format == "json":
        print(json.dumps(data, indent=2))
        return 0
    print(format_curve(curve, args.losses, args.scoring if args.scoring else None, hoa=args.hoa))
    return 0


def format_curve(curve: Any, losses: Path, scoring: Path | None, hoa: bool = False) -> str:
    """The budget curve as a readable table, headed by the files it came from."""
    from api.render import format_curve as render

    head = f"selection: {losses}{' (HOA from pairs)' if hoa else ''}"
    if scoring is not None:
        head += f"   scoring: {scoring}"
    return render(curve, [head])
