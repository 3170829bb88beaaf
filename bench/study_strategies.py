"""The study's TAG and adaptive rows, trained for real through the product (issue 11, docs/study.md).

    .venv/bin/python bench/study_strategies.py --part sarcos|taskonomy1|taskonomy2 [--stores DIR]
    .venv/bin/python bench/study_strategies.py --figure      # gap vs compute, every method and part
    .venv/bin/python bench/study_strategies.py --markdown    # docs/study.md's rows from the JSON files

For a trained part of ``bench/study.py`` (its dataset, tasks and training settings), runs a ``tag`` job and an
``adaptive`` job (the strategies' default settings: chosen on the paper's four tables and on sarcos, see
docs/strategies.md) through ``search.submit.submit_job`` + ``run_job`` on a local Ray of 2 CPUs, each with one
seed, each in a results store of its own (``--stores DIR``: ``DIR/tag.db``, ``DIR/adaptive.db``), so neither
reuses the other's trainings. Each job's choice per budget (on its own selection table) is scored on
the part's ground truth: the exhaustive test table that ``bench/study.py`` measured and kept in
``docs/study/<part>.json`` (averaged over its seeds where it has several). Gap = 100 * (method - optimal) /
optimal, as in the study.

Compute, two ways: the wall seconds of the job's trainings over the wall seconds of one exhaustive seed's
(as the study measures every method; the exhaustive seconds were measured in the study's own run on the same
kind of machine, so this share carries the noise of two sessions), and in training units (capacity x fidelity
per training, TAG's lookahead training counted at the in-run ratio bench/tag.py measured for k = 10), which no
machine load changes. On a loaded machine (other jobs sharing the 2 cores) the seconds share overstates the
cost; the units share does not.

Writes ``docs/study/<part>-strategies.json``; ``--figure`` draws ``docs/images/study-gap-vs-compute.png`` from
every part's JSON files.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from study import (
    ROOT,
    TRAINED_PARTS,
    _run,
    dump_json,
    fmt,
    gaps,
    open_study_store,
    score_curve,
)

from grouping import LossTableModel, default_budgets
from grouping.evaluation import mean_gap

log = logging.getLogger("study-strategies")
DEFAULT_STORES = Path.home() / ".cache" / "taskgrouping" / "study-strategies"
METHODS = {"tag": {"approximation": "tag"}, "adaptive": {"approximation": "adaptive"}}
LOOKAHEAD_RATIO = {"taskonomy1": 1.30, "taskonomy2": 1.30, "sarcos": 1.23}
"""A lookahead training's cost in plain trainings at k = 10: the in-run ratios bench/tag.py measured
(docs/tag.md: taskonomy-mini s d n k e 1.30, SARCOS 1.23), free of the machine's load; the wall ratio this
run measures against the study's plain all-task training is reported beside it."""
STUDY_METHODS = ("hoa", "esa 0.2", "esa 0.1")


def _units(trainings: list[Any], lookahead_ratio: float) -> float:
    """Training units: capacity x fidelity per training, a lookahead training at ``lookahead_ratio``."""
    return math.fsum(t.capacity * t.fidelity * (lookahead_ratio if t.lookahead else 1.0) for t in trainings)


def _exhaustive_units(tasks: int) -> float:
    """One exhaustive seed's units: 2^n - 1 full networks and n half singles."""
    return (2**tasks - 1) + 0.5 * tasks


