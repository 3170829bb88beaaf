"""Typed job results for tests of the faces (API, CLI, report): built from a loss table as a real job's
result is (the solver's curve, the paper's baselines), without training anything."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from grouping import LossTable, LossTableModel, budget_curve
from grouping.evaluation import fixed_baselines
from search.plan import Plan, PlannedTraining, PlanSummary
from search.records import JobResult, Provenance
from search.spec import JobSpec
from search.states import TrainingState
from search.store import JobTrainingRecord, TrainingRecord
from workers.spec import EpochRecord, TrainingResult


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


def stored_training(
    plan: Plan,
    planned: PlannedTraining,
    selection: dict[str, float],
    *,
    failed: bool = False,
    wall_seconds: float = 2.0,
) -> JobTrainingRecord:
    """A planned training as the store returns it for a job: succeeded with ``selection`` losses (test losses
    0.05 higher), or failed, without running anything."""
    now = datetime.now(UTC)
    spec = plan.training_spec(planned)
    result = TrainingResult(
        spec=spec,
        selection=selection,
        scoring={t: v + 0.05 for t, v in selection.items()},
        curve=[EpochRecord(epoch=1, train_loss=1.0, validation_loss=1.0, validation_losses={}, seconds=0.1)],
        best_epoch=1,
        epochs_run=1,
        wall_seconds=wall_seconds,
        flops_per_sample=1.0,
        parameters=1,
        device="cpu",
    )
    training = TrainingRecord(
        key=planned.key,
        spec=spec,
        state=TrainingState.FAILED if failed else TrainingState.SUCCEEDED,
        attempts=1,
        result=None if failed else result,
        error="boom" if failed else None,
        wall_seconds=wall_seconds,
        created_at=now,
        updated_at=now,
    )
    return JobTrainingRecord(training=training, reused=False)
