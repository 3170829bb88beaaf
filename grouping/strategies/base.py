"""The strategy interface: which trainings to run next, and the loss table predicted from what is measured.

A *strategy* is the object behind an approximation (DESIGN.md vocabulary). It is driven in rounds::

    strategy = make_strategy("hoa", Problem(tasks=["s", "d", "n", "k", "e"]))
    measured: list[Measurement] = []
    while (round_ := strategy.next_round(measured)) is not None:
        measured += [train(request) for request in round_.requests]   # in parallel: one Ray Tune trial each
    prediction = strategy.predict(measured)                              # a LossTable, predicted rows flagged

The real search (``search/`` on Ray Tune) and the offline replay (``bench/replay.py``) drive the same
objects; no strategy logic lives in a driver. A strategy keeps no state between calls: what it asks for and
what it predicts are functions of the measurements it is given (and its options), so a search that stopped
resumes by handing the stored measurements to a new strategy object, and a strategy never asks again for a
training whose :meth:`TrainingRequest.key` is among them.

The approximations of Standley et al. (ICML 2020) are strategies with one round (``exhaustive``, ``esa``,
``hoa``: :mod:`grouping.strategies.fixed`); TAG (Fifty et al., NeurIPS 2021) adds one training that measures
lookahead affinities (:mod:`grouping.strategies.tag`); ``adaptive`` (:mod:`grouping.strategies.adaptive`)
decides round by round.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from grouping.budgets import default_budgets
from grouping.candidates import FULL, HALF, Candidate, format_capacity
from grouping.results import BudgetCurve
from grouping.solver import budget_curve, split_feasible
from grouping.table import LossTable

RequestKey = tuple[tuple[str, ...], float, float, int, bool]
"""What identifies a training: (tasks in table order, capacity, fidelity, seed, lookahead)."""


class Capacities(BaseModel):
    """Network sizes: every subset at each of ``subsets``, singles also at each of ``singles`` (the paper:
    subsets at 1.0, singles also at 0.5). The same grammar as the job spec's ``capacities``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    subsets: tuple[float, ...] = Field((FULL,), min_length=1, description="capacities of every subset")
    singles: tuple[float, ...] = Field((HALF,), description="extra capacities of the single-task networks")

    @field_validator("subsets", "singles")
    @classmethod
    def _positive(cls, values: tuple[float, ...]) -> tuple[float, ...]:
        for value in values:
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"capacities must be finite and > 0 (1.0 = full size), got {value}")
        return tuple(sorted(set(values)))

    @property
    def largest(self) -> float:
        """The largest subset capacity: where the all-task network and the predicted groups live."""
        return max(self.subsets)

    def single_capacities(self) -> tuple[float, ...]:
        """Every capacity a single-task network is trained at (subsets' and singles'), ascending."""
        return tuple(sorted(set(self.subsets) | set(self.singles)))


