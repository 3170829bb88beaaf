"""Judging groupings: serving a fixed set of networks, random partitions, the gap to optimal."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from grouping import LossTable, budget_curve, read_loss_table
from grouping.candidates import Candidate
from grouping.evaluation import (
    gap_percent,
    mean_gap,
    random_grouping_totals,
    random_partition,
    rank_agreement,
    served_total,
    serving,
)
from tests.grouping.conftest import random_table

TASKS = ("a", "b", "c")


def hand_table() -> LossTable:
    return LossTable.from_losses(
        TASKS,
        {
            Candidate(("a",)): {"a": 1.0},
            Candidate(("b",)): {"b": 2.0},
            Candidate(("c",)): {"c": 3.0},
            Candidate(("a", "b")): {"a": 0.5, "b": 2.5},
            Candidate(("a", "b", "c")): {"a": 0.8, "b": 1.5, "c": 3.5},
        },
    )


def test_each_task_is_served_by_its_lowest_selection_loss_and_the_rest_are_auxiliary() -> None:
    t = hand_table()
    nets = [Candidate(("a", "b")), Candidate(("a", "b", "c"))]
    served = serving(nets, t)
    # a: 0.5 in ab beats 0.8 in abc; b: 1.5 in abc beats 2.5 in ab; c only in abc
    assert served == {"a": nets[0], "b": nets[1], "c": nets[1]}
    assert served_total(served, t) == pytest.approx(0.5 + 1.5 + 3.5)
    assert served_total(served, t, {"a": 2.0, "b": 0.0, "c": 1.0}) == pytest.approx(1.0 + 3.5)


def test_serving_follows_selection_even_where_the_scoring_table_disagrees() -> None:
    selection = hand_table()
    scoring = LossTable.from_losses(
        TASKS,
        {
            Candidate(("a", "b")): {"a": 0.9, "b": 2.5},  # a is worse here than in abc on test ...
            Candidate(("a", "b", "c")): {"a": 0.1, "b": 1.5, "c": 3.5},
        },
    )
    served = serving([Candidate(("a", "b")), Candidate(("a", "b", "c"))], selection)
    assert served_total(served, scoring) == pytest.approx(0.9 + 1.5 + 3.5)  # ... but selection chose ab
    assert (
        served_total(serving([Candidate(("a",)), Candidate(("b",)), Candidate(("c",))], selection), scoring)
        is None
    )


def test_bad_network_sets_are_named() -> None:
    t = hand_table()
    with pytest.raises(ValueError, match=r"network\(s\) bc are not in the selection table"):
        serving([Candidate(("b", "c"))], t)
    with pytest.raises(ValueError, match="task 'c'"):
        serving([Candidate(("a", "b"))], t)


def test_random_partitions_are_partitions_and_reach_every_partition() -> None:
    tasks = ("a", "b", "c", "d")
    rng = random.Random(0)
    seen = set()
    for _ in range(600):
        groups = random_partition(tasks, 2, rng)
        assert len(groups) == 2 and all(groups)
        assert sorted(t for g in groups for t in g) == list(tasks)
        assert all(list(g) == sorted(g) for g in groups)  # in task order, so they match table candidates
        seen.add(frozenset(groups))
    assert len(seen) == 7  # Stirling number S(4, 2)
    assert random_partition(tasks, 2, random.Random(5)) == random_partition(tasks, 2, random.Random(5))
    assert sorted(random_partition(tasks, 4, rng)) == [("a",), ("b",), ("c",), ("d",)]
    with pytest.raises(ValueError, match="between 1 and 4"):
        random_partition(tasks, 5, rng)


def test_no_random_grouping_beats_the_optimal_grouping_of_its_cost() -> None:
    """Scored on the table they are chosen on, random partitions into k networks can only tie or lose to
    the exact solver's grouping at budget k (which may also use overlapping or half-size networks)."""
    rng = np.random.default_rng(3)
    for _ in range(5):
        t = random_table(rng, 5)
        optimal = {g.budget: g.selection_total for g in budget_curve(t, budgets=[1, 2, 3, 4, 5]).curve}
        for k in range(1, 6):
            totals = random_grouping_totals(t, t, k, draws=40, seed=k)
            assert len(totals) == 40
            assert min(totals) >= optimal[k] - 1e-9


def test_random_groupings_skip_partitions_with_untrained_networks() -> None:
    t = hand_table()  # of the 2-network partitions only {a,b} + {c} is trained
    totals = random_grouping_totals(t, t, 2, draws=60, seed=1)
    assert 0 < len(totals) < 60
    assert totals == pytest.approx([0.5 + 2.5 + 3.0] * len(totals))


def test_gap_percent_and_mean_gap() -> None:
    assert gap_percent(1.1, 1.0) == pytest.approx(10.0)
    assert gap_percent(1.0, 1.0) == 0.0
    assert gap_percent(None, 1.0) is None and gap_percent(1.0, None) is None
    with pytest.raises(ValueError, match="optimal_total"):
        gap_percent(1.0, 0.0)
    gaps = {1.0: 0.0, 2.0: 4.0, 1.5: None, 3.0: 2.0}
    assert mean_gap(gaps) == pytest.approx(2.0)
    assert mean_gap(gaps, skip_first=True) == pytest.approx(3.0)
    assert mean_gap({1.0: None}) is None


