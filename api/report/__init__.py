"""A job's report: the budget curve, the pairwise affinity heat map and the groupings diagram, as PNGs and
as one self-contained HTML page (PNGs embedded as base64), drawn from a typed result.

Used by `taskgroup report JOB_ID` and ``GET /jobs/{id}/report``. Figures are registered by name in
:data:`FIGURES` (``curve``, ``affinity``, ``lookahead`` for a TAG job, ``groupings``). A report draws a
job's result (:class:`search.records.JobResult`) or a bare budget curve (what ``taskgroup solve -o``
writes): a curve has no loss table (no affinity figure) and no baselines.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable, Mapping

import numpy as np

from api.report.figures import affinity_figure, curve_figure, curve_points, groupings_figure
from grouping.affinity import AffinityTable, pairwise_affinity
from grouping.results import BudgetCurve
from search.records import JobResult

Report = JobResult | BudgetCurve


def _curve(result: Report) -> bytes:
    """The chosen grouping's test (scoring) total per budget and, dashed, its validation (selection) total:
    the one it was chosen on, which for HOA includes predicted networks. Baselines at their test totals, or
    at their validation totals when the job has no test losses."""
    approximation = result.spec.approximation if isinstance(result, JobResult) else "loss table"
    tested = curve_points(result, "scoring_total")
    predicted = any(n.predicted for g in result.curve for n in g.networks)
    validation = f"validation total{' (with HOA predictions)' if predicted else ''}"
    curves = {
        f"chosen grouping ({approximation}), test total": tested,
        validation: curve_points(result, "selection_total"),
    }
    baselines = result.baselines if isinstance(result, JobResult) else []
    field = "scoring_total" if tested else "selection_total"
    finalized = result.finalized if isinstance(result, JobResult) else []
    measured = [(f.budget, getattr(f, f"measured_{field}")) for f in finalized]
    if any(total is not None for _, total in measured):
        which = "test" if tested else "validation"
        curves[f"finalized: measured {which} total"] = [(b, t) for b, t in measured if t is not None]
    return curve_figure(
        curves,
        [(b.name, b.cost, getattr(b, field)) for b in baselines],
        ylabel="total loss",
        references=(validation,),
    )


def result_affinity(result: Report) -> AffinityTable:
    """The affinity table of a result's loss table: its scoring (test) table if present, else selection."""
    if not isinstance(result, JobResult):
        raise ValueError("loss_table: the result has no loss table, so no affinity can be drawn")
    table = result.loss_table.scoring_table() or result.loss_table.selection_table()
    return pairwise_affinity(table)


def _affinity(result: Report) -> bytes:
    return affinity_figure(result_affinity(result))


def lookahead_affinity(result: Report) -> AffinityTable:
    """TAG's lookahead affinities as an affinity table: row j, column i holds Z[i][j], how much a step on
    task i's loss lowered task j's (Fifty et al. 2021), so rows read like the pairwise gain table's (the
    gain of the row's task from its partner)."""
    z = result.lookahead_affinity if isinstance(result, JobResult) else None
    if not z:
        raise ValueError("lookahead_affinity: only a tag job measures lookahead affinities")
    tasks = tuple(t for t in result.tasks if t in z)
    gain = np.full((len(tasks), len(tasks)), np.nan)
    for i, source in enumerate(tasks):
        for j, target in enumerate(tasks):
            if i != j and target in z[source]:
                gain[j, i] = z[source][target]
    return AffinityTable(tasks, gain)


def _lookahead(result: Report) -> bytes:
    return affinity_figure(
        lookahead_affinity(result), title="TAG lookahead affinity (row: task helped, column: task stepped)"
    )


FIGURES: dict[str, Callable[[Report], bytes]] = {
    "curve": _curve,
    "affinity": _affinity,
    "lookahead": _lookahead,
    "groupings": groupings_figure,
}


def render_figure(result: Report, name: str) -> bytes:
    """PNG bytes of figure ``name``; ValueError naming the figures for an unknown one."""
    try:
        draw = FIGURES[name]
    except KeyError:
        raise ValueError(f"figure: unknown figure {name!r}; choose one of {', '.join(FIGURES)}") from None
    return draw(result)


def render_figures(result: Report) -> dict[str, bytes]:
    """Every figure of :data:`FIGURES` that the result can draw (a result without pairs has no affinity)."""
    out = {}
    for name, draw in FIGURES.items():
        try:
            out[name] = draw(result)
        except ValueError:
            continue
    return out


def _total(value: float | None) -> str:
    return "" if value is None else f"{value:.5f}"


def _table(result: Report) -> str:
    rows = []
    for record in result.curve:
        nets = ", ".join(
            n.label + ("" if n.serves == n.tasks else f" (serves {''.join(n.serves)})")
            for n in record.networks
        )
        gap = record.optimality_gap or 0.0
        if gap > 0:
            nets += f" (not proven optimal: within {100 * gap:.2g}%, the time limit stopped the solver)"
        rows.append(
            f"<tr><td>{record.budget:g}</td><td>{record.cost:g}</td><td>{record.selection_total:.5f}</td>"
            f"<td>{_total(record.scoring_total)}</td><td>{html.escape(nets)}</td></tr>"
        )
    for base in result.baselines if isinstance(result, JobResult) else []:
        rows.append(
            f"<tr class=b><td>{html.escape(base.name)}</td><td>{base.cost:g}</td>"
            f"<td>{base.selection_total:.5f}</td><td>{_total(base.scoring_total)}</td>"
            f"<td>{html.escape(', '.join(base.networks))}</td></tr>"
        )
    return (
        "<table><tr><th>budget (SNT)</th><th>cost</th><th>selection total</th><th>scoring total</th>"
        "<th>networks</th></tr>" + "".join(rows) + "</table>"
    )


