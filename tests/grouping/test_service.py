"""The one "solve a loss table" service (both faces call it), the feasible-budget split, the fixed baselines,
saturated budgets and overflowing losses."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from grouping.candidates import Candidate
from grouping.evaluation import fixed_baselines
from grouping.service import SolveOptions, aligned_scoring, solve_tables
from grouping.solver import GroupingSolver, budget_curve, split_feasible
from grouping.table import LossTable
from grouping.validation import format_validation_error

from .conftest import random_table

C = Candidate


def small_tables() -> tuple[LossTable, LossTable]:
    losses = {
        C(("a", "b")): {"a": 1.0, "b": 4.0},
        C(("a",)): {"a": 3.0},
        C(("b",)): {"b": 1.0},
        C(("a",), 0.5): {"a": 3.5},
        C(("b",), 0.5): {"b": 1.5},
    }
    selection = LossTable.from_losses(["a", "b"], losses)
    scoring = LossTable.from_losses(
        ["a", "b"], {c: {t: v + 0.25 for t, v in ls.items()} for c, ls in losses.items()}
    )
    return selection, scoring


def test_service_equals_the_solver_and_reads_every_grammar() -> None:
    selection, scoring = small_tables()
    options = SolveOptions(budgets="1:2", weights="b=2", serve_by="scoring")
    curve = solve_tables(selection, scoring, options)
    direct = budget_curve(
        selection, budgets=[1, 1.5, 2], scoring=scoring, weights={"b": 2}, serve_by="scoring"
    )
    assert curve == direct
    assert SolveOptions(budgets=[2, 1], weights={"b": 2}) == SolveOptions(budgets="1,2", weights='{"b": 2}')


def test_scoring_table_in_another_task_order_is_aligned() -> None:
    selection, scoring = small_tables()
    reordered = LossTable(["b", "a"], scoring.rows.values())
    assert aligned_scoring(selection, reordered) == scoring
    curve = solve_tables(selection, reordered, SolveOptions(budgets=[2]))
    assert (
        curve.curve[0].scoring_total
        == solve_tables(selection, scoring, SolveOptions(budgets=[2])).curve[0].scoring_total
    )
    assert curve.curve[0].scoring_total is not None
    other = LossTable(["a", "c"], [])
    with pytest.raises(ValueError, match="scoring table's tasks"):
        solve_tables(selection, other)


def test_service_refuses_with_the_field_named() -> None:
    selection, _ = small_tables()
    with pytest.raises(ValueError, match=r"at most 1 \(TASKGROUP_SOLVE_MAX_TASKS"):
        solve_tables(selection, None, max_tasks=1)
    with pytest.raises(ValueError, match="HOA cannot predict network abc: no pair network ac, bc"):
        table = LossTable.from_losses(["a", "b", "c"], {C(("a", "b")): {"a": 1, "b": 1}, C(("c",)): {"c": 1}})
        solve_tables(table, None, SolveOptions(hoa=True))
    with pytest.raises(ValidationError) as info:
        SolveOptions(budgets="x", weights="a=-1", objective="max")
    message = format_validation_error(info.value)
    assert message.startswith("budgets: expected START:STOP")
    assert "weights: the weight of 'a' must be a finite number >= 0" in message
    assert "objective: Input should be 'sum' or 'relative'" in message


def test_split_feasible_drops_only_what_no_selection_fits() -> None:
    table = LossTable.from_losses(["a", "b"], {C(("a",)): {"a": 1}, C(("b",)): {"b": 1}})
    assert split_feasible(table, [3, 1, 2, 1.5]) == ([2.0, 3.0], [1.0, 1.5])


def test_fixed_baselines_by_hand() -> None:
    selection, scoring = small_tables()
    baselines = {b.name: b for b in fixed_baselines(selection, scoring, weights={"b": 2})}
    assert baselines["all-task network"].selection_total == 1.0 + 2 * 4.0
    assert baselines["all-task network"].scoring_total == 1.25 + 2 * 4.25
    assert baselines["independent singles"].cost == 2.0
    assert baselines["independent singles"].selection_total == 3.0 + 2 * 1.0
    assert baselines["independent singles @0.5"].networks == ["a@0.5", "b@0.5"]
    predicted = LossTable(
        ["a", "b"],
        [
            r if r.candidate.size == 1 else type(r)(r.candidate, r.losses, True)
            for r in selection.rows.values()
        ],
    )
    assert "all-task network" not in {b.name for b in fixed_baselines(predicted)}


def test_budgets_beyond_every_network_cost_nothing() -> None:
    """A budget far above the cost of all networks gives the unconstrained optimum from a DP no larger than
    the saturating budget's (the DP's budget axis stops there)."""
    table = random_table(np.random.default_rng(3), 10)
    huge, plain = GroupingSolver(table, max_budget=9999), GroupingSolver(table, max_budget=10)
    assert huge.grouping(9999).networks == plain.grouping(10).networks
    assert huge.grouping(9999).budget == 9999 and huge.grouping(9999).cost <= huge.saturation_cost()
    assert huge._engine.exact.max_units <= plain._engine.exact.max_units
    assert huge._engine.exact.f.shape[1] <= round(huge.saturation_cost() / float(huge.cost_unit)) + 1


def test_saturation_does_not_change_any_answer() -> None:
    rng = np.random.default_rng(11)
    for _ in range(20):
        table = random_table(rng, int(rng.integers(2, 6)), keep=0.6, extra_capacities=(0.25,))
        budgets, _ = split_feasible(table, [0.25 * k for k in range(1, 41)])
        wide = budget_curve(table, budgets=budgets)
        for record in wide.curve:
            narrow = GroupingSolver(table, max_budget=record.budget).grouping(record.budget)
            assert narrow == record


def test_overflowing_losses_are_a_clear_error() -> None:
    table = LossTable.from_losses(["a", "b"], {C(("a", "b")): {"a": 1e308, "b": 1e308}})
    with pytest.raises(ValueError, match="too large to add up"):
        budget_curve(table, budgets=[1])