def test_paper_setting_1_hoa_gap_to_optimal(shared_data: Path) -> None:
    """The published setting-1 curves (../shared/data/README.md): HOA 0.45474 vs optimal 0.45224 at 2 SNT."""
    folder = shared_data / "standley"
    selection = read_loss_table(folder / "results.txt")
    test = read_loss_table(folder / "results_test.txt")
    from grouping import higher_order_approximation

    optimal = budget_curve(selection, budgets=[2.0], scoring=test).curve[0].scoring_total
    hoa = budget_curve(higher_order_approximation(selection), budgets=[2.0], scoring=test).curve[0]
    assert optimal == pytest.approx(0.45224, abs=5e-6)
    assert hoa.scoring_total == pytest.approx(0.45474, abs=5e-6)
    assert gap_percent(hoa.scoring_total, optimal) == pytest.approx(
        100 * (0.45474 - 0.45224) / 0.45224, abs=2e-3
    )
    # the all-task network, served like a grouping, is the 1-SNT point of every curve
    everything = selection.candidate(selection.tasks)
    assert served_total(serving([everything], selection), test) == pytest.approx(0.50278, abs=5e-6)


def test_rank_agreement_is_spearman_and_invariant_to_monotone_maps() -> None:
    rng = np.random.default_rng(7)
    truth = random_table(rng, 4)
    # any strictly increasing map of every loss keeps the order: rho = 1 for every task
    squashed = LossTable.from_losses(
        truth.tasks, {c: {t: float(np.log(truth.loss(c, t)) * 3 + 1) for t in c.tasks} for c in truth}
    )
    assert all(r == pytest.approx(1.0) for r in rank_agreement(squashed, truth).values())
    # reversing the order: rho = -1
    flipped = LossTable.from_losses(
        truth.tasks, {c: {t: -truth.loss(c, t) + 10 for t in c.tasks} for c in truth}
    )
    assert all(r == pytest.approx(-1.0) for r in rank_agreement(flipped, truth).values())


def test_rank_agreement_hand_computed_with_ties_and_too_few_candidates() -> None:
    tasks = ("a", "b")
    truth = LossTable.from_losses(
        tasks,
        {
            Candidate(("a",)): {"a": 1.0},
            Candidate(("b",)): {"b": 1.0},
            Candidate(("a",), 0.5): {"a": 2.0},
            Candidate(("a", "b")): {"a": 3.0, "b": 2.0},
        },
    )
    method = LossTable.from_losses(
        tasks,
        {
            Candidate(("a",)): {"a": 5.0},
            Candidate(("b",)): {"b": 1.0},
            Candidate(("a",), 0.5): {"a": 5.0},  # tied with the full single: ranks 1.5, 1.5, 3
            Candidate(("a", "b")): {"a": 9.0, "b": 2.0},
        },
    )
    rho = rank_agreement(method, truth)
    # truth ranks (1, 2, 3), method ranks (1.5, 1.5, 3): Pearson of those = sqrt(3)/2
    assert rho["a"] == pytest.approx(np.sqrt(3) / 2)
    assert rho["b"] is None  # only two candidates train b
    assert rank_agreement(method, truth, min_size=2) == {"a": None, "b": None}


def _ranks(values: list[float]) -> np.ndarray:
    """Ranks from 1, ties sharing their mean rank (written here, not taken from scipy)."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = np.empty(len(values))
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def _spearman(a: list[float], b: list[float]) -> float:
    """Spearman's rho as the definition says: Pearson's correlation of the two rank vectors."""
    ra, rb = _ranks(a) - (len(a) + 1) / 2, _ranks(b) - (len(b) + 1) / 2
    return float(ra @ rb / np.sqrt((ra @ ra) * (rb @ rb)))


def test_rank_agreement_on_the_papers_esa_and_hoa_tables(shared_data: Path) -> None:
    """Setting 1: ESA's early-stopped losses and HOA's predictions against the converged validation losses,
    task by task, against Spearman's definition computed independently (ranks, then Pearson), and the
    values docs/study.md publishes (two decimals)."""
    from grouping import higher_order_approximation

    selection = read_loss_table(shared_data / "standley" / "results.txt")
    esa = read_loss_table(shared_data / "standley" / "results_20.txt")
    hoa = higher_order_approximation(selection)
    for method, min_size in ((esa, 1), (hoa, 3)):
        rho = rank_agreement(method, selection, min_size=min_size)
        for task in selection.tasks:
            shared = [c for c in method if task in c.tasks and c.size >= min_size and c in selection]
            expected = _spearman(
                [method.loss(c, task) for c in shared], [selection.loss(c, task) for c in shared]
            )
            assert rho[task] == pytest.approx(expected)
    published = {
        "hoa": (hoa, 3, [0.81, 0.44, 0.45, 0.55, 0.65]),
        "esa": (esa, 1, [0.83, 0.22, 0.59, -0.07, 0.17]),
    }
    for method, min_size, values in published.values():
        rho = rank_agreement(method, selection, min_size=min_size)
        assert [round(rho[t], 2) for t in selection.tasks] == values
    # what explains ESA's gap on this setting: after 20% of training it orders the keypoint networks
    # no better than chance, while segmentation keeps its order
    esa_rho = rank_agreement(esa, selection)
    assert esa_rho["k"] < 0.1 < 0.8 < esa_rho["s"]
    measured = rank_agreement(hoa, selection, min_size=3, measured_only=True)
    assert all(r is None for r in measured.values())  # every 3+ task row of an HOA table is predicted
