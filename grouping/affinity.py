"""Pairwise task affinity (pure, no torch, no ray).

Affinity follows the pair table of Standley et al. (ICML 2020, section 4 / the "task affinity" table): for
every pair ``{a, b}``, the relative gain of task ``a`` when trained together with ``b`` in one full-size
network, against ``a`` trained alone in a full-size single-task network::

    gain[a, b] = (L[{a}, a] - L[{a, b}, a]) / L[{a}, a]

Positive = ``b`` helps ``a`` (lower loss together). The matrix is not symmetric: ``gain[a, b]`` is what ``a``
gets, ``gain[b, a]`` what ``b`` gets. Departure from the paper: the paper normalises by the single-task
loss too but prints the table from its test losses only; here the table (selection or scoring) is a
parameter, and a pair or single the table lacks gives NaN rather than an error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from grouping.candidates import FULL, Candidate
from grouping.table import LossTable


@dataclass(frozen=True)
class AffinityTable:
    """``gain[i, j]``: relative gain of ``tasks[i]`` trained with ``tasks[j]`` vs alone (NaN on the diagonal
    and where a pair or single is missing)."""

    tasks: tuple[str, ...]
    gain: np.ndarray

    def get(self, task: str, partner: str) -> float:
        """Gain of ``task`` when trained with ``partner``."""
        try:
            i, j = self.tasks.index(task), self.tasks.index(partner)
        except ValueError:
            raise ValueError(
                f"unknown task in ({task!r}, {partner!r}); the table's tasks are {', '.join(self.tasks)}"
            ) from None
        return float(self.gain[i, j])

    def pair_mean(self) -> dict[tuple[str, str], float]:
        """Mean gain of both tasks of each pair (the symmetric view used to rank pairs), NaN if missing."""
        out: dict[tuple[str, str], float] = {}
        for i, j in combinations(range(len(self.tasks)), 2):
            out[(self.tasks[i], self.tasks[j])] = float((self.gain[i, j] + self.gain[j, i]) / 2)
        return out

    def as_dict(self) -> dict[str, dict[str, float | None]]:
        """``{task: {partner: gain}}`` for JSON (None for NaN)."""
        return {
            a: {
                b: (None if math.isnan(self.gain[i, j]) else round(float(self.gain[i, j]), 6))
                for j, b in enumerate(self.tasks)
                if i != j
            }
            for i, a in enumerate(self.tasks)
        }


def pairwise_affinity(table: LossTable, capacity: float = FULL) -> AffinityTable:
    """The affinity table of ``table``'s pairs and singles at ``capacity`` (see the module doc).

    A single-task loss of 0 or less cannot be a denominator of a relative gain: ValueError naming the task
    (use a positive loss, e.g. a mean squared error or cross-entropy).
    """
    tasks = table.tasks
    n = len(tasks)
    gain = np.full((n, n), np.nan)
    alone: dict[str, float] = {}
    for task in tasks:
        single = Candidate((task,), capacity)
        if single in table:
            value = table.loss(single, task)
            if value <= 0:
                raise ValueError(
                    f"task {task!r}: single-task loss is {value}; a relative gain needs positive losses"
                )
            alone[task] = value
    for i, j in combinations(range(n), 2):
        a, b = tasks[i], tasks[j]
        pair = Candidate((a, b), capacity)
        if pair not in table:
            continue
        if a in alone:
            gain[i, j] = (alone[a] - table.loss(pair, a)) / alone[a]
        if b in alone:
            gain[j, i] = (alone[b] - table.loss(pair, b)) / alone[b]
    return AffinityTable(tasks, gain)


__all__ = ["AffinityTable", "pairwise_affinity"]
