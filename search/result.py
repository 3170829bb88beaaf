"""A job's result: loss tables from its trainings, the budget curve, the paper's baselines, provenance.

DESIGN.md step 5: build the loss table (the mean over seeds of each candidate's per-task losses; HOA fills
the rows of three tasks or more from the pairs), solve the budget curve on the selection losses and score it
on the scoring losses. The result is the budget-curve JSON shape of DESIGN.md with the job id, spec, loss
table, baselines, per-seed spread and provenance added.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from importlib import metadata
from typing import Any

from grouping import (
    Candidate,
    GroupingSolver,
    LossTable,
    LossTableModel,
    TableRow,
    budget_curve,
    higher_order_approximation,
)
from grouping.evaluation import baseline_networks, served_total, serving
from grouping.objective import effective_weights
from search.plan import Plan
from search.spec import JobSpec
from search.store import Store, TrainingState
from workers.spec import TrainingResult

CandidateKey = tuple[tuple[str, ...], float]


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _mean_rows(
    tasks: list[str], results: dict[CandidateKey, list[TrainingResult]], field: str
) -> tuple[LossTable, dict[str, dict[str, float]]]:
    """A table of the mean over seeds of ``field`` ("selection" or "scoring"), and the per-task standard
    deviation over seeds of every candidate trained with more than one seed (label -> task -> std)."""
    rows = []
    spread: dict[str, dict[str, float]] = {}
    for (cand_tasks, capacity), runs in results.items():
        candidate = Candidate(cand_tasks, capacity)
        losses = {t: statistics.fmean(getattr(r, field)[t] for r in runs) for t in cand_tasks}
        rows.append(TableRow(candidate, losses))
        if len(runs) > 1:
            spread[candidate.label()] = {
                t: statistics.stdev(getattr(r, field)[t] for r in runs) for t in cand_tasks
            }
    return LossTable(tasks, rows), spread


def _with_hoa(measured: LossTable, capacities: list[float]) -> LossTable:
    """The measured table plus HOA predictions of every >= 3-task candidate at each subset capacity;
    a group whose pairs are missing (failed trainings) is left out rather than guessed."""
    rows = {c: measured[c] for c in measured}
    for capacity in capacities:
        predicted = higher_order_approximation(measured, capacity=capacity, on_missing_pair="skip")
        for candidate in predicted:
            rows.setdefault(candidate, predicted[candidate])
    return LossTable(measured.tasks, rows.values())


def _baseline(
    name: str,
    networks: list[Candidate],
    selection: LossTable,
    scoring: LossTable | None,
    spec: JobSpec,
) -> dict[str, Any] | None:
    """A fixed set of networks the paper compares with, totalled like a grouping (None if not trained)."""
    if not networks or any(c not in selection or selection[c].predicted for c in networks):
        return None
    served = serving(networks, selection)
    weights = effective_weights(selection, spec.objective, spec.weights, "selection")
    scoring_total = None
    if scoring is not None:
        scoring_weights = effective_weights(scoring, spec.objective, spec.weights, "scoring")
        scoring_total = served_total(served, scoring, scoring_weights)
    return {
        "name": name,
        "cost": float(sum(c.cost for c in networks)),
        "selection_total": served_total(served, selection, weights),
        "scoring_total": scoring_total,
        "networks": [c.label() for c in networks],
    }


def build_result(job_id: str, spec: JobSpec, plan: Plan, store: Store) -> dict[str, Any]:
    """The result of a job whose trainings have ended; ValueError if some task has no trained network."""
    tasks = list(spec.tasks)
    order = {t: i for i, t in enumerate(tasks)}
    results: dict[CandidateKey, list[TrainingResult]] = defaultdict(list)
    trainings: list[dict[str, Any]] = []
    planned = {t.key for t in plan.trainings}
    for linked in store.job_trainings(job_id):
        record = linked.training
        if record.key not in planned:
            continue
        entry: dict[str, Any] = {
            "key": record.key,
            "tasks": sorted(record.spec["tasks"], key=order.__getitem__),
            "capacity": record.spec["capacity"],
            "fidelity": record.spec["fidelity"],
            "seed": record.spec["seed"],
            "state": record.state,
            "reused": linked.reused,
            "attempts": record.attempts,
            "wall_seconds": record.wall_seconds,
            "device": record.device,
            "error": record.error,
        }
        trainings.append(entry)
        if record.state == TrainingState.SUCCEEDED and record.result is not None:
            result = TrainingResult.model_validate(record.result)
            results[(tuple(entry["tasks"]), float(entry["capacity"]))].append(result)

    measured_selection, selection_spread = _mean_rows(tasks, results, "selection")
    scoring, _ = _mean_rows(tasks, results, "scoring")
    uncovered = measured_selection.uncovered_tasks()
    if uncovered:
        raise ValueError(
            f"no trained network serves task(s) {', '.join(uncovered)}: every training of them failed "
            f"(see the job's trainings for the errors)"
        )
    selection = (
        _with_hoa(measured_selection, spec.capacities.subsets)
        if spec.approximation == "hoa"
        else measured_selection
    )
    # Failed trainings can make the smallest budgets infeasible: solve the others and say which were dropped.
    cheapest = GroupingSolver(selection, objective=spec.objective, weights=spec.weights).cheapest_cost()
    budgets = [b for b in spec.effective_budgets if b >= cheapest - 1e-9]
    if not budgets:
        raise ValueError(
            f"no budget of the job can serve every task with the networks trained: the cheapest selection "
            f"costs {cheapest:g} SNT, the largest budget is {max(spec.effective_budgets):g}"
        )
    curve = budget_curve(
        selection,
        budgets=budgets,
        scoring=scoring,
        weights=spec.weights,
        objective=spec.objective,
        serve_by=spec.serve_by,
    )
    candidates = baseline_networks(tasks, max(spec.capacities.subsets), spec.capacities.singles)
    baselines = [
        b for name, nets in candidates.items() if (b := _baseline(name, nets, selection, scoring, spec))
    ]

    wall = [t["wall_seconds"] for t in trainings if t["wall_seconds"] is not None and not t["reused"]]
    result: dict[str, Any] = curve.model_dump(mode="json")
    result.update(
        {
            "job_id": job_id,
            "spec": spec.model_dump(mode="json"),
            "plan": plan.summary(),
            "loss_table": LossTableModel.from_tables(selection, scoring).model_dump(mode="json"),
            "seed_spread": selection_spread,
            "infeasible_budgets": [b for b in spec.effective_budgets if b not in budgets],
            "baselines": baselines,
            "provenance": {
                "package_version": _version("taskgrouping"),
                "versions": {p: _version(p) for p in ("torch", "ray", "numpy")},
                "trainings": trainings,
                "trained": sum(1 for t in trainings if not t["reused"] and t["state"] == "succeeded"),
                "reused": sum(1 for t in trainings if t["reused"]),
                "training_seconds": round(math.fsum(wall), 3),
            },
        }
    )
    return result
