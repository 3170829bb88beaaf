"""Exact selection on sparse loss tables of any number of tasks: bounds, local search, branch and bound.

The dynamic programme of :mod:`grouping.exact` visits every task subset (3^n work): it is the fastest exact
method for the paper's dense candidate sets up to about 16 tasks and impossible beyond 20. Tables of many
tasks hold only some candidates (singles, pairs and promising groups; Standley et al., ICML 2020, call the
full 2^n set intractable beyond a few tasks). :class:`SparseSolver` solves the mixed-integer programme of
:mod:`grouping.lagrangian` exactly without touching task subsets, budget after budget in ascending order,
reusing each budget's work for the next:

1. **Feasibility**: the cheapest set of networks training every task (an exact set cover by HiGHS,
   :mod:`grouping.highs`); smaller budgets are infeasible.
2. **Incumbent**: the previous budget's selection (still within a larger budget), or that cover, improved by
   the add/swap/drop local search of :mod:`grouping.local_search`; and the local search from the Lagrangian
   relaxation's rounded selection; the better one.
3. **Bound**: the Lagrangian bound (the LP bound, by subgradient steps started from the previous budget's
   multipliers).
4. **Reduction**: networks whose forced-in bound exceeds the incumbent's total (plus ``RTOL``) cannot be in
   any selection as good; they are dropped. Bound = incumbent and nothing else left: proven, and the only
   optimum.
5. **Branch and bound** (:mod:`grouping.branch_bound`) on what is left, which also enumerates every selection
   tied with the optimum (within ``RTOL``); the documented tie-breaking (:mod:`grouping.ties`) picks among
   them: the DP's choice.

**Time limit**: one ``time_limit`` per call of :meth:`SparseSolver.prepare` (a whole budget curve), shared by
its budgets: each gets the time left divided by the budgets left; when every budget had its turn, the time
still left resumes the unfinished searches in turn. A budget whose search did not finish returns its best
selection with its *proven optimality gap* ``(total - bound) / |total|`` (the bound: the lowest bound of the
open nodes, or of the root, or the proven optimum of a larger budget). The set cover always runs to the end.

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

from grouping.branch_bound import MAX_TIES, BranchAndBound, Search
from grouping.exact import RTOL, budget_units, cost_units
from grouping.heads import Heads
from grouping.highs import min_cover
from grouping.lagrangian import bound_margin, forced_in_bounds, lagrangian_bound, relaxed
from grouping.local_search import improve
from grouping.ties import canonical_choice, near, prune

logger = logging.getLogger(__name__)

MAX_HEADS = 5_000_000
"""Most (network, task) heads the sparse solver takes (memory: a dense (networks x tasks) matrix and a MILP
with a column per head)."""


@dataclass(frozen=True)
class SparseChoice:
    """The selection for one budget: rows, total, proven lower bound and relative optimality gap (0 when
    proven optimal); ``canonical``: the documented tie-breaking was applied to every tie (False when the time
    limit or :data:`grouping.branch_bound.MAX_TIES` cut the enumeration short)."""

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
        self._open: dict[int, tuple[BranchAndBound, float]] = {}  # unfinished searches and root bounds

    # -- queries ------------------------------------------------------------------------------------------
    def units(self, budget: float) -> int:
        return budget_units(budget, self.unit)

    def cheapest_units(self) -> int:
        """Fewest cost units of a set of networks training every task (an exact set cover by HiGHS, never cut
        by the time limit: it decides which budgets are feasible; milliseconds on the tables here)."""
        if self._cover is None:
            units, rows, status = min_cover(self.heads)  # to the end: which budgets are feasible
            if units is None:
                raise ValueError(
                    f"could not find the cheapest set of networks that trains every task ({status})"
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
            self._log(b, started)
        while self._open and not clock.out():  # time left: resume the unfinished searches, in turn
            pending = sorted(self._open)
            for i, b in enumerate(pending):
                started = time.perf_counter()
                search, root = self._open[b]
                turn = _Clock(clock.share(len(pending) - i))
                self._solved[b] = self._finish(b, search.run(turn.out), root)
                self._log(b, started)
        self._tighten()

    def _log(self, b: int, started: float) -> None:
        choice = self._solved[b]
        logger.info(
            "sparse solver: %g SNT in %.2f s, %s",
            float(b * self.unit),
            time.perf_counter() - started,
            "infeasible" if choice is None else f"total {choice.value:.6g}, gap {choice.gap:.3g}",
        )

    def _tighten(self) -> None:
        """A budget's optimum is at least any larger budget's: raise the proven bounds (and shrink the gaps)
        of unfinished budgets with the bounds of larger ones."""
        above = -math.inf
        for b in sorted(self._solved, reverse=True):
            choice = self._solved[b]
            if choice is None:
                continue
            if choice.gap > 0 and above > choice.bound:
                bound = min(above, choice.value)
                gap = (
                    0.0
                    if near(choice.value, bound)
                    else (choice.value - bound) / max(abs(choice.value), 1e-12)
                )
                self._solved[b] = SparseChoice(choice.rows, choice.value, bound, gap, choice.canonical)
            above = max(above, self._solved[b].bound)  # type: ignore[union-attr]

    def _start(self, b: int) -> list[int]:
        below = [u for u, c in self._solved.items() if u <= b and c is not None]
        if below:
            return list(self._solved[max(below)].rows)  # type: ignore[union-attr]
        self.cheapest_units()
        return list(self._cover[1])  # type: ignore[index]

    def _second_start(
        self, rows: list[int], value: float, u: np.ndarray, b: int, share: _Clock
    ) -> tuple[list[int], float]:
        """The better of ``rows`` and the local search from the relaxation's rounded selection (a different
        start: the previous budget's selection can trap the local search)."""
        _, x, _ = relaxed(self.heads, u, b)
        rounded = [int(r) for r in np.flatnonzero(x > 0.5)]
        if not rounded or int(self.heads.units[rounded].sum()) > b or self.heads.value(rounded) == math.inf:
            return rows, value
        other = improve(self.heads, rounded, b, stop=share.out)
        other_value = self.heads.value(other)
        return (other, other_value) if other_value < value else (rows, value)

    def _solve(self, b: int, clock: _Clock, parts: int) -> SparseChoice | None:
        if b < self.cheapest_units():
            return None
        heads = self.heads
        share = _Clock(clock.share(parts))
        rows = improve(heads, self._start(b), b, stop=share.out)
        value = heads.value(rows)
        lag = lagrangian_bound(heads, b, value, self._multipliers, stop=share.out)
        self._multipliers = u = lag.multipliers
        rows, value = self._second_start(rows, value, u, b, share)
        best = prune(heads, rows, self.rank)
        cap = value + RTOL * abs(value) + bound_margin(heads, u, value)
        keep = forced_in_bounds(heads, u, b) <= cap
        keep[list(best)] = True
        if near(value, lag.bound) and int(keep.sum()) == len(best):
            return SparseChoice(best, heads.value(best), lag.bound, 0.0, True)  # the only optimum
        logger.debug("sparse solver: branch and bound on %d of %d networks", int(keep.sum()), heads.n_rows)
        reduced = keep[heads.rows]
        view = Heads(
            heads.n,
            heads.units,
            heads.dense,
            heads.rows[reduced],
            heads.tasks[reduced],
            heads.values[reduced],
        )
        search = BranchAndBound(view, b, best, u, self.rank)
        self._open[b] = (search, lag.bound)
        return self._finish(b, search.run(share.out), lag.bound)

    def _finish(self, b: int, search: Search, root: float) -> SparseChoice:
        """The choice from a (possibly unfinished) search; a finished one leaves the open searches."""
        chosen = canonical_choice(self.heads, search.ties, self.rank)
        total = self.heads.value(chosen)
        if search.finished:
            del self._open[b]
            if not search.all_ties:
                logger.warning(
                    "sparse solver: more than %d tied selections at %g SNT: the tie-breaking rule picked "
                    "among the first ones found",
                    MAX_TIES,
                    float(b * self.unit),
                )
            return SparseChoice(chosen, total, total, 0.0, search.all_ties)
        bound = max(root, search.bound)
        if near(total, bound):
            return SparseChoice(chosen, total, bound, 0.0, False)
        gap = max(0.0, (total - bound) / max(abs(total), 1e-12))
        return SparseChoice(chosen, total, bound, gap, False)


__all__ = ["MAX_HEADS", "SparseChoice", "SparseSolver"]
