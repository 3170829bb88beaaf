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
from collections.abc import Sequence
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
from grouping.noise import indistinguishable_per_budget
from grouping.results import BudgetCurve
from grouping.solver import split_feasible
from grouping.strategies import Measurement, Prediction, compute_share
from grouping.strategies.measured import seed_counts
from search.baselines import best_all_task, trained_baselines
from search.plan import Plan, PlannedTraining
from search.records import (
    BudgetNoise,
    JobResult,
    MissingTraining,
    Provenance,
    RoundSummary,
    TrainingSummary,
)
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


def _summaries(spec: JobSpec, plan: Plan, linked: list[JobTrainingRecord]) -> list[TrainingSummary]:
    """The job's planned trainings as the result records them (their tasks in the job's order)."""
    order = {t: i for i, t in enumerate(spec.tasks)}
    planned = plan.by_key()
    baselines = {b.key: b for b in plan.baselines}
    fields = set(PlannedTraining.model_fields) - {"tasks"}
    summaries: list[TrainingSummary] = []
    for link in linked:
        record = link.training
        training = planned.get(record.key) or baselines.get(record.key)
        if training is None:
            continue
        baseline = None if record.key in planned else baselines[record.key].name
        summaries.append(
            TrainingSummary(
                **training.model_dump(include=fields),
                baseline=baseline,
                tasks=sorted(record.spec.tasks, key=order.__getitem__),
                reused=link.reused,
                **record.model_dump(include={"state", "attempts", "wall_seconds", "device", "error"}),
            )
        )
    return summaries


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


def build_result(
    job_id: str,
    spec: JobSpec,
    plan: Plan,
    linked: list[JobTrainingRecord],
    prediction: Prediction,
    measured: Sequence[Measurement] = (),
) -> JobResult:
    """The result of a job whose search has ended: ``prediction`` is its strategy's loss table from the
    measurements (``measured``) of its trainings (``linked``: the job's trainings from the store); ValueError
    if some task has no trained network or no budget can be served."""
    summaries = _summaries(spec, plan, linked)
    selection, scoring = prediction.selection, prediction.scoring
    uncovered = selection.uncovered_tasks()
    if uncovered:
        raise ValueError(
            f"no trained network serves task(s) {', '.join(uncovered)}: every training of them failed "
            f"(see the job's trainings for the errors)"
        )
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
    baselines += trained_baselines(spec, plan, linked, selection, scoring)
    spread = {c.label(): dict(sd) for c, sd in prediction.seed_spread.items()}
    return JobResult(
        **curve.model_dump(),
        job_id=job_id,
        spec=spec,
        plan=plan.summary(),
        loss_table=LossTableModel.from_tables(selection, scoring),
        seed_spread=spread,
        noise=_noise(curve, selection, prediction, measured),
        prediction_spread={c.label(): dict(sd) for c, sd in prediction.uncertainty.items()},
        lookahead_affinity=_affinity(prediction),
        rounds=_rounds(plan, spec.tasks),
        compute_share=compute_share(spec.problem(), list(measured)) if measured else None,
        infeasible_budgets=dropped,
        baselines=baselines,
        best_all_task=best_all_task(spec, baselines),
        provenance=_provenance(summaries),
        missing=_missing(summaries),
    )


def _affinity(prediction: Prediction) -> dict[str, dict[str, float]] | None:
    if prediction.affinity is None:
        return None
    return {i: dict(row) for i, row in prediction.affinity.items()}


def _noise(
    curve: BudgetCurve, selection: LossTable, prediction: Prediction, measured: Sequence[Measurement]
) -> list[BudgetNoise]:
    """Per budget, the runner-up groupings within seed noise of the choice (:mod:`grouping.noise`): only
    where networks were trained with several seeds. The table holds means over a network's k seeds, so the
    spread that enters the totals is its seed spread / sqrt(k)."""
    if not prediction.seed_spread:
        return []
    counts: dict[Candidate, int] = defaultdict(int)
    for fidelity in {m.request.fidelity for m in measured}:
        for candidate, k in seed_counts(measured, fidelity).items():
            counts[candidate] = max(counts[candidate], k)
    spread = {
        c.label(): {t: sd / math.sqrt(max(1, counts[c])) for t, sd in row.items()}
        for c, row in prediction.seed_spread.items()
    }
    per_budget = indistinguishable_per_budget(curve, selection, spread)
    return [BudgetNoise(budget=b, runner_ups=r) for b, r in per_budget.items() if r]


def _rounds(plan: Plan, tasks: Sequence[str]) -> list[RoundSummary]:
    """The rounds of the search as planned: each one's trainings and why they were asked for."""
    rounds: dict[int, list[str]] = defaultdict(list)
    reasons: dict[int, list[str]] = defaultdict(list)
    for t in plan.trainings:
        rounds[t.round].append(t.request(tasks).label())
        if t.reason and t.reason not in reasons[t.round]:
            reasons[t.round].append(t.reason)
    return [RoundSummary(index=i, trainings=rounds[i], reasons=reasons[i]) for i in sorted(rounds)]


def search_result(job_id: str, spec: JobSpec, plan: Plan, linked: list[JobTrainingRecord]) -> JobResult:
    """:func:`build_result` of the job's strategy's prediction from its stored trainings: what a run does
    once its search has ended."""
    from search.measurements import measurements

    measured = measurements(spec, plan, linked)
    return build_result(job_id, spec, plan, linked, spec.strategy().predict(measured), measured)
