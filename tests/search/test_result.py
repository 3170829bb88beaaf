"""build_result: a job's result from its plan and its trainings' stored records, without training anything
(the records are built as the store returns them; the Ray path is tested in test_search_ray)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pytest

from grouping import budget_curve
from search.plan import Plan, make_plan
from search.result import search_result
from search.spec import DEFAULT_SOLVE_TIME_LIMIT, JobSpec
from search.store.models import JobTrainingRecord
from tests.results import stored_training

Losses = Callable[[tuple[str, ...], float, int], dict[str, float]]


def clustered(tasks: tuple[str, ...], group: tuple[str, ...], capacity: float, seed: int) -> dict[str, float]:
    """A task's loss is 1 alone (1.1 at half size), x0.8 with tasks of its cluster (same first letter), x1.2
    with the others (the mean over its partners); seeds add +-0.01."""
    noise = 0.01 * (1 if seed % 2 else -1)
    if len(group) == 1:
        return {group[0]: (1.0 if capacity == 1.0 else 1.1) + noise}
    return {
        t: sum(0.8 if o[0] == t[0] else 1.2 for o in group if o != t) / (len(group) - 1) + noise
        for t in group
    }


def records(plan: Plan, losses: Losses, failed: Iterable[tuple[str, ...]] = ()) -> list[JobTrainingRecord]:
    """Every planned training as the store returns it: succeeded with ``losses``, or failed for the groups
    in ``failed``."""
    dead = set(failed)
    return [
        stored_training(plan, t, losses(tuple(t.tasks), t.capacity, t.seed), failed=tuple(t.tasks) in dead)
        for t in plan.trainings
    ]


def job(tasks: tuple[str, ...], **fields: object) -> JobSpec:
    return JobSpec.model_validate({"dataset": {"name": "planted"}, "tasks": list(tasks), **fields})


TASKS = ("a1", "a2", "b1", "b2")


def test_the_planted_clusters_are_chosen_and_seeds_averaged() -> None:
    spec = job(TASKS, seeds=2, budgets=[1, 2, 4])
    plan = make_plan(spec, "fp")
    result = search_result("j", spec, plan, records(plan, lambda g, c, s: clustered(TASKS, g, c, s)))
    at2 = next(g for g in result.curve if g.budget == 2)
    assert sorted(n.tasks for n in at2.networks) == [["a1", "a2"], ["b1", "b2"]]
    assert at2.selection_total == pytest.approx(4 * 0.8)  # the seeds' +-0.01 average out
    assert at2.scoring_total == pytest.approx(4 * 0.85)
    assert all(g.optimality_gap == 0.0 for g in result.curve)
    assert result.provenance.trained == len(plan.trainings) == 2 * (15 + 4)
    assert result.provenance.training_seconds == pytest.approx(2.0 * len(plan.trainings))
    assert not result.missing


def test_failed_trainings_are_listed_and_solved_around() -> None:
    spec = job(TASKS, budgets=[2, 4])
    plan = make_plan(spec, "fp")
    result = search_result(
        "j", spec, plan, records(plan, lambda g, c, s: clustered(TASKS, g, c, s), [("a1", "a2")])
    )
    assert [m.tasks for m in result.missing] == [["a1", "a2"]]
    at2 = next(g for g in result.curve if g.budget == 2)
    assert ["a1", "a2"] not in [n.tasks for n in at2.networks]


def test_a_task_without_any_trained_network_is_a_clear_error() -> None:
    spec = job(("a1", "a2"))
    plan = make_plan(spec, "fp")
    every = [tuple(t.tasks) for t in plan.trainings if "a1" in t.tasks]
    with pytest.raises(ValueError, match=r"no trained network serves task\(s\) a1"):
        search_result("j", spec, plan, records(plan, lambda g, c, s: clustered(("a1", "a2"), g, c, s), every))


def test_solve_time_limit_reaches_the_solver_and_bad_limits_are_refused() -> None:
    """14 tasks by HOA (the sparse solver on candidate groups): with no limit every budget is proven; with a
    limit far too short for that the totals are never better than the optimum and each gap covers its
    distance to it."""
    tasks = tuple(f"{c}{k}" for c in "abcdefg" for k in range(2))
    spec = job(tasks, approximation="hoa", budgets=[3, 5, 7], solve_time_limit=None)
    plan = make_plan(spec, "fp")
    linked = records(plan, lambda g, c, s: clustered(tasks, g, c, s))
    exact = search_result("j", spec, plan, linked)
    assert all(g.optimality_gap == 0.0 for g in exact.curve)
    short = spec.model_copy(update={"solve_time_limit": 1e-6})
    cut = search_result("j", short, plan, linked)
    for fast, best in zip(cut.curve, exact.curve, strict=True):
        assert fast.selection_total >= best.selection_total - 1e-12
        assert fast.selection_total * (1 - fast.optimality_gap) <= best.selection_total + 1e-9
    assert JobSpec.model_fields["solve_time_limit"].default == DEFAULT_SOLVE_TIME_LIMIT
    with pytest.raises(ValueError, match="solve_time_limit"):
        job(TASKS, solve_time_limit=0)


def test_the_result_curve_is_the_solvers_curve_of_its_own_loss_table() -> None:
    spec = job(TASKS)
    plan = make_plan(spec, "fp")
    result = search_result("j", spec, plan, records(plan, lambda g, c, s: clustered(TASKS, g, c, s)))
    selection, scoring = result.loss_table.selection_table(), result.loss_table.scoring_table()
    again = budget_curve(selection, budgets=[g.budget for g in result.curve], scoring=scoring)
    assert [g.networks for g in again.curve] == [g.networks for g in result.curve]