def _finalized(result: Report) -> str:
    """Predicted against measured totals of the finalized budgets (empty when none)."""
    if not isinstance(result, JobResult) or not result.finalized:
        return ""
    rows = []
    for f in result.finalized:
        error = "" if f.prediction_error is None else f"{100 * f.prediction_error:+.2f}%"
        if f.missing:
            choice = f"not measured: {', '.join(f.missing)} failed"
        elif f.choice_changes:
            choice = "would change to " + ", ".join(f.measured_choice or [])
        else:
            choice = "unchanged"
        rows.append(
            f"<tr><td>{f.budget:g}</td><td>{html.escape(', '.join(f.networks))}</td>"
            f"<td>{_total(f.predicted_selection_total)}</td><td>{_total(f.measured_selection_total)}</td>"
            f"<td>{error}</td><td>{_total(f.predicted_scoring_total)}</td>"
            f"<td>{_total(f.measured_scoring_total)}</td><td>{html.escape(choice)}</td></tr>"
        )
    return (
        "<h2>finalized budgets</h2><p>The chosen networks trained to the end with their weights kept "
        "(<code>taskgroup export</code>): the totals the search predicted beside the measured ones, and the "
        "choice on measured losses.</p><table><tr><th>budget (SNT)</th><th>networks</th>"
        "<th>validation predicted</th><th>validation measured</th><th>error</th><th>test predicted</th>"
        "<th>test measured</th><th>choice on measured losses</th></tr>" + "".join(rows) + "</table>"
    )


def _search(result: Report) -> str:
    """The search's rounds, its compute share and the budgets seed noise cannot decide (empty for a curve or
    a one-round search without them)."""
    if not isinstance(result, JobResult):
        return ""
    parts = []
    if result.compute_share is not None:
        parts.append(
            f"<p>The search's trainings cost {100 * result.compute_share:.1f}% of an exhaustive search's "
            f"training time, in {len(result.rounds)} round(s).</p>"
        )
    if len(result.rounds) > 1:
        rows = "".join(
            f"<tr><td>{r.index}</td><td>{len(r.trainings)}</td>"
            f"<td>{html.escape('; '.join(r.reasons[:3]) + (' …' if len(r.reasons) > 3 else ''))}</td></tr>"
            for r in result.rounds
        )
        parts.append(f"<table><tr><th>round</th><th>trainings</th><th>why</th></tr>{rows}</table>")
    for noise in result.noise:
        others = "; ".join(
            f"{html.escape(' + '.join(r.networks))} ({r.difference:+.5f}, seed sd {r.spread:.5f})"
            for r in noise.runner_ups
        )
        parts.append(f"<p>At {noise.budget:g} SNT the choice is within seed noise of: {others}.</p>")
    return "<h2>search</h2>" + "".join(parts) if parts else ""


def _summary(result: Report) -> str:
    tasks = html.escape(", ".join(result.tasks))
    how = f"objective {html.escape(result.objective)}, served by {html.escape(result.serve_by)}"
    if not isinstance(result, JobResult):
        return f"tasks <b>{tasks}</b>, {how}."
    prov = result.provenance
    return (
        f"dataset <b>{html.escape(result.spec.dataset.name)}</b>, tasks <b>{tasks}</b>, approximation "
        f"<b>{html.escape(result.spec.approximation)}</b>, {how}; trainings: {prov.trained} trained, "
        f"{prov.reused} reused, {prov.training_seconds} training-seconds."
    )


def render_html(result: Report, figures: Mapping[str, bytes] | None = None, name: str | None = None) -> str:
    """A self-contained HTML page: summary, the curve table, and every figure embedded as a PNG. ``name``
    titles the page (default: the job id)."""
    figures = render_figures(result) if figures is None else figures
    label = name or (result.job_id if isinstance(result, JobResult) else "?")
    title = f"taskgrouping report — job {label}"
    images = "".join(
        f"<h2>{html.escape(fig)}</h2><img alt='{html.escape(fig)}' "
        f"src='data:image/png;base64,{base64.b64encode(png).decode('ascii')}'>"
        for fig, png in figures.items()
    )
    style = (
        "body{font-family:sans-serif;max-width:1000px;margin:2em auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}"
        "tr.b{background:#f4f4f4}img{max-width:100%}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1><p>{_summary(result)}</p>"
        f"<p>Standley et al., ICML 2020, “Which Tasks Should Be Learned Together in Multi-task Learning?”</p>"
        f"{_table(result)}{_search(result)}{_finalized(result)}{images}</body></html>"
    )


__all__ = [
    "FIGURES",
    "Report",
    "lookahead_affinity",
    "render_figure",
    "render_figures",
    "render_html",
    "result_affinity",
]
