"""Candidate groups for many tasks (never 2^n) and HOA restricted to them."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from pydantic import ValidationError

from grouping.affinity import AffinityTable, pairwise_affinity
from grouping.candidate_groups import (
    CandidateGroupOptions,
    candidate_groups,
    group_candidates,
    predicted_gain,
)
from grouping.candidates import HALF, Candidate
from grouping.hoa import MAX_FULL_TASKS, MissingPairError, higher_order_approximation
from grouping.table import LossTable, TableRow

from .conftest import random_table


def planted_affinity(n: int, cluster: int, seed: int = 0) -> tuple[AffinityTable, list[set[int]]]:
    """Tasks in clusters of ``cluster``: gains around +0.1 within a cluster, -0.1 across, plus noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) // cluster
    gain = np.where(labels[:, None] == labels[None, :], 0.1, -0.1) + rng.normal(0, 0.01, (n, n))
    np.fill_diagonal(gain, np.nan)
    clusters = [set(np.flatnonzero(labels == c).tolist()) for c in np.unique(labels)]
    return AffinityTable(tuple(f"t{i}" for i in range(n)), gain), clusters


def bound(n: int, options: CandidateGroupOptions) -> int:
    grown = n * options.beam_width * (options.max_size - 2)
    return n + n * (n - 1) // 2 + grown + options.max_cliques + n + 1


@pytest.mark.parametrize("n", [12, 16, 20, 27, 33, 40])
def test_candidate_groups_never_list_2_to_the_n(n):
    options = CandidateGroupOptions(beam_width=4, max_size=6)
    affinity, _ = planted_affinity(n, 4, seed=n)
    groups = candidate_groups(affinity, options)
    assert len(groups) <= bound(n, options) < 2**n
    assert len(groups) < 2**n / 100 if n >= 20 else True
    assert len(set(groups)) == len(groups)
    tasks = affinity.tasks
    sizes = [len(g) for g in groups]
    assert sizes.count(1) == n and sizes.count(2) == n * (n - 1) // 2  # every single and pair
    assert groups[-1] == tasks and sizes.count(n) == 1  # and the all-task group
    assert max(sizes[:-1]) <= options.max_size
    for g in groups:  # task order of the table, sorted by size then indices
        assert list(g) == sorted(g, key=tasks.index)
    assert groups == sorted(groups, key=lambda g: (len(g), [tasks.index(t) for t in g]))


def test_random_affinities_of_forty_tasks_stay_small_and_deterministic():
    rng = np.random.default_rng(1)
    n = 40
    gain = rng.normal(0.0, 0.1, (n, n))
    np.fill_diagonal(gain, np.nan)
    affinity = AffinityTable(tuple(f"t{i}" for i in range(n)), gain)
    options = CandidateGroupOptions(beam_width=3, max_size=8, max_cliques=200)
    groups = candidate_groups(affinity, options)
    assert len(groups) <= bound(n, options)
    assert candidate_groups(affinity, options) == groups


