"""Lower bounds for the budgeted selection problem: Lagrangian relaxation of "every task served once".

The mixed-integer model of :mod:`grouping.sparse` has binaries ``x_s`` (network ``s`` chosen) and
``y_st in [0, 1]`` (task ``t`` served by ``s``)::

    min  sum_{s, t in s} w_t L[s, t] y_st   s.t.  sum_s y_st = 1 (every t),  y_st <= x_s,
                                                  sum_s cost_s x_s <= B

Relaxing the assignment rows with multipliers ``u_t`` leaves, for fixed ``u``, a knapsack over networks:
network ``s`` is worth ``-rho_s(u)`` with ``rho_s(u) = sum_{t in s} min(0, w_t L[s, t] - u_t) <= 0``, and::

    LB(u) = sum_t u_t - K(B),     K(B) = max { sum_s -rho_s x_s : sum_s cost_s x_s <= B, 0 <= x <= 1 }

is a lower bound of the optimum for *every* ``u`` (K is the fractional knapsack, an upper bound of the
integer one). Its maximum over ``u`` equals the LP relaxation's bound (the classic relaxation of the
p-median problem; Beasley, "A note on solving large p-median problems", EJOR 1985). We maximise it by
subgradient steps (Polyak's step towards the incumbent's value).

Forcing a network in gives a bound per network (:func:`forced_in_bounds`): a network whose bound exceeds the
incumbent's value cannot be in any solution that good, so the MILP never sees it (reduced-cost fixing).
Not in the paper (its branch and bound has no loss bound at all).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from grouping.heads import Heads


@dataclass(frozen=True)
class LagrangianBound:
    """The best bound found and its multipliers ``u`` (one per task)."""

    bound: float
    multipliers: np.ndarray


def fractional_knapsack(values: np.ndarray, costs: np.ndarray, capacity: float) -> tuple[float, np.ndarray]:
    """``max sum v x`` s.t. ``sum c x <= capacity``, ``0 <= x <= 1`` (``c > 0``), and ``x``.

    Greedy by ``v / c`` over the items worth something; only the best ``capacity / min(c) + 1`` of them can
    enter, so they are found by a partition and only they are sorted."""
    x = np.zeros(len(values))
    if capacity <= 0 or len(values) == 0:
        return 0.0, x
    items = np.flatnonzero(values > 0)
    if len(items) == 0:
        return 0.0, x
    ratio = values[items] / costs[items]
    k = min(len(items), int(capacity // float(costs[items].min())) + 1)
    if k < len(items):
        top = np.argpartition(-ratio, k - 1)[:k]
        items, ratio = items[top], ratio[top]
    order = items[np.argsort(-ratio, kind="stable")]
    spent = np.cumsum(costs[order])
    whole = int(np.searchsorted(spent, capacity, side="right"))
    x[order[:whole]] = 1.0
    total = float(values[order[:whole]].sum())
    if whole < len(order):
        left = capacity - (spent[whole - 1] if whole else 0.0)
        x[order[whole]] = left / costs[order[whole]]
        total += float(values[order[whole]]) * x[order[whole]]
    return total, x


def network_values(heads: Heads, multipliers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``-rho_s(u)`` per network and the reduced cost of each head ``w_t L[s, t] - u_t``."""
    reduced = heads.values - multipliers[heads.tasks]
    worth = -np.bincount(heads.rows, np.minimum(reduced, 0.0), minlength=heads.n_rows)
    return worth, reduced


def relaxed(
    heads: Heads, multipliers: np.ndarray, budget: int, forced: np.ndarray | None = None
) -> tuple[float, np.ndarray, np.ndarray]:
    """``(LB(u), x, reduced costs)`` with the networks of ``forced`` (bool per network) chosen for sure:
    ``sum u - sum_{s forced} worth_s - K(budget - cost of the forced)`` over the others."""
    worth, reduced = network_values(heads, multipliers)
    costs = heads.units.astype(np.float64)
    if forced is None or not forced.any():
        knap, x = fractional_knapsack(worth, costs, float(budget))
        return float(multipliers.sum()) - knap, x, reduced
    knap, x = fractional_knapsack(np.where(forced, 0.0, worth), costs, float(budget - costs[forced].sum()))
    x[forced] = 1.0
    return float(multipliers.sum()) - float(worth[forced].sum()) - knap, x, reduced


