"""The report (figures + HTML) from a planted result, `taskgroup report`, and GET /jobs/{id}/report."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.cli import main as cli_main
from api.report import FIGURES, render_figure, render_figures, render_html, result_affinity
from api.settings import Settings
from grouping import LossTable
from grouping.candidates import Candidate
from search.records import JobResult, Provenance
from search.store import JobState, open_store
from tests.results import make_result

PNG = b"\x89PNG\r\n\x1a\n"
TASKS = ("a1", "a2", "b1", "b2")


def planted_result(job_id: str = "planted") -> JobResult:
    """A result whose planted structure is known: a1+a2 help each other (loss x0.8), b1+b2 too, cross
    pairs hurt (x1.2); every larger network is the mean of its pairs."""
    from itertools import combinations

    single = {"a1": 1.0, "a2": 2.0, "b1": 1.5, "b2": 0.5}
    rows: dict[Candidate, dict[str, float]] = {}
    for t in TASKS:
        rows[Candidate((t,))] = {t: single[t]}
        rows[Candidate((t,), 0.5)] = {t: single[t] * 1.1}
    for size in range(2, 5):
        for group in combinations(TASKS, size):
            rows[Candidate(group)] = {
                t: sum(single[t] * (0.8 if o[0] == t[0] else 1.2) for o in group if o != t) / (size - 1)
                for t in group
            }
    table = LossTable.from_losses(TASKS, rows)
    result = make_result(job_id, table, table, provenance=Provenance(trained=23, training_seconds=1.0))
    # as a tag job would measure them: a step on a task's loss lowers its group partner's (Z[i][j])
    z = {i: {j: (0.3 if i[0] == j[0] else -0.1) for j in TASKS if j != i} for i in TASKS}
    return result.model_copy(update={"lookahead_affinity": z})


def test_every_figure_is_a_png_and_the_page_embeds_them() -> None:
    result = planted_result()
    figures = render_figures(result)
    assert set(figures) == set(FIGURES)
    for png in figures.values():
        assert png.startswith(PNG) and len(png) > 5000
    page = render_html(result, figures)
    embedded = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)
    assert sorted(base64.b64decode(e) for e in embedded) == sorted(figures.values())
    # the curve table lists the planted optimum at 2 SNT: {a1, a2} and {b1, b2}
    assert "a1,a2, b1,b2" in page


def test_affinity_recovers_the_planted_structure() -> None:
    aff = result_affinity(planted_result())
    assert aff.get("a1", "a2") == pytest.approx(0.2) and aff.get("b2", "b1") == pytest.approx(0.2)
    assert aff.get("a1", "b1") == pytest.approx(-0.2) and aff.get("b1", "a2") == pytest.approx(-0.2)


def test_unknown_figure_and_result_without_table_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="curve, affinity, lookahead, groupings"):
        render_figure(planted_result(), "pie")
    bare = planted_result().budget_curve()  # what `taskgroup solve -o` writes: no loss table, no affinity
    assert set(render_figures(bare)) == {"curve", "groupings"}


def test_cli_report_from_a_result_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "result.json"
    source.write_text(planted_result().model_dump_json())
    out = tmp_path / "r.html"
    assert (
        cli_main(["report", "planted", "--result", str(source), "-o", str(out), "--png-dir", str(tmp_path)])
        == 0
    )
    assert out.read_text().startswith("<!doctype html>")
    for name in FIGURES:
        assert (tmp_path / f"{name}.png").read_bytes().startswith(PNG)
    (tmp_path / "bad.json").write_text("{}")
    assert cli_main(["report", "x", "--result", str(tmp_path / "bad.json"), "-o", str(out)]) == 2
    assert "not a job result" in capsys.readouterr().err


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    (tmp_path / "data").mkdir()
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'api.db'}",
        run_jobs=False,
        data_dir=tmp_path / "data",
        runs_dir=tmp_path / "runs",
    )
    with TestClient(create_app(settings)) as c:
        yield c


def test_http_report_is_404_until_the_result_then_html_and_png(client: TestClient) -> None:
    spec = {"dataset": {"name": "planted"}, "tasks": list(TASKS), "training": {"epochs": 3}}
    job_id = client.post("/jobs", json=spec).json()["id"]
    before = client.get(f"/jobs/{job_id}/report")
    assert before.status_code == 404 and "queued" in before.text
    assert client.get("/jobs/nope/report").status_code == 404

    store = open_store(str(client.app.state.settings.database_url))
    store.update_job(job_id, state=JobState.RUNNING)
    store.update_job(job_id, state=JobState.SUCCEEDED, result=planted_result(job_id))
    page = client.get(f"/jobs/{job_id}/report")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert job_id in page.text and page.text.count("data:image/png;base64,") == 4
    for name in FIGURES:
        png = client.get(f"/jobs/{job_id}/report", params={"format": "png", "figure": name})
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        assert png.content.startswith(PNG)
    assert client.get(f"/jobs/{job_id}/report", params={"figure": "pie", "format": "png"}).status_code == 422


def test_figures_drawn_in_threads_equal_those_drawn_one_by_one() -> None:
    """The service renders reports in a thread pool: concurrent drawing must not mix figures up."""
    from concurrent.futures import ThreadPoolExecutor

    result = planted_result()
    alone = {name: render_figure(result, name) for name in FIGURES}
    names = list(FIGURES) * 4
    with ThreadPoolExecutor(max_workers=6) as pool:
        drawn = list(pool.map(lambda name: render_figure(result, name), names))
    assert all(png == alone[name] for name, png in zip(names, drawn, strict=True))


def test_curve_points_never_mix_test_and_validation_totals() -> None:
    """An HOA result has no test total where it chose a predicted network: that budget is left out of the
    test line (it stays on the validation line), and a predicted network still draws."""
    from api.report.figures import curve_points

    result = planted_result()
    first = result.curve[0]
    first.scoring_total = None
    first.networks[0].predicted = True
    tested = curve_points(result, "scoring_total")
    validation = curve_points(result, "selection_total")
    assert [b for b, _ in tested] == [r.budget for r in result.curve[1:]]
    assert validation == [(r.budget, r.selection_total) for r in result.curve]
    assert all(png.startswith(PNG) for png in render_figures(result).values())


def planted_many(n_clusters: int = 8, size: int = 3) -> JobResult:
    """``n_clusters`` clusters of ``size`` tasks (c0t0, c0t1, ...): within a cluster tasks help each other
    (x0.8), across clusters they hurt (x1.2). Measured: singles, halves, pairs, the clusters and all tasks."""
    from itertools import combinations

    tasks = tuple(f"c{c}t{k}" for c in range(n_clusters) for k in range(size))

    def losses(group: tuple[str, ...]) -> dict[str, float]:
        if len(group) == 1:
            return {group[0]: 1.0}
        same = {
            t: sum(0.8 if o[:2] == t[:2] else 1.2 for o in group if o != t) / (len(group) - 1) for t in group
        }
        return same

    rows: dict[Candidate, dict[str, float]] = {}
    for t in tasks:
        rows[Candidate((t,))] = losses((t,))
        rows[Candidate((t,), 0.5)] = {t: 1.1}
    for group in combinations(tasks, 2):
        rows[Candidate(group)] = losses(group)
    for c in range(n_clusters):
        group = tuple(f"c{c}t{k}" for k in range(size))
        rows[Candidate(group)] = losses(group)
    rows[Candidate(tasks)] = losses(tasks)
    table = LossTable.from_losses(tasks, rows)
    return make_result("many", table, table, budgets=[1.0, 4.0, 8.0, 12.0])


def test_many_task_figures_stay_bounded_and_order_tasks_by_similarity() -> None:
    from io import BytesIO

    from PIL import Image

    from api.report.figures import MANY_TASKS, similarity_order

    result = planted_many()
    assert len(result.tasks) > MANY_TASKS
    figures = render_figures(result)
    assert set(figures) == set(FIGURES) - {"lookahead"}  # not a tag job: no lookahead affinities
    for name, png in figures.items():
        width, height = Image.open(BytesIO(png)).size
        # the many-task layouts cap the figure size (16 x 14 inches at the report's dpi), whatever n is
        assert width <= 16 * 100 + 200 and height <= 14 * 100 + 200, (name, width, height)
    # the clustering order keeps each planted cluster's tasks together
    aff = result_affinity(result)
    order = [aff.tasks[i] for i in similarity_order(aff.gain)]
    clusters = [t[:2] for t in order]
    assert all(len(set(clusters[i : i + 3])) == 1 for i in range(0, len(order), 3))
    # at 8 SNT the planted clusters are the chosen networks
    at8 = next(r for r in result.curve if r.budget == 8.0)
    assert sorted(net.tasks for net in at8.networks) == [[f"c{c}t{k}" for k in range(3)] for c in range(8)]


def test_a_selection_not_proven_optimal_says_so_in_the_text_and_the_page() -> None:
    from api.render import format_curve

    result = planted_result()
    proven = format_curve(result)
    assert "optimum" not in proven
    records = [r.model_copy(update={"optimality_gap": 0.012 if r.budget == 2 else 0.0}) for r in result.curve]
    cut = result.model_copy(update={"curve": records})
    text = format_curve(cut)
    assert "(within 1.2% of the optimum)" in text and "raise time_limit" in text
    assert text.count("of the optimum)") == 1
    assert "not proven optimal: within 1.2%" in render_html(cut, render_figures(cut))


def test_search_rounds_compute_share_noise_and_lookahead_in_the_text_and_the_page() -> None:
    from api.render import ProgressBar, format_result
    from api.report import lookahead_affinity
    from grouping.noise import RunnerUp
    from search.records import BudgetNoise, Progress, RoundSummary

    z = planted_result().lookahead_affinity or {}
    z["a1"]["a2"] = 0.5
    result = planted_result().model_copy(
        update={
            "rounds": [
                RoundSummary(index=1, trainings=["a1 f0.2", "a2 f0.2"], reasons=["start"]),
                RoundSummary(index=2, trainings=["a1a2"], reasons=["chosen but not measured at 2 SNT"]),
            ],
            "compute_share": 0.137,
            "noise": [
                BudgetNoise(
                    budget=2.0,
                    runner_ups=[RunnerUp(networks=["a1a2b1", "b2"], total=3.1, difference=0.01, spread=0.02)],
                )
            ],
            "lookahead_affinity": z,
        }
    )
    text = format_result(result)
    trainings = result.plan.network_trainings
    assert f"search: 2 round(s), {trainings} trainings, 13.7% of an exhaustive search's training time" in text
    assert "indistinguishable at 2 SNT" in text and "a1a2b1 + b2: +0.01000 (seed sd 0.02000)" in text
    page = render_html(result, render_figures(result))
    assert "13.7% of an exhaustive search" in page and "chosen but not measured at 2 SNT" in page
    assert "within seed noise of: a1a2b1 + b2" in page and "alt='lookahead'" in page
    table = lookahead_affinity(result)  # row: the task helped, column: the task whose step helped it
    assert table.get("a2", "a1") == pytest.approx(0.5) and table.get("a1", "a2") == pytest.approx(0.3)

    import io

    stream = io.StringIO()
    bar = ProgressBar(stream)
    for done in (0, 1):
        why = "round 2: 2 training(s) by expected improvement"
        bar.update(Progress(total=4, done=done, round=2, why=why))
    bar.close()
    lines = stream.getvalue().splitlines()
    assert lines[0] == "round 2: 2 training(s) by expected improvement"  # said once, when the round starts
    assert lines[1].startswith("round 2: [") and len(lines) == 2
