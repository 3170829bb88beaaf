"""The documented tie-breaking, applied to explicit sets of networks (the sparse solver's side of it).

The dynamic programme of :mod:`grouping.exact` breaks ties while it reconstructs its optimum
(``docs/solver.md``, *Tie-breaking*): lowest total (relative tolerance ``RTOL``), then lowest cost, then
fewest networks, then the lexicographically smallest list of ``(network rank, served block mask)`` pairs,
blocks in the order of their lowest task. The sparse solver finds the tied optimal sets explicitly
(:mod:`grouping.sparse`) and picks among them with :func:`canonical_choice`, the same rule stated on sets: a
set's list is the smallest over the ways of serving every task by one of its lowest-loss networks of the set,
every network serving at least one task.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from grouping.exact import RTOL
from grouping.heads import Heads

MAX_ASSIGNMENTS = 100_000
"""Most ways of serving the tasks examined for one set (beyond: each task to its lowest-ranked holder)."""


def near(value: float, target: float) -> bool:
    """``value`` counts as equal to or better than ``target`` (relative tolerance ``RTOL``)."""
    return value <= target + RTOL * abs(target)


def prune(heads: Heads, rows: Sequence[int], rank: np.ndarray) -> tuple[int, ...]:
    """Drop networks whose removal does not raise the total beyond the tolerance (most expensive first, then
    highest rank): what is left is a set in which every network is needed."""
    chosen = sorted(set(rows), key=lambda r: (-int(heads.units[r]), -int(rank[r])))
    value = heads.value(chosen)
    for r in list(chosen):
        rest = [s for s in chosen if s != r]
        if rest and near(heads.value(rest), value):
            chosen = rest
    return tuple(sorted(chosen))


def sequence_key(heads: Heads, rows: Sequence[int], rank: np.ndarray) -> tuple[tuple[int, int], ...]:
    """The smallest list of ``(rank, block mask)`` over the ways of serving each task by one of its
    lowest-loss networks in ``rows`` with every network serving a task (see the module doc)."""
    rows = sorted(rows, key=lambda r: int(rank[r]))
    sub = heads.dense[rows]
    best = sub.min(axis=0)
    holders = [
        [i for i in range(len(rows)) if sub[i, t] <= best[t] + RTOL * abs(best[t])] for t in range(heads.n)
    ]
    count = 1
    for h in holders:
        count *= len(h)
        if count > MAX_ASSIGNMENTS:
            break
    greedy = count > MAX_ASSIGNMENTS
    assignments = [[h[0] for h in holders]] if greedy else _assignments(holders, len(rows))
    keys = []
    for assign in assignments:
        masks: dict[int, int] = {}
        for t, i in enumerate(assign):
            masks[i] = masks.get(i, 0) | (1 << t)
        if len(masks) < len(rows):
            continue
        blocks = sorted(masks.items(), key=lambda kv: kv[1] & -kv[1])
        keys.append(tuple((int(rank[rows[i]]), mask) for i, mask in blocks))
    if not keys:  # some network serves nothing: rank it after every set that needs all its networks
        return ((np.iinfo(np.int64).max, 0),)
    return min(keys)


def _assignments(holders: list[list[int]], k: int) -> list[list[int]]:
    out: list[list[int]] = []

    def rec(t: int, assign: list[int], used: set[int]) -> None:
        if t == len(holders):
            if len(used) == k:
                out.append(list(assign))
            return
        if k - len(used) > len(holders) - t:  # not enough tasks left to use every network
            return
        for i in holders[t]:
            assign.append(i)
            rec(t + 1, assign, used | {i})
            assign.pop()

    rec(0, [], set())
    return out


def canonical_choice(heads: Heads, sets: Sequence[Sequence[int]], rank: np.ndarray) -> tuple[int, ...]:
    """The set the documented rule picks among ``sets`` (each a selection of row indices)."""
    valued = [(heads.value(s), tuple(sorted(s))) for s in sets]
    best = min(v for v, _ in valued)
    tied = [s for v, s in valued if near(v, best)]
    cheapest = min(heads.cost(s) for s in tied)
    tied = [s for s in tied if heads.cost(s) == cheapest]
    fewest = min(len(s) for s in tied)
    tied = [s for s in tied if len(s) == fewest]
    return min(tied, key=lambda s: sequence_key(heads, s, rank))


__all__ = ["MAX_ASSIGNMENTS", "canonical_choice", "near", "prune", "sequence_key"]