def run_part(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """TAG and adaptive on part ``name``, scored on the part's stored exhaustive test table."""
    study = json.loads((args.out / "study" / f"{name}.json").read_text())
    tables = study["loss_tables"]
    truth = LossTableModel.model_validate(tables.get("exhaustive") or tables["exhaustive seed 0"])
    truth_test = truth.scoring_table()
    assert truth_test is not None
    part = TRAINED_PARTS[name]()
    budgets = default_budgets(len(part.tasks))
    base = part.spec()
    exhaustive_seconds = study["compute"]["exhaustive seed 0"]["wall_seconds"]
    out: dict[str, Any] = {"part": name, "exhaustive_seconds": exhaustive_seconds, "methods": {}}
    for method, extra in METHODS.items():
        # a store per method: no method reuses another's trainings, so each is costed and decided alone
        store = open_study_store(f"sqlite:///{args.stores / f'{method}.db'}")
        run = _run(store, f"study-{name}-{method}", {**base, **extra}, runs_dir=args.runs_dir)
        trainings = run.result.provenance.trainings
        curve = score_curve(run.result.loss_table.selection_table(), truth_test, budgets)
        method_gaps = gaps(curve, study["curves"]["optimal"])
        seconds = math.fsum(t.wall_seconds or 0.0 for t in trainings)
        lookahead = [t.wall_seconds for t in trainings if t.lookahead and t.wall_seconds]
        out["methods"][method] = {
            "curve": curve,
            "gaps_percent": {str(b): g for b, g in method_gaps.items()},
            "mean_gap_percent": mean_gap(method_gaps),
            "max_gap_percent": max((g for g in method_gaps.values() if g is not None), default=None),
            "trainings": len(trainings),
            "reused": sum(t.reused for t in trainings),
            "wall_seconds": round(seconds, 1),
            "compute_share_seconds": round(seconds / exhaustive_seconds, 4),
            "compute_share_product": run.result.compute_share,
            "lookahead_seconds": lookahead[0] if lookahead else None,
            "rounds": len(run.result.rounds),
            "job_wall_seconds": run.job_wall_seconds,
            "lookahead_affinity": run.result.lookahead_affinity,
        }
        entry = out["methods"][method]
        entry["_trainings"] = trainings
    tag = out["methods"]["tag"]
    ratio = _lookahead_ratio(study, tag)
    tag["lookahead_vs_plain_all_task"] = ratio
    for entry in out["methods"].values():
        units = _units(entry.pop("_trainings"), LOOKAHEAD_RATIO[name])
        entry["compute_share_units"] = round(units / _exhaustive_units(len(part.tasks)), 4)
    return out


def _lookahead_ratio(study: dict[str, Any], tag: dict[str, Any]) -> float | None:
    """TAG's lookahead all-task training's wall seconds over a plain all-task training's (the study's
    exhaustive seed 0 all-task network, same settings, same kind of machine)."""
    tasks = study["tasks"]
    plain = [
        t["wall_seconds"]
        for t in study["trainings"].get("exhaustive seed 0", [])
        if len(t["tasks"]) == len(tasks)
        and t["capacity"] == 1.0
        and t["fidelity"] == 1.0
        and t["wall_seconds"]
    ]
    if not plain or not tag.get("lookahead_seconds"):
        return None
    return round(tag["lookahead_seconds"] / plain[0], 3)


def print_part(data: dict[str, Any]) -> None:
    print(f"\n{data['part']}: mean / max gap to the optimal (test), compute share of one exhaustive seed")
    for method, m in data["methods"].items():
        print(
            f"  {method:>9}: mean {fmt(m['mean_gap_percent'], '.2f')}%  "
            f"max {fmt(m['max_gap_percent'], '.2f')}%"
            f"  {m['trainings']:3d} trainings  {m['wall_seconds']:8.1f} s  share (seconds) "
            f"{m['compute_share_seconds']:.3f}  share (units) {m['compute_share_units']:.3f}  "
            f"rounds {m['rounds']}"
        )
    ratio = data["methods"]["tag"].get("lookahead_vs_plain_all_task")
    if ratio is not None:
        print(f"  TAG's lookahead all-task training: {ratio:.2f}x a plain all-task training's wall time")


def gap_vs_compute(out: Path) -> bytes:
    """Mean gap against compute share for every method of every trained part: the study's methods (HOA, ESA
    0.2/0.1) at their measured wall-seconds share (a quiet machine) from docs/study/<part>.json, TAG and
    adaptive at their units share (their runs shared a loaded machine) from <part>-strategies.json."""
    from matplotlib.figure import Figure

    from api.report.figures import _png

    fig = Figure(figsize=(7.0, 4.4))
    ax = fig.subplots()
    markers = {"taskonomy1": "o", "taskonomy2": "s", "sarcos": "^"}
    colors = {"hoa": "C0", "esa 0.2": "C1", "esa 0.1": "C2", "tag": "C3", "adaptive": "C4"}
    seen: set[str] = set()
    for part, marker in markers.items():
        study_file = out / "study" / f"{part}.json"
        if not study_file.is_file():
            continue
        study = json.loads(study_file.read_text())
        points = {
            m: (study["compute"][m]["fraction_of_exhaustive"], study["mean_gap_percent"][m])
            for m in STUDY_METHODS
        }
        extra = out / "study" / f"{part}-strategies.json"
        if extra.is_file():
            for m, entry in json.loads(extra.read_text())["methods"].items():
                points[m] = (entry["compute_share_units"], entry["mean_gap_percent"])
        for m, (x, y) in points.items():
            if y is None:
                continue
            label = m if m not in seen else None
            seen.add(m)
            ax.scatter([x], [y], marker=marker, color=colors[m], s=60, label=label, edgecolors="black")
            ax.annotate(part, (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.axhline(1.0, color="grey", linestyle="--", linewidth=0.8)
    ax.axvline(0.15, color="grey", linestyle=":", linewidth=0.8)
    ax.set_xlabel("compute: share of one exhaustive seed (HOA, ESA: wall seconds; TAG, adaptive: units)")
    ax.set_ylabel("mean gap to the optimal grouping (%)")
    ax.set_title("Gap vs compute (marker: part; dashed: the 1% goal; dotted: 15% compute)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def markdown(out: Path) -> str:
    """docs/study.md's rows: per part and method, mean and max gap and compute share."""
    lines = [
        "| part | method | mean gap | max gap | compute (seconds) | compute (units) | trainings | rounds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for part in TRAINED_PARTS:
        extra = out / "study" / f"{part}-strategies.json"
        if not extra.is_file():
            continue
        for method, m in json.loads(extra.read_text())["methods"].items():
            lines.append(
                f"| {part} | {method} | {fmt(m['mean_gap_percent'], '.2f')}% | "
                f"{fmt(m['max_gap_percent'], '.2f')}% | {m['compute_share_seconds']:.3f} | "
                f"{m['compute_share_units']:.3f} | {m['trainings']} | {m['rounds']} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--part", choices=[p for p in TRAINED_PARTS if p != "planted"])
    parser.add_argument(
        "--stores", type=Path, default=DEFAULT_STORES, help="folder of the results stores, one per method"
    )
    parser.add_argument("--figure", action="store_true", help="draw the gap-vs-compute figure")
    parser.add_argument("--markdown", action="store_true", help="print docs/study.md's rows")
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="the study's docs folder")
    parser.add_argument(
        "--runs-dir", type=Path, help="Ray Tune's experiment folders (default: the product's)"
    )
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown(args.out))
        return 0
    if args.part:
        if not (args.out / "study" / f"{args.part}.json").is_file():
            parser.error(
                f"docs/study/{args.part}.json is missing: run bench/study.py --part {args.part} first"
            )
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
        started = time.monotonic()
        data = run_part(args.part, args)
        data["script_seconds"] = round(time.monotonic() - started, 1)
        path = args.out / "study" / f"{args.part}-strategies.json"
        path.write_text(dump_json(data))
        print_part(data)
        print(f"\nwrote {path} ({data['script_seconds']} s)")
    if args.figure:
        path = args.out / "images" / "study-gap-vs-compute.png"
        path.write_bytes(gap_vs_compute(args.out))
        print(f"wrote {path}")
    if not (args.part or args.figure):
        parser.error("give --part, --figure or --markdown")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
