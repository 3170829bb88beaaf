"""HiGHS (through ``highspy``) for the exact set cover behind the sparse solver's feasibility test.

The cheapest set of networks that trains every task decides which budgets can serve every task::

    min  sum_s units_s x_s   s.t.  sum_{s ∋ t} x_s >= 1 (every task t),  x binary

(costs in integer cost units, so the optimum is exact). The selection problem itself is solved by
:mod:`grouping.sparse`; ``grouping.milp`` keeps a plain scipy/HiGHS model of it for the tests and the bench.
"""

from __future__ import annotations

import highspy
import numpy as np
from scipy.sparse import coo_array, csc_array

from grouping.heads import Heads

INF = highspy.kHighsInf

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


__all__ = ["min_cover"]
