"""What a training costs, and what share of an exhaustive search a set of trainings is.

Before anything is measured a training costs ``capacity x fidelity`` *units* (a lookahead training
``lookahead_factor`` times more); the exhaustive plan (every subset at full fidelity plus the extra singles,
one seed) costs the sum of its units (33.5 for the paper's five tasks). Once trainings report wall seconds,
seconds are predicted by a non-negative least-squares fit on them::

    seconds ~ c0 + fidelity * (a + a_c * capacity + b * (tasks - 1))      c0, a, a_c, b >= 0

(a per-training overhead, and a cost per epoch with a part that does not shrink with the network, one that
does, and one per task head: on taskonomy-mini a full-size network of k tasks took 34, 42, 47, 54, 61 s for
k = 1..5 and a half-size single 24 s, not 17, docs/study.md), times ``lookahead_factor`` for a lookahead
training; the exhaustive plan's cost is predicted the same way. With too few distinct trainings to fit the
four terms, seconds are taken proportional to units. The *share* of a set of trainings is their cost
(measured seconds where known) over the exhaustive plan's. This is the compute cap of the adaptive strategy
(the issue's F); the replay reports the true share beside it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls

from grouping.strategies.base import Measurement, Problem, TrainingRequest

LOOKAHEAD_FACTOR = 1.5
"""Default estimated cost of a lookahead (TAG) training relative to a plain one, until one is measured."""


def training_units(request: TrainingRequest, lookahead_factor: float = LOOKAHEAD_FACTOR) -> float:
    """``capacity x fidelity`` (x ``lookahead_factor`` for a lookahead training)."""
    units = request.capacity * request.fidelity
    return units * lookahead_factor if request.lookahead else units


def exhaustive_plan(problem: Problem) -> list[TrainingRequest]:
    """The exhaustive plan of one seed at full fidelity (the yardstick of every compute share)."""
    return [
        TrainingRequest(tasks=c.tasks, capacity=c.capacity, seed=problem.seed, reason="exhaustive")
        for c in problem.all_candidates()
    ]


@dataclass(frozen=True)
class CostModel:
    """Predicted cost of a training in seconds (``per_second=True``) or in units (no seconds measured)."""

    overhead: float = 0.0
    per_epoch: float = 0.0
    per_epoch_capacity: float = 1.0
    per_epoch_task: float = 0.0
    per_second: bool = False
    lookahead_factor: float = LOOKAHEAD_FACTOR

    @classmethod
    def fit(cls, measured: Iterable[Measurement], lookahead_factor: float = LOOKAHEAD_FACTOR) -> CostModel:
        """Fit on the measurements with wall seconds (not reused); units only if there is none."""
        timed = [m for m in measured if m.wall_seconds is not None and not m.reused]
        if not timed:
            return cls(lookahead_factor=lookahead_factor)
        design = np.array([cls._features(m.request, lookahead_factor) for m in timed])
        seconds = np.array([m.wall_seconds for m in timed], dtype=float)
        if len(timed) >= 4 and np.linalg.matrix_rank(design) == 4:
            (c0, a, ac, b), _ = nnls(design, seconds)
            if a + ac + b > 0:
                return cls(float(c0), float(a), float(ac), float(b), True, lookahead_factor)
        units = np.array([training_units(m.request, lookahead_factor) for m in timed])
        ratio = float(seconds.sum() / max(units.sum(), 1e-12))
        return cls(0.0, 0.0, ratio, 0.0, True, lookahead_factor)

    @staticmethod
    def _features(request: TrainingRequest, lookahead_factor: float) -> list[float]:
        epochs = request.fidelity * (lookahead_factor if request.lookahead else 1.0)
        return [1.0, epochs, epochs * request.capacity, epochs * (len(request.tasks) - 1)]

    def cost(self, request: TrainingRequest) -> float:
        if not self.per_second:
            return training_units(request, self.lookahead_factor)
        c0, epochs, by_capacity, by_task = self._features(request, self.lookahead_factor)
        return (
            self.overhead * c0
            + self.per_epoch * epochs
            + self.per_epoch_capacity * by_capacity
            + self.per_epoch_task * by_task
        )

    def spent(self, measured: Iterable[Measurement]) -> float:
        """Cost of the trainings run for this search (measured seconds where known; reused ones are free)."""
        total = 0.0
        for m in measured:
            if m.reused:
                continue
            if self.per_second and m.wall_seconds is not None:
                total += m.wall_seconds
            else:
                total += self.cost(m.request)
        return total

    def total(self, requests: Sequence[TrainingRequest]) -> float:
        return math.fsum(self.cost(r) for r in requests)


def compute_share(
    problem: Problem, measured: Sequence[Measurement], lookahead_factor: float = LOOKAHEAD_FACTOR
) -> float:
    """The estimated share of one exhaustive seed's cost spent by ``measured`` (see the module doc)."""
    model = CostModel.fit(measured, lookahead_factor)
    return model.spent(measured) / model.total(exhaustive_plan(problem))


__all__ = ["LOOKAHEAD_FACTOR", "CostModel", "compute_share", "exhaustive_plan", "training_units"]
