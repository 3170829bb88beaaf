"""The job spec: what a user asks for (dataset, tasks, approximation, training, budgets).

The same pydantic model is read by `taskgroup search` and accepted by ``POST /jobs``. Its own validation
rejects what cannot work with a message that names the field and says how to fix it (budgets and weights in
the one grammar of :mod:`grouping.budgets` and :mod:`grouping.weights`, the weighting method and its options
against the registry, capacity ladders the solver can price). Checks that need the dataset (its parameters,
task names, model options, reachable capacities) run once at submission (:mod:`search.submit`), checks that
need the cluster in ``search.ray_runner.check_resources``. The model imports neither torch nor ray.
"""

from __future__ import annotations

import math
from typing import Any, Literal, get_args

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from grouping.budgets import default_budgets, parse_budgets
from grouping.exact import MAX_BUDGET_UNITS, cost_unit
from grouping.strategies import Capacities as StrategyCapacities
from grouping.strategies import Problem, Strategy, make_strategy
from grouping.weights import parse_weights
from workers.spec import DatasetRef, TrainingSettings

Approximation = Literal["exhaustive", "esa", "hoa", "tag", "adaptive"]
APPROXIMATIONS: tuple[str, ...] = get_args(Approximation)
"""The approximations a job may use: the strategies of :mod:`grouping.strategies` (a test checks the two
agree)."""
ADAPTIVE_MAX_TASKS = 12
"""The adaptive strategy prices every candidate of the exhaustive plan (its compute cap is a share of it)."""
MAX_TASKS = 40
DEFAULT_MAX_TRAININGS = 1024  # 2^10: larger plans need `allow_large: true`
DEFAULT_ESA_FIDELITY = 0.2  # the paper's early-stopping approximation judges networks at 20% of training


def repeated(names: list[str]) -> list[str]:
    """The names listed more than once, sorted."""
    seen: set[str] = set()
    return sorted({n for n in names if n in seen or seen.add(n)})  # type: ignore[func-returns-value]


class Resources(BaseModel):
    """Resources of one training (one Ray Tune trial)."""

    model_config = ConfigDict(extra="forbid")

    cpus: float = Field(1.0, gt=0, le=512, description="CPUs per training (also its torch threads)")
    gpus: float = Field(0.0, ge=0, le=64, description="GPUs per training (fractions share a GPU)")


class Capacities(BaseModel):
    """Which network sizes to train: the paper's default is every subset at 1.0 and singles at 0.5 too."""

    model_config = ConfigDict(extra="forbid")

    subsets: list[float] = Field(default_factory=lambda: [1.0], min_length=1)
    singles: list[float] = Field(default_factory=lambda: [0.5])

    @field_validator("subsets", "singles")
    @classmethod
    def _positive(cls, values: list[float]) -> list[float]:
        for value in values:
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"capacities must be finite and > 0 (1.0 = full size), got {value}")
        return sorted(set(values))


class Baselines(BaseModel):
    """Stronger baselines for the result (issue 15): the all-task network trained once more per entry.

    Each name in ``weighting`` adds one training of the all-task network (every task, capacity 1, full
    fidelity, the job's seeds) with the job's settings but that loss weighting method (its default
    options); each name in ``architectures`` one with the job's settings but that architecture (its
    default options). They are trained after the search, kept out of the search's measurements, and
    reported in the result's ``baselines`` at their cost in SNT (an architecture's measured FLOP ratio).
    The names are checked against the registries at submission (:mod:`search.submit`), where the
    dataset's input kind is known; the model itself imports neither torch nor ray.
    """

    model_config = ConfigDict(extra="forbid")

    weighting: list[str] = Field(
        default_factory=list,
        description="loss weighting methods, each trains the all-task network once more (e.g. "
        "uncertainty, gradnorm, dwa, dtp, mgda, pareto)",
    )
    architectures: list[str] = Field(
        default_factory=list,
        description="architectures, each trains the all-task network once more (e.g. cross-stitch, mtan; "
        "nddr for images)",
    )

    @field_validator("weighting", "architectures")
    @classmethod
    def _once(cls, names: list[str]) -> list[str]:
        duplicates = repeated(names)
        if duplicates:
            raise ValueError(f"{', '.join(duplicates)} listed twice: list each once")
        return names

    def __bool__(self) -> bool:
        return bool(self.weighting or self.architectures)


DEFAULT_SOLVE_TIME_LIMIT = 600.0
"""Seconds a job's solve may take by default: far above what the DP needs (milliseconds up to 12 tasks) and
what the sparse solver needs on the tables measured (docs/solver.md), a guard against a job stuck solving."""


