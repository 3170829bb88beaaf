"""A job's result: loss tables from its trainings, the budget curve, the paper's baselines, provenance.

DESIGN.md step 5: build the loss table (the mean over seeds of each candidate's per-task losses; HOA fills
the rows of three tasks or more from the pairs), solve the budget curve on the selection losses and score it
on the scoring losses. The result (:class:`search.records.JobResult`) is the budget-curve shape of DESIGN.md
with the job id, spec, loss table, baselines, per-seed spread and provenance added.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from importlib import metadata

from grouping import (
    Candidate,
    GroupingSolver,
    LossTable,
    LossTableModel,
    TableRow,
    budget_curve,
)
from grouping.evaluation import fixed_baselines
from grouping.service import predicted_table
from grouping.solver import split_feasible
from search.plan import Plan
from search.records import JobResult, MissingTraining, Provenance, TrainingSummary
from search.spec import JobSpec
from search.states import TrainingState
from search.store import JobTrainingRecord
from workers.spec import TrainingResult

CandidateKey = tuple[tuple[str, ...], float]


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def mean_rows(
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
    """The measured table plus HOA predictions at each subset capacity (every >= 3-task group, or for many
    tasks the promising ones: :func:`grouping.service.predicted_table`); a group whose pairs are missing
    (failed trainings) is left out rather than guessed."""
    rows = {c: measured[c] for c in measured}
    for capacity in capacities:
        predicted = predicted_table(measured, capacity, on_missing_pair="skip")
        for candidate in predicted:
            rows.setdefault(candidate, predicted[candidate])
    return LossTable(measured.tasks, rows.values())


def _summaries(
    spec: JobSpec, plan: Plan, linked: list[JobTrainingRecord]
) -> tuple[list[TrainingSummary], dict[CandidateKey, list[TrainingResult]]]:
    """The job's planned trainings as the result records them, and the succeeded results by candidate."""
    order = {t: i for i, t in enumerate(spec.tasks)}
    planned = plan.by_key()
    summaries: list[TrainingSummary] = []
    results: dict[CandidateKey, list[TrainingResult]] = defaultdict(list)
    for link in linked:
        record = link.training
        if record.key not in planned:
            continue
        tasks = sorted(record.spec.tasks, key=order.__getitem__)
        summaries.append(
            TrainingSummary(
                tasks=tasks,
                reused=link.reused,
                **record.spec.model_dump(include={"capacity", "fidelity", "seed"}),
                **record.model_dump(include={"key", "state", "attempts", "wall_seconds", "device", "error"}),
            )
        )
        if record.state == TrainingState.SUCCEEDED and record.result is not None:
            results[(tuple(tasks), float(record.spec.capacity))].append(record.result)
    return summaries, results


def _provenance(summaries: list[TrainingSummary]) -> Provenance:
    wall = [t.wall_seconds for t in summaries if t.wall_seconds is not None and not t.reused]
    return Provenance(
        package_version=_version("taskgrouping"),
        versions={p: _version(p) for p in ("torch", "ray", "numpy")},
        trainings=summaries,
        trained=sum(1 for t in summaries if not t.reused and t.state == TrainingState.SUCCEEDED),
        reused=sum(1 for t in summaries if t.reused),
        training_seconds=round(math.fsum(wall), 3),
    )


def _missing(summaries: list[TrainingSummary]) -> list[MissingTraining]:
    return [
        MissingTraining(key=t.key, tasks=t.tasks, capacity=t.capacity, seed=t.seed, error=t.error or "failed")
        for t in summaries
        if t.state == TrainingState.FAILED
    ]


def build_result(job_id: str, spec: JobSpec, plan: Plan, linked: list[JobTrainingRecord]) -> JobResult:
    """The result of a job whose trainings have ended (``linked``: the job's trainings from the store);
    ValueError if some task has no trained network or no budget can be served."""
    tasks = list(spec.tasks)
    summaries, results = _summaries(spec, plan, linked)
    measured, selection_spread = mean_rows(tasks, results, "selection")
    scoring, _ = mean_rows(tasks, results, "scoring")
    uncovered = measured.uncovered_tasks()
    if uncovered:
        raise ValueError(
            f"no trained network serves task(s) {', '.join(uncovered)}: every training of them failed "
            f"(see the job's trainings for the errors)"
        )
    selection = _with_hoa(measured, spec.capacities.subsets) if spec.approximation == "hoa" else measured
    # Failed trainings can make the smallest budgets infeasible: solve the others and say which were dropped.
    budgets, dropped = split_feasible(
        selection, spec.effective_budgets, weights=spec.weights, objective=spec.objective
    )
    if not budgets:
        cheapest = GroupingSolver(selection, weights=spec.weights, objective=spec.objective).cheapest_cost()
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
        time_limit=spec.solve_time_limit,
    )
    baselines = fixed_baselines(
        selection,
        scoring,
        full=max(spec.capacities.subsets),
        single_capacities=spec.capacities.singles,
        objective=spec.objective,
        weights=spec.weights,
    )
    return JobResult(
        **curve.model_dump(),
        job_id=job_id,
        spec=spec,
        plan=plan.summary(),
        loss_table=LossTableModel.from_tables(selection, scoring),
        seed_spread=selection_spread,
        infeasible_budgets=dropped,
        baselines=baselines,
        provenance=_provenance(summaries),
        missing=_missing(summaries),
    )
