"""Exact selection on sparse loss tables of any number of tasks: bounds, local search and HiGHS.

The dynamic programme of :mod:`grouping.exact` visits every task subset (3^n work): it is the fastest exact
method for the paper's dense candidate sets up to about 16 tasks and impossible beyond 20. Tables of many
tasks hold only some candidates (singles, pairs and promising groups; Standley et al., ICML 2020, section 5
already call the full 2^n set intractable). :class:`SparseSolver` solves them exactly without touching task
subsets, budget after budget in ascending order, reusing each budget's work for the next:

1. **Incumbent**: the previous budget's selection (still within a larger budget), or the cheapest set that
   trains every task (an exact set cover), improved by the add/swap/drop local search of
   :mod:`grouping.local_search`.
2. **Bound**: the Lagrangian bound of :mod:`grouping.lagrangian` (the LP bound, by subgradient steps started
   from the previous budget's multipliers). Bound = incumbent: proven optimal, no MILP needed.
3. **Reduction**: networks whose forced-in bound exceeds the incumbent's value cannot be in any selection
   as good; the MILP sees only the others (often a few dozen of thousands).
4. **MILP**: HiGHS on the reduced model (:mod:`grouping.highs`) with the incumbent as its start, within the
   time left. Proven optimal (relative gap ``MIP_REL_GAP``), or stopped by the time limit: then the best
   selection found and its *proven optimality gap* ``(total - bound) / |total|``, the bound being the best of
   the Lagrangian and HiGHS's dual bound.
5. **Ties**: an optimum is made canonical as the DP would choose it (:mod:`grouping.ties`): if the bounds show
   that no other network can take part in a selection within ``RTOL`` of it and no network can be dropped,
   it is the only one; otherwise HiGHS enumerates the tied selections (no better than the optimum's total
   plus ``RTOL``, no dearer than it, each new one excluded by a cut) and the documented rule picks one.

Departure from the paper: its branch and bound has no loss bound and no time limit; this solver is exact when
it finishes and otherwise says how far from optimal its answer can be.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from grouping.exact import RTOL, budget_units, cost_units
from grouping.heads import Heads
from grouping.highs import min_cover, solve_selection
from grouping.lagrangian import bound_margin, forced_in_bounds, lagrangian_bound
from grouping.local_search import improve
from grouping.ties import canonical_choice, near, prune

logger = logging.getLogger(__name__)

MAX_TIES = 64
"""Most tied optimal selections enumerated for one budget (beyond: the rule picks among those found)."""

MAX_HEADS = 5_000_000
"""Most (network, task) heads the sparse solver takes (memory: a dense (networks x tasks) matrix and a MILP
with a column per head)."""


@dataclass(frozen=True)
class SparseChoice:
    """The selection for one budget: rows, total, proven lower bound and relative optimality gap (0 when
    proven optimal); ``canonical``: the documented tie-breaking was applied to every tie (False when the time
    limit or :data:`MAX_TIES` cut the enumeration short, or the optimum is not proven)."""

    rows: tuple[int, ...]
    value: float
    bound: float
    gap: float
    canonical: bool


class _Clock:
    def __init__(self, seconds: float | None) -> None:
        self.deadline = None if seconds is None else time.monotonic() + seconds

    def left(self) -> float | None:
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    def share(self, parts: int) -> float | None:
        left = self.left()
        return None if left is None else left / max(1, parts)

    def out(self) -> bool:
        left = self.left()
        return left is not None and left <= 0.0


class SparseSolver:
    """Exact solver for one selection table of any size (see the module doc).

    ``costs`` (R,) capacities in SNT, ``weighted`` (R, n) weighted losses (NaN where a row has no head),
    ``rank`` (R,) tie-breaking ranks (lower wins), ``time_limit`` seconds for each call that solves budgets
    (shared by the budgets of that call; None = no limit).
    """

    def __init__(
        self,
        costs: np.ndarray,
        weighted: np.ndarray,
        rank: np.ndarray,
        *,
        time_limit: float | None = None,
    ) -> None:
        if len(costs) == 0:
            raise ValueError("no candidates: the loss table has no rows")
        heads = int(np.isfinite(weighted).sum())
        if heads > MAX_HEADS:
            raise ValueError(
                f"the table has {heads:,} (network, task) losses; the sparse solver takes at most "
                f"{MAX_HEADS:,}: keep fewer candidate networks (e.g. grouping.candidate_groups)"
            )
        self.unit, self.row_units = cost_units(costs)
        self.heads = Heads.from_weighted(weighted, self.row_units)
        self.rank = np.asarray(rank, dtype=np.int64)
        self.time_limit = time_limit
        self._solved: dict[int, SparseChoice | None] = {}
        self._cover: tuple[int, tuple[int, ...]] | None = None
        self._multipliers: np.ndarray | None = None

    # -- queries ------------------------------------------------------------------------------------------
    def units(self, budget: float) -> int:
        return budget_units(budget, self.unit)

    def cheapest_units(self) -> int:
        """Fewest cost units of a set of networks training every task (an exact set cover by HiGHS)."""
        if self._cover is None:
            units, rows, status = min_cover(self.heads, self.time_limit)
            if units is None:
                raise ValueError(
                    f"could not find the cheapest set of networks that trains every task ({status}); "
                    "give a larger time_limit"
                )
            self._cover = (units, rows)
        return self._cover[0]

    def choose(self, budget: float) -> SparseChoice | None:
        """The selection at ``budget`` (None if no selection within it trains every task)."""
        b = self.units(budget)
        if b not in self._solved:
            self.prepare([budget])
        return self._solved[b]

    def optimum(self, budget: float) -> float:
        """The total of :meth:`choose` (optimal when its gap is 0; inf if infeasible)."""
        choice = self.choose(budget)
        return math.inf if choice is None else choice.value

    # -- solving ------------------------------------------------------------------------------------------
    def prepare(self, budgets: Iterable[float]) -> None:
        """Solve these budgets (ascending; each reuses the previous one's selection and multipliers), within
        one ``time_limit`` shared by them: each budget gets the time left divided by the budgets left."""
        clock = _Clock(self.time_limit)
        todo = sorted({self.units(b) for b in budgets} - set(self._solved))
        for i, b in enumerate(todo):
            started = time.perf_counter()
            self._solved[b] = self._solve(b, clock, len(todo) - i)
            choice = self._solved[b]
            logger.info(
                "sparse solver: %g SNT in %.2f s, %s",
                float(b * self.unit),
                time.perf_counter() - started,
                "infeasible" if choice is None else f"total {choice.value:.6g}, gap {choice.gap:.3g}",
            )

    def _start(self, b: int) -> list[int]:
        below = [u for u, c in self._solved.items() if u <= b and c is not None]
        if below:
            return list(self._solved[max(below)].rows)  # type: ignore[union-attr]
        self.cheapest_units()
        return list(self._cover[1])  # type: ignore[index]

    def _solve(self, b: int, clock: _Clock, parts: int) -> SparseChoice | None:
        if b < self.cheapest_units():
            return None
        heads = self.heads
        rows = improve(heads, self._start(b), b, stop=clock.out)
        value = heads.value(rows)
        lag = lagrangian_bound(heads, b, value, self._multipliers, stop=clock.out)
        self._multipliers = u = lag.multipliers
        bound = lag.bound
        proven = near(value, bound)
        if not proven and not clock.out():
            cap = value + RTOL * abs(value) + bound_margin(heads, u, value)
            keep = forced_in_bounds(heads, u, b) <= cap
            keep[rows] = True
            logger.debug("sparse solver: MILP on %d of %d networks", int(keep.sum()), heads.n_rows)
            out = solve_selection(heads, keep, b, start=rows, time_limit=clock.share(parts))
            if out.rows is not None and heads.value(out.rows) < value:
                rows, value = list(out.rows), heads.value(out.rows)
            bound = max(bound, out.bound)
            proven = out.status == "optimal" or near(value, bound)
        if not proven:
            gap = max(0.0, (value - bound) / max(abs(value), 1e-12))
            return SparseChoice(tuple(sorted(rows)), value, bound, gap, False)
        chosen, canonical = self._canonical(rows, value, b, u, clock, parts)
        return SparseChoice(chosen, heads.value(chosen), min(bound, value), 0.0, canonical)

    def _canonical(
        self, rows: list[int], value: float, b: int, u: np.ndarray, clock: _Clock, parts: int
    ) -> tuple[tuple[int, ...], bool]:
        """The documented choice among the selections tied with the optimum ``rows`` (see the module doc)."""
        heads = self.heads
        best = prune(heads, rows, self.rank)
        cap = value + RTOL * abs(value)
        keep = forced_in_bounds(heads, u, b) <= cap + bound_margin(heads, u, value)
        keep[list(best)] = True
        if int(keep.sum()) == len(best):
            return best, True  # no other network fits a tie, and `best` needs all of its networks
        ties, cuts, cost_cap, complete = [best], [best], heads.cost(best), False
        while len(ties) < MAX_TIES and not clock.out():
            out = solve_selection(
                heads, keep, cost_cap, objective_cap=cap, exclude=cuts, time_limit=clock.share(parts)
            )
            if out.status == "infeasible":
                complete = True
                break
            if out.rows is None:
                break
            found = prune(heads, out.rows, self.rank)
            cuts.append(found)
            if near(heads.value(found), value):
                ties.append(found)
                cost_cap = min(cost_cap, heads.cost(found))
        if not complete:
            logger.warning(
                "sparse solver: %d tied selections at %g SNT, enumeration cut short: the tie-breaking rule "
                "picked among those found",
                len(ties),
                float(b * self.unit),
            )
        return canonical_choice(heads, ties, self.rank), complete


__all__ = ["MAX_HEADS", "MAX_TIES", "SparseChoice", "SparseSolver"]
