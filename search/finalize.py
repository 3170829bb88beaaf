"""Finalize: train the chosen networks to the end with their weights kept, and measure the choice (issue 13).

Once the search chose, every network of a finalized budget (``JobSpec.finalize_budgets``) is trained at full
fidelity with the job's seeds, as Ray Tune trials under the same reuse and resume rules as the search's: a
training already succeeded in the store is not run again, except that the first seed of each network must
also hold kept weights (the one a bundle exports, :mod:`search.export`): a succeeded training without them is
trained once more with ``keep_weights`` (the store keeps its first result; on CPU the weights reproduce it).

Then each finalized budget is measured (:class:`~search.records.FinalizedBudget`): the validation and test
totals of the trained networks with every task served as the search chose (what the bundle delivers), beside
the totals the search predicted (from HOA's predictions, ESA's short trainings, or the measured networks
themselves), and the choice solved again once the measured rows replace the search's rows of these networks.

Not in the paper, which reports test totals of the trainings it searched with.
"""

from __future__ import annotations

import math
from collections import defaultdict

from grouping.candidates import Candidate
from grouping.objective import effective_weights
from grouping.results import Grouping
from grouping.solver import solve
from grouping.table import LossTable
from search.plan import Plan, PlannedTraining
from search.records import FinalizedBudget, JobResult
from search.result import mean_rows
from search.spec import JobSpec
from search.states import TrainingState
from search.store import JobTrainingRecord, Store
from workers.spec import TrainingResult

FULL_FIDELITY = 1.0
BUDGET_TOLERANCE = 1e-9

__all__ = ["finalize_trainings", "grouping_at", "measure", "to_train"]


def grouping_at(result: JobResult, budget: float) -> Grouping | None:
    """The result's grouping at ``budget`` (None when the budget was dropped as infeasible)."""
    return next((g for g in result.curve if abs(g.budget - budget) <= BUDGET_TOLERANCE), None)


def _serving(grouping: Grouping) -> list[Candidate]:
    return [Candidate(tuple(n.tasks), n.capacity) for n in grouping.networks if n.serves]


def finalize_trainings(spec: JobSpec, plan: Plan, result: JobResult) -> dict[float, list[PlannedTraining]]:
    """Per finalized budget, the full-fidelity trainings (seeds ``seed .. seed+seeds-1``) of each chosen
    network that serves a task; a budget the result dropped (no feasible selection) has none."""
    out: dict[float, list[PlannedTraining]] = {}
    for budget in spec.finalize_budgets:
        grouping = grouping_at(result, budget)
        if grouping is None:
            continue
        out[budget] = [
            plan.planned(list(c.tasks), c.capacity, FULL_FIDELITY, seed)
            for c in _serving(grouping)
            for seed in range(spec.seed, spec.seed + spec.seeds)
        ]
    return out


def to_train(store: Store, trainings: list[PlannedTraining], first_seed: int) -> list[PlannedTraining]:
    """Of ``trainings`` (already in the store), those to run: not succeeded yet, or the first seed of a
    network (the exported one) without kept weights."""
    keys = [t.key for t in trainings]
    records = store.get_trainings(keys)
    kept = store.get_checkpoints(keys)
    todo: dict[str, PlannedTraining] = {}
    for t in trainings:
        succeeded = records[t.key].state == TrainingState.SUCCEEDED
        if not succeeded or (t.seed == first_seed and t.key not in kept):
            todo.setdefault(t.key, t)
    return list(todo.values())


def _replaced(table: LossTable, measured: LossTable) -> LossTable:
    """``table`` with the rows of ``measured`` in place of its own (added where it has none)."""
    rows = [measured.get(c) or row for c, row in table.rows.items()]
    rows += [row for c, row in measured.rows.items() if c not in table]
    return LossTable(table.tasks, rows)


def _total(
    served: dict[str, Candidate], table: LossTable, spec: JobSpec, role: str, reference: LossTable
) -> float | None:
    """The objective of the tasks served as ``served`` on ``table`` (None if a network is not in it); the
    objective's scales (``relative``: the best single per task) from ``reference``."""
    if any(c not in table for c in served.values()):
        return None
    weights = effective_weights(reference, spec.objective, spec.weights, role)
    return math.fsum(weights[t] * table.loss(c, t) for t, c in served.items())


def measure(
    spec: JobSpec,
    result: JobResult,
    trainings: dict[float, list[PlannedTraining]],
    linked: list[JobTrainingRecord],
) -> list[FinalizedBudget]:
    """Each finalized budget measured on its finalize trainings (see the module doc)."""
    succeeded = {
        link.training.key: link.training.result
        for link in linked
        if link.training.state == TrainingState.SUCCEEDED and link.training.result is not None
    }
    selection, scoring = result.loss_table.selection_table(), result.loss_table.scoring_table()
    order = {t: i for i, t in enumerate(spec.tasks)}
    out = []
    for budget, planned in trainings.items():
        grouping = grouping_at(result, budget)
        assert grouping is not None  # finalize_trainings planned only budgets of the curve
        runs: dict[tuple[tuple[str, ...], float], list[TrainingResult]] = defaultdict(list)
        for t in planned:
            if t.key in succeeded:
                runs[(tuple(sorted(t.tasks, key=order.__getitem__)), t.capacity)].append(succeeded[t.key])
        chosen = _serving(grouping)
        missing = [c.label() for c in chosen if (c.tasks, c.capacity) not in runs]
        measured_selection, _ = mean_rows(list(spec.tasks), runs, "selection")
        measured_scoring, _ = mean_rows(list(spec.tasks), runs, "scoring")
        served = {t: Candidate(tuple(n.tasks), n.capacity) for n in grouping.networks for t in n.serves}
        record = FinalizedBudget(
            budget=budget,
            networks=[c.label() for c in chosen],
            trainings=[t.key for t in planned],
            predicted_selection_total=grouping.selection_total,
            predicted_scoring_total=grouping.scoring_total,
            missing=missing,
        )
        if not missing:
            table = _replaced(selection, measured_selection)
            measured_total = _total(served, measured_selection, spec, "selection", table)
            scoring_total = None
            if scoring is not None:
                scoring_table = _replaced(scoring, measured_scoring)
                scoring_total = _total(served, measured_scoring, spec, "scoring", scoring_table)
            again = solve(table, budget, weights=spec.weights, objective=spec.objective, time_limit=60.0)
            choice = [n.label for n in again.networks if n.serves]
            error = None
            if measured_total is not None and measured_total != 0:
                error = (measured_total - grouping.selection_total) / abs(measured_total)
            record = record.model_copy(
                update={
                    "measured_selection_total": measured_total,
                    "measured_scoring_total": scoring_total,
                    "prediction_error": error,
                    "measured_choice": choice,
                    "choice_changes": sorted(choice) != sorted(record.networks),
                }
            )
        out.append(record)
    return out
