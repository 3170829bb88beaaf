"""Exhaustive and ESA plans narrowed by ``max_group_size`` and ``groups`` (grouping/strategies/fixed.py):
the partial exhaustive check and the training of given groupings (issue 12)."""

from __future__ import annotations

from itertools import combinations
from math import comb

import pytest

from grouping.candidates import HALF, Candidate
from grouping.solver import budget_curve
from grouping.strategies import Problem, drive, make_strategy
from grouping.table import LossTable

from .bruteforce import brute_optimum
from .strategy_helpers import TableTrainer, planted_table

TASKS = ("a", "b", "c", "d", "e", "f")


@pytest.mark.parametrize("approximation", ["exhaustive", "esa"])
@pytest.mark.parametrize("n", [2, 4, 6])
@pytest.mark.parametrize("k", [1, 2, 3, 6])
def test_max_group_size_plans_every_subset_of_at_most_k_tasks(approximation: str, n: int, k: int) -> None:
    problem = Problem(tasks=TASKS[:n], seeds=2)
    strategy = make_strategy(approximation, problem, {"max_group_size": k})
    full = make_strategy(approximation, problem)
    expected = [c for c in full.candidates() if c.size <= k]
    assert sorted(strategy.candidates()) == sorted(expected)
    counted = (sum(comb(n, j) for j in range(1, min(k, n) + 1)) + n) * 2  # + n half singles, x 2 seeds
    assert strategy.size() == len(strategy.plan()) == counted


def test_groups_are_planned_beside_the_singles_once_each_in_task_order() -> None:
    problem = Problem(tasks=TASKS)
    strategy = make_strategy(
        "exhaustive", problem, {"groups": [["c", "a"], ["a", "c"], ["f", "b", "e"], ["d"]]}
    )
    full = [c for c in strategy.candidates() if c.capacity == 1.0]
    assert full == [Candidate((t,)) for t in TASKS] + [Candidate(("a", "c")), Candidate(("b", "e", "f"))]
    assert strategy.size() == len(strategy.candidates()) == 6 + 2 + 6  # singles, groups, half singles


def test_groups_and_max_group_size_together_plan_their_union() -> None:
    strategy = make_strategy(
        "exhaustive", Problem(tasks=TASKS), {"max_group_size": 2, "groups": [["a", "b"], TASKS]}
    )
    groups = {c.tasks for c in strategy.candidates() if c.capacity == 1.0}
    assert groups == {g for k in (1, 2) for g in combinations(TASKS, k)} | {TASKS}
    assert strategy.size() == 6 + 15 + 1 + 6


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        ([["a", "zebra"]], "names 'zebra', not a task of the job"),
        ([["a", "a"]], "lists a task twice"),
        ([[]], "is empty"),
    ],
)
def test_bad_groups_are_refused_naming_the_group(groups: list[list[str]], message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        make_strategy("exhaustive", Problem(tasks=TASKS), {"groups": groups})
    assert "exhaustive options: groups" in str(caught.value) and "a, b, c, d, e, f" in str(caught.value)


@pytest.mark.parametrize("options", [{"max_group_size": 0}, {"groups": []}, {"max_group_size": 2.5}])
def test_bad_subset_options_are_clear_errors(options: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="exhaustive options"):
        make_strategy("exhaustive", Problem(tasks=TASKS), options)


def test_forty_tasks_are_counted_not_listed() -> None:
    problem = Problem(tasks=tuple(f"t{i}" for i in range(40)))
    assert make_strategy("exhaustive", problem).size() == 2**40 - 1 + 40
    assert make_strategy("exhaustive", problem, {"max_group_size": 2}).size() == 40 + 780 + 40


def _restricted(table: LossTable, k: int) -> LossTable:
    return LossTable(table.tasks, [table[c] for c in table if c.size <= k])


@pytest.mark.parametrize("k", [1, 2, 3])
def test_a_partial_exhaustive_search_finds_the_optimum_among_groups_of_at_most_k(k: int) -> None:
    """Driven against a planted table, the plan measures exactly the groups of at most k tasks (and the
    half singles), and the chosen grouping is the brute-force optimum of the table restricted to them."""
    problem, table = planted_table(groups=(("a1", "a2", "a3"), ("b1", "b2")), loner="c")
    strategy = make_strategy("exhaustive", problem, {"max_group_size": k})
    trainer = TableTrainer({1.0: table})
    history = drive(strategy, trainer.measure)
    restricted = _restricted(table, k)
    assert {r.candidate for r in trainer.revealed} == set(restricted)
    predicted = strategy.predict([m for _, ms in history for m in ms]).selection
    assert predicted == restricted
    first = {1: 3.0, 2: 3.0, 3: 2.0}[k]  # six half singles; three pairs; two triples
    assert budget_curve(predicted).curve[0].budget == first  # the default sweep starts where groups can serve
    curve = budget_curve(predicted, [first, first + 0.5]).curve  # brute force: small budgets only
    for grouping in curve:
        assert all(len(n.tasks) <= k or n.capacity == HALF for n in grouping.networks)
        assert grouping.selection_total == pytest.approx(brute_optimum(restricted, grouping.budget))
