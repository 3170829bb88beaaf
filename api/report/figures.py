"""The report's three figures, drawn with matplotlib from a job result (the DESIGN.md result JSON).

* :func:`curve_figure`: total loss vs. budget (SNT) for one or more budget curves, with the paper's
  baselines (all-task network, independent singles) as points at their cost — the paper's Figure 3 view.
* :func:`affinity_figure`: heat map of the pairwise affinity table (:mod:`grouping.affinity`).
* :func:`groupings_figure`: the chosen grouping per budget, networks as boxes; a task the network serves is
  a filled cell, a task it only trains (auxiliary) a hollow one.

Every function returns PNG bytes (matplotlib's Agg backend; no display needed). Figures are built with the
object API (``matplotlib.figure.Figure``), not pyplot, because pyplot keeps global state that is not safe
across the threads the HTTP service renders reports in.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from grouping.affinity import AffinityTable
from grouping.results import BudgetCurve

BaselinePoint = tuple[str, float, float | None]
"""A baseline drawn as a point: its name, its cost (SNT) and its total (None: not drawn)."""

DPI = 110
MARKERS = ("o", "s", "^", "D", "v", "P", "X")


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return buffer.getvalue()


def curve_points(curve: BudgetCurve, field: str = "scoring_total") -> list[tuple[float, float]]:
    """``(budget, total)`` of a budget curve for ``field`` (``scoring_total`` or ``selection_total``);
    budgets where it is null (a chosen network was never trained, or there is no scoring table) are left out
    rather than filled from the other field, so one line never mixes test and validation totals."""
    points = [(g.budget, getattr(g, field)) for g in curve.curve]
    return [(float(budget), float(total)) for budget, total in points if total is not None]


def curve_figure(
    curves: Mapping[str, Sequence[tuple[float, float]]],
    baselines: Sequence[BaselinePoint] = (),
    title: str = "Total loss vs. inference budget",
    ylabel: str = "total test loss",
    band: tuple[str, Sequence[tuple[float, float, float]]] | None = None,
    references: Sequence[str] = (),
) -> bytes:
    """Each curve as a line with markers; each baseline as a labelled point at its cost; ``band`` an optional
    shaded ``(budget, low, high)`` range (e.g. the optimal curve's spread across seeds). Curves named in
    ``references`` (yardsticks such as a test-set oracle or random groupings, not methods) are drawn as thin
    dashed lines so the methods stand out. Baselines are points ``(name, cost, total)`` (skipped where the
    total is null)."""
    fig = Figure(figsize=(7.0, 4.2))
    ax = fig.subplots()
    if band is not None and band[1]:
        xs, lows, highs = zip(*band[1], strict=True)
        ax.fill_between(xs, lows, highs, color="grey", alpha=0.25, linewidth=0, label=band[0])
    for k, (name, points) in enumerate(curves.items()):
        if not points:
            continue
        xs, ys = zip(*points, strict=True)
        if name in references:
            ax.plot(xs, ys, linestyle="--", linewidth=1.0, color=f"C{k % 10}", label=name)
        else:
            ax.plot(xs, ys, marker=MARKERS[k % len(MARKERS)], linewidth=1.6, markersize=5, label=name)
    for k, (name, cost, total) in enumerate(baselines):
        if total is None:
            continue
        ax.scatter(
            [cost],
            [total],
            marker="*",
            s=140,
            color=f"C{(k + 5) % 10}",
            zorder=5,
            edgecolors="black",
            linewidths=0.5,
            label=f"{name} ({cost:g} SNT)",
        )
    ax.set_xlabel("inference budget (SNT = one full-size network)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    return _png(fig)


MANY_TASKS = 12
"""Above this many tasks the figures switch to their many-task layouts (no numbers in cells, labels turned,
tasks ordered by similarity; the groupings as a task x budget grid) so they stay readable up to 40 tasks."""


def similarity_order(gain: np.ndarray) -> list[int]:
    """Task indices ordered so that tasks with similar affinity profiles sit together (average-linkage
    clustering of the symmetric mean gain; unknown pairs count as 0)."""
    from scipy.cluster.hierarchy import leaves_list, linkage
    from scipy.spatial.distance import pdist

    n = gain.shape[0]
    if n < 3:
        return list(range(n))
    symmetric = np.nan_to_num((gain + gain.T) / 2)
    return [int(i) for i in leaves_list(linkage(pdist(symmetric), method="average"))]


def affinity_figure(affinity: AffinityTable, title: str = "Pairwise task affinity") -> bytes:
    """Heat map of ``gain[row, column]`` in %: red = the column task hurts the row task, blue = helps. Above
    :data:`MANY_TASKS` tasks: no numbers in the cells, tasks ordered by similarity, labels turned."""
    n = len(affinity.tasks)
    many = n > MANY_TASKS
    order = similarity_order(affinity.gain) if many else list(range(n))
    values = 100.0 * affinity.gain[np.ix_(order, order)]
    tasks = [affinity.tasks[i] for i in order]
    finite = values[np.isfinite(values)]
    # the colour scale saturates at the 90th percentile of |gain| so that one outlier (the paper's e with s:
    # -60%) does not wash out the rest; the printed numbers are exact
    limit = float(np.quantile(np.abs(finite), 0.9)) if finite.size else 1.0
    limit = limit or 1.0
    size = min(14.0, 0.3 * n + 3.0) if many else max(3.6, 0.75 * n + 1.8)
    fig = Figure(figsize=(size + 1.0, size))
    ax = fig.subplots()
    image = ax.imshow(np.ma.masked_invalid(values), cmap="RdBu", vmin=-limit, vmax=limit)
    font = 7 if many else None
    ax.set_xticks(range(n), tasks, rotation=90 if many else 0, fontsize=font)
    ax.set_yticks(range(n), tasks, fontsize=font)
    ax.set_xlabel("trained together with")
    ax.set_ylabel("task whose loss changes")
    if many:
        title += " (tasks ordered by similarity)"
    else:
        _annotate(ax, values, limit)
    fig.colorbar(image, ax=ax, label="relative gain vs. alone (%)", shrink=0.8, extend="both")
    ax.set_title(title)
    return _png(fig)


def _annotate(ax: Any, values: np.ndarray, limit: float) -> None:
    n = values.shape[0]
    for i in range(n):
        for j in range(n):
            if i != j and math.isfinite(values[i, j]):
                strong = abs(values[i, j]) > 0.6 * limit
                ax.text(
                    j,
                    i,
                    f"{values[i, j]:+.1f}",
                    ha="center",
                    va="center",
                    fontsize=8 if n < 8 else 7,
                    color="white" if strong else "black",
                )


def groupings_figure(curve: BudgetCurve, title: str = "Chosen networks per budget") -> bytes:
    """One row per budget; each chosen network a box of task cells (filled = served, hollow = auxiliary).
    Above :data:`MANY_TASKS` tasks: :func:`assignment_figure`."""
    tasks = list(curve.tasks)
    records = list(curve.curve)
    if not records:
        raise ValueError("curve: the result has no groupings to draw")
    if len(tasks) > MANY_TASKS:
        return assignment_figure(curve, title)
    width = max(sum(len(net.tasks) + 0.6 for net in r.networks) for r in records)
    fig = Figure(figsize=(max(6.0, 0.42 * width + 3.5), 0.48 * len(records) + 1.2))
    ax = fig.subplots()
    colours = {t: colormaps["tab10" if len(tasks) <= 10 else "tab20"](i) for i, t in enumerate(tasks)}
    any_predicted = False
    for row, record in enumerate(records):
        y = len(records) - 1 - row
        x = 0.0
        for net in record.networks:
            k = len(net.tasks)
            half = net.capacity < 1.0
            predicted = net.predicted
            any_predicted |= predicted
            ax.add_patch(
                Rectangle(
                    (x - 0.08, y - 0.36),
                    k + 0.16,
                    0.72,
                    fill=predicted,
                    facecolor="#dddddd" if predicted else "none",
                    linewidth=1.2,
                    linestyle="--" if half else "-",
                    edgecolor="black",
                )
            )
            for i, task in enumerate(net.tasks):
                served = task in net.serves
                ax.add_patch(
                    Rectangle(
                        (x + i + 0.06, y - 0.28),
                        0.88,
                        0.56,
                        facecolor=colours[task] if served else "white",
                        edgecolor=colours[task],
                        linewidth=1.6,
                    )
                )
                ax.text(
                    x + i + 0.5,
                    y,
                    task,
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if served else "black",
                )
            x += k + 0.6
        if record.scoring_total is not None:
            label = f"{record.scoring_total:.4f}"
        else:
            label = f"{record.selection_total:.4f} (val.)"
        ax.text(width + 0.3, y, label, va="center", fontsize=8)
    ax.set_xlim(-0.3, width + 2.2)
    ax.set_ylim(-0.7, len(records) - 0.3)
    ax.set_yticks(range(len(records)), [f"{r.budget:g} SNT" for r in reversed(records)])
    ax.set_xticks([])
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    legend = "filled = served, hollow = auxiliary; dashed box = half size"
    if any_predicted:
        legend += "; grey box = predicted (HOA), never trained"
    ax.set_title(
        f"{title}\n({legend};\nright: total test loss, or (val.) validation total where a network has none)",
        fontsize=10,
    )
    return _png(fig)


def _task_order(curve: BudgetCurve) -> list[str]:
    """Tasks in the order of the networks that serve them at the middle budget (a group's tasks together)."""
    middle = curve.curve[len(curve.curve) // 2]
    order = [t for net in middle.networks for t in net.serves]
    return order + [t for t in curve.tasks if t not in order]


def assignment_figure(curve: BudgetCurve, title: str = "Chosen networks per budget") -> bytes:
    """The groupings of many tasks as a grid: a column per task, a row per budget; each cell names (and
    colours) the network that serves the task at that budget, so a group is a run of one colour. A cell of a
    half-size network is hatched, of a predicted (never trained) one outlined in grey."""
    tasks = _task_order(curve)
    column = {t: j for j, t in enumerate(tasks)}
    rows = list(curve.curve)
    fig = Figure(figsize=(min(16.0, 0.28 * len(tasks) + 3.0), 0.45 * len(rows) + 2.2))
    ax = fig.subplots()
    palette = colormaps["tab20"]
    for i, record in enumerate(rows):
        y = len(rows) - 1 - i
        for k, net in enumerate(record.networks, start=1):
            for task in net.serves:
                ax.add_patch(
                    Rectangle(
                        (column[task] - 0.45, y - 0.4),
                        0.9,
                        0.8,
                        facecolor=palette((k - 1) % 20),
                        edgecolor="#888888" if net.predicted else "white",
                        hatch="///" if net.capacity < 1.0 else None,
                        linewidth=1.0,
                    )
                )
                ax.text(column[task], y, str(k), ha="center", va="center", fontsize=6)
        total = record.scoring_total if record.scoring_total is not None else record.selection_total
        tail = "" if record.scoring_total is not None else " (val.)"
        ax.text(len(tasks) - 0.2, y, f"{total:.4f}{tail}", va="center", fontsize=7)
    ax.set_xlim(-0.6, len(tasks) + 2.4)
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.set_xticks(range(len(tasks)), tasks, rotation=90, fontsize=7)
    ax.set_yticks(range(len(rows)), [f"{r.budget:g} SNT" for r in reversed(rows)])
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.set_title(
        f"{title}\n(a cell: the number of the network that serves the task at that budget; hatched = half "
        "size, grey edge = predicted;\nright: total test loss, or (val.) validation total)",
        fontsize=9,
    )
    return _png(fig)


__all__ = [
    "MANY_TASKS",
    "BaselinePoint",
    "affinity_figure",
    "assignment_figure",
    "curve_figure",
    "curve_points",
    "groupings_figure",
    "similarity_order",
]
