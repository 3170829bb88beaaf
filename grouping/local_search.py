"""A local search for good selections (incumbents for the exact sparse solver; never a final answer alone).

Moves on a set of networks within a budget, best improvement first: *add* a network that fits, *swap* a chosen
network for one that fits in its place, *drop* a network whose removal does not raise the objective. This is
the interchange heuristic of p-median problems (Teitz and Bart, 1968) with a knapsack budget. Every move is
evaluated for all candidate networks at once on the dense ``(R, n)`` matrix of :class:`grouping.heads.Heads`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from grouping.heads import Heads


def _without_each(heads: Heads, rows: list[int]) -> np.ndarray:
    """``(k, n)``: per chosen row, each task's lowest loss among the *other* chosen rows."""
    sub = heads.dense[rows]
    if len(rows) == 1:
        return np.full((1, heads.n), np.inf)
    order = np.argsort(sub, axis=0, kind="stable")
    first, second = order[0], order[1]
    best = sub[first, np.arange(heads.n)]
    runner = sub[second, np.arange(heads.n)]
    out = np.broadcast_to(best, sub.shape).copy()
    for i in range(len(rows)):
        hit = first == i
        out[i, hit] = runner[hit]
    return out


def improve(
    heads: Heads,
    rows: Iterable[int],
    budget: int,
    *,
    max_rounds: int = 200,
    stop: Callable[[], bool] | None = None,
) -> list[int]:
    """A selection within ``budget`` (cost units) at least as good as ``rows`` (which must fit and serve
    every task), locally optimal for the add / swap / drop moves unless ``stop()`` ended it early."""
    chosen = sorted(set(rows))
    units = heads.units
    dense = heads.dense
    for _ in range(max_rounds):
        if stop is not None and stop():
            break
        current = heads.served(chosen)
        value = float(current.sum())
        spare = budget - int(units[chosen].sum())
        others = np.ones(heads.n_rows, dtype=bool)
        others[chosen] = False
        without = _without_each(heads, chosen)
        dropped = without.sum(axis=1)
        droppable = np.flatnonzero(dropped <= value)
        if len(droppable):  # free budget at no loss: the most expensive first
            victim = max(droppable, key=lambda i: (int(units[chosen[i]]), chosen[i]))
            chosen.pop(int(victim))
            continue
        best_gain, move = 1e-12 * max(1.0, abs(value)), None
        fits = others & (units <= spare)
        if fits.any():
            cand = np.flatnonzero(fits)
            totals = np.minimum(current, dense[cand]).sum(axis=1)
            j = int(np.argmin(totals))
            if value - totals[j] > best_gain:
                best_gain, move = value - totals[j], (None, int(cand[j]))
        for i, out in enumerate(chosen):
            fits = others & (units <= spare + units[out])
            if not fits.any():
                continue
            cand = np.flatnonzero(fits)
            totals = np.minimum(without[i], dense[cand]).sum(axis=1)
            j = int(np.argmin(totals))
            if value - totals[j] > best_gain:
                best_gain, move = value - totals[j], (i, int(cand[j]))
        if move is None:
            break
        out_index, new = move
        if out_index is not None:
            chosen.pop(out_index)
        chosen = sorted([*chosen, new])
    return chosen


__all__ = ["improve"]