class Problem(BaseModel):
    """What every strategy is constructed from: the tasks (their order is the table's), the network sizes,
    and what the search solves (budgets, objective, weights) and with which seeds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tasks: tuple[str, ...] = Field(min_length=2, description="the tasks to group, in table order")
    capacities: Capacities = Field(default_factory=Capacities)
    budgets: tuple[float, ...] | None = Field(None, description="SNT budgets; default 1, 1.5, ..., n")
    objective: Literal["sum", "relative"] = "sum"
    weights: dict[str, float] | None = None
    seed: int = Field(0, ge=0, description="first seed")
    seeds: int = Field(1, ge=1, le=32, description="seeds per network (fixed strategies: losses averaged)")

    @field_validator("tasks")
    @classmethod
    def _distinct(cls, tasks: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(tasks)) != len(tasks) or not all(tasks):
            raise ValueError(f"tasks must be distinct non-empty names, got {list(tasks)}")
        return tasks

    @model_validator(mode="after")
    def _known_weights(self) -> Problem:
        unknown = sorted(set(self.weights or {}) - set(self.tasks))
        if unknown:
            raise ValueError(f"weights: unknown task(s) {unknown}; the tasks are {', '.join(self.tasks)}")
        return self

    @property
    def n_tasks(self) -> int:
        return len(self.tasks)

    def effective_budgets(self) -> list[float]:
        return list(self.budgets) if self.budgets is not None else default_budgets(self.n_tasks)

    def all_candidates(self) -> list[Candidate]:
        """The exhaustive candidate set: every subset at each subset capacity, then the extra singles."""
        out = [
            Candidate(group, capacity)
            for size in range(1, self.n_tasks + 1)
            for group in combinations(self.tasks, size)
            for capacity in self.capacities.subsets
        ]
        out += [
            Candidate((t,), c)
            for c in self.capacities.singles
            if c not in self.capacities.subsets
            for t in self.tasks
        ]
        return out


class TrainingRequest(BaseModel):
    """One training a strategy asks for: a network (tasks in table order, capacity) at a fidelity and seed.

    ``lookahead``: an all-task training that also measures TAG's lookahead affinities (Fifty et al. 2021).
    ``reason``: why the strategy wants it (shown in progress displays). ``round``: the round that asked.
    Neither ``reason`` nor ``round`` is part of :meth:`key`: a training is the same training whoever asks.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    tasks: tuple[str, ...] = Field(min_length=1)
    capacity: float = Field(FULL, gt=0)
    fidelity: float = Field(1.0, gt=0, le=1, description="fraction of the full training schedule")
    seed: int = Field(0, ge=0)
    lookahead: bool = False
    reason: str = ""
    round: int = Field(1, ge=1)

    @property
    def candidate(self) -> Candidate:
        return Candidate(self.tasks, self.capacity)

    def key(self) -> RequestKey:
        return (tuple(self.tasks), float(self.capacity), float(self.fidelity), int(self.seed), self.lookahead)

    def label(self) -> str:
        """``sdn@0.5 f0.1 s1 lookahead``: the network, then fidelity and seed when not 1.0 / 0."""
        parts = [self.candidate.label()]
        if self.fidelity != 1.0:
            parts.append(f"f{format_capacity(self.fidelity)}")
        if self.seed:
            parts.append(f"s{self.seed}")
        if self.lookahead:
            parts.append("lookahead")
        return " ".join(parts)


class Measurement(BaseModel):
    """What a finished training reports back to its strategy.

    ``selection`` / ``scoring``: the per-task validation / test losses of the request's tasks (exactly
    those). ``wall_seconds``: the training's wall time (None if unknown; the cost model then counts capacity
    x fidelity units). ``affinity``: for a ``lookahead`` training, TAG's lookahead affinity averaged over
    training, ``affinity[i][j] = Z_{i->j}`` = 1 - L_j(after a step on task i's loss) / L_j(before).
    ``reused``: taken from the results store rather than trained for this search (costs nothing).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    request: TrainingRequest
    selection: dict[str, float]
    scoring: dict[str, float] | None = None
    wall_seconds: float | None = Field(None, ge=0)
    affinity: dict[str, dict[str, float]] | None = None
    reused: bool = False

    @model_validator(mode="after")
    def _own_tasks(self) -> Measurement:
        own = set(self.request.tasks)
        for name, losses in (("selection", self.selection), ("scoring", self.scoring)):
            if losses is not None and set(losses) != own:
                raise ValueError(
                    f"{name} losses must be given for exactly the tasks {sorted(own)} of "
                    f"{self.request.label()}, got {sorted(losses)}"
                )
        if self.affinity is not None:
            if not self.request.lookahead:
                raise ValueError(f"{self.request.label()}: affinities come only from a lookahead training")
            for i, row in self.affinity.items():
                if i not in own or not set(row) <= own:
                    raise ValueError(f"affinity[{i!r}] names tasks outside {sorted(own)}")
        return self

    @property
    def candidate(self) -> Candidate:
        return self.request.candidate


class Round(BaseModel):
    """One round: the trainings to run (in parallel) and, for people, why."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    index: int = Field(ge=1)
    requests: tuple[TrainingRequest, ...] = Field(min_length=1)
    why: str


@dataclass(frozen=True)
class Prediction:
    """A strategy's full loss table and what the result reports beside it.

    ``selection``: every candidate the solver may choose, ``predicted=True`` on rows that were not measured
    at full fidelity. ``scoring``: measured test losses (None if the trainings reported none).
    ``uncertainty``: per predicted row, the predictive standard deviation of each task's log-loss (adaptive).
    ``seed_spread``: per network trained with several seeds, each task's standard deviation over seeds.
    ``affinity``: TAG's lookahead affinity matrix ``{i: {j: Z_ij}}`` when one was measured.
    """

    selection: LossTable
    scoring: LossTable | None = None
    uncertainty: Mapping[Candidate, Mapping[str, float]] = field(default_factory=dict)
    seed_spread: Mapping[Candidate, Mapping[str, float]] = field(default_factory=dict)
    affinity: Mapping[str, Mapping[str, float]] | None = None

    def curve(
        self, problem: Problem, scoring: LossTable | None = None, serve_by: str = "selection"
    ) -> BudgetCurve:
        """The budget curve of :attr:`selection` at the problem's budgets that it can serve, totalled on
        ``scoring`` (default: :attr:`scoring`)."""
        budgets, _ = split_feasible(
            self.selection, problem.effective_budgets(), weights=problem.weights, objective=problem.objective
        )
        return budget_curve(
            self.selection,
            budgets=budgets,
            scoring=self.scoring if scoring is None else scoring,
            weights=problem.weights,
            objective=problem.objective,
            serve_by=serve_by,
        )


