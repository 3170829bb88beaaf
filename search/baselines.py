"""Stronger baselines (issue 15): the all-task network trained with other weighting methods and architectures.

A grouping that only beats the equally weighted all-task network is not yet an answer: a user also asks
whether one smarter network would do. ``JobSpec.baselines`` lists weighting methods and architectures; the
plan holds one training of the all-task network (capacity 1, full fidelity, the job's seeds) per entry
(:class:`search.plan.PlannedBaseline`, built by :meth:`search.plan.Plan.with_baselines`). The run trains them
after the search's rounds (:meth:`search.run.JobRun.baselines`) under the same reuse and resume rules, and
keeps them out of the strategy's measurements (:mod:`search.measurements` reads the search's trainings
only): a gradnorm or cross-stitch network is not the hard-sharing network the strategy's table describes.

Here:

* :func:`priced`: each baseline's cost in SNT, its architecture's FLOPs against the hard-sharing all-task
  network (:func:`workers.models.candidate_cost`), computed once the dataset is built;
* :func:`trained_baselines`: the result's entries, each the mean over its succeeded seeds of the network's
  own validation and test losses, totalled with the job's objective on the search's tables;
* :func:`best_all_task`: the name of the all-task network with the lowest validation total.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import TYPE_CHECKING

from grouping import Candidate, LossTable
from grouping.evaluation import Baseline, network_baseline
from search.plan import Plan, PlannedBaseline
from search.spec import JobSpec
from search.states import TrainingState
from search.store import JobTrainingRecord

if TYPE_CHECKING:
    from workers.datasets import Dataset

FIXED_ALL_TASK = "all-task network"
"""The fixed baseline of the search's own table (:func:`grouping.evaluation.baseline_networks`)."""


def priced(plan: Plan, dataset: Dataset) -> Plan:
    """``plan`` with every baseline's cost in SNT: its architecture's inference FLOPs over those of the
    hard-sharing network of the same tasks (1 for hard sharing, whatever the weighting)."""
    if all(b.cost is not None for b in plan.baselines):
        return plan
    from workers.models import candidate_cost

    costs: dict[tuple[str, str], float] = {}
    baselines = []
    for b in plan.baselines:
        model = b.settings.model
        which = (model.architecture, repr(sorted(model.options.items())))
        if which not in costs:
            costs[which] = candidate_cost(dataset, b.tasks, b.capacity, model.architecture, model.options)
        baselines.append(b.model_copy(update={"cost": round(costs[which], 6)}))
    return plan.model_copy(update={"baselines": baselines})


def _label(baseline: PlannedBaseline, tasks: list[str]) -> str:
    settings = baseline.settings
    network = Candidate(tuple(tasks), baseline.capacity).label()
    return f"{network} [{settings.model.architecture}, {settings.weighting}]"


def trained_baselines(
    spec: JobSpec,
    plan: Plan,
    linked: list[JobTrainingRecord],
    selection: LossTable,
    scoring: LossTable | None,
) -> list[Baseline]:
    """The stronger baselines of the plan whose trainings succeeded (at least one seed): each one's losses
    are the mean over its succeeded seeds, totalled with the job's objective and weights on the search's
    tables (``selection``, ``scoring``), at its priced cost. A baseline whose every seed failed is left out
    (its trainings are listed under the result's ``missing``)."""
    records = {link.training.key: link.training for link in linked}
    seeds: dict[str, list[PlannedBaseline]] = defaultdict(list)
    for b in plan.baselines:
        seeds[b.name].append(b)
    out = []
    for name, group in seeds.items():
        results = [
            records[b.key].result
            for b in group
            if b.key in records and records[b.key].state == TrainingState.SUCCEEDED
        ]
        results = [r for r in results if r is not None]
        if not results:
            continue
        first = group[0]
        mean_selection = {t: statistics.fmean(r.selection[t] for r in results) for t in spec.tasks}
        mean_scoring = None
        if all(all(t in r.scoring for t in spec.tasks) for r in results):
            mean_scoring = {t: statistics.fmean(r.scoring[t] for r in results) for t in spec.tasks}
        out.append(
            network_baseline(
                name,
                _label(first, spec.tasks),
                first.cost if first.cost is not None else first.capacity,
                mean_selection,
                mean_scoring,
                selection,
                scoring,
                objective=spec.objective,
                weights=spec.weights,
                weighting=first.settings.weighting,
                architecture=first.settings.model.architecture,
            )
        )
    return out


def best_all_task(spec: JobSpec, baselines: list[Baseline]) -> str | None:
    """The name of the all-task network with the lowest validation (selection) total, chosen as a user
    would choose without test losses: among the stronger baselines and, where it was trained at full
    fidelity by the search itself (not esa, not adaptive's low-fidelity rounds), the fixed 'all-task
    network'. None when there is none."""
    full_fidelity = spec.approximation != "adaptive" and spec.effective_fidelity == 1.0
    eligible = [
        b for b in baselines if b.weighting is not None or (b.name == FIXED_ALL_TASK and full_fidelity)
    ]
    if not eligible:
        return None
    return min(eligible, key=lambda b: b.selection_total).name


__all__ = ["FIXED_ALL_TASK", "best_all_task", "priced", "trained_baselines"]
