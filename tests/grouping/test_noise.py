"""Which runner-up groupings are within seed noise of the choice (indistinguishable_from), by hand."""

from __future__ import annotations

import math

import pytest

from grouping import LossTable, budget_curve
from grouping.candidates import Candidate
from grouping.noise import difference_spread, indistinguishable_from, indistinguishable_per_budget, runner_ups
from grouping.results import Grouping, Network


def grouping(total: float, *servers: tuple[str, list[str]]) -> Grouping:
    """A grouping whose network ``label`` (one-letter tasks) serves the listed tasks."""
    return Grouping(
        budget=2.0,
        cost=float(len(servers)),
        selection_total=total,
        networks=[
            Network(
                tasks=list(label),
                capacity=1.0,
                cost=1.0,
                serves=serves,
                predicted=False,
                label=label,
                selection_losses=dict.fromkeys(label, 0.0),
            )
            for label, serves in servers
        ],
    )


def test_indistinguishable_by_hand():
    choice = grouping(1.00, ("sd", ["s", "d"]), ("n", ["n"]))
    close = grouping(1.01, ("sd", ["s", "d"]), ("dn", ["n"]))  # only n changes server
    far = grouping(1.05, ("sd", ["s", "d"]), ("dn", ["n"]))
    same_servers = grouping(1.001, ("sd", ["s", "d"]), ("n", ["n"]))  # the choice again: skipped
    other = grouping(1.03, ("s", ["s"]), ("dn", ["d", "n"]))
    spread = {"n": {"n": 0.02}, "dn": {"d": 0.01, "n": 0.01}, "sd": {"s": 0.005, "d": 0.005}, "s": {"s": 0.0}}
    # n served by n (sd 0.02) in the choice, by dn (0.01) in `close`: sqrt(0.02^2 + 0.01^2) = 0.02236
    assert difference_spread(choice, close, spread) == pytest.approx(math.hypot(0.02, 0.01))
    # `other`: s (0.005 vs 0), d (0.005 vs 0.01), n (0.02 vs 0.01) all change server
    expected = math.sqrt(0.005**2 + 0.005**2 + 0.01**2 + 0.02**2 + 0.01**2)
    assert difference_spread(choice, other, spread) == pytest.approx(expected)  # 0.0255 < 0.03: distinct
    found = indistinguishable_from(choice, [far, close, same_servers, other], spread)
    assert [r.networks for r in found] == [["sd", "dn"]]
    assert found[0].total == 1.01
    assert found[0].difference == pytest.approx(0.01)
    assert found[0].spread == pytest.approx(math.hypot(0.02, 0.01))
    # two standard deviations admit `other` too; weights scale each task's spread
    assert len(indistinguishable_from(choice, [far, close, other], spread, z=2.0)) == 2
    assert indistinguishable_from(choice, [close], spread, weights={"s": 1, "d": 1, "n": 0.1}) == []


def test_without_seed_spread_nothing_is_indistinguishable():
    choice = grouping(1.00, ("sd", ["s", "d"]), ("n", ["n"]))
    close = grouping(1.0001, ("sd", ["s", "d"]), ("dn", ["n"]))
    assert indistinguishable_from(choice, [close], {}) == []


def test_runner_ups_and_per_budget_on_a_table():
    c = Candidate
    table = LossTable.from_losses(
        ["a", "b"],
        {
            c(("a",)): {"a": 1.0},
            c(("b",)): {"b": 1.0},
            c(("a", "b")): {"a": 1.05, "b": 1.01},
            c(("a",), 0.5): {"a": 1.3},
            c(("b",), 0.5): {"b": 1.3},
        },
    )
    curve = budget_curve(table, budgets=[1.0, 2.0])
    at2 = curve.at(2.0)
    assert [n.label for n in at2.networks] == ["a", "b"]  # total 2.0
    # without b: a + ab (ab serves b) = 1.0 + 1.01; without a: ab + b (ab serves a) = 1.05 + 1.0
    seconds = runner_ups(table, at2)
    assert [([n.label for n in g.networks], g.selection_total) for g in seconds] == [
        (["a", "ab"], pytest.approx(2.01)),
        (["ab", "b"], pytest.approx(2.05)),
    ]
    spread = {"a": {"a": 0.02}, "ab": {"a": 0.01, "b": 0.01}, "b": {"b": 0.02}}
    found = indistinguishable_per_budget(curve, table, spread)
    assert found[1.0] == []  # the all-task network is the only grouping at 1 SNT
    # a + ab: only b changes server, 0.01 < hypot(0.02, 0.01); ab + b: 0.05 > hypot(0.02, 0.01)
    assert [r.networks for r in found[2.0]] == [["a", "ab"]]