class JobSpec(BaseModel):
    """One search: dataset + tasks + approximation + training settings + budgets."""

    model_config = ConfigDict(extra="forbid")

    dataset: DatasetRef = Field(description="a built-in dataset and its parameters (GET /datasets)")
    tasks: list[str] = Field(
        ..., min_length=2, max_length=MAX_TASKS, description="the tasks to group (2 to 40 of the dataset's)"
    )
    approximation: Approximation = Field(
        "exhaustive",
        description="exhaustive: train every subset; esa: the same at a low fidelity; hoa: singles and "
        "pairs, larger groups predicted; tag: singles and one all-task training that measures lookahead "
        "affinities; adaptive: rounds that train only what can still win, within max_compute "
        "(docs/strategies.md)",
    )
    approximation_options: dict[str, Any] = Field(
        default_factory=dict,
        description="the approximation's own options (docs/strategies.md), e.g. adaptive's start or batch, "
        "tag's scale",
    )
    fidelity: float | None = Field(
        None, description="fraction of the full schedule; default 1.0, or 0.2 for esa (not for adaptive)"
    )
    max_compute: float | None = Field(
        None,
        gt=0,
        le=1,
        description="adaptive: the compute cap, a share of one exhaustive seed's estimated training time "
        "(default 0.15)",
    )
    lookahead_every: int = Field(
        10, ge=1, le=100_000, description="tag: measure the lookahead affinity every this many steps"
    )
    budgets: list[float] | None = Field(None, description="SNT budgets; default 1, 1.5, ..., n")
    capacities: Capacities = Field(
        default_factory=Capacities,
        description="network sizes: every subset at `subsets`, singles also at `singles`",
    )
    training: TrainingSettings = Field(
        default_factory=TrainingSettings, description="how every candidate is trained (part of the reuse key)"
    )
    baselines: Baselines = Field(
        default_factory=Baselines,
        description="stronger baselines: the all-task network trained once more per weighting method and "
        "per architecture listed, reported in the result's baselines (docs/search.md)",
    )
    seed: int = Field(0, ge=0, le=2**31 - 1, description="first seed; seeds seed..seed+seeds-1 are trained")
    seeds: int | Literal["auto"] = Field(
        1,
        description="seeds per candidate (losses are averaged over them), or auto (adaptive: extra seeds "
        "only for the networks that decide a choice)",
    )
    resources: Resources = Field(default_factory=Resources, description="CPUs and GPUs of each training")
    objective: Literal["sum", "relative"] = Field(
        "sum", description="sum: total loss (the paper's); relative: each task's loss over its best single's"
    )
    weights: dict[str, float] | None = Field(
        None, description="per-task weights of the objective (default 1)"
    )
    serve_by: Literal["selection", "scoring"] = Field(
        "selection",
        description="which chosen network serves a task in the scoring total: the best on selection losses, "
        "or (the paper's released evaluation) the best on scoring losses",
    )
    max_trainings: int = Field(
        DEFAULT_MAX_TRAININGS, ge=1, description="refuse larger plans unless allow_large"
    )
    allow_large: bool = Field(False, description="allow plans above max_trainings")
    solve_time_limit: float | None = Field(
        DEFAULT_SOLVE_TIME_LIMIT,
        gt=0,
        description="seconds the solver may spend on the budget curve once the trainings ended (above 12 "
        "tasks the exact sparse solver may need long on some tables); a curve cut short reports each "
        "budget's optimality_gap; null: no limit",
    )
    finalize_budgets: list[float] = Field(
        default_factory=list,
        description="budgets whose chosen networks are trained to the end with their weights kept once the "
        "search chose them (then exportable as a bundle); the result gives each one's measured test total "
        "beside the predicted one. Same grammar as budgets; each must be one of the job's budgets",
    )
    keep_weights: Literal["finalized", "all"] = Field(
        "finalized",
        description="which trainings keep their weights: the finalize trainings only, or every training of "
        "the job (more storage, and any budget whose networks were all trained at full fidelity exports "
        "without finalizing)",
    )
    name: str | None = Field(None, max_length=200, description="a label for listings")

    @field_validator("budgets", mode="before")
    @classmethod
    def _budgets(cls, value: Any) -> list[float] | None:
        if value is None:
            return None
        try:
            return parse_budgets(value)
        except ValueError as exc:  # pydantic names the field already
            raise ValueError(str(exc).removeprefix("budgets: ")) from None

    @field_validator("finalize_budgets", mode="before")
    @classmethod
    def _finalize_budgets(cls, value: Any) -> list[float]:
        if value is None or value == []:
            return []
        try:
            return parse_budgets(value)
        except ValueError as exc:
            raise ValueError(str(exc).removeprefix("budgets: ")) from None

    @field_validator("weights", mode="before")
    @classmethod
    def _weights(cls, value: Any) -> dict[str, float] | None:
        try:
            return parse_weights(value)
        except ValueError as exc:
            raise ValueError(str(exc).removeprefix("weights: ")) from None

    @field_validator("tasks")
    @classmethod
    def _tasks(cls, tasks: list[str]) -> list[str]:
        duplicates = repeated(tasks)
        if duplicates:
            raise ValueError(f"duplicate tasks {duplicates}: list each task once")
        return tasks

    @model_validator(mode="after")
    def _consistent(self) -> JobSpec:
        if self.fidelity is not None and not 0 < self.fidelity <= 1:
            raise ValueError(f"fidelity must be in (0, 1], got {self.fidelity}")
        if self.weights is not None:
            unknown = sorted(set(self.weights) - set(self.tasks))
            if unknown:
                raise ValueError(f"weights: {unknown} are not tasks of this job ({', '.join(self.tasks)})")
        self._check_ladder()
        self._check_finalize()
        self._check_strategy()
        cheapest = self.cheapest_cover()
        if self.budgets is not None and self.budgets[0] < cheapest - 1e-9:
            raise ValueError(
                f"budget {self.budgets[0]} SNT is below the cheapest selection that serves every task "
                f"({cheapest} SNT: one network of capacity {min(self.capacities.subsets)} with all tasks)"
            )
        return self

    def _check_strategy(self) -> None:
        adaptive = self.approximation == "adaptive"
        if isinstance(self.seeds, int) and not 1 <= self.seeds <= 32:
            raise ValueError(f"seeds must be 1 to 32, or auto (adaptive), got {self.seeds}")
        if self.seeds == "auto" and not adaptive:
            raise ValueError(f"seeds: auto is for the adaptive search; give {self.approximation} a number")
        if self.max_compute is not None and not adaptive:
            raise ValueError(f"max_compute is the adaptive search's cap; {self.approximation} has none")
        if adaptive and self.fidelity is not None:
            raise ValueError(
                "fidelity: the adaptive search chooses its fidelities (approximation_options.low_fidelity)"
            )
        if adaptive and len(self.tasks) > ADAPTIVE_MAX_TASKS:
            raise ValueError(
                f"approximation adaptive handles at most {ADAPTIVE_MAX_TASKS} tasks (its cap is a share of "
                f"the exhaustive plan, which it prices); for {len(self.tasks)} tasks use hoa or tag"
            )
        self.strategy()  # the options, checked by the strategy's own model

    def problem(self) -> Problem:
        """What the approximation's strategy is built from (:class:`grouping.strategies.Problem`)."""
        return Problem(
            tasks=tuple(self.tasks),
            capacities=StrategyCapacities(
                subsets=tuple(self.capacities.subsets), singles=tuple(self.capacities.singles)
            ),
            budgets=None if self.budgets is None else tuple(self.budgets),
            objective=self.objective,
            weights=self.weights,
            seed=self.seed,
            seeds=self.seed_count,
        )

    def strategy_options(self) -> dict[str, Any]:
        """The strategy's options: ``approximation_options`` with the spec's own fields filled in (the
        fidelity of the fixed plans and TAG; adaptive's cap and seeds)."""
        options = dict(self.approximation_options)
        if self.approximation == "adaptive":
            if self.max_compute is not None:
                options["max_compute"] = self.max_compute
            if self.seeds == "auto":
                options["seeds"] = "auto"
        else:
            options.setdefault("fidelity", self.effective_fidelity)
        return options

    def strategy(self) -> Strategy:
        """The approximation as a strategy object (ValueError naming a bad option)."""
        try:
            return make_strategy(self.approximation, self.problem(), self.strategy_options())
        except ValueError as exc:
            raise ValueError(str(exc)) from None

    @property
    def seed_count(self) -> int:
        """Seeds trained per network up front (``auto``: one, the adaptive search adds more)."""
        return 1 if self.seeds == "auto" else self.seeds

    def _check_finalize(self) -> None:
        budgets = self.effective_budgets
        unknown = [b for b in self.finalize_budgets if not any(abs(b - c) <= 1e-9 for c in budgets)]
        if unknown:
            shown = ", ".join(f"{b:g}" for b in budgets[:12]) + (" ..." if len(budgets) > 12 else "")
            raise ValueError(
                f"finalize_budgets: {', '.join(f'{b:g}' for b in unknown)} SNT not among the job's budgets "
                f"({shown}); finalize budgets the job solves, or add them to budgets"
            )

    def _check_ladder(self) -> None:
        """Refuse a capacity ladder whose common unit (the gcd of the capacities) is so fine that the solver's
        budget axis, up to every task in its own largest network, would exceed what it can hold."""
        capacities = [*self.capacities.subsets, *self.capacities.singles]
        unit = cost_unit(np.array(capacities))
        reach = len(self.tasks) * max(capacities)
        if reach / float(unit) > MAX_BUDGET_UNITS:
            raise ValueError(
                f"capacities: {sorted(set(capacities))} have a common unit of {float(unit):g} SNT, so the "
                f"solver would count up to {reach:g} SNT in {reach / float(unit):.0f} steps (at most "
                f"{MAX_BUDGET_UNITS}); use capacities that are multiples of a coarser unit, e.g. 0.25"
            )

    @property
    def effective_fidelity(self) -> float:
        if self.fidelity is not None:
            return self.fidelity
        return DEFAULT_ESA_FIDELITY if self.approximation == "esa" else 1.0

    @property
    def effective_budgets(self) -> list[float]:
        if self.budgets is not None:
            return self.budgets
        return default_budgets(len(self.tasks))

    def cheapest_cover(self) -> float:
        """The cost of the cheapest selection serving every task: one all-task network of the smallest
        subset capacity, or all singles at the smallest single capacity, whichever is cheaper."""
        n = len(self.tasks)
        options = [min(self.capacities.subsets)]
        options.append(n * min(self.capacities.subsets + self.capacities.singles))
        return min(options)
