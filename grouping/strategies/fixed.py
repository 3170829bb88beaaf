"""The paper's approximations as one-round strategies (Standley et al., ICML 2020, sections 3.4 and 5).

* ``exhaustive``: every subset at each subset capacity plus the extra singles (2^n - 1 + n networks for the
  paper's sizes), each with the problem's seeds; the table is the mean over seeds. Two options narrow it
  (our addition, for many tasks where 2^n is out of reach): ``max_group_size`` k trains every subset of at
  most k tasks (a *partial* exhaustive check: the exact optimum among groupings of such groups), and
  ``groups`` trains the listed groups beside the singles (check groupings you already have in mind, or
  random groupings against the chosen one). Given both, the plan is their union.
* ``esa``: the same plan at a low ``fidelity`` (early-stopping approximation; default 0.2 as in the paper);
  the table *is* the low-fidelity losses.
* ``hoa``: singles at every capacity and pairs at the subset capacities; every group of three tasks or more
  is predicted by :func:`grouping.hoa.higher_order_approximation` (the mean of the pair losses) at each
  subset capacity. Like the search's result, a group whose pairs are missing (a failed training) is left
  out rather than guessed.

Each plan is one round; a resumed search asks only for what is missing, and the strategy is done when every
planned training is measured.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations
from math import comb
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from grouping.candidates import Candidate
from grouping.service import predicted_table
from grouping.strategies.base import (
    Measurement,
    Prediction,
    Problem,
    Round,
    Strategy,
    TrainingRequest,
    missing_requests,
)
from grouping.strategies.measured import mean_table, scoring_table, seed_spread
from grouping.strategies.registry import register
from grouping.table import LossTable


class FixedOptions(BaseModel):
    """Settings of a one-round plan: the fidelity every network is trained at."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fidelity: float = Field(1.0, gt=0, le=1, description="fraction of the full training schedule")


class SubsetOptions(FixedOptions):
    """Which subsets an exhaustive (or ESA) plan trains: all (the paper), those of at most
    ``max_group_size`` tasks, the listed ``groups``, or the union of the last two."""

    max_group_size: int | None = Field(
        None, ge=1, description="train every subset of at most this many tasks (default: every subset)"
    )
    groups: list[list[str]] | None = Field(
        None,
        min_length=1,
        description="train these groups of tasks beside the singles (with max_group_size: both)",
    )


class EsaOptions(SubsetOptions):
    fidelity: float = Field(0.2, gt=0, le=1, description="the early-stopping fidelity (the paper: 0.2)")


class FixedPlanStrategy(Strategy):
    """A strategy whose trainings are known in advance: one round of :meth:`candidates` x seeds."""

    Options: ClassVar[type[BaseModel]] = FixedOptions
    why: ClassVar[str]

    def candidates(self) -> list[Candidate]:
        return self.problem.all_candidates()

    def size(self) -> int:
        """Number of trainings of the plan (candidates x seeds), without building the requests."""
        return len(self.candidates()) * self.problem.seeds

    def plan(self) -> list[TrainingRequest]:
        p = self.problem
        fidelity = self.options.fidelity  # type: ignore[attr-defined]
        return [
            TrainingRequest(
                tasks=c.tasks, capacity=c.capacity, fidelity=fidelity, seed=seed, reason=f"{self.name} plan"
            )
            for c in self.candidates()
            for seed in range(p.seed, p.seed + p.seeds)
        ]

    def next_round(
        self, measured: Sequence[Measurement], failed: Sequence[TrainingRequest] = ()
    ) -> Round | None:
        missing = missing_requests(self.plan(), measured, failed)
        if not missing:
            return None
        return Round(index=1, requests=tuple(missing), why=f"{self.name}: {self.why}")

    def measured_tables(self, measured: Sequence[Measurement]) -> tuple[LossTable, LossTable | None]:
        fidelity = self.options.fidelity  # type: ignore[attr-defined]
        own = [
            m
            for m in measured
            if m.request.seed in range(self.problem.seed, self.problem.seed + self.problem.seeds)
        ]
        return mean_table(self.problem, own, fidelity), scoring_table(self.problem, own, fidelity)

    def predict(self, measured: Sequence[Measurement]) -> Prediction:
        selection, scoring = self.measured_tables(measured)
        return Prediction(
            selection,
            scoring,
            seed_spread=seed_spread(measured, self.options.fidelity),  # type: ignore[attr-defined]
        )


def _group_fault(group: list[str], tasks: Sequence[str]) -> str | None:
    """What is wrong with a listed group (None: nothing)."""
    unknown = [t for t in group if t not in tasks]
    if unknown:
        return f"names {', '.join(map(repr, unknown))}, not a task of the job"
    if not group:
        return "is empty"
    if len(set(group)) != len(group):
        return "lists a task twice"
    return None


