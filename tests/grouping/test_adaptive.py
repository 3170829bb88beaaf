"""The adaptive strategy on a planted table: rounds, the cap, resume, seeds, the TAG start."""

from __future__ import annotations

import math

import pytest

from grouping import budget_curve
from grouping.candidates import Candidate
from grouping.strategies import Measurement, Problem, TrainingRequest, drive, make_strategy
from grouping.strategies.cost import CostModel, exhaustive_plan

from .strategy_helpers import TableTrainer, low_fidelity, planted_table
from .test_tag import CLUSTER, TASKS, affinity, true_log_ratio


@pytest.fixture(scope="module")
def planted():
    problem, table = planted_table()
    return problem, table, {1.0: table, 0.1: low_fidelity(table)}


def test_start_round_is_cheap_and_informative(planted):
    problem, _, _ = planted
    first = make_strategy("adaptive", problem).next_round([])
    assert first is not None and first.index == 1
    kinds = sorted((r.candidate.size, r.capacity, r.fidelity) for r in first.requests)
    n = problem.n_tasks
    assert kinds == sorted(
        [(1, 0.5, 0.1)] * n + [(1, 1.0, 0.1)] * n + [(2, 1.0, 0.1)] * (n * (n - 1) // 2) + [(n, 1.0, 1.0)]
    )
    units = CostModel()
    share = units.total(first.requests) / units.total(exhaustive_plan(problem))
    assert share == pytest.approx((1 + 0.1 * (n + n / 2 + n * (n - 1) / 2)) / (2**n - 1 + n / 2))


def test_a_cap_below_the_start_round_is_refused(planted):
    problem, _, _ = planted
    with pytest.raises(ValueError, match="below the start round's estimated cost"):
        make_strategy("adaptive", problem, {"max_compute": 0.02})


def test_adaptive_finds_the_planted_grouping_with_a_fraction_of_the_trainings(planted):
    problem, table, tables = planted
    strategy = make_strategy("adaptive", problem, {"max_compute": 0.25})
    trainer = TableTrainer(tables)
    history = drive(strategy, trainer.measure)
    measured = [m for _, ms in history for m in ms]
    prediction = strategy.predict(measured)
    budgets = problem.effective_budgets()
    chosen = budget_curve(prediction.selection, budgets=budgets, scoring=table)
    optimal = budget_curve(table, budgets=budgets)
    for mine, best in zip(chosen.curve, optimal.curve, strict=True):
        assert mine.scoring_total == pytest.approx(best.selection_total)  # the optimum at every budget
    at3 = sorted(n.label for n in chosen.at(3.0).networks)
    assert at3 == ["a1,a2,a3", "b1,b2", "c"]  # the planted grouping
    full = [r for r in trainer.revealed if r.fidelity == 1.0]
    exhaustive = len(exhaustive_plan(problem))  # 63 subsets + 6 half singles
    assert exhaustive == 69
    assert len(full) <= 20  # 16 here: under a third of the exhaustive plan's networks
    units = CostModel()
    spent = units.total(trainer.revealed) / units.total(exhaustive_plan(problem))
    assert spent <= 0.25 + 1e-9
    assert all(not prediction.selection[m.candidate].predicted for m in measured if m.request.fidelity == 1.0)
    assert all(prediction.selection[c].predicted for c in prediction.uncertainty)


def test_rounds_say_what_they_train_and_why(planted):
    problem, _, tables = planted
    strategy = make_strategy("adaptive", problem, {"max_compute": 0.12})
    history = drive(strategy, TableTrainer(tables).measure)
    assert history[0][0].why.startswith("start:")
    for round_, _ in history[1:]:
        assert round_.why.startswith(f"round {round_.index}:")
        assert all(r.reason and r.round == round_.index for r in round_.requests)
        assert all(r.label() in round_.why for r in round_.requests)


def test_replaying_is_deterministic_and_a_resumed_search_trains_nothing_twice(planted):
    problem, _, tables = planted
    options = {"max_compute": 0.2}
    whole = drive(make_strategy("adaptive", problem, options), TableTrainer(tables).measure)
    again = drive(make_strategy("adaptive", problem, options), TableTrainer(tables).measure)
    assert [[r.key() for r in rd.requests] for rd, _ in whole] == [
        [r.key() for r in rd.requests] for rd, _ in again
    ]
    # a search killed after three rounds, resumed by a new strategy object from the stored measurements
    stored = [m for _, ms in whole[:3] for m in ms]
    trainer = TableTrainer(tables)
    rest = drive(make_strategy("adaptive", problem, options), trainer.measure, measured=stored)
    assert [[r.key() for r in rd.requests] for rd, _ in rest] == [
        [r.key() for r in rd.requests] for rd, _ in whole[3:]
    ]
    assert not {r.key() for r in trainer.revealed} & {m.request.key() for m in stored}
    # the order in which the trainings finished does not matter
    shuffled = stored[::-1]
    strategy = make_strategy("adaptive", problem, options)
    assert strategy.next_round(shuffled) == strategy.next_round(stored)


def test_seeds_auto_spends_extra_seeds_only_on_measured_networks_that_decide(planted):
    problem, _, tables = planted

    class Noisy(TableTrainer):
        def measure(self, request: TrainingRequest) -> Measurement:
            m = super().measure(request)
            wobble = 1 + 0.04 * math.sin(7 * request.seed + 3 * len(self.revealed))
            return m.model_copy(update={"selection": {t: v * wobble for t, v in m.selection.items()}})

    trainer = Noisy(tables)
    strategy = make_strategy("adaptive", problem, {"max_compute": 0.3, "seeds": "auto", "max_seeds": 3})
    history = drive(strategy, trainer.measure)
    extra = [r for r in trainer.revealed if r.seed > 0]
    assert extra, "no extra seed was spent"
    first = {r.key()[:3]: i for i, r in reversed(list(enumerate(trainer.revealed))) if r.seed == 0}
    for i, r in enumerate(trainer.revealed):
        if r.seed > 0:
            assert r.fidelity == 1.0 and r.seed <= 2
            assert first[r.key()[:3]] < i  # seed 0 of the same network was measured before
            assert r.reason.startswith("another seed")
    assert strategy.predict([m for _, ms in history for m in ms]).seed_spread


def test_fixed_seeds_train_every_full_fidelity_network_with_each_seed(planted):
    problem, _, tables = planted
    trainer = TableTrainer(tables, seed_shift=0.01)
    drive(make_strategy("adaptive", problem, {"max_compute": 0.2, "seeds": 2}), trainer.measure)
    full = [r for r in trainer.revealed if r.fidelity == 1.0]
    by_network = {}
    for r in full:
        by_network.setdefault(r.candidate, set()).add(r.seed)
    assert set(map(frozenset, by_network.values())) == {frozenset({0, 1})}


def test_tag_start_puts_the_affinities_into_the_model():
    z = affinity()
    all_task = {t: math.exp(true_log_ratio(TASKS, t, z)) for t in TASKS}
    problem = Problem(tasks=TASKS)
    strategy = make_strategy("adaptive", problem, {"start": "tag", "max_compute": 0.5})
    first = strategy.next_round([])
    assert first is not None
    assert sum(r.lookahead for r in first.requests) == 1

    def measure(request: TrainingRequest) -> Measurement:
        if request.lookahead:
            return Measurement(request=request, selection=all_task, affinity=z)
        return Measurement(request=request, selection={t: 1.0 for t in request.tasks})

    measured = [measure(r) for r in first.requests]
    prediction = strategy.predict(measured)
    inside = prediction.selection.loss(Candidate(("a1", "a2")), "a1")
    across = prediction.selection.loss(Candidate(("a1", "b1")), "a1")
    assert CLUSTER["a1"] == CLUSTER["a2"] != CLUSTER["b1"]
    assert inside < 1.0 < across  # a cluster partner helps, the other cluster hurts, as the affinities say


def test_losses_must_be_positive():
    problem = Problem(tasks=("a", "b"))
    strategy = make_strategy("adaptive", problem, {"max_compute": 1.0})
    bad = [Measurement(request=TrainingRequest(tasks=("a", "b")), selection={"a": -1.0, "b": 1.0})]
    with pytest.raises(ValueError, match="log losses"):
        strategy.predict(bad)
