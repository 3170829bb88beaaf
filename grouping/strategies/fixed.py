"""The paper's approximations as one-round strategies (Standley et al., ICML 2020, sections 3.4 and 5).

* ``exhaustive``: every subset at each subset capacity plus the extra singles (2^n - 1 + n networks for the
  paper's sizes), each with the problem's seeds; the table is the mean over seeds.
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

from collections.abc import Sequence
from itertools import combinations
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from grouping.candidates import Candidate
from grouping.service import predicted_table
from grouping.strategies.base import (
    Measurement,
    Prediction,
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


class EsaOptions(FixedOptions):
    fidelity: float = Field(0.2, gt=0, le=1, description="the early-stopping fidelity (the paper: 0.2)")


class FixedPlanStrategy(Strategy):
    """A strategy whose trainings are known in advance: one round of :meth:`candidates` x seeds."""

    Options: ClassVar[type[BaseModel]] = FixedOptions
    why: ClassVar[str]

    def candidates(self) -> list[Candidate]:
        return self.problem.all_candidates()

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


@register
class ExhaustiveStrategy(FixedPlanStrategy):
    name: ClassVar[str] = "exhaustive"
    description: ClassVar[str] = "train every subset of the tasks (and the extra singles)"
    why: ClassVar[str] = "every subset of the tasks and every extra single, measured"


@register
class EsaStrategy(FixedPlanStrategy):
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
    "with_hoa",
]
