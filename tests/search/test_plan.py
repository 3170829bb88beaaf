"""Job spec validation, plans and training keys (no Ray, no training)."""

from __future__ import annotations

import pytest

from grouping.budgets import parse_budgets
from search.keys import training_key
from search.plan import make_plan, planned_size
from search.spec import JobSpec
from search.submit import prepare
from workers.spec import DatasetRef, TrainingSpec


def spec(**overrides: object) -> JobSpec:
    data: dict[str, object] = {"dataset": {"name": "planted", "params": {}}, "tasks": ["a1", "a2", "b1"]}
    data.update(overrides)
    return JobSpec.model_validate(data)


def test_budget_sweep_includes_stop_and_avoids_float_drift() -> None:
    assert parse_budgets("1:5:0.5") == [1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0]
    assert parse_budgets("0.1:0.3:0.1") == [0.1, 0.2, 0.3]
    assert parse_budgets([3, 1, 1]) == [1.0, 3.0]
    assert parse_budgets("1:2") == [1.0, 1.5, 2.0]  # the step defaults to 0.5 SNT
    assert parse_budgets("2,1,2.5") == [1.0, 2.0, 2.5]


@pytest.mark.parametrize(
    "bad", ["1:2:3:4", "a:b:c", "5:1:0.5", "1:5:0", "-1", "1:1e9:0.001", [0.0], [], [None], {"a": 1}]
)
def test_bad_budgets_are_refused_with_a_reason(bad: object) -> None:
    with pytest.raises(ValueError, match="budget"):
        parse_budgets(bad)  # type: ignore[arg-type]


def test_default_budgets_are_one_to_n_by_half() -> None:
    assert spec().effective_budgets == [1.0, 1.5, 2.0, 2.5, 3.0]


def test_budget_below_cheapest_cover_is_refused() -> None:
    with pytest.raises(ValueError, match="below the cheapest selection"):
        spec(budgets=[0.5])
    # with half-size singles as the only way below 1 SNT there is none: 3 x 0.5 = 1.5 > 1
    assert spec(budgets=[1.0]).cheapest_cover() == 1.0


def test_duplicate_tasks_and_unknown_fields_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate tasks"):
        spec(tasks=["a1", "a1"])
    with pytest.raises(ValueError, match="extra"):
        spec(colour="blue")


def test_plan_sizes_match_the_paper() -> None:
    n = 5
    tasks = [f"t{i}" for i in range(n)]
    exhaustive = spec(tasks=tasks)
    assert planned_size(exhaustive) == 2**n - 1 + n  # 31 full networks + 5 half singles = 36
    hoa = spec(tasks=tasks, approximation="hoa")
    assert planned_size(hoa) == n + n + n * (n - 1) // 2  # half singles, full singles, pairs
    assert len(make_plan(hoa, "fp").trainings) == planned_size(hoa)
    assert planned_size(spec(tasks=tasks, seeds=3)) == 3 * 36


def test_large_exhaustive_plan_needs_explicit_permission() -> None:
    tasks = [f"t{i}" for i in range(11)]
    big = spec(tasks=tasks)
    with pytest.raises(ValueError, match="allow_large"):
        make_plan(big, "fp")
    assert planned_size(spec(tasks=tasks, allow_large=True)) == 2**11 - 1 + 11


def test_partial_and_listed_exhaustive_plans_are_counted_and_allowed_for_many_tasks() -> None:
    tasks = [f"t{i}" for i in range(14)]
    with pytest.raises(ValueError, match=r"16397 trainings.*use approximation 'hoa'"):
        make_plan(spec(tasks=tasks), "fp")  # every subset of 14 tasks: refused, a cheaper approximation named
    partial = spec(tasks=tasks, approximation_options={"max_group_size": 2})
    assert planned_size(partial) == 14 + 91 + 14 == len(make_plan(partial, "fp").trainings)
    listed = spec(tasks=tasks, approximation_options={"groups": [tasks, tasks[:5]]})
    assert planned_size(listed) == 14 + 2 + 14
    with pytest.raises(ValueError, match="the group \\['t1', 'x'\\] names 'x'"):
        spec(tasks=tasks, approximation_options={"groups": [["t1", "x"]]})


def test_esa_defaults_to_a_fifth_of_the_schedule_and_costs_less() -> None:
    full = make_plan(spec(), "fp")
    esa = make_plan(spec(approximation="esa"), "fp")
    assert {t.fidelity for t in esa.trainings} == {0.2}
    assert esa.snt_epochs < full.snt_epochs
    assert {t.key for t in esa.trainings}.isdisjoint({t.key for t in full.trainings})


