"""Stronger baselines (issue 15) without Ray: the spec field checked at submission, the plan's baseline
trainings (their settings, keys, costs), the CLI flags, and the result built from stored records: the
baselines reported, the best all-task network named, and the search's own table and choice untouched by
them (their trainings never reach the strategy)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from api.commands.search import SPEC_FLAGS, spec_from_args
from grouping import LossTable
from grouping.candidates import Candidate
from grouping.evaluation import network_baseline
from grouping.table import TableRow
from search.baselines import priced
from search.measurements import measurements
from search.plan import PlannedTraining, make_plan
from search.result import search_result
from search.spec import JobSpec
from search.store.models import JobTrainingRecord
from search.submit import SpecError, prepare
from tests.results import stored_training
from tests.search.test_result import clustered
from workers.datasets import get_dataset

TASKS = ("a1", "a2", "b1", "b2")
BASELINES = {"weighting": ["gradnorm", "mgda"], "architectures": ["cross-stitch"]}


def spec(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "dataset": {"name": "planted"},
        "tasks": list(TASKS),
        "approximation": "hoa",
        "seeds": 2,
        "baselines": BASELINES,
    }
    data.update(overrides)
    return data


def test_the_plan_holds_one_all_task_training_per_entry_and_seed_priced_in_snt() -> None:
    submission = prepare(spec())
    plan = submission.plan
    without = prepare(spec(baselines={})).plan
    assert [t.key for t in plan.trainings] == [
        t.key for t in without.trainings
    ]  # the search's plan is unchanged
    assert len(plan.baselines) == 3 * 2
    assert plan.network_trainings == without.network_trainings + 6
    assert {b.seed for b in plan.baselines} == {0, 1}
    assert len({b.key for b in plan.baselines} | {t.key for t in plan.trainings}) == len(plan.trainings) + 6
    for b in plan.baselines:
        assert b.tasks == list(TASKS) and b.capacity == 1.0 and b.fidelity == 1.0
        assert plan.training_spec(b).settings == b.settings
    by_name = {b.name: b for b in plan.baselines}
    assert set(by_name) == {
        "all-task network (gradnorm)",
        "all-task network (mgda)",
        "all-task cross-stitch network",
    }
    assert by_name["all-task network (gradnorm)"].settings.weighting == "gradnorm"
    assert by_name["all-task network (gradnorm)"].cost == 1.0
    cross = by_name["all-task cross-stitch network"]
    assert cross.settings.model.architecture == "cross-stitch" and cross.settings.weighting == "equal"
    assert cross.cost == pytest.approx(4.38, abs=0.01)  # docs/architectures.md: planted, 4 tasks


def test_an_entry_that_trains_what_another_does_is_planned_once() -> None:
    plan = prepare(spec(seeds=1, baselines={"weighting": ["equal"], "architectures": ["hard"]})).plan
    assert [b.name for b in plan.baselines] == ["all-task network (equal)"]
    exhaustive = make_plan(JobSpec.model_validate(spec(approximation="exhaustive", seeds=1)), "fp")
    equal = exhaustive.baseline("weighting", "equal", list(TASKS), 0)
    assert (
        equal.key in exhaustive.by_key()
    )  # the search's own all-task network: the run does not train it twice


@pytest.mark.parametrize(
    ("baselines", "field", "message"),
    [
        (
            {"weighting": ["gradnrom"]},
            "baselines.weighting",
            "unknown method 'gradnrom'; choose one of dtp, dwa",
        ),
        ({"architectures": ["nddr"]}, "baselines.architectures", "choose one of cross-stitch, hard, mtan"),
        ({"architectures": ["xstitch"]}, "baselines.architectures", "unknown architecture 'xstitch'"),
    ],
)
def test_unknown_or_inapplicable_names_are_refused_naming_the_choices(
    baselines: dict[str, list[str]], field: str, message: str
) -> None:
    with pytest.raises(SpecError, match=message) as caught:
        prepare(spec(baselines=baselines))
    assert caught.value.field == field


def test_the_field_itself_refuses_duplicates_and_unknown_keys() -> None:
    with pytest.raises(ValidationError, match="mgda listed twice"):
        JobSpec.model_validate(spec(baselines={"weighting": ["mgda", "mgda"]}))
    with pytest.raises(ValidationError, match=r"baselines\.architecture\n"):
        JobSpec.model_validate(spec(baselines={"architecture": ["mtan"]}))
    assert not JobSpec.model_validate(spec(baselines={})).baselines


def test_the_cli_flags_make_the_field_and_resume_refuses_them() -> None:
    import argparse

    from api.commands import search as command

    parser = argparse.ArgumentParser()
    command.add_parser(parser.add_subparsers(), "search")
    flags = ["--baseline-weighting", "uncertainty, gradnorm", "--baseline-architecture", "cross-stitch"]
    args = parser.parse_args(["search", "--dataset", "planted", "--tasks", "a1,a2", *flags])
    assert spec_from_args(args)["baselines"] == {
        "weighting": ["uncertainty", "gradnorm"],
        "architectures": ["cross-stitch"],
    }
    assert {"baseline_weighting", "baseline_architecture"} <= set(SPEC_FLAGS)


def _record(plan: Any, planned: PlannedTraining, selection: dict[str, float]) -> JobTrainingRecord:
    return stored_training(plan, planned, selection, wall_seconds=3.0)


def test_the_result_reports_the_baselines_and_the_search_never_measures_them() -> None:
    job = JobSpec.model_validate(spec(budgets=[1, 2, 4.5]))
    plan = priced(make_plan(job, "fp"), get_dataset("planted", {}))
    searched = [
        _record(plan, t, clustered(TASKS, tuple(t.tasks), t.capacity, t.seed)) for t in plan.trainings
    ]
    level = {
        "all-task network (gradnorm)": 0.5,
        "all-task network (mgda)": 0.7,
        "all-task cross-stitch network": 0.6,
    }
    extra = [
        _record(plan, b, {t: level[b.name] + (0.01 if b.seed else -0.01) for t in TASKS})
        for b in plan.baselines
    ]
    assert len(measurements(job, plan, searched + extra)) == len(measurements(job, plan, searched))
    alone = search_result("j", job, plan, searched)
    result = search_result("j", job, plan, searched + extra)
    assert result.curve == alone.curve and result.loss_table == alone.loss_table
    by_name = {b.name: b for b in result.baselines}
    gradnorm = by_name["all-task network (gradnorm)"]
    assert gradnorm.selection_total == pytest.approx(4 * 0.5)  # the seeds' +-0.01 average out
    assert gradnorm.scoring_total == pytest.approx(4 * 0.55)
    assert (gradnorm.weighting, gradnorm.architecture, gradnorm.cost) == ("gradnorm", "hard", 1.0)
    cross = by_name["all-task cross-stitch network"]
    assert (
        cross.cost > 1
        and cross.architecture == "cross-stitch"
        and cross.networks == ["a1,a2,b1,b2 [cross-stitch, equal]"]
    )
    assert result.best_all_task == "all-task network (gradnorm)"
    named = [t for t in result.provenance.trainings if t.baseline is not None]
    assert len(named) == 6 and result.provenance.trained == len(plan.trainings) + 6
    assert "all-task network (gradnorm)" not in {b.name for b in alone.baselines}


def test_a_single_network_is_totalled_with_the_tables_objective() -> None:
    singles = LossTable(
        ["a", "b"],
        [TableRow(Candidate(("a",), 1.0), {"a": 2.0}), TableRow(Candidate(("b",), 1.0), {"b": 4.0})],
    )
    base = network_baseline("x", "ab", 1.5, {"a": 1.0, "b": 2.0}, None, singles, objective="relative")
    assert base.selection_total == pytest.approx(1.0 / 2.0 + 2.0 / 4.0) and base.scoring_total is None
    weighted = network_baseline(
        "x", "ab", 1.0, {"a": 1.0, "b": 2.0}, {"a": 1.0, "b": 1.0}, singles, singles, weights={"a": 3, "b": 1}
    )
    assert (weighted.selection_total, weighted.scoring_total) == (5.0, 4.0)


def test_the_report_draws_the_baselines_at_their_cost_and_the_text_names_the_best(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import api.report as report
    from api.render import format_result

    job = JobSpec.model_validate(spec(seeds=1, budgets=[1, 4.5]))
    plan = priced(make_plan(job, "fp"), get_dataset("planted", {}))
    linked = [_record(plan, t, clustered(TASKS, tuple(t.tasks), t.capacity, t.seed)) for t in plan.trainings]
    linked += [_record(plan, b, dict.fromkeys(TASKS, 0.6)) for b in plan.baselines]
    result = search_result("j", job, plan, linked)
    drawn: dict[str, Any] = {}
    monkeypatch.setattr(
        report, "curve_figure", lambda curves, points, **kw: drawn.setdefault("points", points)
    )
    report._curve(result)
    points = {name: (cost, total) for name, cost, total in drawn["points"]}
    cross = next(b for b in result.baselines if b.architecture == "cross-stitch")
    assert points["all-task cross-stitch network"] == (cross.cost, cross.scoring_total)
    assert "all-task network (gradnorm)" in points
    assert f"best all-task network (lowest selection total): {result.best_all_task}" in format_result(result)
