"""Judging groupings against the ground truth (pure, no torch, no ray).

The evaluation of Standley et al. (ICML 2020), section 5: a method (exhaustive, ESA, HOA, a baseline) picks
networks on its own selection table; the picked networks are then totalled on the *exhaustive test* losses,
each task served by the network the method itself would serve it with (its selection losses: the honest
rule; the paper's released code serves by test losses instead, see ``serve_by`` in :mod:`grouping.solver`).
The figure of merit is the gap to the optimal grouping in percent (:func:`gap_percent`).

* :func:`baseline_networks`, :func:`fixed_baselines`, :func:`served_total`: the paper's fixed baselines (the
  all-task network, independent singles) and any fixed set of networks totalled like a grouping (the serving
  rule itself is :mod:`grouping.serving`);
* :func:`random_partition` / :func:`random_grouping_totals`: the paper's "random groupings of the same cost"
  yardstick, as random partitions of the tasks into full-size networks;
* :func:`gap_percent`, :func:`mean_gap`;
* :func:`rank_agreement`: how well an approximate table orders the networks serving each task (why a gap
  is large).
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field
from scipy.stats import spearmanr

from grouping.candidates import FULL, HALF, Candidate
from grouping.objective import effective_weights
from grouping.serving import serving
from grouping.table import LossTable


def baseline_networks(
    tasks: Sequence[str], full: float = FULL, single_capacities: Sequence[float] = (HALF,)
) -> dict[str, list[Candidate]]:
    """The paper's fixed baselines by name: one all-task network, independent full-size singles, and
    independent singles at each of ``single_capacities`` (``independent singles @0.5``)."""
    out = {
        "all-task network": [Candidate(tuple(tasks), full)],
        "independent singles": [Candidate((t,), full) for t in tasks],
    }
    for capacity in single_capacities:
        out[f"independent singles @{capacity:g}"] = [Candidate((t,), capacity) for t in tasks]
    return out


class Baseline(BaseModel):
    """A fixed set of networks the paper compares groupings with, totalled like a grouping."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="e.g. 'all-task network', 'independent singles @0.5'")
    cost: float = Field(description="total cost of its networks in SNT")
    selection_total: float = Field(description="objective on the selection table")
    scoring_total: float | None = Field(None, description="objective on the scoring table, if it has them")
    networks: list[str] = Field(description="labels of its networks")
    weighting: str | None = Field(
        None, description="a stronger baseline's loss weighting method (null: the search's own training)"
    )
    architecture: str | None = Field(
        None, description="a stronger baseline's architecture (null: the search's own training)"
    )


def network_baseline(
    name: str,
    network: str,
    cost: float,
    selection: Mapping[str, float],
    scoring: Mapping[str, float] | None,
    selection_table: LossTable,
    scoring_table: LossTable | None = None,
    *,
    objective: str = "sum",
    weights: Mapping[str, float] | None = None,
    weighting: str | None = None,
    architecture: str | None = None,
) -> Baseline:
    """One network that serves every task of ``selection_table`` with its own measured losses
    (``selection``, ``scoring``: task -> loss), a network that is no row of the table (trained with another
    weighting method or architecture: issue 15's stronger baselines). It is totalled with the objective
    and weights of the tables, so it compares with the groupings solved on them (the ``relative``
    objective's scales are the tables' best singles). ``scoring_total`` is None without a scoring table or
    when a task has no scoring loss. KeyError if ``selection`` lacks a task."""
    tasks = selection_table.tasks
    selection_weights = effective_weights(selection_table, objective, weights, "selection")
    scoring_total = None
    if scoring_table is not None and scoring is not None and all(t in scoring for t in tasks):
        scoring_weights = effective_weights(scoring_table, objective, weights, "scoring")
        scoring_total = math.fsum(scoring_weights[t] * scoring[t] for t in tasks)
    return Baseline(
        name=name,
        cost=float(cost),
        selection_total=math.fsum(selection_weights[t] * selection[t] for t in tasks),
        scoring_total=scoring_total,
        networks=[network],
        weighting=weighting,
        architecture=architecture,
    )


def fixed_baselines(
    selection: LossTable,
    scoring: LossTable | None = None,
    *,
    full: float = FULL,
    single_capacities: Sequence[float] = (HALF,),
    objective: str = "sum",
    weights: Mapping[str, float] | None = None,
) -> list[Baseline]:
    """The baselines of :func:`baseline_networks` whose networks were all measured (a predicted or missing
    network leaves its baseline out), totalled on both tables with the objective and weights of the job."""
    selection_weights = effective_weights(selection, objective, weights, "selection")
    scoring_weights = None if scoring is None else effective_weights(scoring, objective, weights, "scoring")
    out = []
    for name, networks in baseline_networks(selection.tasks, full, single_capacities).items():
        if any(c not in selection or selection[c].predicted for c in networks):
            continue
        served = serving(networks, selection)
        out.append(
            Baseline(
                name=name,
                cost=float(sum(c.cost for c in networks)),
                selection_total=served_total(served, selection, selection_weights),  # type: ignore[arg-type]
                scoring_total=None if scoring is None else served_total(served, scoring, scoring_weights),
                networks=[c.label() for c in networks],
            )
        )
    return out


