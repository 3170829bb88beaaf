"""TAG's prediction from lookahead affinities (Fifty et al. 2021) on affinities whose answer is known."""

from __future__ import annotations

import math
from itertools import combinations

import pytest

from grouping import budget_curve
from grouping.candidates import Candidate
from grouping.strategies import Measurement, Problem, TrainingRequest, drive, make_strategy, tag_loss_table
from grouping.strategies.tag import affinity_scale

TASKS = ("a1", "a2", "a3", "b1", "b2")
CLUSTER = {"a1": "a", "a2": "a", "a3": "a", "b1": "b", "b2": "b"}
KAPPA, GAMMA = 0.05, 4.0  # true log ratio of a in G: KAPPA - GAMMA * mean affinity of G's others onto a


def affinity(within: float = 0.02, across: float = -0.01) -> dict[str, dict[str, float]]:
    """Z_{i->j}: a step on task i lowers j's loss when both are in the same cluster, raises it otherwise."""
    return {i: {j: within if CLUSTER[i] == CLUSTER[j] else across for j in TASKS if j != i} for i in TASKS}


def true_log_ratio(group: tuple[str, ...], task: str, z: dict[str, dict[str, float]]) -> float:
    return KAPPA - GAMMA * sum(z[b][task] for b in group if b != task) / (len(group) - 1)


def test_beta_and_every_prediction_by_hand():
    z = affinity()
    singles = dict.fromkeys(TASKS, 1.0)
    all_task = {t: math.exp(true_log_ratio(TASKS, t, z)) for t in TASKS}
    # mean affinity received: a-tasks (0.02 + 0.02 - 0.01 - 0.01) / 4 = 0.005, b-tasks (0.02 - 0.03) / 4
    assert affinity_scale(TASKS, {t: math.log(all_task[t]) for t in TASKS}, z) == pytest.approx(GAMMA)
    table, beta = tag_loss_table(TASKS, singles, all_task, z)
    assert beta == pytest.approx(GAMMA)
    assert len(table) == 2**5 - 1 - 5 - 1  # groups of 2..4 tasks, all predicted
    assert all(table[c].predicted for c in table)
    # a pair inside a cluster helps: 0.05 - 4 * 0.02; across clusters it hurts: 0.05 + 4 * 0.01
    assert table.loss(Candidate(("a1", "a2")), "a1") == pytest.approx(math.exp(-0.03))
    assert table.loss(Candidate(("a1", "b1")), "a1") == pytest.approx(math.exp(0.09))
    for size in (2, 3, 4):
        for group in combinations(TASKS, size):
            for t in group:
                assert math.log(table.loss(Candidate(group), t)) == pytest.approx(true_log_ratio(group, t, z))


def test_the_planted_grouping_is_chosen():
    z = affinity()
    singles = dict.fromkeys(TASKS, 1.0)
    all_task = {t: math.exp(true_log_ratio(TASKS, t, z)) for t in TASKS}
    strategy = make_strategy("tag", Problem(tasks=TASKS))
    plan = strategy.next_round([])
    assert plan is not None
    assert sorted((r.candidate.size, r.capacity, r.lookahead) for r in plan.requests) == (
        [(1, 0.5, False)] * 5 + [(1, 1.0, False)] * 5 + [(5, 1.0, True)]
    )

    def measure(request: TrainingRequest) -> Measurement:
        if request.lookahead:
            return Measurement(request=request, selection=all_task, affinity=z)
        (t,) = request.tasks
        return Measurement(
            request=request, selection={t: singles[t] * (1.1 if request.capacity < 1 else 1.0)}
        )

    history = drive(strategy, measure)
    prediction = strategy.predict([m for _, ms in history for m in ms])
    assert prediction.affinity == z
    assert not prediction.selection[Candidate(TASKS)].predicted  # the all-task network is measured
    best = budget_curve(prediction.selection, budgets=[2.0]).curve[0]
    assert sorted(n.label for n in best.networks) == ["a1,a2,a3", "b1,b2"]


def test_errors_name_what_is_missing():
    z = affinity()
    del z["a1"]["b2"]
    with pytest.raises(ValueError, match="a1->b2"):
        tag_loss_table(TASKS, dict.fromkeys(TASKS, 1.0), dict.fromkeys(TASKS, 1.0), z)
    with pytest.raises(ValueError, match="log losses"):
        tag_loss_table(TASKS, dict.fromkeys(TASKS, 1.0), {**dict.fromkeys(TASKS, 1.0), "a2": 0.0}, affinity())
    strategy = make_strategy("tag", Problem(tasks=TASKS))
    plain = [Measurement(request=TrainingRequest(tasks=(t,)), selection={t: 1.0}) for t in TASKS]
    with pytest.raises(ValueError, match="lookahead affinities"):
        strategy.predict(plain)


def test_equal_affinities_say_nothing_beyond_the_all_task_network():
    z = affinity(within=0.01, across=0.01)
    table, beta = tag_loss_table(TASKS, dict.fromkeys(TASKS, 1.0), dict.fromkeys(TASKS, 0.9), z)
    assert beta == 0.0
    assert all(table.loss(c, t) == pytest.approx(0.9) for c in table for t in c.tasks)
