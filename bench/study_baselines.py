"""Does grouping beat one smarter network? The study extended with stronger baselines (issue 15).

    .venv/bin/python bench/study_baselines.py --part sarcos [--db sqlite:////tmp/study15/store.db]
    .venv/bin/python bench/study_baselines.py --part taskonomy1 --seeds 1 --weighting equal,mgda

For one part of the study (``bench/study.py``: sarcos or taskonomy1, same dataset, tasks and training), one
job through the product (``search.submit`` + ``run_job`` on a local Ray of 2 CPUs) whose ``baselines`` field
asks for the all-task network trained with each weighting method (equal, uncertainty, gradnorm, dwa, dtp,
mgda, pareto) and as each soft-sharing architecture (cross-stitch, mtan; nddr for images), with the part's
seeds; its approximation (HOA by default) only carries the job. Each single network is scored on its own
test losses (mean over the seeds), at its cost in SNT (FLOPs against hard sharing), against the optimal and
HOA groupings at the same budget, which come from the part's stored study (``docs/study/<part>.json``: the
exhaustive table averaged over the seeds, scored on its test losses; HOA chosen on its own table). The
seed noise beside the gaps is the study's: the standard deviation over seeds of the optimal grouping's test
total at each budget (``seed_spread``).

Prints the table with run times and writes ``docs/study/baselines-<part>.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

from study import ROOT, TRAINED_PARTS, _run, score_curve

from grouping import LossTableModel
from grouping.evaluation import gap_percent

log = logging.getLogger("study_baselines")
WEIGHTINGS = ["equal", "uncertainty", "gradnorm", "dwa", "dtp", "mgda", "pareto"]
ARCHITECTURES = {"sarcos": ["cross-stitch", "mtan"], "taskonomy1": ["cross-stitch", "mtan", "nddr"]}
DEFAULT_DB = "sqlite:////tmp/study15/store.db"


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--part", choices=sorted(ARCHITECTURES), default="sarcos")
    p.add_argument("--db", default=DEFAULT_DB, help=f"results store (default {DEFAULT_DB})")
    p.add_argument("--seeds", type=int, help="seeds per network (default: the part's, as its study)")
    p.add_argument("--weighting", help=f"comma list (default {','.join(WEIGHTINGS)})")
    p.add_argument("--architectures", help="comma list (default: cross-stitch,mtan; nddr too for images)")
    p.add_argument("--approx", default="hoa", help="the job's approximation (it only carries the job)")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "study")
    return p.parse_args()


def _grouping_at(selection: Any, scoring: Any, budget: float) -> dict[str, Any]:
    (record,) = score_curve(selection, scoring, [budget])
    return record


def _own_seed_sd(store: Any, result: Any) -> dict[str, float]:
    """Per baseline, the standard deviation over its seeds of its own test total (sum over the tasks)."""
    keys: dict[str, list[str]] = {}
    for t in result.provenance.trainings:
        if t.baseline is not None and t.state == "succeeded":
            keys.setdefault(t.baseline, []).append(t.key)
    out = {}
    for name, group in keys.items():
        records = store.get_trainings(group)
        totals = [math.fsum(records[k].result.scoring.values()) for k in group]
        out[name] = statistics.stdev(totals) if len(totals) > 1 else float("nan")
    return out


def _rows(result: Any, study: dict[str, Any], own_sd: dict[str, float]) -> list[dict[str, Any]]:
    """One row per stronger baseline: its totals, cost and run time, and the optimal and HOA groupings of
    the study at the same budget (its cost) with the seed noise of the nearest budget of the study."""
    truth = LossTableModel.model_validate(study["loss_tables"]["exhaustive"])
    truth_sel, truth_test = truth.selection_table(), truth.scoring_table()
    hoa_sel = LossTableModel.model_validate(study["loss_tables"]["hoa"]).selection_table()
    spread = {float(b): s for b, s in study["seed_spread"].items()}
    seconds: dict[str, float] = {}
    for t in result.provenance.trainings:
        if t.baseline is not None and t.wall_seconds is not None:
            seconds[t.baseline] = seconds.get(t.baseline, 0.0) + t.wall_seconds
    rows = []
    for b in result.baselines:
        if b.weighting is None:
            continue
        optimal = _grouping_at(truth_sel, truth_test, b.cost)
        hoa = _grouping_at(hoa_sel, truth_test, b.cost)
        nearest = max((x for x in spread if x <= b.cost + 1e-9), default=min(spread))
        noise = spread[nearest]
        rows.append(
            {
                "name": b.name,
                "cost": b.cost,
                "selection_total": b.selection_total,
                "test_total": b.scoring_total,
                "train_seconds": round(seconds.get(b.name, 0.0), 1),
                "optimal": {"total": optimal["scoring_total"], "networks": _labels(optimal)},
                "hoa": {"total": hoa["scoring_total"], "networks": _labels(hoa)},
                "gap_to_optimal_percent": gap_percent(b.scoring_total, optimal["scoring_total"]),
                "gap_to_hoa_percent": gap_percent(b.scoring_total, hoa["scoring_total"]),
                "seed_sd_percent": 100 * noise["std"] / optimal["scoring_total"],
                "own_seed_sd_percent": 100 * own_sd.get(b.name, float("nan")) / b.scoring_total,
                "seed_budget": nearest,
            }
        )
    return rows


def _labels(record: dict[str, Any]) -> list[str]:
    return [n["label"] for n in record["networks"]]


def _table(rows: list[dict[str, Any]], best: str | None) -> str:
    head = (
        f"{'network':<32} {'SNT':>5} {'valid.':>8} {'test':>8} {'optimal':>8} {'gap %':>6} "
        f"{'HOA':>8} {'gap %':>6} {'sd opt%':>7} {'sd own%':>7} {'train s':>8}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        mark = " *" if r["name"] == best else ""
        lines.append(
            f"{r['name'] + mark:<32} {r['cost']:>5.2f} {r['selection_total']:>8.5f} {r['test_total']:>8.5f} "
            f"{r['optimal']['total']:>8.5f} {r['gap_to_optimal_percent']:>+6.1f} {r['hoa']['total']:>8.5f} "
            f"{r['gap_to_hoa_percent']:>+6.1f} {r['seed_sd_percent']:>7.1f} {r['own_seed_sd_percent']:>7.1f} "
            f"{r['train_seconds']:>8.1f}"
        )
    lines += [
        "* = the best all-task network by validation total (the result's best_all_task)",
        "sd opt% / sd own%: standard deviation over seeds of one seed's test total, of the optimal grouping",
        "at that budget (the study's seed_spread) and of the network itself, in % of its total (a mean over",
        "k seeds has 1/sqrt(k) of it)",
    ]
    return "\n".join(lines)


def _figure(study: dict[str, Any], rows: list[dict[str, Any]]) -> bytes:
    """The study's optimal and HOA curves (test totals) with each single network as a point at its cost."""
    from api.report.figures import curve_figure

    curves = {
        f"{m} grouping": [(c["budget"], c["scoring_total"]) for c in study["curves"][m]]
        for m in ("optimal", "hoa")
    }
    points = [(r["name"], round(r["cost"], 2), r["test_total"]) for r in rows]
    return curve_figure(curves, points, title="One network vs. groupings (test totals)")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args = _args()
    from search.store import open_store

    study = json.loads((args.out / f"{args.part}.json").read_text())
    part = TRAINED_PARTS[args.part]()
    seeds = args.seeds or part.seeds
    weighting = args.weighting.split(",") if args.weighting else WEIGHTINGS
    architectures = args.architectures.split(",") if args.architectures else ARCHITECTURES[args.part]
    if args.db.startswith("sqlite:///"):
        Path(args.db.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    store = open_store(args.db)
    spec = {
        "dataset": part.dataset,
        "tasks": part.tasks,
        "training": part.training,
        "resources": part.resources,
        "approximation": args.approx,
        "seeds": seeds,
        "allow_large": True,
        "baselines": {"weighting": weighting, "architectures": architectures},
    }
    started = time.monotonic()
    job_id = f"study15-{args.part}-{args.approx}-x{seeds}"
    run = _run(store, job_id, spec)
    result = run.result
    rows = _rows(result, study, _own_seed_sd(store, result))
    print(f"{args.part}: {len(part.tasks)} tasks, {seeds} seed(s), training {part.training}")
    print(_table(rows, result.best_all_task))
    search_seconds = math.fsum(
        t.wall_seconds or 0.0 for t in result.provenance.trainings if t.baseline is None
    )
    baseline_seconds = math.fsum(r["train_seconds"] for r in rows)
    print(
        f"job {job_id}: {run.job_wall_seconds} s wall ({args.approx}'s trainings {search_seconds:.0f} s, the "
        f"baselines' {baseline_seconds:.0f} s of training time; 2 Ray CPUs on a shared 2-core machine); "
        f"script {time.monotonic() - started:.0f} s"
    )
    out = {
        "part": args.part,
        "seeds": seeds,
        "training": part.training,
        "job_id": job_id,
        "job_wall_seconds": run.job_wall_seconds,
        "best_all_task": result.best_all_task,
        "rows": rows,
        "one_seed_choice_mean_gap_percent": {
            k: v["mean_gap_percent"] for k, v in study.get("one_seed_choice", {}).items()
        },
    }
    figure = ROOT / "docs" / "images" / f"study-baselines-{args.part}.png"
    figure.write_bytes(_figure(study, rows))
    print(f"written {figure.relative_to(ROOT)}")
    path = args.out / f"baselines-{args.part}.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"written {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