class SubsetPlanStrategy(FixedPlanStrategy):
    """A fixed plan over the subsets :class:`SubsetOptions` select (every subset by default)."""

    Options: ClassVar[type[BaseModel]] = SubsetOptions

    def __init__(self, problem: Problem, options: BaseModel | Mapping[str, Any] | None = None) -> None:
        super().__init__(problem, options)
        for group in self.options.groups or []:  # type: ignore[attr-defined]
            fault = _group_fault(group, problem.tasks)
            if fault:
                raise ValueError(
                    f"{self.name} options: groups: the group {group} {fault}; give each group as distinct "
                    f"task names from: {', '.join(problem.tasks)}"
                )

    def _largest(self) -> int:
        """Every subset of at most this many tasks is planned."""
        options: SubsetOptions = self.options  # type: ignore[assignment]
        if options.max_group_size is not None:
            return min(options.max_group_size, self.problem.n_tasks)
        return 1 if options.groups else self.problem.n_tasks

    def _listed(self) -> list[tuple[str, ...]]:
        """The listed groups larger than :meth:`_largest`, each once, in the problem's task order."""
        order = {t: i for i, t in enumerate(self.problem.tasks)}
        groups = {tuple(sorted(g, key=order.__getitem__)) for g in self.options.groups or []}  # type: ignore[attr-defined]
        return sorted(
            (g for g in groups if len(g) > self._largest()), key=lambda g: (len(g), [order[t] for t in g])
        )

    def candidates(self) -> list[Candidate]:
        p = self.problem
        if self._largest() == p.n_tasks:
            return p.all_candidates()
        groups = [g for size in range(1, self._largest() + 1) for g in combinations(p.tasks, size)]
        out = [Candidate(g, c) for g in groups + self._listed() for c in p.capacities.subsets]
        out += [
            Candidate((t,), c) for c in p.capacities.singles if c not in p.capacities.subsets for t in p.tasks
        ]
        return out

    def size(self) -> int:
        p = self.problem
        subsets = sum(comb(p.n_tasks, k) for k in range(1, self._largest() + 1)) + len(self._listed())
        extra = len([c for c in p.capacities.singles if c not in p.capacities.subsets])
        return (subsets * len(p.capacities.subsets) + p.n_tasks * extra) * p.seeds


@register
class ExhaustiveStrategy(SubsetPlanStrategy):
    name: ClassVar[str] = "exhaustive"
    description: ClassVar[str] = "train every subset of the tasks (and the extra singles)"
    why: ClassVar[str] = "every subset of the tasks and every extra single, measured"


@register
class EsaStrategy(SubsetPlanStrategy):
    name: ClassVar[str] = "esa"
    description: ClassVar[str] = "every subset at a low fidelity (the paper's early-stopping approximation)"
    Options: ClassVar[type[BaseModel]] = EsaOptions
    why: ClassVar[str] = "every subset at a low fidelity; the table is the early-stopped losses"


@register
class HoaStrategy(FixedPlanStrategy):
    name: ClassVar[str] = "hoa"
    description: ClassVar[str] = "singles and pairs; larger groups predicted as the mean of their pairs"
    why: ClassVar[str] = "singles and pairs; larger groups are predicted from the pairs"

    def candidates(self) -> list[Candidate]:
        p = self.problem
        out = [Candidate((t,), c) for c in p.capacities.single_capacities() for t in p.tasks]
        out += [Candidate(pair, c) for pair in combinations(p.tasks, 2) for c in p.capacities.subsets]
        return out

    def predict(self, measured: Sequence[Measurement]) -> Prediction:
        selection, scoring = self.measured_tables(measured)
        return Prediction(
            with_hoa(selection, self.problem.capacities.subsets),
            scoring,
            seed_spread=seed_spread(measured, self.options.fidelity),  # type: ignore[attr-defined]
        )


def with_hoa(measured: LossTable, capacities: Sequence[float]) -> LossTable:
    """``measured`` plus the HOA prediction of every group of three tasks or more at each capacity (above
    :data:`grouping.service.HOA_ALL_SUBSETS` tasks only the groups the pairs make promising:
    :func:`grouping.service.predicted_table`); groups with a missing pair are left out; measured rows are
    kept as they are."""
    rows = {c: measured[c] for c in measured}
    for capacity in capacities:
        predicted = predicted_table(measured, capacity, on_missing_pair="skip")
        for cand in predicted:
            rows.setdefault(cand, predicted[cand])
    return LossTable(measured.tasks, rows.values())


__all__ = [
    "EsaOptions",
    "EsaStrategy",
    "ExhaustiveStrategy",
    "FixedOptions",
    "FixedPlanStrategy",
    "HoaStrategy",
    "SubsetOptions",
    "with_hoa",
]