def served_total(
    served: Mapping[str, Candidate], table: LossTable, weights: Mapping[str, float] | None = None
) -> float | None:
    """``sum_t weight[t] * table.loss(served[t], t)``; None if ``table`` lacks one of the networks."""
    if any(c not in table for c in served.values()):
        return None
    return math.fsum((1.0 if weights is None else weights[t]) * table.loss(c, t) for t, c in served.items())


def random_partition(tasks: Sequence[str], groups: int, rng: random.Random) -> list[tuple[str, ...]]:
    """A random partition of ``tasks`` into ``groups`` non-empty groups: a random task seeds each group, the
    others join uniformly random groups. ValueError unless ``1 <= groups <= len(tasks)``."""
    if not 1 <= groups <= len(tasks):
        raise ValueError(f"groups must be between 1 and {len(tasks)} (the number of tasks), got {groups}")
    order = list(tasks)
    rng.shuffle(order)
    buckets: list[list[str]] = [[t] for t in order[:groups]]
    for task in order[groups:]:
        buckets[rng.randrange(groups)].append(task)
    rank = {t: i for i, t in enumerate(tasks)}
    return [tuple(sorted(b, key=rank.__getitem__)) for b in buckets]


def random_grouping_totals(
    selection: LossTable,
    scoring: LossTable,
    groups: int,
    draws: int,
    seed: int = 0,
    capacity: float = FULL,
) -> list[float]:
    """Scoring totals of ``draws`` random partitions into ``groups`` networks at ``capacity`` (cost
    ``groups * capacity``), each task served by its group; partitions with an untrained group are skipped."""
    rng = random.Random(seed)
    totals = []
    for _ in range(draws):
        networks = [Candidate(g, capacity) for g in random_partition(selection.tasks, groups, rng)]
        if all(c in selection for c in networks):
            total = served_total(serving(networks, selection), scoring)
            if total is not None:
                totals.append(total)
    return totals


def rank_agreement(
    method: LossTable, truth: LossTable, min_size: int = 1, measured_only: bool = False
) -> dict[str, float | None]:
    """Per task, Spearman's rank correlation between ``method``'s and ``truth``'s losses of that task over
    the candidates both tables have, of at least ``min_size`` tasks (``measured_only``: leave out the
    method's predicted rows). To judge HOA's predictions pass its table with ``min_size=3``: every row of
    three or more tasks there is predicted. 1 = the method orders the networks that train a task as the
    truth does; a grouping is chosen by comparing those losses, so a low value explains a large gap. None
    where fewer than 3 candidates are shared or one side is constant.

    Departure from the paper: Standley et al. judge approximations only by the gap of the chosen groupings;
    this diagnostic is ours.
    """
    out: dict[str, float | None] = {}
    for task in truth.tasks:
        pairs = [
            (method.loss(c, task), truth.loss(c, task))
            for c in method
            if task in c.tasks
            and c.size >= min_size
            and c in truth
            and not (measured_only and method[c].predicted)
        ]
        if len(pairs) < 3:
            out[task] = None
            continue
        a, b = zip(*pairs, strict=True)
        if len(set(a)) == 1 or len(set(b)) == 1:  # no order to agree with
            out[task] = None
            continue
        out[task] = float(spearmanr(a, b).statistic)
    return out


def gap_percent(method_total: float | None, optimal_total: float | None) -> float | None:
    """``100 * (method - optimal) / optimal``; None if either total is missing."""
    if method_total is None or optimal_total is None:
        return None
    if optimal_total == 0:
        raise ValueError("optimal_total is 0: a relative gap needs a non-zero optimal total")
    return 100.0 * (method_total - optimal_total) / abs(optimal_total)


def mean_gap(gaps: Mapping[float, float | None], skip_first: bool = False) -> float | None:
    """Mean of the known gaps over budgets (``skip_first`` drops the smallest budget, where every method
    picks the same all-task network); None if no gap is known."""
    items = sorted((b, g) for b, g in gaps.items() if g is not None)
    if skip_first:
        items = items[1:]
    return statistics.fmean(g for _, g in items) if items else None


__all__ = [
    "Baseline",
    "baseline_networks",
    "fixed_baselines",
    "gap_percent",
    "mean_gap",
    "network_baseline",
    "random_grouping_totals",
    "random_partition",
    "rank_agreement",
    "served_total",
    "serving",
]
