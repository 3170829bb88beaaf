"""A job's report: the budget curve, the pairwise affinity heat map and the groupings diagram, as PNGs and
as one self-contained HTML page (PNGs embedded as base64), drawn from the job's result JSON.

Used by `taskgroup report JOB_ID` and ``GET /jobs/{id}/report``. Figures are registered by name in
:data:`FIGURES` (``curve``, ``affinity``, ``groupings``).
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable, Mapping
from typing import Any

from api.report.figures import affinity_figure, curve_figure, curve_points, groupings_figure
from grouping import LossTableModel
from grouping.affinity import pairwise_affinity


def _curve(result: Mapping[str, Any]) -> bytes:
    """The chosen grouping's test (scoring) total per budget and, dashed, its validation (selection) total:
    the one it was chosen on, which for HOA includes predicted networks. Baselines at their test totals, or
    at their validation totals when the job has no test losses."""
    approximation = result.get("spec", {}).get("approximation", "exhaustive")
    tested = curve_points(result, "scoring_total")
    predicted = any(n.get("predicted") for r in result.get("curve", []) for n in r["networks"])
    validation = f"validation total{' (with HOA predictions)' if predicted else ''}"
    curves = {
        f"chosen grouping ({approximation}), test total": tested,
        validation: curve_points(result, "selection_total"),
    }
    return curve_figure(
        curves,
        result.get("baselines", []),
        ylabel="total loss",
        references=(validation,),
        baseline_field="scoring_total" if tested else "selection_total",
    )


def result_affinity(result: Mapping[str, Any]) -> Any:
    """The affinity table of a result's loss table: its scoring (test) table if present, else selection."""
    if "loss_table" not in result:
        raise ValueError("loss_table: the result has no loss table, so no affinity can be drawn")
    model = LossTableModel.model_validate(result["loss_table"])
    table = model.scoring_table() or model.selection_table()
    return pairwise_affinity(table)


def _affinity(result: Mapping[str, Any]) -> bytes:
    return affinity_figure(result_affinity(result))


FIGURES: dict[str, Callable[[Mapping[str, Any]], bytes]] = {
    "curve": _curve,
    "affinity": _affinity,
    "groupings": groupings_figure,
}


def render_figure(result: Mapping[str, Any], name: str) -> bytes:
    """PNG bytes of figure ``name``; ValueError naming the figures for an unknown one."""
    try:
        draw = FIGURES[name]
    except KeyError:
        raise ValueError(f"figure: unknown figure {name!r}; choose one of {', '.join(FIGURES)}") from None
    return draw(result)


def render_figures(result: Mapping[str, Any]) -> dict[str, bytes]:
    """Every figure of :data:`FIGURES` that the result can draw (a result without pairs has no affinity)."""
    out = {}
    for name, draw in FIGURES.items():
        try:
            out[name] = draw(result)
        except ValueError:
            continue
    return out


def _table(result: Mapping[str, Any]) -> str:
    rows = []
    for record in result.get("curve", []):
        nets = ", ".join(
            n.get("label", "".join(n["tasks"]))
            + ("" if n["serves"] == n["tasks"] else f" (serves {''.join(n['serves'])})")
            for n in record["networks"]
        )
        total = record.get("scoring_total")
        rows.append(
            f"<tr><td>{record['budget']:g}</td><td>{record['cost']:g}</td><td>{record['selection_total']:.5f}</td>"
            f"<td>{'' if total is None else f'{total:.5f}'}</td><td>{html.escape(nets)}</td></tr>"
        )
    for base in result.get("baselines", []):
        total = base.get("scoring_total")
        rows.append(
            f"<tr class=b><td>{html.escape(base['name'])}</td><td>{base['cost']:g}</td>"
            f"<td>{base['selection_total']:.5f}</td><td>{'' if total is None else f'{total:.5f}'}</td>"
            f"<td>{html.escape(', '.join(base['networks']))}</td></tr>"
        )
    return (
        "<table><tr><th>budget (SNT)</th><th>cost</th><th>selection total</th><th>scoring total</th>"
        "<th>networks</th></tr>" + "".join(rows) + "</table>"
    )


def render_html(result: Mapping[str, Any], figures: Mapping[str, bytes] | None = None) -> str:
    """A self-contained HTML page: job summary, the curve table, and every figure embedded as a PNG."""
    figures = render_figures(result) if figures is None else figures
    spec = result.get("spec", {})
    prov = result.get("provenance", {})
    title = f"taskgrouping report — job {result.get('job_id', '?')}"
    images = "".join(
        f"<h2>{html.escape(name)}</h2><img alt='{html.escape(name)}' "
        f"src='data:image/png;base64,{base64.b64encode(png).decode('ascii')}'>"
        for name, png in figures.items()
    )
    summary = (
        f"dataset <b>{html.escape(str(spec.get('dataset', {}).get('name', '?')))}</b>, tasks "
        f"<b>{html.escape(', '.join(result.get('tasks', [])))}</b>, approximation "
        f"<b>{html.escape(str(spec.get('approximation', '?')))}</b>, objective "
        f"{html.escape(str(result.get('objective')))}, served by {html.escape(str(result.get('serve_by')))}; "
        f"trainings: {prov.get('trained', '?')} trained, "
        f"{prov.get('reused', '?')} reused, {prov.get('training_seconds', '?')} training-seconds."
    )
    style = (
        "body{font-family:sans-serif;max-width:1000px;margin:2em auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}"
        "tr.b{background:#f4f4f4}img{max-width:100%}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1><p>{summary}</p>"
        f"<p>Standley et al., ICML 2020, “Which Tasks Should Be Learned Together in Multi-task Learning?”</p>"
        f"{_table(result)}{images}</body></html>"
    )


__all__ = ["FIGURES", "render_figure", "render_figures", "render_html", "result_affinity"]
