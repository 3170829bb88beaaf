"""Typed job results for tests of the faces (API, CLI, report): built from a loss table as a real job's
result is (the solver's curve, the paper's baselines), without training anything."""

from __future__ import annotations

from typing import Any

from grouping import LossTable, LossTableModel, budget_curve
from grouping.evaluation import fixed_baselines
from search.plan import PlanSummary
from search.records import JobResult, Provenance
from search.spec import JobSpec


def make_result(
    job_id: str,
    selection: LossTable,
    scoring: LossTable | None = None,
    *,
    budgets: list[float] | None = None,
    spec: dict[str, Any] | None = None,
    provenance: Provenance | None = None,
) -> JobResult:
    """A job result whose curve and baselines are solved from ``selection`` (scored on ``scoring``)."""
    job_spec = JobSpec.model_validate(
        spec or {"dataset": {"name": "planted"}, "tasks": list(selection.tasks), "budgets": budgets}
    )
    curve = budget_curve(selection, budgets=budgets, scoring=scoring)
    return JobResult(
        **curve.model_dump(),
        job_id=job_id,
        spec=job_spec,
        plan=PlanSummary(
            approximation=job_spec.approximation,
            candidates=len(selection),
            network_trainings=len(selection),
            snt_epochs=float(len(selection) * job_spec.training.epochs),
        ),
        loss_table=LossTableModel.from_tables(selection, scoring),
        baselines=fixed_baselines(selection, scoring),
        provenance=provenance or Provenance(trained=len(selection), training_seconds=1.0),
    )
