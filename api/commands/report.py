"""`taskgroup report JOB_ID`: the job's budget curve, affinity heat map and groupings as an HTML page
(PNGs embedded) and, with ``--png-dir``, as PNG files. ``--result FILE.json`` reports a saved result
(``taskgroup show JOB -o``, a job's result) or budget curve (``taskgroup solve -o``) instead of one from the
store; then JOB_ID only names the report."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from api.commands import CliError
from api.commands.common import add_store_argument, checked_output, stored_job


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(
        name, help="draw a job's result: budget curve, affinity heat map, groupings (HTML/PNG)"
    )
    p.add_argument("job_id")
    p.add_argument(
        "--result",
        type=Path,
        help="a result JSON file (from taskgroup show JOB -o, or taskgroup solve -o) instead of the store",
    )
    p.add_argument(
        "-o", "--output", type=Path, default=None, help="HTML file to write (default report-JOB_ID.html)"
    )
    p.add_argument("--png-dir", type=Path, help="also write curve.png, affinity.png, groupings.png here")
    add_store_argument(p)
    p.set_defaults(run=run)


def read_result_file(path: Path) -> Any:
    """A job result or a budget curve from a JSON file; a one-line error for anything else."""
    from pydantic import ValidationError

    from grouping.results import BudgetCurve
    from grouping.validation import format_validation_error
    from search.records import JobResult

    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise CliError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise CliError(f"{path}: not a text file (expected a result as UTF-8 JSON)") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    try:
        return JobResult.model_validate(data)
    except ValidationError as exc:
        try:
            return BudgetCurve.model_validate(data)
        except ValidationError:
            problems = format_validation_error(exc)
            shown = problems if len(problems) <= 300 else problems[:300] + "..."
            raise CliError(f"{path}: not a job result or a budget curve: {shown}") from None


def run(args: argparse.Namespace) -> int:
    from api.report import render_figures, render_html

    output = checked_output(args.output or Path(f"report-{args.job_id}.html"))
    assert output is not None
    if args.result is not None:
        result = read_result_file(args.result)
    else:
        _, job = stored_job(args, args.job_id)
        if job.result is None:
            raise CliError(
                f"job {job.id} has no result yet (state {job.state.value}); report it when it has succeeded"
            )
        result = job.result
    try:
        figures = render_figures(result)
    except ValueError as exc:
        raise CliError(f"cannot draw the report: {exc}") from None
    try:
        output.write_text(render_html(result, figures, name=args.job_id), encoding="utf-8")
        if args.png_dir is not None:
            args.png_dir.mkdir(parents=True, exist_ok=True)
            for name, png in figures.items():
                (args.png_dir / f"{name}.png").write_bytes(png)
    except OSError as exc:
        raise CliError(f"cannot write the report: {exc}") from None
    print(
        f"report written to {output}"
        + (f"; figures {', '.join(figures)} in {args.png_dir}" if args.png_dir else "")
    )
    return 0
