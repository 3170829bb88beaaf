"""The sparse solver (method="milp": Lagrangian bounds, local search, HiGHS) against brute force and the
DP."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from grouping.budgets import default_budgets
from grouping.candidates import Candidate
from grouping.engines import auto_method
from grouping.service import SolveOptions, solve_tables
from grouping.solver import GroupingSolver, InfeasibleBudget, budget_curve, solve, split_feasible
from grouping.sparse import SparseSolver
from grouping.table import LossTable, TableRow

from .bruteforce import brute_optimum, tie_broken_selection
from .conftest import random_table
from .test_solver import check_grouping, groupings_against_brute_force, networks_of

C = Candidate


def sparse_table(rng: np.random.Generator, n: int, rows: int, max_size: int = 6) -> LossTable:
    """n full singles, n half singles and random groups of 2..max_size tasks, losses uniform in [0.5, 1.5]."""
    tasks = [f"t{i}" for i in range(n)]
    groups = {(t,) for t in tasks}
    while len(groups) < rows:
        k = int(rng.integers(2, max_size + 1))
        groups.add(tuple(tasks[i] for i in sorted(rng.choice(n, size=k, replace=False))))
    out = [TableRow(C(g), {t: float(rng.uniform(0.5, 1.5)) for t in g}) for g in sorted(groups)]
    out += [TableRow(C((t,), 0.5), {t: float(rng.uniform(0.5, 1.5))}) for t in tasks]
    return LossTable(tasks, out)


@pytest.mark.parametrize(("n", "seed"), [(n, seed) for n in range(1, 7) for seed in range(3)])
def test_sparse_equals_brute_force_on_random_small_tables(n, seed):
    rng = np.random.default_rng(1000 + 10 * n + seed)
    extra = (0.25, 2.0) if seed == 2 else ()
    table = random_table(rng, n, keep=0.5, max_rows=13, extra_capacities=extra)
    budgets = sorted({0.5, 1.0, 1.5, 2.0, 2.75, 3.0, float(n)})
    weights = {t: float(rng.uniform(0.2, 3.0)) for t in table.tasks} if seed % 2 else None
    solver = GroupingSolver(table, weights=weights, max_budget=max(budgets), method="milp")
    assert solver.method == "milp"
    for _, grouping, _ in groupings_against_brute_force(solver, table, budgets, weights):
        assert grouping.optimality_gap == 0.0


@pytest.mark.parametrize(("n", "seed"), [(5, 0), (6, 1), (7, 2), (8, 3)])
def test_sparse_equals_dp_on_dense_tables(n, seed):
    """Continuous random losses (no ties): the same totals and the same networks at every budget."""
    table = random_table(np.random.default_rng(seed), n)
    dp = budget_curve(table, method="dp")
    milp = budget_curve(table, method="milp")
    assert [g.budget for g in milp.curve] == [g.budget for g in dp.curve]
    for a, b in zip(dp.curve, milp.curve, strict=True):
        assert b.selection_total == pytest.approx(a.selection_total, rel=1e-12)
        assert [x.label for x in b.networks] == [x.label for x in a.networks]
        assert a.optimality_gap == 0.0 and b.optimality_gap == 0.0


@pytest.mark.parametrize("seed", range(10))
def test_sparse_ties_follow_the_dp_rule(seed):
    """Integer losses tie often: the sparse solver picks the DP's (and the brute force's) canonical set."""
    rng = np.random.default_rng(seed)
    n = 3 + seed % 4
    table = random_table(rng, n, keep=0.5, max_rows=12, integers=True)
    dp = GroupingSolver(table, max_budget=n, method="dp")
    milp = GroupingSolver(table, max_budget=n, method="milp")
    for budget in default_budgets(n):
        if brute_optimum(table, budget) == math.inf:
            continue
        chosen = networks_of(milp.grouping(budget))
        assert chosen == networks_of(dp.grouping(budget)), budget
        if len(table) <= 12:
            assert chosen == tie_broken_selection(table, budget), budget


@pytest.mark.parametrize("seed", range(3))
def test_sparse_table_of_fourteen_tasks_equals_dp(seed):
    table = sparse_table(np.random.default_rng(seed), 14, 300)
    budgets, _ = split_feasible(table, [1.5, 2.5, 3.0, 4.0, 5.5, 7.0, 9.0])
    assert len(budgets) >= 4
    dp = budget_curve(table, budgets=budgets, method="dp")
    milp = budget_curve(table, budgets=budgets, method="milp")
    for a, b in zip(dp.curve, milp.curve, strict=True):
        assert b.selection_total == pytest.approx(a.selection_total, rel=1e-12)
        assert [x.label for x in b.networks] == [x.label for x in a.networks]


@pytest.mark.parametrize("time_limit", [1e-3, 0.05, 0.3])
def test_time_limit_returns_a_valid_grouping_with_a_correct_gap(time_limit):
    """Stopped early, each record is a valid grouping and the DP's optimum lies within its reported gap."""
    table = sparse_table(np.random.default_rng(7), 16, 1500, max_size=8)
    budgets = [2.0, 3.0, 4.0, 5.0]
    curve = budget_curve(table, budgets=budgets, method="milp", time_limit=time_limit)
    dp = GroupingSolver(table, max_budget=max(budgets), method="dp")
    if time_limit == 1e-3:  # no time to prove anything: the gaps say so
        assert all(g.optimality_gap > 0 for g in curve.curve)
    for g in curve.curve:
        check_grouping(table, g, g.budget)
        assert g.optimality_gap is not None and g.optimality_gap >= 0.0
        optimum = dp.optimum(g.budget)
        assert optimum <= g.selection_total * (1 + 1e-12)
        assert g.selection_total - g.optimality_gap * abs(g.selection_total) <= optimum * (1 + 1e-9)


