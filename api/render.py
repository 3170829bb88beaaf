"""Text rendering shared by the command line: budget-curve tables, job listings, a progress bar."""

from __future__ import annotations

import time
from typing import TextIO

from grouping.results import BudgetCurve, Grouping
from search.records import FinalizedBudget, JobResult, Progress


def _number(value: float | None, digits: int = 5) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _unproven(record: Grouping) -> bool:
    return record.optimality_gap is not None and record.optimality_gap > 0


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
        gap = f"  (within {100 * record.optimality_gap:.2g}% of the optimum)" if _unproven(record) else ""
        lines.append(
            f"{record.budget:6g}  {record.cost:5g}  {_number(record.selection_total):>9}  "
            f"{_number(record.scoring_total):>9}  {' + '.join(networks)}{gap}"
        )
    if any(net.predicted for record in curve.curve for net in record.networks):
        lines.append("* predicted by HOA, not trained")
    if any(_unproven(record) for record in curve.curve):
        lines.append(
            "within x% of the optimum: the time limit stopped the solver before it proved this selection "
            "optimal (raise time_limit)"
        )
    if any(record.scoring_total is None for record in curve.curve):
        lines.append("scoring '-': no scoring losses for a chosen network (or no scoring table)")
    return "\n".join(lines)


def finalized_lines(f: FinalizedBudget) -> list[str]:
    """One finalized budget: predicted against measured totals, and whether measured losses change the
    choice."""
    head = f"{f.budget:g} SNT: {' + '.join(f.networks)}"
    if f.missing:
        return [head, f"    not measured: every finalize training of {', '.join(f.missing)} failed"]
    error = "" if f.prediction_error is None else f" ({100 * f.prediction_error:+.2f}% vs predicted)"
    lines = [
        head,
        f"    validation: predicted {_number(f.predicted_selection_total)}, measured "
        f"{_number(f.measured_selection_total)}{error}",
        f"    test:       predicted {_number(f.predicted_scoring_total)}, measured "
        f"{_number(f.measured_scoring_total)}",
    ]
    if f.choice_changes:
        lines.append(f"    on measured losses the choice would be: {' + '.join(f.measured_choice or [])}")
    elif f.choice_changes is not None:
        lines.append("    on measured losses the choice stays the same")
    return lines


def search_lines(result: JobResult) -> list[str]:
    """How the search got there: its rounds, what it cost, and the budgets whose choice seed noise cannot
    tell from a runner-up."""
    lines: list[str] = []
    if len(result.rounds) > 1 or result.compute_share is not None:
        share = (
            ""
            if result.compute_share is None
            else f", {100 * result.compute_share:.1f}% of an exhaustive search's training time"
        )
        trainings = result.plan.network_trainings
        lines.append(f"search: {len(result.rounds)} round(s), {trainings} trainings{share}")
    for noise in result.noise:
        lines.append(f"indistinguishable at {noise.budget:g} SNT (within the seed spread of the choice):")
        lines.extend(
            f"  {' + '.join(r.networks)}: {r.difference:+.5f} (seed sd {r.spread:.5f})"
            for r in noise.runner_ups
        )
    return lines


def format_result(result: JobResult) -> str:
    """A job result: the curve, how the search got there, then the baselines and any trainings that were
    missing."""
    parts = [format_curve(result, [f"job {result.job_id}"]), *search_lines(result)]
    if result.baselines:
        parts.append("baselines:")
        parts.extend(
            f"  {b.name:<32} cost {b.cost:>5.3g}  selection {_number(b.selection_total)}"
            f"  scoring {_number(b.scoring_total)}"
            for b in result.baselines
        )
        if result.best_all_task is not None:
            parts.append(f"  best all-task network (lowest selection total): {result.best_all_task}")
    if result.infeasible_budgets:
        parts.append(
            f"budgets {', '.join(f'{b:g}' for b in result.infeasible_budgets)} SNT dropped: no selection of "
            f"the trained networks that fits them serves every task"
        )
    if result.finalized:
        parts.append("finalized (the chosen networks trained to the end, weights kept; taskgroup export):")
        parts.extend(f"  {line}" for f in result.finalized for line in finalized_lines(f))
    if result.missing:
        parts.append(f"missing ({len(result.missing)} trainings failed; solved without them):")
        parts.extend(f"  {','.join(m.tasks)}@{m.capacity:g} seed {m.seed}: {m.error}" for m in result.missing)
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
        self.why: str | None = None

    def _newline(self) -> None:
        if self.tty and self.drawn:
            self.stream.write("\n")
            self.drawn = False

    def update(self, progress: Progress) -> None:
        total = max(1, progress.total)
        filled = round(self.width * progress.done / total)
        phase = "" if progress.phase == "search" else f"{progress.phase}: "
        if progress.round is not None and progress.round > 1:
            phase += f"round {progress.round}: "
        bar = f"[{'#' * filled}{'.' * (self.width - filled)}]"
        line = (
            f"{phase}{bar} {progress.done}/{progress.total} trainings "
            f"({progress.reused} reused, {progress.failed} failed, {progress.running} running)  "
            f"{format_duration(progress.elapsed_seconds)} elapsed, "
            f"~{format_duration(progress.estimate_seconds)} left"
        )
        now = time.monotonic()
        if progress.why and progress.why != self.why:  # a new round: say once what it trains and why
            self._newline()
            self.stream.write(f"{progress.why}\n")
            self.why = progress.why
        if self.tty:
            self.stream.write("\r" + line.ljust(100))
            self.stream.flush()
            self.drawn = True
        elif now - self.last_line >= 10 or progress.done == progress.total:
            self.stream.write(line + "\n")
            self.stream.flush()
            self.last_line = now

    def close(self) -> None:
        self._newline()
        self.stream.flush()
