"""What each architecture costs to train, against hard sharing measured in the same run.

    .venv/bin/python bench/architectures.py [--epochs 3] [--rounds 2] [--train-images 512] [--quick]

Pins itself to one CPU with one torch thread (as a one-CPU Ray trial), then for two datasets

* images: taskonomy-mini at 32x32, the paper's five tasks s d n k e;
* vectors: SARCOS (``$TASKGROUP_SHARED_DATA/real/sarcos.csv``, 21 inputs, seven torques), or the planted
  dataset when the file is absent;

trains the all-task candidate at capacity 1 with every architecture that applies (equal weighting), and
hard sharing with Pareto MTL and MGDA-UB (the weightings that differentiate every task loss at the
representation), for ``--epochs`` epochs with no early stop. Rows run in turn, ``--rounds`` times, and
each row keeps its fastest round (the machine may be shared: the minimum is the least disturbed).

Printed per row: parameters, FLOPs per sample, cost in SNT (``workers.models.architecture_cost``),
seconds per epoch (mean over the epochs after the first, which pays the warm-up), and the ratios of
seconds per epoch and of FLOPs to hard sharing's, and the validation total reached. ``--quick`` runs a
tiny configuration (16x16 images, planted vectors, 2 epochs, one round) to check the script itself.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from workers.models import architectures_for, candidate_cost  # noqa: E402
from workers.spec import TrainingResult  # noqa: E402
from workers.train import load_dataset, train_candidate  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("TASKGROUP_SHARED_DATA", ROOT.parent / "shared" / "data"))
IMAGE_TASKS = ["s", "d", "n", "k", "e"]
EXTRA_WEIGHTINGS = ("pareto", "mgda")


@dataclass
class Row:
    kind: str
    architecture: str
    weighting: str
    result: TrainingResult | None = None
    seconds: float = float("inf")  # per epoch, fastest round

    @property
    def label(self) -> str:
        return self.architecture if self.weighting == "equal" else f"{self.architecture} + {self.weighting}"


def per_epoch(result: TrainingResult) -> float:
    """Mean seconds of the epochs after the first (the first pays one-off warm-up)."""
    epochs = result.curve[1:] or result.curve
    return sum(r.seconds for r in epochs) / len(epochs)


def run(row: Row, dataset: dict[str, Any], tasks: list[str], epochs: int, batch_size: int) -> None:
    settings = {
        "epochs": epochs,
        "batch_size": batch_size,
        "patience": epochs + 1,
        "weighting": row.weighting,
        "model": {"architecture": row.architecture},
    }
    result = train_candidate({"dataset": dataset, "tasks": tasks, "threads": 1, "settings": settings})
    seconds = per_epoch(result)
    print(f"  {row.kind:6} {row.label:22} {seconds:7.3f} s/epoch ({result.wall_seconds:.1f} s)", flush=True)
    if seconds < row.seconds:
        row.seconds, row.result = seconds, result


def table(rows: list[Row], costs: dict[str, float]) -> None:
    print()
    print(
        "| input | architecture | params | MFLOPs/sample | cost (SNT) | s/epoch | time vs hard | "
        "FLOPs vs hard | validation total |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for kind in dict.fromkeys(row.kind for row in rows):
        hard = next(r for r in rows if r.kind == kind and r.architecture == "hard" and r.weighting == "equal")
        assert hard.result is not None
        for row in (r for r in rows if r.kind == kind):
            assert row.result is not None
            mflops = row.result.flops_per_sample / 1e6
            print(
                f"| {kind} | {row.label} | {row.result.parameters:,} | {mflops:.3f} | "
                f"{costs[f'{kind}:{row.architecture}']:.2f} | {row.seconds:.3f} | "
                f"{row.seconds / hard.seconds:.2f} | "
                f"{row.result.flops_per_sample / hard.result.flops_per_sample:.2f} | "
                f"{sum(row.result.selection.values()):.4f} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=3, help="epochs per training (no early stop)")
    parser.add_argument("--rounds", type=int, default=2, help="times every row runs; the fastest counts")
    parser.add_argument("--train-images", type=int, default=512, help="taskonomy-mini training images")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the script only")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

    images: dict[str, Any] = {
        "name": "taskonomy-mini",
        "params": {"train_images": args.train_images, "validation_images": 128, "test_images": 128},
    }
    sarcos = SHARED_DATA / "real" / "sarcos.csv"
    vectors: dict[str, Any] = {"name": "planted", "params": {}}
    if sarcos.is_file() and not args.quick:
        torques = {f"tau{i}": "regression" for i in range(1, 8)}
        vectors = {"name": "tabular", "params": {"path": str(sarcos), "tasks": torques}}
    if args.quick:
        images["params"] = {"resolution": 16, "train_images": 64, "validation_images": 16, "test_images": 16}
        args.epochs, args.rounds = 2, 1

    kinds: dict[str, tuple[dict[str, Any], list[str]]] = {}
    costs: dict[str, float] = {}
    rows: list[Row] = []
    for kind, dataset in (("image", images), ("vector", vectors)):
        data, splits = load_dataset(dataset)
        tasks = IMAGE_TASKS if kind == "image" else [t.name for t in data.tasks()]
        kinds[kind] = (dataset, tasks)
        samples = len(splits["train"])
        print(f"{kind}: {dataset['name']} {data.fingerprint()}, tasks {tasks}, {samples} training samples")
        for architecture in architectures_for(kind):
            costs[f"{kind}:{architecture}"] = candidate_cost(data, tasks, 1.0, architecture)
            rows.append(Row(kind, architecture, "equal"))
        rows += [Row(kind, "hard", weighting) for weighting in EXTRA_WEIGHTINGS]
    cpus = sorted(os.sched_getaffinity(0))
    print(f"one core: cpu {cpus}, torch threads 1; {args.epochs} epochs, {args.rounds} rounds")
    for round_ in range(args.rounds):
        print(f"round {round_ + 1}:")
        for row in rows:
            dataset, tasks = kinds[row.kind]
            run(row, dataset, tasks, args.epochs, args.batch_size)
    table(rows, costs)


if __name__ == "__main__":
    main()
