"""The loss table as the sparse solver sees it: one entry ("head") per (network, task it trains).

Standley et al. (ICML 2020) give every network one decoder head per task it trains; the selection problem
only ever reads the weighted selection loss of such heads. :class:`Heads` keeps them in two forms:

* a flat list ``(row, task, value)`` sorted by row (what the Lagrangian bound and the MILP iterate over);
* a dense ``(R, n)`` matrix with ``+inf`` where a network has no head for a task (what the local search and
  the exact value of a set of networks use).

Costs are integer numbers of cost units (the gcd of the capacities, as in :mod:`grouping.exact`), so budget
constraints are exact integer constraints.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Heads:
    """Weighted losses of a table's heads; ``units[r]`` is the cost of row ``r`` in cost units."""

    n: int
    units: np.ndarray  # (R,) int64
    dense: np.ndarray  # (R, n) float64, +inf where the row has no head for the task
    rows: np.ndarray  # (H,) int64, sorted
    tasks: np.ndarray  # (H,) int64
    values: np.ndarray  # (H,) float64

    @classmethod
    def from_weighted(cls, weighted: np.ndarray, units: np.ndarray) -> Heads:
        """From the ``(R, n)`` weighted losses (NaN or inf where a row has no head) and row cost units."""
        weighted = np.asarray(weighted, dtype=np.float64)
        present = np.isfinite(weighted)
        dense = np.where(present, weighted, np.inf)
        rows, tasks = np.nonzero(present)
        return cls(
            n=weighted.shape[1],
            units=np.asarray(units, dtype=np.int64),
            dense=dense,
            rows=rows.astype(np.int64),
            tasks=tasks.astype(np.int64),
            values=dense[rows, tasks],
        )

    @property
    def n_rows(self) -> int:
        return len(self.units)

    def served(self, rows: Iterable[int]) -> np.ndarray:
        """Per task, its lowest weighted loss among ``rows`` (+inf for a task none of them trains)."""
        idx = list(rows)
        if not idx:
            return np.full(self.n, np.inf)
        return self.dense[idx].min(axis=0)

    def value(self, rows: Iterable[int]) -> float:
        """The objective of a set of networks (exact sum of each task's lowest loss; inf if a task is
        unserved)."""
        best = self.served(rows)
        if not np.all(np.isfinite(best)):
            return math.inf
        return math.fsum(best.tolist())

    def cost(self, rows: Iterable[int]) -> int:
        return int(sum(int(self.units[r]) for r in rows))


__all__ = ["Heads"]
