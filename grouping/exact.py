"""The exact grouping solver: dynamic programming over task partitions and budget units (numpy).

Problem (Standley et al., ICML 2020, section 3.3): given candidates ``s`` with cost ``c_s`` and per-task
losses ``L[s, t]``, choose a set ``S`` with ``sum c_s <= B`` minimising ``sum_t w_t min_{s in S, t in s}
L[s, t]`` with every task served. The paper solves it by branch and bound without a bound on the loss, which
is exponential in the number of candidates (> 60 s at 8 tasks, budget 4). We solve it exactly by dynamic
programming over task partitions instead, which is polynomial in ``3^n`` and in the budget:

Any optimal set serves the tasks through a partition into blocks ``T_1 .. T_k``, block ``T_i`` served by a
network ``s_i ⊇ T_i`` (group the tasks by the network that serves them; networks serving nothing are dropped).
Conversely any such assignment gives a set of networks (a network picked for two blocks is paid once) whose
loss is at most the assignment's. Hence::

    best[c][T] = min over candidates s ⊇ T of cost c of  sum_{t in T} w_t L[s, t]          (step i)
    f[mask][b] = min over T ⊆ mask with low(mask) ∈ T, c <= b:  best[c][T] + f[mask \\ T][b - c]  (step ii)
    f[0][b]    = 0

with costs and budgets in integer units ``u`` (the gcd of the capacities). ``f[all][B]`` is the optimum at
every budget ``B`` at once (a budget curve costs one DP). Step (i) visits every (candidate, submask) pair
(``3^n`` for the paper's candidate set), step (ii) every (mask, submask) pair times the budget axis; both
are vectorised with numpy, masks of equal popcount being processed together in bounded chunks.

Tie-breaking (deterministic, see ``docs/solver.md``): losses within a relative tolerance ``RTOL`` count as
equal; then the lower total cost wins, then fewer networks, then the lexicographically smallest list of
networks taken in the order of the first task each serves, candidates being ordered by ``rank`` (the caller
gives the table-order rank: task indices, then capacity).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from math import floor, gcd

import numpy as np

from grouping.budgets import as_fraction

RTOL = 1e-9
"""Relative tolerance under which two losses count as equal (absorbs float rounding of equal sums)."""

CHUNK_ELEMENTS = 1 << 21
"""Largest intermediate array (elements) built at once; bounds memory whatever the number of tasks."""

MAX_BUDGET_UNITS = 20_000
"""Largest budget axis accepted (budget / unit); guards against capacity ladders with a tiny common unit."""

MAX_TASKS = 20
"""Largest number of tasks accepted: the DP holds 2^n subsets and visits 3^n (subset, block) pairs."""

_NETS_NONE = np.int8(127)


def cost_unit(capacities: np.ndarray) -> Fraction:
    """The gcd of the capacities, as a fraction: every cost is an integer number of these units."""
    fracs = [as_fraction(c) for c in np.unique(capacities)]
    den = 1
    for f in fracs:
        den = den * f.denominator // gcd(den, f.denominator)
    num = 0
    for f in fracs:
        num = gcd(num, f.numerator * (den // f.denominator))
    return Fraction(num, den)


def cost_units(costs: np.ndarray) -> tuple[Fraction, np.ndarray]:
    """The cost unit (gcd of the capacities) and each row's cost in units (exact)."""
    costs = np.asarray(costs, dtype=np.float64)
    unit = cost_unit(costs)
    caps, inverse = np.unique(costs, return_inverse=True)
    cap_units = np.array([int(as_fraction(c) / unit) for c in caps], dtype=np.int64)
    return unit, cap_units[inverse.reshape(-1)]


def budget_units(budget: float, unit: Fraction) -> int:
    """How many cost units a budget allows: ``floor(B / u)``, computed exactly (2.5 / 0.5 = 5, not 4.99)."""
    return floor(as_fraction(budget) / unit)


def popcount(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.int64)
    out = np.zeros_like(x)
    while np.any(x):
        out += x & 1
        x = x >> 1
    return out


def _bit_positions(masks: np.ndarray, n: int, k: int) -> np.ndarray:
    """(m, k) positions of the set bits of masks that all have exactly k bits set (ascending)."""
    bits = (masks[:, None] >> np.arange(n)) & 1
    return np.nonzero(bits)[1].reshape(len(masks), k)


