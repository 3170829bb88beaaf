"""A job's typed records: its progress while it runs, and its result (the one result shape of DESIGN.md).

These pydantic models are what the store writes and reads, what the HTTP API declares as response models
(so the OpenAPI schema documents them for clients), and what the command line, the report and
``bench/study.py`` read: attributes, never string keys.

:class:`JobResult` is a :class:`grouping.results.BudgetCurve` (``tasks``, ``objective``, ``serve_by``,
``weights``, ``curve``: one :class:`~grouping.results.Grouping` per budget) with the job's spec, plan summary,
loss table, baselines, missing trainings and provenance added.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from grouping.evaluation import Baseline
from grouping.noise import RunnerUp
from grouping.results import BudgetCurve
from grouping.schema import LossTableModel
from search.plan import PlannedTraining, PlanSummary
from search.spec import JobSpec
from search.states import TrainingState


class Progress(BaseModel):
    """Counts of a job's trainings. ``done`` includes the ``reused`` ones found already in the store."""

    model_config = ConfigDict(extra="forbid")

    total: int = Field(0, ge=0, description="trainings the job needs")
    done: int = Field(0, ge=0, description="succeeded, reused ones included")
    reused: int = Field(0, ge=0, description="found already trained in the store")
    trained: int = Field(0, ge=0, description="succeeded in this job (done - reused)")
    running: int = Field(0, ge=0)
    failed: int = Field(0, ge=0, description="failed after every retry")
    pending: int = Field(0, ge=0, description="not started yet")
    phase: str = Field(
        "search",
        description="search (the candidates), baselines (the stronger baselines), then finalize (the chosen "
        "networks)",
    )
    round: int | None = Field(None, description="the search's current round (one for the fixed plans)")
    why: str | None = Field(None, description="what the current round trains and why")
    round_trainings: list[str] = Field(
        default_factory=list, description="the current round's trainings (network, fidelity, seed)"
    )
    elapsed_seconds: float = Field(0.0, ge=0, description="since the run started")
    estimate_seconds: float | None = Field(None, description="estimated time left; null until one trained")


class TrainingSummary(PlannedTraining):
    """One training of a job as its result records it (its tasks in the job's task order)."""

    state: TrainingState
    baseline: str | None = Field(
        None, description="the stronger baseline it trains (JobSpec.baselines); null: one of the search's"
    )
    reused: bool = Field(description="found already succeeded in the store when the job linked it")
    attempts: int
    wall_seconds: float | None = None
    device: str | None = None
    error: str | None = None


class MissingTraining(BaseModel):
    """A planned training that failed after every retry: the grouping was solved without it."""

    model_config = ConfigDict(extra="forbid")

    key: str
    tasks: list[str]
    capacity: float
    seed: int
    error: str


class Provenance(BaseModel):
    """What produced a result: versions and every training with its cost."""

    model_config = ConfigDict(extra="forbid")

    package_version: str | None = None
    versions: dict[str, str | None] = Field(default_factory=dict, description="torch, ray, numpy")
    trainings: list[TrainingSummary] = Field(default_factory=list)
    trained: int = Field(0, description="trainings this job ran")
    reused: int = Field(0, description="trainings it found in the store")
    training_seconds: float = Field(0.0, description="wall seconds of the trainings it ran")


class FinalizedBudget(BaseModel):
    """One finalized budget: its chosen networks trained to the end (full fidelity, weights kept) and the
    choice measured on them, beside what the search predicted (issue 13)."""

    model_config = ConfigDict(extra="forbid")

    budget: float
    networks: list[str] = Field(description="labels of the chosen networks")
    trainings: list[str] = Field(
        description="keys of the finalize trainings (the job's seeds of each network)"
    )
    predicted_selection_total: float = Field(description="the chosen grouping's total on the search's table")
    predicted_scoring_total: float | None = Field(
        None, description="its test total on the search's table (null when a network was never measured)"
    )
    measured_selection_total: float | None = Field(
        None, description="validation total of the trained networks, each task served as chosen"
    )
    measured_scoring_total: float | None = Field(None, description="test total of the trained networks")
    prediction_error: float | None = Field(
        None, description="measured minus predicted validation total, relative to the measured one"
    )
    measured_choice: list[str] | None = Field(
        None,
        description="the choice at this budget once the finalized networks' measured losses replace their "
        "rows of the search's table (other rows as the search had them)",
    )
    choice_changes: bool | None = Field(None, description="whether measured_choice differs from networks")
    missing: list[str] = Field(
        default_factory=list, description="networks whose finalize trainings all failed (no measured total)"
    )


class BudgetNoise(BaseModel):
    """A budget whose choice cannot be told apart from some runner-ups within the seed spread."""

    model_config = ConfigDict(extra="forbid")

    budget: float
    runner_ups: list[RunnerUp] = Field(description="the groupings within seed noise of the choice")


class RoundSummary(BaseModel):
    """One round of a search: the trainings it asked for and why."""

    model_config = ConfigDict(extra="forbid")

    index: int
    trainings: list[str] = Field(description="labels: network, then fidelity (f), seed (s), lookahead")
    reasons: list[str] = Field(default_factory=list, description="why the approximation asked for them")


class JobResult(BudgetCurve):
    """A job's result: its budget curve with the spec, plan, loss table, baselines and provenance."""

    job_id: str
    spec: JobSpec
    plan: PlanSummary
    loss_table: LossTableModel = Field(description="selection rows (predicted ones flagged), scoring rows")
    seed_spread: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="network label -> task -> std of its loss over seeds (seeds > 1)"
    )
    noise: list[BudgetNoise] = Field(
        default_factory=list,
        description="budgets whose choice is within seed noise of a runner-up (indistinguishable_from); "
        "only for networks trained with several seeds",
    )
    prediction_spread: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="adaptive: per predicted network, the predictive sd of each task's log-loss",
    )
    lookahead_affinity: dict[str, dict[str, float]] | None = Field(
        None, description="tag: the mean lookahead affinity Z[i][j] (a step on task i's loss lowers j's)"
    )
    rounds: list[RoundSummary] = Field(default_factory=list, description="the search's rounds")
    compute_share: float | None = Field(
        None,
        description="estimated share of one exhaustive seed's training time the search's trainings cost "
        "(wall seconds where measured; reused trainings cost nothing)",
    )
    infeasible_budgets: list[float] = Field(
        default_factory=list, description="budgets dropped: no selection of the trained networks fits them"
    )
    baselines: list[Baseline] = Field(
        default_factory=list,
        description="the paper's fixed baselines (all-task network, independent singles) from the search's "
        "table, then the stronger baselines of JobSpec.baselines (the all-task network trained with another "
        "weighting method or architecture, at its cost in SNT)",
    )
    best_all_task: str | None = Field(
        None,
        description="the baseline that is one all-task network with the lowest selection (validation) "
        "total: the one network a user would pick without test losses",
    )
    provenance: Provenance
    missing: list[MissingTraining] = Field(default_factory=list, description="trainings that failed")
    finalized: list[FinalizedBudget] = Field(
        default_factory=list, description="the finalized budgets (finalize_budgets), measured"
    )

    def budget_curve(self) -> BudgetCurve:
        """The curve alone (the shape ``POST /solve`` and ``taskgroup solve`` answer with)."""
        return BudgetCurve.model_validate(self.model_dump(include=set(BudgetCurve.model_fields)))


__all__ = [
    "BudgetNoise",
    "FinalizedBudget",
    "JobResult",
    "MissingTraining",
    "Progress",
    "Provenance",
    "RoundSummary",
    "TrainingSummary",
]