def bound_at(heads: Heads, multipliers: np.ndarray, budget: int) -> float:
    """``LB(u)`` (see the module doc)."""
    return relaxed(heads, multipliers, budget)[0]


def lagrangian_bound(
    heads: Heads,
    budget: int,
    target: float,
    start: np.ndarray | None = None,
    *,
    max_iterations: int = 300,
    patience: int = 15,
    min_step: float = 1e-4,
    stop: Callable[[], bool] | None = None,
    forced: np.ndarray | None = None,
) -> LagrangianBound:
    """Maximise ``LB(u)`` by subgradient steps ``u += theta (target - LB) g / |g|^2``.

    ``budget`` in cost units; ``target``: the incumbent's value (stops as soon as the bound reaches it);
    ``start``: multipliers to start from (e.g. the previous budget's); by default each task's lowest loss.
    ``theta`` starts at 2 and halves after ``patience`` steps without improvement, down to ``min_step``.
    ``stop``: called every 10 steps; True ends the ascent (a time limit). Any bound returned is valid.
    ``forced``: networks (bool per network) chosen for sure (a branch of :mod:`grouping.branch_bound`).
    """
    if start is None:
        u = np.full(heads.n, np.inf)
        np.minimum.at(u, heads.tasks, heads.values)
    else:
        u = np.array(start, dtype=np.float64)
    best, best_u = -np.inf, u.copy()
    theta, stall = 2.0, 0
    for step in range(max_iterations):
        if stop is not None and step % 10 == 9 and stop():
            break
        bound, x, reduced = relaxed(heads, u, budget, forced)
        if bound > best + 1e-12 * max(1.0, abs(bound)):
            best, best_u, stall = bound, u.copy(), 0
        else:
            stall += 1
            if stall >= patience:
                theta, stall = theta / 2, 0
                if theta < min_step:
                    break
        if best >= target:
            break
        served = np.bincount(heads.tasks, x[heads.rows] * (reduced < 0), minlength=heads.n)
        g = 1.0 - served
        norm = float(g @ g)
        if norm < 1e-18:
            break
        u = u + theta * (target - bound) / norm * g
    return LagrangianBound(best, best_u)


def forced_in_bounds(
    heads: Heads, multipliers: np.ndarray, budget: int, forced: np.ndarray | None = None
) -> np.ndarray:
    """Per network ``s``, a lower bound of every selection within ``budget`` that contains ``s`` (and the
    ``forced`` networks): ``sum u - worth_forced - worth_s - K(budget - cost_forced - cost_s)`` (``inf`` if it
    does not fit). Forced networks get the bound of the forced set itself."""
    worth, _ = network_values(heads, multipliers)
    costs = heads.units.astype(np.float64)
    base = float(multipliers.sum())
    if forced is not None and forced.any():
        base -= float(worth[forced].sum())
        budget -= int(heads.units[forced].sum())
        worth = np.where(forced, 0.0, worth)
    out = np.full(heads.n_rows, np.inf)
    for level in np.unique(heads.units):
        if level > budget:
            continue
        rows = np.flatnonzero(heads.units == level)
        knap, _ = fractional_knapsack(worth, costs, float(budget - level))
        out[rows] = base - worth[rows] - knap
    if forced is not None and forced.any():
        knap, _ = fractional_knapsack(worth, costs, float(budget))
        out[forced] = base - knap
    return out


def bound_margin(heads: Heads, multipliers: np.ndarray, value: float) -> float:
    """Float slack for comparisons of these bounds with a value: their rounding error is far below it."""
    scale = abs(value) + float(np.abs(multipliers).sum()) + float(np.abs(heads.values).max(initial=0.0))
    return 1e-11 * scale


__all__ = [
    "LagrangianBound",
    "bound_at",
    "bound_margin",
    "forced_in_bounds",
    "fractional_knapsack",
    "lagrangian_bound",
    "network_values",
    "relaxed",
]
