"""Branch and bound over the table's networks with Lagrangian bounds, branching on how well a task is served.

Used by :mod:`grouping.sparse` once the root bound (:mod:`grouping.lagrangian`) has not closed the gap. A node
restricts the *heads* (network, task) that may serve and the networks chosen for sure; its bound is the
Lagrangian bound on what is left, warm-started from its parent's multipliers. Branching, as in the "radius"
branching of p-median solvers: for the task ``t`` the relaxation serves worst (``|1 - sum_s x_s| `` largest)
and a loss threshold ``theta`` (the mean of the losses the relaxation serves it with):

* left: ``t`` is served with a loss ``<= theta``: heads of ``t`` above ``theta`` are removed;
* right: ``t`` is served with a loss ``> theta``: every network with a loss ``<= theta`` for ``t`` is removed
  (it would serve ``t`` better if chosen).

A node whose relaxation is integral and serves every task once is solved: its selection ``T`` is the node's
optimum. ``T`` is recorded (if within ``RTOL`` of the best total) and split off: children force in the first
``i - 1`` networks of ``T`` and remove the ``i``-th, so the ties of every node are enumerated (supersets of
``T`` are left out: they tie at a higher cost). Nodes whose bound exceeds the best total plus ``RTOL`` are
pruned; so when the search ends, every selection within ``RTOL`` of the optimum has been recorded and the
documented tie-breaking (:mod:`grouping.ties`) applies exactly. Each node also removes the networks whose
forced-in bound exceeds that threshold (reduced-cost fixing) and tries the relaxation's rounded selection as
an incumbent. Best-first; a time limit ends it with the lowest open bound as the proven bound.

Not in the paper, whose branch and bound enumerates sets of networks without any loss bound.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from grouping.exact import RTOL
from grouping.heads import Heads
from grouping.lagrangian import bound_margin, forced_in_bounds, lagrangian_bound, relaxed
from grouping.local_search import improve
from grouping.ties import prune

logger = logging.getLogger(__name__)

NODE_ITERATIONS = 15
"""Subgradient steps per node (warm-started from the parent): more nodes with rougher bounds close the gap
faster than fewer, tighter ones (measured on the bench's tables: 15 proves what 60 and 8 leave open)."""

MAX_TIES = 64
"""Most tied selections of the least cost and fewest networks recorded per budget; beyond (degenerate tables,
e.g. equal losses everywhere) the search stops enumerating ties and only proves the optimum; the
tie-breaking then picks among those found."""


@dataclass(frozen=True)
class Search:
    """What the search found: the selections within ``RTOL`` of the best total (``ties``, the best first),
    the proven lower bound, whether the search finished (then ``bound`` is the optimum) and its node count."""

    ties: list[tuple[int, ...]]
    bound: float
    finished: bool
    nodes: int
    all_ties: bool = True


@dataclass(order=True)
class _Node:
    bound: float
    order: int
    heads: np.ndarray = field(compare=False)  # packed bool mask of allowed heads
    forced: tuple[int, ...] = field(compare=False)
    multipliers: np.ndarray = field(compare=False)
    budget: int = field(compare=False)  # the budget, or the ties' cost once the node can only hold ties


def _view(heads: Heads, mask: np.ndarray) -> Heads:
    return Heads(heads.n, heads.units, heads.dense, heads.rows[mask], heads.tasks[mask], heads.values[mask])


class _Best:
    """Incumbent total and the selections tied with it; a new incumbent is polished by the local search."""

    def __init__(self, heads: Heads, rank: np.ndarray, rows: tuple[int, ...], budget: int) -> None:
        self.heads, self.rank, self.budget = heads, rank, budget
        self.value = heads.value(rows)
        self.ties: dict[tuple[int, ...], float] = {rows: self.value}

    def tie_cap(self) -> float:
        return self.value + RTOL * abs(self.value)

    @property
    def collecting(self) -> bool:
        return len(self.ties) < MAX_TIES

    def cap(self) -> float:
        """Nodes with a larger bound are pruned: beyond the ties while collecting them, else below them."""
        return self.tie_cap() if self.collecting else self.value - RTOL * abs(self.value)

    def offer(self, rows: tuple[int, ...]) -> None:
        value = self.heads.value(rows)
        if value > self.tie_cap() or (not self.collecting and value >= self.value):
            return
        rows = prune(self.heads, rows, self.rank)
        value = self.heads.value(rows)
        if value < self.value:
            polished = tuple(improve(self.heads, rows, self.budget))
            if self.heads.value(polished) < value:
                rows = prune(self.heads, polished, self.rank)
                value = self.heads.value(rows)
        self.ties[rows] = value
        if value < self.value:
            self.value = value
        # only the cheapest, then the fewest networks among the ties can be chosen (rules 2 and 3)
        ties = {r: v for r, v in self.ties.items() if v <= self.tie_cap()}
        least = min((self.heads.cost(r), len(r)) for r in ties)
        self.ties = {r: v for r, v in ties.items() if (self.heads.cost(r), len(r)) == least}

    def improves(self, bound: float) -> bool:
        """Whether a node with this bound may hold a selection better than the ties (beyond ``RTOL``)."""
        return bound < self.value - RTOL * abs(self.value)

    def tie_cost(self) -> int:
        """The cost of the recorded ties: a node that can only hold ties needs no larger budget."""
        return min(self.heads.cost(r) for r in self.ties)

    def ranked(self) -> list[tuple[int, ...]]:
        return sorted(self.ties, key=lambda r: (self.ties[r], r))


class BranchAndBound:
    """The search of one budget (see the module doc), resumable: :meth:`run` until ``stop()``, then again.

    ``start``: an incumbent (feasible), ``multipliers``: the root's Lagrangian multipliers, ``rank``:
    tie-breaking ranks."""

    def __init__(
        self,
        heads: Heads,
        budget: int,
        start: tuple[int, ...],
        multipliers: np.ndarray,
        rank: np.ndarray,
    ) -> None:
        self.heads, self.budget = heads, budget
        self.best = _Best(heads, rank, tuple(sorted(start)), budget)
        self._counter = itertools.count()
        root = heads.units[heads.rows] <= budget
        self._heap = [_Node(-np.inf, next(self._counter), np.packbits(root), (), multipliers, budget)]
        self.nodes = 0

    def run(self, stop: Callable[[], bool] | None = None) -> Search:
        heap, best, n_heads = self._heap, self.best, len(self.heads.rows)
        while heap:
            if stop is not None and stop():
                bound = min(best.value, heap[0].bound)
                return Search(best.ranked(), bound, False, self.nodes, best.collecting)
            node = heapq.heappop(heap)
            if node.bound > best.cap():
                continue
            self.nodes += 1
            if self.nodes % 200 == 0:
                logger.debug(
                    "branch and bound: %d nodes, %d open, bound %.6g, best %.6g",
                    self.nodes,
                    len(heap),
                    node.bound,
                    best.value,
                )
            mask = np.unpackbits(node.heads, count=n_heads).astype(bool)
            for bound, child, forced, u, budget in _expand(self.heads, mask, node, best):
                heapq.heappush(heap, _Node(bound, next(self._counter), np.packbits(child), forced, u, budget))
        return Search(best.ranked(), best.value, True, self.nodes, best.collecting)


def branch_and_bound(
    heads: Heads,
    budget: int,
    start: tuple[int, ...],
    multipliers: np.ndarray,
    rank: np.ndarray,
    *,
    stop: Callable[[], bool] | None = None,
) -> Search:
    """One :class:`BranchAndBound` run to the end or to ``stop()``."""
    return BranchAndBound(heads, budget, start, multipliers, rank).run(stop)


def _node_bound(view: Heads, budget: int, node: _Node, forced: np.ndarray, best: _Best, margin: float):
    return lagrangian_bound(
        view,
        budget,
        best.cap() + margin,
        node.multipliers,
        max_iterations=NODE_ITERATIONS,
        patience=5,
        forced=forced,
    )


def _expand(heads: Heads, mask: np.ndarray, node: _Node, best: _Best):
    """Bound one node; yield its children ``(bound, head mask, forced, multipliers, budget)``.

    A node whose bound shows it holds no selection better than the ties can only add ties, and only ties of
    the ties' cost or less are kept (rule 2 of :mod:`grouping.ties`): it is bounded again (and its children
    searched) within that cost. On degenerate tables (many equal losses) this ends the otherwise endless
    enumeration of costlier ties."""
    view = _view(heads, mask)
    if np.bincount(view.tasks, minlength=heads.n).min() == 0:
        return  # some task can no longer be served
    forced = np.zeros(heads.n_rows, dtype=bool)
    forced[list(node.forced)] = True
    if heads.cost(node.forced) > node.budget:
        return
    margin = bound_margin(heads, node.multipliers, best.value)
    budget = node.budget
    lag = _node_bound(view, budget, node, forced, best, margin)
    if lag.bound > best.cap() + margin:
        return
    if not best.improves(lag.bound) and best.tie_cost() < budget:
        budget = best.tie_cost()
        if heads.cost(node.forced) > budget:
            return
        lag = _node_bound(view, budget, node, forced, best, margin)
        if lag.bound > best.cap() + margin:
            return
    u = lag.multipliers
    bound, x, reduced = relaxed(view, u, budget, forced)
    bound = max(bound, lag.bound)
    # reduced-cost fixing: networks that cannot be in a selection within the threshold
    useless = forced_in_bounds(view, u, budget, forced) > best.cap() + margin
    useless[forced] = False
    mask = mask & ~useless[heads.rows]
    view = _view(heads, mask)
    rounded = tuple(int(r) for r in np.flatnonzero((x > 0.5) & ~useless))
    if rounded and int(heads.units[list(rounded)].sum()) <= budget:
        best.offer(rounded)
    if not np.all(np.bincount(view.tasks, minlength=heads.n)):
        return
    reduced = view.values - u[view.tasks]
    uses = (x[view.rows] > 1e-9) & (reduced < 0)
    served = np.bincount(view.tasks, x[view.rows] * uses, minlength=heads.n)
    excess = np.abs(1.0 - served)
    integral = np.all((x < 1e-9) | (x > 1 - 1e-9))
    if integral and excess.max() < 1e-9:
        yield from _split_off(heads, mask, node, rounded, bound, u, budget)
        return
    t = _branch_task(view, heads.n, excess)
    if t is None:  # no task to split by loss: branch on a network (chosen for sure / removed)
        free = [int(r) for r in np.flatnonzero((x > 1e-9) & ~forced & ~useless)]
        if not free:  # only forced networks are used: the node holds the forced set and its supersets
            return
        pick = max(free, key=lambda r: (min(x[r], 1 - x[r]), -r))
        yield bound, mask, tuple(sorted((*node.forced, pick))), u, budget
        yield bound, mask & (heads.rows != pick), node.forced, u, budget
        return
    own = np.flatnonzero(view.tasks == t)
    values = view.values[own]
    weights = x[view.rows[own]] * (reduced[own] < 0)
    theta = float(np.average(values, weights=weights)) if weights.sum() > 0 else float(np.median(values))
    low = values <= theta
    if low.all() or not low.any():
        low = values <= float(np.min(values))  # split off the best loss level
    index = np.flatnonzero(mask)
    left = mask.copy()
    left[index[own[~low]]] = False
    right = mask & ~np.isin(heads.rows, view.rows[own[low]])
    yield bound, left, node.forced, u, budget
    if not set(node.forced) & set(view.rows[own[low]].tolist()):
        yield bound, right, node.forced, u, budget


def _branch_task(view: Heads, n: int, excess: np.ndarray) -> int | None:
    """The task served worst by the relaxation among those whose allowed heads have two loss levels or
    more."""
    lowest = np.full(n, np.inf)
    highest = np.full(n, -np.inf)
    np.minimum.at(lowest, view.tasks, view.values)
    np.maximum.at(highest, view.tasks, view.values)
    splittable = highest > lowest
    if not splittable.any():
        return None
    score = np.where(splittable, excess, -1.0)
    t = int(np.argmax(score))
    return t if score[t] > 1e-9 else None


def _split_off(heads, mask, node, rows, bound, u, budget):
    """Children covering the node without the selection ``rows`` and its supersets."""
    free = [r for r in rows if r not in node.forced]
    forced = list(node.forced)
    for r in free:
        child = mask & (heads.rows != r)
        yield bound, child, tuple(sorted(forced)), u, budget
        forced.append(r)


__all__ = ["NODE_ITERATIONS", "BranchAndBound", "Search", "branch_and_bound"]