def _submasks(positions: np.ndarray) -> np.ndarray:
    """(m, 2^k) all submasks of each row's bits (from its (m, k) positions), in pdep order."""
    out = np.zeros((positions.shape[0], 1), dtype=np.int64)
    for j in range(positions.shape[1]):
        out = np.concatenate([out, out | (np.int64(1) << positions[:, j : j + 1])], axis=1)
    return out


def _submask_sums(values: np.ndarray) -> np.ndarray:
    """(m, 2^k) sums over all subsets of each row's k values, added left to right (order of _submasks)."""
    out = np.zeros((values.shape[0], 1))
    for j in range(values.shape[1]):
        out = np.concatenate([out, out + values[:, j : j + 1]], axis=1)
    return out


def _near(values: np.ndarray, target: np.ndarray) -> np.ndarray:
    """values <= target within the relative tolerance (elementwise, broadcasting)."""
    with np.errstate(invalid="ignore"):
        return values <= target + RTOL * np.abs(target)


@dataclass(frozen=True)
class Choice:
    """An optimal grouping from the DP: the rows chosen for each served block, and its cost in units."""

    blocks: tuple[tuple[int, int], ...]  # (block mask, table row index), in the order of the lowest task
    units: int


class ExactSolver:
    """Exact budget-curve solver on arrays.

    ``masks`` (R,) task bit masks, ``costs`` (R,) capacities in SNT, ``weighted`` (R, n) weighted losses (any
    value where a row has no head), ``rank`` (R,) distinct tie-breaking ranks (lower wins), ``max_budget`` the
    largest budget (SNT) that will be asked: the DP's budget axis. Both steps run in the constructor.
    """

    def __init__(
        self,
        n: int,
        masks: np.ndarray,
        costs: np.ndarray,
        weighted: np.ndarray,
        rank: np.ndarray,
        max_budget: float,
    ) -> None:
        if len(masks) == 0:
            raise ValueError("no candidates: the loss table has no rows")
        if n > MAX_TASKS:
            raise ValueError(
                f"the exact solver handles at most {MAX_TASKS} tasks (it visits 3^n task-subset pairs); "
                f"got {n}: split the tasks into smaller problems"
            )
        self.n = n
        self.masks = np.asarray(masks, dtype=np.int64)
        self.rank = np.asarray(rank, dtype=np.int64)
        self.unit, self.row_units = cost_units(costs)
        self.max_units = budget_units(max_budget, self.unit)
        if self.max_units > MAX_BUDGET_UNITS:
            raise ValueError(
                f"budget {max_budget} is {self.max_units} cost units of {self.unit} SNT (the gcd of the "
                f"capacities); at most {MAX_BUDGET_UNITS} are supported: use a coarser capacity ladder"
            )
        self.weighted = np.where(np.isfinite(weighted), weighted, 0.0)
        self._block_table()
        self._dp()

    # -- step (i): best network for every block and cost level -------------------------------------------
    def _rows_by_popcount(self, rows: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        pcs = popcount(self.masks[rows])
        for k in np.unique(pcs):
            group = rows[pcs == k]
            step = max(1, CHUNK_ELEMENTS >> int(k))
            for i in range(0, len(group), step):
                yield int(k), group[i : i + step]

    def _chunk_sums(self, k: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pos = _bit_positions(self.masks[rows], self.n, k)
        ids = _submasks(pos)[:, 1:]
        sums = _submask_sums(self.weighted[rows[:, None], pos])[:, 1:]
        return ids, sums

    def _block_table(self) -> None:
        full = 1 << self.n
        self.levels = np.unique(self.row_units)
        self.best = np.full((len(self.levels), full), np.inf)
        self.arg = np.full((len(self.levels), full), -1, dtype=np.int64)
        order = np.argsort(self.rank)
        rank_to_row = np.empty(int(self.rank.max()) + 1, dtype=np.int64)
        rank_to_row[self.rank[order]] = order
        none = np.iinfo(np.int64).max
        for li, level in enumerate(self.levels):
            rows = np.nonzero(self.row_units == level)[0]
            best = self.best[li]
            for k, chunk in self._rows_by_popcount(rows):
                ids, sums = self._chunk_sums(k, chunk)
                np.minimum.at(best, ids.ravel(), sums.ravel())
            best_rank = np.full(full, none, dtype=np.int64)
            for k, chunk in self._rows_by_popcount(rows):
                ids, sums = self._chunk_sums(k, chunk)
                near = _near(sums, best[ids])
                ranks = np.broadcast_to(self.rank[chunk][:, None], ids.shape)
                np.minimum.at(best_rank, ids[near], ranks[near])
            found = best_rank != none
            self.arg[li, found] = rank_to_row[best_rank[found]]

    # -- step (ii): DP over task subsets and budget units -------------------------------------------------
    def _dp(self) -> None:
        n, width = self.n, self.max_units + 1
        full = 1 << n
        self.f = np.full((full, width), np.inf)
        self.nets = np.zeros((full, width), dtype=np.int8)
        self.f[0] = 0.0
        all_masks = np.arange(1, full, dtype=np.int64)
        pcs = popcount(all_masks)
        for k in range(1, n + 1):
            masks_k = all_masks[pcs == k]
            per_mask = (1 << (k - 1)) * width
            step = max(1, CHUNK_ELEMENTS // per_mask)
            for i in range(0, len(masks_k), step):
                self._dp_chunk(masks_k[i : i + step], k)

    def _transitions(self, masks: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(B, 2^(k-1)) blocks T (containing the lowest task) and rests R = mask \\ T."""
        low = masks & -masks
        rest = masks ^ low
        subs = (
            _submasks(_bit_positions(rest, self.n, k - 1)) if k > 1 else np.zeros((len(masks), 1), np.int64)
        )
        return low[:, None] | subs, rest[:, None] ^ subs

    def _dp_chunk(self, masks: np.ndarray, k: int) -> None:
        width = self.max_units + 1
        blocks, rests = self._transitions(masks, k)
        new_f = np.full((len(masks), width), np.inf)
        parts = []
        for li, c in enumerate(self.levels):
            c = int(c)
            if c >= width:
                continue
            vals = self.best[li][blocks]
            finite = np.isfinite(vals)
            if finite.all():  # dense level (e.g. every subset at full size): plain reshape, no segments
                bi = np.repeat(np.arange(len(masks)), vals.shape[1])
                r = rests.ravel()
                cand = self.f[r, : width - c]
                cand += vals.reshape(-1, 1)
                seg_min = cand.reshape(len(masks), vals.shape[1], width - c).min(axis=1)
                new_f[:, c:] = np.minimum(new_f[:, c:], seg_min)
            else:  # sparse level (e.g. half-size singles): only the blocks some candidate serves
                bi, si = np.nonzero(finite)
                if len(bi) == 0:
                    continue
                starts = np.flatnonzero(np.r_[True, bi[1:] != bi[:-1]])
                r = rests[bi, si]
                cand = self.f[r, : width - c]
                cand += vals[bi, si][:, None]
                seg_min = np.minimum.reduceat(cand, starts, axis=0)
                seg_rows = bi[starts]
                new_f[seg_rows, c:] = np.minimum(new_f[seg_rows, c:], seg_min)
            parts.append((c, bi, r, cand))
        # fewest networks among the transitions within tolerance of the optimum (tie-breaking)
        with np.errstate(invalid="ignore"):
            threshold = new_f + RTOL * np.abs(new_f)
        new_nets = np.full((len(masks), width), _NETS_NONE, dtype=np.int8)
        for c, bi, r, cand in parts:
            near = cand <= threshold[bi, c:]
            keep = near.any(axis=1)
            bi, r, near = bi[keep], r[keep], near[keep]
            if len(bi) == 0:
                continue
            starts = np.flatnonzero(np.r_[True, bi[1:] != bi[:-1]])
            nets = np.where(near, self.nets[r, : width - c] + 1, _NETS_NONE).astype(np.int8)
            seg = np.minimum.reduceat(nets, starts, axis=0)
            seg_rows = bi[starts]
            new_nets[seg_rows, c:] = np.minimum(new_nets[seg_rows, c:], seg)
        new_nets[~np.isfinite(new_f)] = 0
        self.f[masks] = new_f
        self.nets[masks] = new_nets

    # -- queries ------------------------------------------------------------------------------------------
    def units(self, budget: float) -> int:
        return budget_units(budget, self.unit)

    def optimum(self, budget: float) -> float:
        """Optimal weighted loss at ``budget`` (inf if no selection within it serves every task)."""
        b = self.units(budget)
        if b < 0:
            return float("inf")
        return float(self.f[-1, min(b, self.max_units)])

    def cheapest_units(self) -> int | None:
        """Fewest cost units that serve every task, if within the solved budget axis."""
        finite = np.flatnonzero(np.isfinite(self.f[-1]))
        return int(finite[0]) if len(finite) else None

    def choose(self, budget: float) -> Choice | None:
        """The tie-broken optimal grouping at ``budget`` (None if infeasible)."""
        b = self.units(budget)
        if b > self.max_units:
            raise ValueError(f"budget {budget} exceeds the largest budget this solver was built for")
        full = (1 << self.n) - 1
        if b < 0 or not np.isfinite(self.f[full, b]):
            return None
        # lower total cost among (near-)equal losses: the least budget reaching the optimum
        b = int(np.flatnonzero(_near(self.f[full, : b + 1], self.f[full, b]))[0])
        mask, blocks, units = full, [], 0
        while mask:
            k = int(popcount(np.array([mask]))[0])
            t_all, r_all = self._transitions(np.array([mask], dtype=np.int64), k)
            t_all, r_all = t_all[0], r_all[0]
            target, target_nets = self.f[mask, b], self.nets[mask, b]
            options = []
            for li, c in enumerate(self.levels):
                c = int(c)
                if c > b:
                    continue
                vals = self.best[li][t_all] + self.f[r_all, b - c]
                nets = self.nets[r_all, b - c] + 1
                ok = np.flatnonzero(np.isfinite(vals) & _near(vals, target) & (nets <= target_nets))
                options += [(int(self.rank[self.arg[li, t_all[j]]]), int(t_all[j]), li) for j in ok]
            _, block, li = min(options)
            row = int(self.arg[li, block])
            blocks.append((block, row))
            c = int(self.levels[li])
            units += c
            b -= c
            mask ^= block
        return Choice(tuple(blocks), units)


def min_cover_units(n: int, masks: np.ndarray, row_units: np.ndarray) -> int:
    """Fewest cost units of a set of candidates covering all n tasks (exact; a DP over task subsets).

    ``cheapest[T]`` = cost of the cheapest candidate containing T (a superset-min transform), then
    ``g[mask] = min over blocks T ∋ low(mask) of cheapest[T] + g[mask \\ T]``.
    """
    full = 1 << n
    big = np.iinfo(np.int64).max // 4
    cheapest = np.full(full, big, dtype=np.int64)
    np.minimum.at(cheapest, np.asarray(masks, dtype=np.int64), np.asarray(row_units, dtype=np.int64))
    idx = np.arange(full)
    for bit in range(n):
        without = idx[(idx >> bit) & 1 == 0]
        cheapest[without] = np.minimum(cheapest[without], cheapest[without | (1 << bit)])
    g = np.full(full, big, dtype=np.int64)
    g[0] = 0
    all_masks = np.arange(1, full, dtype=np.int64)
    pcs = popcount(all_masks)
    for k in range(1, n + 1):
        masks_k = all_masks[pcs == k]
        step = max(1, CHUNK_ELEMENTS >> (k - 1))
        for i in range(0, len(masks_k), step):
            chunk = masks_k[i : i + step]
            low = chunk & -chunk
            rest = chunk ^ low
            subs = _submasks(_bit_positions(rest, n, k - 1)) if k > 1 else np.zeros((len(chunk), 1), np.int64)
            total = np.minimum(cheapest[low[:, None] | subs] + g[rest[:, None] ^ subs], big)
            g[chunk] = total.min(axis=1)
    if g[full - 1] >= big:
        raise ValueError("some task is trained by no candidate: no selection can serve every task")
    return int(g[full - 1])


__all__ = [
    "CHUNK_ELEMENTS",
    "MAX_TASKS",
    "RTOL",
    "Choice",
    "ExactSolver",
    "as_fraction",
    "budget_units",
    "cost_unit",
    "cost_units",
    "min_cover_units",
]