def test_planted_clusters_are_found():
    affinity, clusters = planted_affinity(24, 4)
    groups = {frozenset(affinity.tasks.index(t) for t in g) for g in candidate_groups(affinity)}
    for cluster in clusters:
        assert frozenset(cluster) in groups
    # a group mixing two clusters is never grown (adding across lowers the predicted gain); only the all-task
    # group, always a candidate, spans them
    assert not any(3 <= len(g) < 24 and len({i // 4 for i in g}) > 1 for g in groups)
    assert frozenset(range(24)) in groups


def test_predicted_gain_is_the_hoa_mean():
    gain = np.array([[np.nan, 0.2, 0.4], [0.0, np.nan, 0.1], [-0.3, 0.3, np.nan]])
    assert predicted_gain(gain, (0, 1, 2)) == pytest.approx((0.2 + 0.4) / 2 + (0.0 + 0.1) / 2 + 0.0 / 2)
    assert predicted_gain(gain, (0,)) == 0.0
    assert predicted_gain(gain, (0, 2)) == pytest.approx(0.4 - 0.3)


def test_unknown_pairs_are_never_grown_through():
    affinity, _ = planted_affinity(8, 4)
    gain = affinity.gain.copy()
    gain[0, 1] = gain[1, 0] = math.nan
    groups = candidate_groups(AffinityTable(affinity.tasks, gain))
    assert not any({"t0", "t1"} <= set(g) for g in groups if len(g) >= 3)
    assert ("t0", "t1") in groups  # the pair itself is still a candidate (to be trained)


def test_options_are_checked():
    with pytest.raises(ValidationError, match="beam_width"):
        CandidateGroupOptions(beam_width=0)
    with pytest.raises(ValidationError, match="max_size"):
        CandidateGroupOptions(max_size=1)
    with pytest.raises(ValueError, match="expected \\(3, 3\\)"):
        candidate_groups(AffinityTable(("a", "b", "c"), np.zeros((2, 2))))


def test_group_candidates():
    cands = group_candidates([("a",), ("a", "b")])
    assert cands == [Candidate(("a",), HALF), Candidate(("a",)), Candidate(("a", "b"))]
    assert group_candidates([("a",)], half_singles=False) == [Candidate(("a",))]


# -- HOA on sparse candidate sets ----------------------------------------------------------------------------
@pytest.mark.parametrize("n", [4, 6, 7])
def test_restricted_hoa_equals_full_hoa_on_shared_rows(n):
    table = random_table(np.random.default_rng(n), n)
    full = higher_order_approximation(table)
    affinity = pairwise_affinity(table)
    groups = candidate_groups(affinity, CandidateGroupOptions(beam_width=2, max_size=4))
    restricted = higher_order_approximation(table, groups=groups)
    predicted = {c for c in restricted if restricted[c].predicted}
    assert predicted == {table.candidate(g) for g in groups if len(g) >= 3}
    for cand in restricted:
        assert restricted[cand] == full[cand]
    assert [c for c in restricted] == [c for c in full if c in restricted]  # same row order


def test_restricted_hoa_on_many_tasks_and_its_errors():
    n = 25
    tasks = [f"t{i}" for i in range(n)]
    rng = np.random.default_rng(0)
    rows = [TableRow(Candidate((t,)), {t: 1.0}) for t in tasks]
    rows += [
        TableRow(Candidate(p), {p[0]: float(rng.uniform(0.8, 1.2)), p[1]: float(rng.uniform(0.8, 1.2))})
        for p in itertools.combinations(tasks, 2)
    ]
    table = LossTable(tasks, rows)
    message = f"2\\^{n} networks \\(at most {MAX_FULL_TASKS} tasks\\); pass groups"
    with pytest.raises(ValueError, match=message):
        higher_order_approximation(table)
    groups = candidate_groups(pairwise_affinity(table), CandidateGroupOptions(beam_width=2, max_size=5))
    out = higher_order_approximation(table, groups=groups)
    assert sum(1 for c in out if out[c].predicted) == sum(1 for g in groups if len(g) >= 3)
    three = out.get(Candidate(("t0", "t1", "t2")))
    if three is not None:
        assert three.losses["t0"] == pytest.approx(
            (table.loss(Candidate(("t0", "t1")), "t0") + table.loss(Candidate(("t0", "t2")), "t0")) / 2
        )
    with pytest.raises(ValueError, match="unknown task"):
        higher_order_approximation(table, groups=[("t0", "zz", "t1")])
    sparse_pairs = table.select(predicate=lambda r: r.candidate != Candidate(("t0", "t1")))
    with pytest.raises(MissingPairError, match="no pair network t0,t1"):
        higher_order_approximation(sparse_pairs, groups=[("t0", "t1", "t2")])


def test_above_twelve_tasks_every_budget_from_one_snt_can_be_served():
    """The all-task network is always a candidate, so HOA's sparse table serves 1 SNT (before it was added,
    budgets below n / max_size SNT had no selection: the wq study part)."""
    from grouping.service import predicted_table
    from grouping.solver import budget_curve

    n = 14
    tasks = [f"t{i}" for i in range(n)]
    rng = np.random.default_rng(3)
    rows = [TableRow(Candidate((t,)), {t: 1.0}) for t in tasks]
    rows += [
        TableRow(Candidate(p), {t: float(rng.uniform(1.0, 1.3)) for t in p})
        for p in itertools.combinations(tasks, 2)
    ]
    predicted = predicted_table(LossTable(tasks, rows))
    everything = Candidate(tuple(tasks))
    assert predicted[everything].predicted  # every pair hurts here, yet the all-task network is predicted
    curve = budget_curve(predicted, [1.0, 2.0])
    assert [g.networks[0].tasks for g in curve.curve[:1]] == [tasks]
