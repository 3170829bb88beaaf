"""From measurements to loss tables: the mean over seeds per network and fidelity, and the seed spread.

As in the search's result (``search.result``): a network trained with several seeds enters a table with the
mean of its per-task losses, and its per-task standard deviation over seeds is its *seed spread* (the noise
of one training, used by :mod:`grouping.noise` and by the adaptive strategy's ``seeds="auto"``).
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence

from grouping.candidates import Candidate
from grouping.strategies.base import Measurement, Problem
from grouping.table import LossTable, TableRow


def at_fidelity(measured: Iterable[Measurement], fidelity: float) -> dict[Candidate, list[Measurement]]:
    """The measurements at ``fidelity`` grouped by network (every seed; lookahead trainings included:
    the lookahead leaves the training itself unchanged)."""
    out: dict[Candidate, list[Measurement]] = defaultdict(list)
    for m in measured:
        if math.isclose(m.request.fidelity, fidelity, rel_tol=0, abs_tol=1e-12):
            out[m.candidate].append(m)
    return dict(out)


def _one_per_seed(runs: Sequence[Measurement]) -> list[Measurement]:
    """One measurement per seed (a lookahead and a plain training of the same seed count once)."""
    by_seed: dict[int, Measurement] = {}
    for m in runs:
        by_seed.setdefault(m.request.seed, m)
    return [by_seed[s] for s in sorted(by_seed)]


def mean_table(
    problem: Problem, measured: Iterable[Measurement], fidelity: float = 1.0, role: str = "selection"
) -> LossTable:
    """Per network measured at ``fidelity``, the mean over seeds of its ``role`` losses ("selection" or
    "scoring"; a network whose trainings lack scoring losses is left out of the scoring table)."""
    rows = []
    for cand, runs in at_fidelity(measured, fidelity).items():
        runs = _one_per_seed(runs)
        values = [getattr(m, role) for m in runs]
        if any(v is None for v in values):
            continue
        rows.append(TableRow(cand, {t: statistics.fmean(v[t] for v in values) for t in cand.tasks}))
    return LossTable(problem.tasks, rows)


def scoring_table(
    problem: Problem, measured: Iterable[Measurement], fidelity: float = 1.0
) -> LossTable | None:
    """The mean scoring table at ``fidelity``, or None if no training reported scoring losses."""
    table = mean_table(problem, measured, fidelity, "scoring")
    return table if len(table) else None


def seed_counts(measured: Iterable[Measurement], fidelity: float = 1.0) -> dict[Candidate, int]:
    """How many seeds of each network are measured at ``fidelity``."""
    return {c: len(_one_per_seed(runs)) for c, runs in at_fidelity(measured, fidelity).items()}


def seed_spread(measured: Iterable[Measurement], fidelity: float = 1.0) -> dict[Candidate, dict[str, float]]:
    """Per network with two seeds or more at ``fidelity``: each task's standard deviation (n-1) over seeds
    of its selection loss."""
    out: dict[Candidate, dict[str, float]] = {}
    for cand, runs in at_fidelity(measured, fidelity).items():
        runs = _one_per_seed(runs)
        if len(runs) > 1:
            out[cand] = {t: statistics.stdev(m.selection[t] for m in runs) for t in cand.tasks}
    return out


def mean_affinity(measured: Iterable[Measurement]) -> dict[str, dict[str, float]] | None:
    """The mean over lookahead trainings (seeds) of their affinity matrices, or None if there is none."""
    matrices = [m.affinity for m in measured if m.affinity is not None]
    if not matrices:
        return None
    sums: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for matrix in matrices:
        for i, row in matrix.items():
            for j, value in row.items():
                sums[i][j].append(value)
    return {i: {j: statistics.fmean(v) for j, v in row.items()} for i, row in sums.items()}


__all__ = [
    "at_fidelity",
    "mean_affinity",
    "mean_table",
    "scoring_table",
    "seed_counts",
    "seed_spread",
]
