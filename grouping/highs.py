"""The selection problem as a mixed-integer programme, solved by HiGHS (through ``highspy``).

Model (on a subset ``keep`` of the networks; the others were proven useless by :mod:`grouping.lagrangian`)::

    min  sum_{s, t in s} w_t L[s, t] y_st
    s.t. sum_{s ∋ t} y_st = 1            every task t     (served once)
         y_st - x_s <= 0                 every head       (only by a chosen network)
         sum_s units_s x_s <= budget     (cost units: an exact integer constraint)
         x binary, 0 <= y <= 1           (y is integral at every optimum once x is: no need to branch on it)

Options beside the budget: a cap on the objective (``objective_cap``, used to enumerate ties), cuts
``sum_{s in T} x_s <= |T| - 1`` that exclude a set ``T`` and its supersets, a start solution (HiGHS's
incumbent from the first node on), a time limit. The ``grouping.milp`` module keeps the plain reference model
(scipy, every head binary) for the tests.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import highspy
import numpy as np
from scipy.sparse import coo_array, csc_array

from grouping.heads import Heads

INF = highspy.kHighsInf

MIP_REL_GAP = 1e-9
"""HiGHS stops when (incumbent - dual bound) <= this x |incumbent| (its default, 1e-4, would not be exact)."""


@dataclass(frozen=True)
class MipOutcome:
    """``rows``: the best selection HiGHS found (None: none); ``bound``: its proven lower bound;
    ``status``: ``optimal`` (gap closed), ``infeasible`` (no selection within the constraints),
    ``time_limit`` or ``other``."""

    rows: tuple[int, ...] | None
    bound: float
    status: str


_STATUS = {
    highspy.HighsModelStatus.kOptimal: "optimal",
    highspy.HighsModelStatus.kInfeasible: "infeasible",
    highspy.HighsModelStatus.kTimeLimit: "time_limit",
}


def _highs(time_limit: float | None) -> highspy.Highs:
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("random_seed", 0)
    h.setOptionValue("threads", 1)
    if time_limit is not None:
        h.setOptionValue("time_limit", max(float(time_limit), 1e-3))
    return h


def _pass(h: highspy.Highs, cost: np.ndarray, a: csc_array, lower: np.ndarray, upper: np.ndarray, n_int: int):
    lp = highspy.HighsLp()
    lp.num_col_ = a.shape[1]
    lp.num_row_ = a.shape[0]
    lp.col_cost_ = cost
    lp.col_lower_ = np.zeros(a.shape[1])
    lp.col_upper_ = np.ones(a.shape[1])
    lp.row_lower_ = lower
    lp.row_upper_ = upper
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = a.indptr
    lp.a_matrix_.index_ = a.indices
    lp.a_matrix_.value_ = a.data
    lp.integrality_ = [highspy.HighsVarType.kInteger] * n_int + [highspy.HighsVarType.kContinuous] * (
        a.shape[1] - n_int
    )
    h.passModel(lp)


def solve_selection(
    heads: Heads,
    keep: np.ndarray,
    budget: int,
    *,
    start: Sequence[int] | None = None,
    time_limit: float | None = None,
    objective_cap: float | None = None,
    exclude: Sequence[Sequence[int]] = (),
) -> MipOutcome:
    """The best selection among the rows ``keep`` (bool mask) within ``budget`` cost units."""
    idx = np.flatnonzero(keep)
    local = np.full(heads.n_rows, -1, dtype=np.int64)
    local[idx] = np.arange(len(idx))
    mask = keep[heads.rows]
    h_rows, h_tasks, h_vals = local[heads.rows[mask]], heads.tasks[mask], heads.values[mask]
    k, m, n = len(idx), len(h_rows), heads.n
    if np.setdiff1d(np.arange(n), h_tasks).size:
        return MipOutcome(None, math.inf, "infeasible")
    cost = np.r_[np.zeros(k), h_vals]
    y = k + np.arange(m)
    rows = [h_tasks, n + np.arange(m), n + np.arange(m), np.full(k, n + m)]
    cols = [y, y, h_rows, np.arange(k)]
    vals = [np.ones(m), np.ones(m), -np.ones(m), heads.units[idx].astype(np.float64)]
    lower = [np.ones(n), np.full(m, -INF), [-INF]]
    upper = [np.ones(n), np.zeros(m), [float(budget)]]
    extra = n + m + 1
    if objective_cap is not None:
        rows.append(np.full(m, extra))
        cols.append(y)
        vals.append(h_vals)
        lower.append([-INF])
        upper.append([objective_cap])
        extra += 1
    for cut in exclude:
        members = local[np.asarray(cut, dtype=np.int64)]
        if (members < 0).any():
            continue  # a set with a row outside `keep` is excluded already
        rows.append(np.full(len(members), extra))
        cols.append(members)
        vals.append(np.ones(len(members)))
        lower.append([-INF])
        upper.append([len(members) - 1.0])
        extra += 1
    a = csc_array(
        coo_array(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(extra, k + m)
        )
    )
    h = _highs(time_limit)
    h.setOptionValue("mip_rel_gap", MIP_REL_GAP)
    _pass(h, cost, a, np.concatenate(lower).astype(np.float64), np.concatenate(upper).astype(np.float64), k)
    if start is not None and all(local[r] >= 0 for r in start):
        _set_start(h, heads, idx, local, h_rows, h_tasks, h_vals, start)
    h.run()
    status = _STATUS.get(h.getModelStatus(), "other")
    info = h.getInfo()
    bound = float(info.mip_dual_bound) if status != "infeasible" else math.inf
    if not math.isfinite(bound) and status != "infeasible":
        bound = -math.inf
    solution = h.getSolution()
    if status == "infeasible" or not solution.value_valid:
        return MipOutcome(None, bound, status)
    x = np.asarray(solution.col_value[:k])
    chosen = tuple(int(idx[i]) for i in np.flatnonzero(x > 0.5))
    return MipOutcome(chosen, bound, status)


def _set_start(h, heads, idx, local, h_rows, h_tasks, h_vals, start) -> None:
    k, m = len(idx), len(h_rows)
    values = np.zeros(k + m)
    chosen = local[np.asarray(list(start), dtype=np.int64)]
    values[chosen] = 1.0
    in_start = np.isin(h_rows, chosen)
    for t in range(heads.n):  # serve each task by its best chosen network
        cand = np.flatnonzero(in_start & (h_tasks == t))
        values[k + cand[np.argmin(h_vals[cand])]] = 1.0
    sol = highspy.HighsSolution()
    sol.col_value = values.tolist()
    sol.value_valid = True
    h.setSolution(sol)


def min_cover(heads: Heads, time_limit: float | None = None) -> tuple[int | None, tuple[int, ...], str]:
    """The cheapest set of networks training every task (set cover, exact): ``(units, rows, status)``;
    units None if HiGHS could not finish (``status`` says why)."""
    r, n = heads.n_rows, heads.n
    a = csc_array(coo_array((np.ones(len(heads.rows)), (heads.tasks, heads.rows)), shape=(n, r)))
    h = _highs(time_limit)
    h.setOptionValue("mip_rel_gap", 0.0)
    _pass(h, heads.units.astype(np.float64), a, np.ones(n), np.full(n, INF), r)
    h.run()
    status = _STATUS.get(h.getModelStatus(), "other")
    if status != "optimal":
        return None, (), status
    x = np.asarray(h.getSolution().col_value)
    rows = tuple(int(i) for i in np.flatnonzero(x > 0.5))
    return heads.cost(rows), rows, status


__all__ = ["MIP_REL_GAP", "MipOutcome", "min_cover", "solve_selection"]