def test_training_key_ignores_task_order_and_resources_but_not_settings() -> None:
    base = TrainingSpec(dataset=DatasetRef(name="planted"), tasks=["a1", "a2"], threads=1)
    same = base.model_copy(update={"tasks": ["a2", "a1"], "threads": 2})
    assert training_key(base, "fp") == training_key(same, "fp")
    for changed in (
        base.model_copy(update={"seed": 1}),
        base.model_copy(update={"capacity": 0.5}),
        base.model_copy(update={"fidelity": 0.2}),
        base.model_copy(update={"settings": base.settings.model_copy(update={"learning_rate": 0.01})}),
    ):
        assert training_key(changed, "fp") != training_key(base, "fp")
    assert training_key(base, "other-data") != training_key(base, "fp")


def test_submission_checks_tasks_against_the_dataset() -> None:
    with pytest.raises(ValueError, match="not tasks of dataset 'planted'"):
        prepare({"dataset": {"name": "planted"}, "tasks": ["a1", "zebra"]})
    with pytest.raises(ValueError, match="unknown dataset"):
        prepare({"dataset": {"name": "imagenet"}, "tasks": ["a", "b"]})
    with pytest.raises(ValueError, match="tasks"):
        prepare({"dataset": {"name": "planted"}, "tasks": ["a1"]})


def test_plan_keys_are_unique_and_stable() -> None:
    job = {"dataset": {"name": "planted"}, "tasks": ["a1", "a2", "b1"], "seeds": 2}
    first, second = prepare(job).plan, prepare(job).plan
    keys = [t.key for t in first.trainings]
    assert len(set(keys)) == len(keys) == (7 + 3) * 2
    assert keys == [t.key for t in second.trainings]


@pytest.mark.parametrize(
    ("approximation", "extra"),
    [
        ("exhaustive", {}),
        ("esa", {}),
        ("hoa", {"seeds": 2}),
        ("tag", {}),
        ("adaptive", {"max_compute": 0.6}),
    ],
)
def test_the_plan_is_the_strategys_first_round(approximation: str, extra: dict[str, object]) -> None:
    """Every approximation plans what its strategy asks for first, and counts it the same way as
    planned_size (the cheap check at submission)."""
    job = spec(approximation=approximation, **extra)
    plan = make_plan(job, "fp")
    first = job.strategy().next_round([])
    assert first is not None
    assert sorted(t.key for t in plan.trainings) == sorted(plan.from_request(r).key for r in first.requests)
    assert plan.network_trainings == len(plan.trainings) == planned_size(job)
    assert plan.rounds == 1 and all(t.round == 1 for t in plan.trainings)


def test_tag_plans_one_lookahead_all_task_training_whose_key_differs_from_a_plain_one() -> None:
    plan = make_plan(spec(approximation="tag", lookahead_every=5), "fp")
    lookahead = [t for t in plan.trainings if t.lookahead]
    assert [t.tasks for t in lookahead] == [["a1", "a2", "b1"]]
    assert plan.training_spec(lookahead[0]).lookahead.every == 5  # type: ignore[union-attr]
    plain = plan.planned(["a1", "a2", "b1"], 1.0, 1.0, 0)
    assert plain.key != lookahead[0].key  # a lookahead training is a training of its own


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"approximation": "hoa", "seeds": "auto"}, "seeds: auto is for the adaptive search"),
        ({"approximation": "hoa", "max_compute": 0.3}, "max_compute is the adaptive search's cap"),
        ({"approximation": "adaptive", "fidelity": 0.5}, "the adaptive search chooses its fidelities"),
        ({"approximation": "adaptive", "max_compute": 0.05}, "max_compute 0.05 is below the start round"),
        ({"approximation": "adaptive", "approximation_options": {"start": "x"}}, "start: Input should be"),
        ({"approximation": "tag", "approximation_options": {"nope": 1}}, "nope"),
        ({"approximation": "adaptive", "tasks": [f"t{i}" for i in range(13)]}, "at most 12 tasks"),
    ],
)
def test_bad_approximation_settings_are_refused_naming_them(extra: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        spec(**extra)


def test_the_approximations_are_the_registered_strategies() -> None:
    from grouping.strategies import STRATEGIES
    from search.spec import APPROXIMATIONS

    assert sorted(APPROXIMATIONS) == sorted(STRATEGIES)
