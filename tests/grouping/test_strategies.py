"""The strategy interface and the paper's approximations as strategies (exhaustive, esa, hoa)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from grouping.candidates import Candidate
from grouping.hoa import higher_order_approximation
from grouping.strategies import (
    STRATEGIES,
    Measurement,
    Problem,
    Round,
    TrainingFailed,
    TrainingRequest,
    compute_share,
    drive,
    exhaustive_plan,
    make_strategy,
)
from grouping.strategies.cost import CostModel

from .conftest import SETTINGS
from .strategy_helpers import TableTrainer, planted_table

PAPER = ("s", "d", "n", "k", "e")


def test_every_approximation_is_registered():
    assert set(STRATEGIES) == {"exhaustive", "esa", "hoa", "tag", "adaptive"}


def test_unknown_strategy_and_bad_options_are_clear_errors():
    problem = Problem(tasks=PAPER)
    with pytest.raises(ValueError, match="unknown strategy 'exhaustiv'; choose one of adaptive, esa"):
        make_strategy("exhaustiv", problem)
    with pytest.raises(ValueError, match="esa options: fidelity"):
        make_strategy("esa", problem, {"fidelity": 1.5})
    with pytest.raises(ValueError, match="unknown option"):
        make_strategy("hoa", problem, {"fidelty": 0.5})


def test_measurement_must_report_exactly_the_request_tasks():
    request = TrainingRequest(tasks=("s", "d"))
    with pytest.raises(ValidationError, match="exactly the tasks"):
        Measurement(request=request, selection={"s": 1.0})
    with pytest.raises(ValidationError, match="lookahead"):
        Measurement(request=request, selection={"s": 1.0, "d": 1.0}, affinity={"s": {"d": 0.1}})
    with pytest.raises(ValidationError):
        Measurement(request=request, selection={"s": float("nan"), "d": 1.0})


def test_request_key_ignores_reason_and_round():
    a = TrainingRequest(tasks=("s",), capacity=0.5, fidelity=0.2, seed=1, reason="x", round=1)
    b = TrainingRequest(tasks=("s",), capacity=0.5, fidelity=0.2, seed=1, reason="y", round=4)
    assert a.key() == b.key()
    assert a.label() == "s@0.5 f0.2 s1"


@pytest.mark.shared_data
def test_exhaustive_is_one_round_of_every_network_and_predicts_the_full_table(standley):
    selection, scoring = standley(SETTINGS[1][0]), standley(SETTINGS[1][1])
    strategy = make_strategy("exhaustive", Problem(tasks=PAPER))
    trainer = TableTrainer({1.0: selection}, scoring)
    history = drive(strategy, trainer.measure)
    assert [r.index for r, _ in history] == [1]
    assert len(trainer.revealed) == 36 == len(selection)
    prediction = strategy.predict([m for _, ms in history for m in ms])
    assert prediction.selection == selection
    assert prediction.scoring == scoring


@pytest.mark.shared_data
def test_esa_predicts_the_low_fidelity_losses(standley):
    early = standley(SETTINGS[1][2])
    strategy = make_strategy("esa", Problem(tasks=PAPER))
    history = drive(strategy, TableTrainer({0.2: early}).measure)
    requests = history[0][0].requests
    assert {r.fidelity for r in requests} == {0.2}
    assert strategy.predict([m for _, ms in history for m in ms]).selection == early


@pytest.mark.shared_data
@pytest.mark.parametrize("setting", [1, 2, 3, 4])
def test_hoa_strategy_reproduces_grouping_hoa(standley, setting):
    selection = standley(SETTINGS[setting][0])
    strategy = make_strategy("hoa", Problem(tasks=PAPER))
    trainer = TableTrainer({1.0: selection})
    history = drive(strategy, trainer.measure)
    assert len(trainer.revealed) == 20  # 5 half singles, 5 singles, 10 pairs
    assert all(r.candidate.size <= 2 for r in trainer.revealed)
    predicted = strategy.predict([m for _, ms in history for m in ms]).selection
    assert predicted == higher_order_approximation(selection)


def test_seeds_are_averaged_and_their_spread_reported():
    problem, table = planted_table()
    problem = problem.model_copy(update={"seeds": 2})
    strategy = make_strategy("exhaustive", problem)
    trainer = TableTrainer({1.0: table}, seed_shift=0.1)  # seed 1 is 10% above seed 0
    history = drive(strategy, trainer.measure)
    assert len(trainer.revealed) == 2 * len(table)
    prediction = strategy.predict([m for _, ms in history for m in ms])
    single = Candidate(("a1",))
    assert prediction.selection.loss(single, "a1") == pytest.approx(1.05)  # mean of 1.0 and 1.1
    assert prediction.seed_spread[single]["a1"] == pytest.approx(0.1 / 2**0.5)  # stdev of (1.0, 1.1)


def test_a_resumed_fixed_strategy_asks_only_for_what_is_missing_and_not_for_failures():
    problem, table = planted_table()
    strategy = make_strategy("hoa", problem)
    plan = strategy.next_round([])
    assert isinstance(plan, Round)
    trainer = TableTrainer({1.0: table})
    done = [trainer.measure(r) for r in plan.requests[:10]]
    failed = [plan.requests[10]]
    rest = strategy.next_round(done, failed)
    assert rest is not None
    assert [r.key() for r in rest.requests] == [r.key() for r in plan.requests[11:]]
    everything = done + [trainer.measure(r) for r in rest.requests]
    assert strategy.next_round(everything, failed) is None


def test_drive_skips_failed_trainings_and_refuses_repeats():
    problem, table = planted_table()
    trainer = TableTrainer({1.0: table})

    def flaky(request: TrainingRequest) -> Measurement:
        if request.tasks == ("a1", "a2"):
            raise TrainingFailed("boom")
        return trainer.measure(request)

    strategy = make_strategy("hoa", problem)
    history = drive(strategy, flaky)
    measured = [m for _, ms in history for m in ms]
    prediction = strategy.predict(measured)
    assert Candidate(("a1", "a2")) not in prediction.selection
    assert Candidate(("a1", "a2", "a3")) not in prediction.selection  # needs the failed pair: left out
    assert Candidate(("a1", "a3", "b1")) in prediction.selection

    class Stubborn(type(strategy)):  # type: ignore[misc]
        def next_round(self, measured, failed=()):
            return Round(index=1, requests=(TrainingRequest(tasks=("a1",)),), why="again")

    with pytest.raises(RuntimeError, match="asked again"):
        drive(Stubborn(problem), trainer.measure)


def test_cost_units_and_the_exhaustive_share():
    problem = Problem(tasks=PAPER)
    units = CostModel()
    assert units.total(exhaustive_plan(problem)) == pytest.approx(31 + 5 * 0.5)
    hoa_plan = make_strategy("hoa", problem).next_round([])
    assert hoa_plan is not None
    assert units.total(hoa_plan.requests) == pytest.approx(15 + 2.5)  # singles + pairs + half singles
    measured = [Measurement(request=r, selection={t: 1.0 for t in r.tasks}) for r in hoa_plan.requests]
    assert compute_share(problem, measured) == pytest.approx(17.5 / 33.5)


def test_cost_model_recovers_planted_seconds():
    problem = Problem(tasks=PAPER)
    truth = CostModel(2.0, 3.0, 20.0, 5.0, per_second=True)  # c0 + f (a + a_c c + b (k - 1))
    requests = [
        TrainingRequest(tasks=t, capacity=c, fidelity=f)
        for t in (("s",), ("s", "d"), PAPER)
        for c in (0.5, 1.0)
        for f in (0.1, 1.0)
    ]
    measured = [
        Measurement(request=r, selection={t: 1.0 for t in r.tasks}, wall_seconds=truth.cost(r))
        for r in requests
    ]
    fitted = CostModel.fit(measured)
    assert fitted.per_second
    for r in exhaustive_plan(problem):
        assert fitted.cost(r) == pytest.approx(truth.cost(r), rel=1e-6)
    by_hand = 2.0 + 1.0 * (3.0 + 20.0 * 1.0 + 5.0 * 4)  # the all-task network at full size and fidelity
    assert fitted.cost(TrainingRequest(tasks=PAPER)) == pytest.approx(by_hand)
    reused = [m.model_copy(update={"reused": True}) for m in measured]
    assert fitted.spent(reused) == 0.0


def test_grouping_strategies_import_neither_torch_nor_ray():
    code = (
        "import sys, grouping.strategies, grouping.noise; "
        "print(sorted(m for m in ('torch', 'ray') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
