"""The two exact engines behind :class:`grouping.solver.GroupingSolver` and the rule that picks one.

* ``dp``: the dynamic programme over task subsets of :mod:`grouping.exact` (3^n work, whatever the number of
  candidates; at most :data:`grouping.exact.MAX_TASKS` tasks). One run answers every budget.
* ``milp``: the sparse solver of :mod:`grouping.sparse` (Lagrangian bounds, local search, HiGHS): work grows
  with the number of candidates and their tasks, not with 2^n; a time limit gives the best selection found
  and its proven optimality gap.

``method="auto"`` (the default) applies :func:`auto_method`: the DP up to :data:`DP_ALWAYS_MAX_TASKS` tasks
(it takes well under a second there), the DP up to 20 tasks when the table is dense (at least
:data:`DP_DENSE_FRACTION` of the 2^n subsets: the MILP grows with the rows, the DP does not), the MILP
otherwise. Both give the same optimum and, on ties, the same documented choice (``docs/solver.md``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from grouping.exact import MAX_TASKS, ExactSolver, budget_units, cost_units, min_cover_units
from grouping.sparse import SparseSolver

Method = Literal["auto", "dp", "milp"]

DP_ALWAYS_MAX_TASKS = 12
"""Up to this many tasks ``auto`` always uses the DP (its whole sweep takes under a second)."""

DP_DENSE_FRACTION = 0.125
"""From :data:`DP_ALWAYS_MAX_TASKS` + 1 to 20 tasks, ``auto`` uses the DP if the table has at least this
fraction of the 2^n task subsets as rows."""


@dataclass(frozen=True)
class EngineChoice:
    """The rows (table order indices) chosen at a budget and their proven relative optimality gap (0 =
    optimal)."""

    rows: tuple[int, ...]
    gap: float


class Engine(Protocol):
    def cheapest_units(self) -> int:
        """Fewest cost units of a selection training every task."""
        ...

    def prepare(self, budgets: Iterable[float]) -> None:
        """Solve these budgets now (the sparse engine shares its time limit between them)."""
        ...

    def choose(self, budget: float) -> EngineChoice | None:
        """The choice at ``budget`` (None if no selection within it trains every task)."""
        ...

    def optimum(self, budget: float) -> float:
        """The total at ``budget`` (inf if infeasible)."""
        ...


@dataclass(frozen=True)
class EngineInput:
    """What both engines are built from (rows in table order)."""

    n: int
    masks: np.ndarray
    capacities: np.ndarray
    weighted: np.ndarray
    rank: np.ndarray
    max_budget: float
    time_limit: float | None


class DpEngine:
    """:class:`grouping.exact.ExactSolver` behind the :class:`Engine` interface (the time limit does not
    apply: the DP has no answer before it ends)."""

    def __init__(self, data: EngineInput) -> None:
        self.exact = ExactSolver(
            data.n, data.masks, data.capacities, data.weighted, data.rank, data.max_budget
        )

    def cheapest_units(self) -> int:
        units = self.exact.cheapest_units()
        if units is None:
            units = min_cover_units(self.exact.n, self.exact.masks, self.exact.row_units)
        return units

    def prepare(self, budgets: Iterable[float]) -> None:
        return None

    def choose(self, budget: float) -> EngineChoice | None:
        choice = self.exact.choose(budget)
        if choice is None:
            return None
        return EngineChoice(tuple(sorted({row for _, row in choice.blocks})), 0.0)

    def optimum(self, budget: float) -> float:
        return self.exact.optimum(budget)


class MilpEngine:
    """:class:`grouping.sparse.SparseSolver` behind the :class:`Engine` interface."""

    def __init__(self, data: EngineInput) -> None:
        self._sparse = SparseSolver(data.capacities, data.weighted, data.rank, time_limit=data.time_limit)

    def cheapest_units(self) -> int:
        return self._sparse.cheapest_units()

    def prepare(self, budgets: Iterable[float]) -> None:
        self._sparse.prepare(budgets)

    def choose(self, budget: float) -> EngineChoice | None:
        choice = self._sparse.choose(budget)
        return None if choice is None else EngineChoice(choice.rows, choice.gap)

    def optimum(self, budget: float) -> float:
        return self._sparse.optimum(budget)


ENGINES: dict[str, type[DpEngine] | type[MilpEngine]] = {"dp": DpEngine, "milp": MilpEngine}


def auto_method(n_tasks: int, n_rows: int) -> str:
    """``dp`` or ``milp`` for a table of ``n_tasks`` tasks and ``n_rows`` rows (see the module doc)."""
    if n_tasks <= DP_ALWAYS_MAX_TASKS:
        return "dp"
    if n_tasks <= MAX_TASKS and n_rows >= DP_DENSE_FRACTION * 2**n_tasks:
        return "dp"
    return "milp"


def resolve_method(method: str, n_tasks: int, n_rows: int) -> str:
    """The engine to use: ``method`` checked (ValueError naming the choices or the DP's task limit)."""
    if method == "auto":
        return auto_method(n_tasks, n_rows)
    if method not in ENGINES:
        raise ValueError(f"unknown method {method!r}; choose one of auto, {', '.join(ENGINES)}")
    if method == "dp" and n_tasks > MAX_TASKS:
        raise ValueError(
            f"method 'dp' handles at most {MAX_TASKS} tasks (it visits 3^n task-subset pairs); the table has "
            f"{n_tasks}: use method 'milp' or 'auto'"
        )
    return method


def check_time_limit(time_limit: float | None) -> float | None:
    """``time_limit`` in seconds, or None (no limit); ValueError unless a finite number > 0."""
    if time_limit is None:
        return None
    if isinstance(time_limit, bool) or not isinstance(time_limit, int | float):
        raise ValueError(f"time_limit must be a number of seconds > 0, got {time_limit!r}")
    if not (math.isfinite(time_limit) and time_limit > 0):
        raise ValueError(f"time_limit must be a number of seconds > 0, got {time_limit!r}")
    return float(time_limit)


def covers_units(budget: float, capacities: np.ndarray, cheapest: int) -> bool:
    """Whether ``budget`` (SNT) allows ``cheapest`` cost units, counted exactly."""
    unit, _ = cost_units(capacities)
    return budget_units(budget, unit) >= cheapest


__all__ = [
    "DP_ALWAYS_MAX_TASKS",
    "DP_DENSE_FRACTION",
    "ENGINES",
    "DpEngine",
    "Engine",
    "EngineChoice",
    "EngineInput",
    "Method",
    "MilpEngine",
    "auto_method",
    "check_time_limit",
    "covers_units",
    "resolve_method",
]
