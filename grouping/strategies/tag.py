"""TAG: task groupings from the lookahead affinities of one all-task training (Fifty et al., NeurIPS 2021).

Fifty et al., "Efficiently Identifying Task Groupings for Multi-Task Learning", measure during one training
of the all-task network, every few steps, the *lookahead affinity* of task i onto task j::

    Z_{i->j} = 1 - L_j(shared parameters after one optimizer step on task i's loss alone) / L_j(before)

averaged over training (positive: a step for i lowers j's loss). They then pick groups that maximise the total
affinity. We need a *loss table* instead, so that TAG is solved with the exact solver under the same
budgets as every other strategy (and half-size singles compete with shared networks). The derivation
(ours; MTG-Net, Song et al. NeurIPS 2022, likewise turned TAG's affinities into pairwise gains):

1. Measured: each task's single-task loss ``L_a`` (full size) and its loss in the all-task network
   ``L_a^all`` (the lookahead training's own losses: the lookahead restores the parameters, so it is a plain
   all-task training). Their log ratio ``r_a = log(L_a^all / L_a)`` is what sharing with *everyone* does to
   ``a``.
2. Affinity -> pairwise gain. Write ``Zin(a, G) = mean_{b in G, b != a} Z_{b->a}`` (what G's other tasks do
   for a, TAG's group score of a) and ``Zbar_a = Zin(a, all tasks)``. Predict the log loss of ``a`` in a
   network of group ``G`` (the HOA form: a mean over the partners, Standley et al. 2020 section 3.4)::

       log L[G, a] = log L_a + r_a - beta * (Zin(a, G) - Zbar_a)

   Partners that help ``a`` more than its average partner lower its loss. For the all-task network this
   reproduces the measured ``L_a^all`` exactly (calibration on measured losses), and for a pair ``{a, b}`` it
   is a pairwise gain estimate ``r_a - beta (Z_{b->a} - Zbar_a)``.
3. ``beta`` converts one-step relative loss changes into converged log-loss ratios; nothing measured
   calibrates it within a task (that needs pair networks), so it is set across tasks by matching spreads:
   ``beta = sd_a(r_a) / sd_a(Zbar_a)`` (TAG's premise is that affinity and the benefit of sharing go
   together; the sign is that premise). ``scale`` overrides it.

Departures from TAG: a loss table solved exactly under SNT budgets instead of a search over a fixed number of
groups; half-size singles measured as in Standley et al.; the all-task network is measured, not predicted.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from grouping.affinity import pairwise_affinity
from grouping.candidate_groups import candidate_groups
from grouping.candidates import Candidate
from grouping.service import HOA_ALL_SUBSETS
from grouping.strategies.base import (
    Measurement,
    Prediction,
    Problem,
    Round,
    Strategy,
    TrainingRequest,
    missing_requests,
)
from grouping.strategies.measured import mean_affinity, mean_table, scoring_table, seed_spread
from grouping.strategies.registry import register
from grouping.table import LossTable, TableRow

Affinity = Mapping[str, Mapping[str, float]]


def check_affinity(tasks: Sequence[str], affinity: Affinity) -> None:
    """ValueError naming the missing or non-finite entries ``Z_{i->j}`` (i != j) of ``affinity``."""
    missing = [
        f"{i}->{j}"
        for i in tasks
        for j in tasks
        if i != j and not math.isfinite(affinity.get(i, {}).get(j, math.nan))
    ]
    if missing:
        raise ValueError(f"the lookahead affinity lacks (or has non-finite) entries {', '.join(missing)}")


def affinity_scale(tasks: Sequence[str], log_ratio: Mapping[str, float], affinity: Affinity) -> float:
    """``beta = sd_a(r_a) / sd_a(Zbar_a)`` (see the module doc); 0 when the mean affinities are all equal."""
    zbar = [statistics.fmean(affinity[b][a] for b in tasks if b != a) for a in tasks]
    spread = statistics.pstdev(zbar)
    if spread <= 1e-15:
        return 0.0
    return statistics.pstdev([log_ratio[a] for a in tasks]) / spread


def tag_log_losses(
    tasks: Sequence[str],
    group: Sequence[str],
    all_task: Mapping[str, float],
    affinity: Affinity,
    beta: float,
) -> dict[str, float]:
    """Predicted log loss of every task of ``group`` in a network of ``group`` (module doc, step 2):
    ``log L_a^all - beta (Zin(a, G) - Zbar_a)``, which is ``log L_a + r_a - ...``."""
    out = {}
    for a in group:
        zbar = statistics.fmean(affinity[b][a] for b in tasks if b != a)
        zin = statistics.fmean(affinity[b][a] for b in group if b != a)
        out[a] = math.log(all_task[a]) - beta * (zin - zbar)
    return out


def tag_loss_table(
    tasks: Sequence[str],
    singles: Mapping[str, float],
    all_task: Mapping[str, float],
    affinity: Affinity,
    *,
    capacity: float = 1.0,
    scale: float | None = None,
) -> tuple[LossTable, float]:
    """The predicted rows of every group of 2..n-1 tasks at ``capacity`` (``predicted=True``) from the
    single-task losses, the all-task network's losses and the affinity matrix; and the ``beta`` used. Above
    :data:`grouping.service.HOA_ALL_SUBSETS` tasks, the pairs and the groups the predicted pairs make
    promising (:func:`grouping.candidate_groups.candidate_groups`): 2^n groups are never listed.

    Losses must be positive (the derivation works on log ratios); ValueError naming the task otherwise."""
    tasks = tuple(tasks)
    check_affinity(tasks, affinity)
    for name, losses in (("single-task", singles), ("all-task", all_task)):
        for a in tasks:
            if a not in losses:
                raise ValueError(f"TAG needs the {name} loss of every task; {a!r} has none")
            if not losses[a] > 0:
                raise ValueError(f"TAG works on log losses: the {name} loss of {a!r} is {losses[a]}")
    log_ratio = {a: math.log(all_task[a] / singles[a]) for a in tasks}
    beta = affinity_scale(tasks, log_ratio, affinity) if scale is None else scale

    def row(group: tuple[str, ...]) -> TableRow:
        logs = tag_log_losses(tasks, group, all_task, affinity, beta)
        return TableRow(Candidate(group, capacity), {a: math.exp(v) for a, v in logs.items()}, True)

    if len(tasks) <= HOA_ALL_SUBSETS:
        groups = [g for size in range(2, len(tasks)) for g in combinations(tasks, size)]
    else:
        pairs = LossTable(
            tasks,
            [TableRow(Candidate((t,), capacity), {t: singles[t]}) for t in tasks]
            + [row(pair) for pair in combinations(tasks, 2)],
        )
        promising = candidate_groups(pairwise_affinity(pairs, capacity))
        groups = [g for g in promising if 2 <= len(g) < len(tasks)]
    return LossTable(tasks, [row(g) for g in groups]), beta


class TagOptions(BaseModel):
    """Settings of TAG: the fidelity of its trainings and an optional fixed affinity scale ``beta``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fidelity: float = Field(1.0, gt=0, le=1, description="fraction of the full schedule of every training")
    scale: float | None = Field(
        None, ge=0, description="beta of the affinity -> log-loss map; default: matched across tasks"
    )