def test_many_tasks_are_solved_without_the_dp():
    """30 and 70 tasks: the DP cannot take them; auto picks the sparse solver, which proves its answer."""
    for n in (30, 70):
        table = sparse_table(np.random.default_rng(n), n, 4 * n, max_size=5)
        assert auto_method(n, len(table)) == "milp"
        curve = budget_curve(table, budgets=[n / 4])
        for g in curve.curve:
            check_grouping(table, g, g.budget)
            assert g.optimality_gap == 0.0
    message = r"method 'dp' handles at most 20 tasks.*use method 'milp' or 'auto'"
    with pytest.raises(ValueError, match=message):
        GroupingSolver(table, method="dp")


def test_auto_rule():
    assert auto_method(5, 36) == "dp" and auto_method(12, 10) == "dp"
    assert auto_method(16, 2**16 // 8) == "dp" and auto_method(16, 2**16 // 8 - 1) == "milp"
    assert auto_method(21, 2**21) == "milp"
    table = random_table(np.random.default_rng(0), 5)
    assert GroupingSolver(table).method == "dp"
    assert solve(table, 2.5) == solve(table, 2.5, method="dp")


@pytest.mark.parametrize("bad", [0, -1, 0.0, math.nan, math.inf, "5", True])
def test_bad_time_limits_are_refused(bad):
    table = random_table(np.random.default_rng(0), 3)
    with pytest.raises(ValueError, match="time_limit must be a number of seconds > 0"):
        budget_curve(table, time_limit=bad)
    if not isinstance(bad, str | bool):
        with pytest.raises(ValidationError, match="time_limit"):
            SolveOptions(time_limit=bad)


def test_time_limit_text_is_read_by_the_options():
    assert SolveOptions(time_limit="2.5").time_limit == 2.5


def test_bad_methods_and_tables_are_refused(monkeypatch):
    table = random_table(np.random.default_rng(0), 3)
    with pytest.raises(ValueError, match="unknown method 'lp'; choose one of auto, dp, milp"):
        budget_curve(table, method="lp")
    with pytest.raises(ValidationError, match="method"):
        SolveOptions(method="lp")
    import grouping.sparse

    monkeypatch.setattr(grouping.sparse, "MAX_HEADS", 10)
    with pytest.raises(ValueError, match=r"the sparse solver takes at most 10\b"):
        budget_curve(table, method="milp")
    uncovered = LossTable.from_losses(["a", "b"], {C(("a",)): {"a": 1.0}})
    with pytest.raises(ValueError, match="task\\(s\\) b are trained by no network"):
        budget_curve(uncovered, method="milp")


def test_infeasible_budgets_on_the_sparse_path():
    table = LossTable.from_losses(
        ["a", "b", "c"], {C(("a", "b")): {"a": 1, "b": 1}, C(("c",), 0.5): {"c": 1}, C(("c",)): {"c": 0.5}}
    )
    with pytest.raises(InfeasibleBudget, match=r"costs 1\.5 SNT"):
        solve(table, 1, method="milp")
    curve = budget_curve(table, method="milp")
    assert [g.budget for g in curve.curve] == [1.5, 2.0, 2.5, 3.0]


def test_service_passes_method_and_time_limit():
    table = random_table(np.random.default_rng(4), 6, keep=0.5)
    options = SolveOptions(budgets="2:4", method="milp", time_limit=30)
    curve = solve_tables(table, None, options)
    assert curve == budget_curve(table, budgets=[2, 2.5, 3, 3.5, 4], method="dp")
    assert all(g.optimality_gap == 0.0 for g in curve.curve)


def test_budgets_are_solved_once_and_reused():
    """One pass over the sweep: each budget solved once; a later query reads the cache."""
    table = sparse_table(np.random.default_rng(3), 18, 400)
    solver = GroupingSolver(table, method="milp")
    solver.prepare([3.0, 4.0, 5.0])
    engine = solver._engine._sparse  # type: ignore[attr-defined]
    assert isinstance(engine, SparseSolver)
    assert sorted(engine._solved) == [6, 8, 10]
    first = solver.grouping(4.0)
    assert solver.grouping(4.0) == first and sorted(engine._solved) == [6, 8, 10]


@pytest.mark.shared_data
@pytest.mark.parametrize("setting", [1, 2, 3, 4])
def test_paper_tables_and_their_hoa_ties_match_the_dp(standley, setting):
    """The paper's tables (and their HOA versions, where groupings tie) give the DP's groupings."""
    from grouping.hoa import higher_order_approximation

    from .conftest import BUDGETS_1_TO_5, SETTINGS

    selection_file, scoring_file, _ = SETTINGS[setting]
    selection, scoring = standley(selection_file), standley(scoring_file)
    for table in (selection, higher_order_approximation(selection)):
        dp = budget_curve(table, budgets=BUDGETS_1_TO_5, scoring=scoring, method="dp")
        milp = budget_curve(table, budgets=BUDGETS_1_TO_5, scoring=scoring, method="milp")
        assert milp == dp


@pytest.mark.parametrize("seed", range(3))
def test_negative_losses_and_objectives_match_the_dp(seed):
    """Losses may be negative (log-likelihoods); weights and the relative objective go through both
    engines."""
    rng = np.random.default_rng(50 + seed)
    base = random_table(rng, 6, keep=0.6, extra_capacities=(0.25,))
    shifted = LossTable(
        base.tasks,
        [TableRow(r.candidate, {t: v - 2.0 for t, v in r.losses.items()}) for r in base.rows.values()],
    )
    weights = {t: float(rng.uniform(0.5, 2.0)) for t in base.tasks}
    for table, objective in ((shifted, "sum"), (base, "relative")):
        dp = budget_curve(table, weights=weights, objective=objective, method="dp")
        milp = budget_curve(table, weights=weights, objective=objective, method="milp")
        assert milp == dp


def clustered_table(clusters: int, size: int) -> LossTable:
    """A degenerate table (equal losses everywhere): ``clusters`` clusters of ``size`` tasks, a task's loss
    0.8 with its cluster mates and 1.2 with others; singles, halves, every pair, the clusters and
    all tasks measured. Above ``clusters`` SNT countless costlier selections tie with the clusters."""
    from itertools import combinations

    tasks = tuple(f"c{c}t{k}" for c in range(clusters) for k in range(size))

    def row(group: tuple[str, ...]) -> TableRow:
        if len(group) == 1:
            return TableRow(C(group), {group[0]: 1.0})
        mean = {
            t: sum(0.8 if o[:2] == t[:2] else 1.2 for o in group if o != t) / (len(group) - 1) for t in group
        }
        return TableRow(C(group), mean)

    groups = [(t,) for t in tasks] + list(combinations(tasks, 2)) + [tasks]
    groups += [tuple(f"c{c}t{k}" for k in range(size)) for c in range(clusters)]
    rows = [row(g) for g in groups] + [TableRow(C((t,), 0.5), {t: 1.1}) for t in tasks]
    return LossTable(tasks, rows)


def test_costlier_ties_of_a_degenerate_table_end_the_search():
    """Above the clusters' cost only ties remain, and costlier ties are never chosen: the search bounds them
    within the ties' cost and finishes (it used to enumerate them until the time limit)."""
    table = clustered_table(8, 3)
    solver = GroupingSolver(table, method="milp", time_limit=30)  # a stuck search fails, not hangs
    solver.prepare([1.0, 4.0, 8.0, 12.0])
    engine = solver._engine._sparse  # type: ignore[attr-defined]
    assert not engine._open  # every search finished: each budget proven and its ties enumerated
    clusters = sorted([f"c{c}t{k}" for k in range(3)] for c in range(8))
    for budget in (8.0, 12.0):
        g = solver.grouping(budget)
        assert g.optimality_gap == 0.0 and g.selection_total == pytest.approx(8 * 3 * 0.8)
        assert sorted(net.tasks for net in g.networks) == clusters