class Strategy(ABC):
    """Base class of every strategy (see the module doc). Subclasses set ``name``, ``description`` and
    ``Options`` (a pydantic model of their settings) and implement :meth:`next_round` and :meth:`predict`."""

    name: ClassVar[str]
    description: ClassVar[str]
    Options: ClassVar[type[BaseModel]]

    def __init__(self, problem: Problem, options: BaseModel | Mapping[str, Any] | None = None) -> None:
        self.problem = problem
        if isinstance(options, self.Options):
            self.options = options
        else:
            data = options.model_dump() if isinstance(options, BaseModel) else dict(options or {})
            self.options = self.Options.model_validate(data)

    @abstractmethod
    def next_round(
        self, measured: Sequence[Measurement], failed: Sequence[TrainingRequest] = ()
    ) -> Round | None:
        """The trainings to run next given everything measured so far, or None when the search is done.
        ``failed``: trainings that failed for good (they are not asked for again)."""

    @abstractmethod
    def predict(self, measured: Sequence[Measurement]) -> Prediction:
        """The loss table (predicted rows flagged) from the measurements."""

    def size(self) -> int:
        """Number of trainings of the first round (what a submission is checked against): by default the
        first round asked for; a strategy whose plan is large overrides it to count without listing."""
        first = self.next_round([])
        return 0 if first is None else len(first.requests)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.problem.n_tasks} tasks, {self.options!r})"


def next_round_index(measured: Sequence[Measurement]) -> int:
    """1 + the last round any measurement came from (1 when nothing is measured)."""
    return 1 + max((m.request.round for m in measured if not m.reused), default=0)


def settled_keys(measured: Sequence[Measurement], failed: Sequence[TrainingRequest] = ()) -> set[RequestKey]:
    """Keys of the trainings not to ask for again: measured, or failed for good."""
    return {m.request.key() for m in measured} | {r.key() for r in failed}


def missing_requests(
    planned: Sequence[TrainingRequest],
    measured: Sequence[Measurement],
    failed: Sequence[TrainingRequest] = (),
) -> list[TrainingRequest]:
    """The planned requests whose training is neither measured nor failed (by key), in plan order."""
    settled = settled_keys(measured, failed)
    return [r for r in planned if r.key() not in settled]


class TrainingFailed(RuntimeError):
    """Raised by a driver's ``measure`` for a training that failed for good (it is not asked for again)."""


def drive(
    strategy: Strategy,
    measure: Callable[[TrainingRequest], Measurement],
    measured: Sequence[Measurement] = (),
    max_rounds: int = 10_000,
) -> list[tuple[Round, list[Measurement]]]:
    """Run ``strategy`` to its end, one training after another: the reference driver (the replay and the
    tests use it; the real search runs each round's trainings in parallel on Ray Tune). ``measured``: what
    is already known (a resumed search); ``measure`` raises :class:`TrainingFailed` for a training that
    failed for good. Returns every round with its measurements (failed trainings left out)."""
    known = list(measured)
    failed: list[TrainingRequest] = []
    history: list[tuple[Round, list[Measurement]]] = []
    for _ in range(max_rounds):
        round_ = strategy.next_round(known, failed)
        if round_ is None:
            return history
        settled = settled_keys(known, failed)
        repeated = [r.label() for r in round_.requests if r.key() in settled]
        if repeated:
            raise RuntimeError(f"{strategy.name} asked again for settled trainings: {', '.join(repeated)}")
        new = []
        for request in round_.requests:
            try:
                new.append(measure(request))
            except TrainingFailed:
                failed.append(request)
        known += new
        history.append((round_, new))
    raise RuntimeError(f"{strategy.name} did not finish within {max_rounds} rounds")


__all__ = [
    "Capacities",
    "Measurement",
    "Prediction",
    "Problem",
    "RequestKey",
    "Round",
    "Strategy",
    "TrainingFailed",
    "TrainingRequest",
    "drive",
    "missing_requests",
    "next_round_index",
    "settled_keys",
]