def tag_requests(problem: Problem, fidelity: float, round_index: int = 1) -> list[TrainingRequest]:
    """TAG's trainings: every single at every capacity, and the all-task network (largest subset capacity)
    with ``lookahead=True``, each for the problem's seeds."""
    p = problem
    seeds = range(p.seed, p.seed + p.seeds)
    out = [
        TrainingRequest(
            tasks=(t,), capacity=c, fidelity=fidelity, seed=s, reason="single-task loss", round=round_index
        )
        for c in p.capacities.single_capacities()
        for t in p.tasks
        for s in seeds
    ]
    out += [
        TrainingRequest(
            tasks=p.tasks,
            capacity=p.capacities.largest,
            fidelity=fidelity,
            seed=s,
            lookahead=True,
            reason="all-task network with lookahead affinities",
            round=round_index,
        )
        for s in seeds
    ]
    return out


def tag_prediction_rows(
    problem: Problem, measured: Sequence[Measurement], fidelity: float, scale: float | None
) -> tuple[LossTable, LossTable, Affinity, float]:
    """(measured table at ``fidelity``, TAG's predicted rows, the mean affinity, beta). ValueError if the
    affinity, a single or the all-task network is not measured."""
    table = mean_table(problem, measured, fidelity)
    affinity = mean_affinity(m for m in measured if m.request.fidelity == fidelity)
    if affinity is None:
        raise ValueError("TAG needs the lookahead affinities of an all-task training; none was measured")
    capacity = problem.capacities.largest
    everything = Candidate(problem.tasks, capacity)
    if everything not in table:
        raise ValueError(f"TAG needs the all-task network {everything.label()} measured")
    singles = {
        t: table.loss(Candidate((t,), capacity), t)
        for t in problem.tasks
        if Candidate((t,), capacity) in table
    }
    predicted, beta = tag_loss_table(
        problem.tasks, singles, dict(table[everything].losses), affinity, capacity=capacity, scale=scale
    )
    return table, predicted, affinity, beta


@register
class TagStrategy(Strategy):
    """One round: the singles (full and half size) and one all-task training with lookahead affinities;
    the groups of 2..n-1 tasks are predicted from the affinities (module doc)."""

    name: ClassVar[str] = "tag"
    description: ClassVar[str] = "one all-task training with lookahead affinities, plus the singles"
    Options: ClassVar[type[BaseModel]] = TagOptions

    def next_round(
        self, measured: Sequence[Measurement], failed: Sequence[TrainingRequest] = ()
    ) -> Round | None:
        fidelity = self.options.fidelity  # type: ignore[attr-defined]
        missing = missing_requests(tag_requests(self.problem, fidelity), measured, failed)
        if not missing:
            return None
        return Round(
            index=1,
            requests=tuple(missing),
            why="tag: the singles, and one all-task training that measures the lookahead affinities",
        )

    def predict(self, measured: Sequence[Measurement]) -> Prediction:
        fidelity = self.options.fidelity  # type: ignore[attr-defined]
        table, predicted, affinity, _ = tag_prediction_rows(
            self.problem,
            measured,
            fidelity,
            self.options.scale,  # type: ignore[attr-defined]
        )
        rows = [table[c] for c in table] + [predicted[c] for c in predicted if c not in table]
        return Prediction(
            LossTable(self.problem.tasks, rows),
            scoring_table(self.problem, measured, fidelity),
            seed_spread=seed_spread(measured, fidelity),
            affinity={i: dict(row) for i, row in affinity.items()},
        )


__all__ = [
    "TagOptions",
    "TagStrategy",
    "affinity_scale",
    "check_affinity",
    "tag_log_losses",
    "tag_loss_table",
    "tag_prediction_rows",
    "tag_requests",
]
