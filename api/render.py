"""Text rendering shared by the command line: budget-curve tables, job listings, a progress bar."""

from __future__ import annotations

import time
from typing import Any, TextIO

from grouping.results import BudgetCurve


def _number(value: float | None, digits: int = 5) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_curve(curve: BudgetCurve, head: list[str] | None = None) -> str:
    """A budget curve as a readable table: one line per budget, each network as its label with the tasks it
    serves in brackets (the others it trains are auxiliary)."""
    lines = list(head or [])
    lines += [
        f"objective: {curve.objective}   serve by: {curve.serve_by}   tasks: {','.join(curve.tasks)}",
        "",
    ]
    header = f"{'budget':>6}  {'cost':>5}  {'selection':>9}  {'scoring':>9}  networks (served tasks)"
    lines += [header, "-" * len(header)]
    for record in curve.curve:
        networks = [
            f"{net.label}{'*' if net.predicted else ''}({','.join(net.serves)})" for net in record.networks
        ]
        lines.append(
            f"{record.budget:6g}  {record.cost:5g}  {_number(record.selection_total):>9}  "
            f"{_number(record.scoring_total):>9}  {' + '.join(networks)}"
        )
    if any(net.predicted for record in curve.curve for net in record.networks):
        lines.append("* predicted by HOA, not trained")
    if any(record.scoring_total is None for record in curve.curve):
        lines.append("scoring '-': no scoring losses for a chosen network (or no scoring table)")
    return "\n".join(lines)


def format_result(result: dict[str, Any]) -> str:
    """A job result: the curve, then the baselines and any trainings that were missing."""
    curve = BudgetCurve.model_validate({k: result[k] for k in BudgetCurve.model_fields if k in result})
    parts = [format_curve(curve, [f"job {result['job_id']}"] if "job_id" in result else None)]
    baselines = result.get("baselines") or []
    if baselines:
        parts.append("baselines:")
        for b in baselines:
            parts.append(
                f"  {b['name']:<22} cost {b['cost']:>5g}  selection {_number(b.get('selection_total'))}"
                f"  scoring {_number(b.get('scoring_total'))}"
            )
    dropped = result.get("infeasible_budgets") or []
    if dropped:
        parts.append(
            f"budgets {', '.join(f'{b:g}' for b in dropped)} SNT dropped: no selection of the trained "
            f"networks that fits them serves every task"
        )
    missing = result.get("missing") or []
    if missing:
        parts.append(f"missing ({len(missing)} trainings failed; solved without them):")
        parts.extend(
            f"  {','.join(m['tasks'])}@{m['capacity']:g} seed {m['seed']}: {m['error']}" for m in missing
        )
    return "\n".join(parts)


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = round(seconds)
    return (
        f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        if seconds >= 3600
        else f"{seconds // 60:02d}:{seconds % 60:02d}"
    )


class ProgressBar:
    """``[#####.....] 12/36 trainings (3 reused, 1 failed, 2 running)  01:02 elapsed, ~02:10 left``.

    Redraws in place on a terminal, prints a line at most every 10 s otherwise (logs, CI).
    """

    def __init__(self, stream: TextIO, width: int = 24) -> None:
        self.stream = stream
        self.width = width
        self.tty = stream.isatty()
        self.last_line = 0.0
        self.drawn = False

    def update(self, progress: dict[str, Any]) -> None:
        total = max(1, int(progress["total"]))
        done = int(progress["done"])
        filled = round(self.width * done / total)
        line = (
            f"[{'#' * filled}{'.' * (self.width - filled)}] {done}/{progress['total']} trainings "
            f"({progress['reused']} reused, {progress['failed']} failed, {progress['running']} running)  "
            f"{format_duration(progress['elapsed_seconds'])} elapsed, "
            f"~{format_duration(progress['estimate_seconds'])} left"
        )
        now = time.monotonic()
        if self.tty:
            self.stream.write("\r" + line.ljust(100))
            self.stream.flush()
            self.drawn = True
        elif now - self.last_line >= 10 or done == progress["total"]:
            self.stream.write(line + "\n")
            self.stream.flush()
            self.last_line = now

    def close(self) -> None:
        if self.tty and self.drawn:
            self.stream.write("\n")
            self.stream.flush()
