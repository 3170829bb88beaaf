"""Noise-aware results: which runner-up groupings a budget's choice cannot be told apart from.

A chosen grouping (Standley et al., ICML 2020, section 3.3) beats a runner-up by the difference of their
totals. When the networks were trained with several seeds, each network's per-task losses have a seed
spread (their standard deviation over seeds), and so has that difference: tasks served by the same network
in both groupings cancel, every other task contributes the variances of its two serving networks (networks
are trained independently)::

    spread^2 = sum_{t: served by another network} w_t^2 (sd[choice's server of t, t]^2 + sd[runner-up's, t]^2)

A runner-up is *indistinguishable* from the choice when ``|total(runner-up) - total(choice)| < z * spread``
(``z = 1``: one standard deviation). ``sd`` is the spread of the losses *as they enter the totals*: for a
table of one training per network, the seed spread of one training (a job's ``seed_spread``); for a table
of means over k seeds, that spread divided by sqrt(k) (the caller scales it). A network without a seed
spread (one seed) contributes none: with one seed nothing is known about the noise, and nothing is called
indistinguishable on its account. Runner-ups are the best groupings that do without one of the chosen
networks (:func:`runner_ups`). This noise check is ours (issue 11); the paper reports one seed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

from grouping.objective import effective_weights
from grouping.results import BudgetCurve, Grouping
from grouping.solver import GroupingSolver, InfeasibleBudget
from grouping.table import LossTable

Spread = Mapping[str, Mapping[str, float]]
"""Seed spread per network label, ``{label: {task: sd over seeds}}`` (as a job result's ``seed_spread``)."""


class RunnerUp(BaseModel):
    """A runner-up grouping within seed noise of the choice."""

    model_config = ConfigDict(extra="forbid")

    networks: list[str] = Field(description="labels of its networks")
    total: float = Field(description="its selection total")
    difference: float = Field(description="its total minus the choice's (>= 0 for a true runner-up)")
    spread: float = Field(description="seed spread (sd) of that difference")


def served(grouping: Grouping) -> dict[str, str]:
    """task -> label of the network serving it."""
    return grouping.served_by()


def difference_spread(
    choice: Grouping, other: Grouping, spread: Spread, weights: Mapping[str, float] | None = None
) -> float:
    """Seed spread (sd) of ``total(other) - total(choice)`` (module doc)."""
    mine, theirs = served(choice), served(other)
    variance = 0.0
    for task, label in mine.items():
        other_label = theirs.get(task)
        if other_label == label:
            continue
        w = 1.0 if weights is None else weights[task]
        sd_a = spread.get(label, {}).get(task, 0.0)
        sd_b = 0.0 if other_label is None else spread.get(other_label, {}).get(task, 0.0)
        variance += w * w * (sd_a * sd_a + sd_b * sd_b)
    return math.sqrt(variance)


def indistinguishable_from(
    choice: Grouping,
    candidates: Sequence[Grouping],
    spread: Spread,
    *,
    weights: Mapping[str, float] | None = None,
    z: float = 1.0,
) -> list[RunnerUp]:
    """The runner-ups among ``candidates`` whose total differs from the choice's by less than ``z`` times
    the seed spread of the difference, closest first (the choice itself and duplicates are skipped)."""
    mine = sorted(n.label for n in choice.networks)
    out: dict[tuple[str, ...], RunnerUp] = {}
    for other in candidates:
        labels = sorted(n.label for n in other.networks)
        if labels == mine or tuple(labels) in out:
            continue
        difference = other.selection_total - choice.selection_total
        sd = difference_spread(choice, other, spread, weights)
        if abs(difference) < z * sd:
            out[tuple(labels)] = RunnerUp(
                networks=[n.label for n in other.networks],
                total=other.selection_total,
                difference=difference,
                spread=sd,
            )
    return sorted(out.values(), key=lambda r: abs(r.difference))


def runner_ups(
    selection: LossTable,
    choice: Grouping,
    *,
    weights: Mapping[str, float] | None = None,
    objective: str = "sum",
) -> list[Grouping]:
    """For each network of ``choice``, the best grouping at the same budget without that network (where one
    exists), best first."""
    out = []
    for network in choice.networks:
        dropped = selection.candidate(network.tasks, network.capacity)
        rest = selection.select(predicate=lambda row, c=dropped: row.candidate != c)
        if rest.uncovered_tasks():
            continue
        try:
            solver = GroupingSolver(rest, weights=weights, objective=objective, max_budget=choice.budget)
            out.append(solver.grouping(choice.budget))
        except InfeasibleBudget:
            continue
    return sorted(out, key=lambda g: g.selection_total)


def indistinguishable_per_budget(
    curve: BudgetCurve,
    selection: LossTable,
    spread: Spread,
    *,
    weights: Mapping[str, float] | None = None,
    z: float = 1.0,
) -> dict[float, list[RunnerUp]]:
    """``indistinguishable_from`` for every budget of ``curve``: runner-ups from :func:`runner_ups`, each
    task's spread weighted by its multiplier in the curve's objective (``weights``: override them)."""
    if weights is None:
        weights = effective_weights(selection, curve.objective, curve.weights or None)
    out = {}
    for grouping in curve.curve:
        seconds = runner_ups(selection, grouping, weights=curve.weights or None, objective=curve.objective)
        out[grouping.budget] = indistinguishable_from(grouping, seconds, spread, weights=weights, z=z)
    return out


__all__ = [
    "RunnerUp",
    "Spread",
    "difference_spread",
    "indistinguishable_from",
    "indistinguishable_per_budget",
    "runner_ups",
    "served",
]
