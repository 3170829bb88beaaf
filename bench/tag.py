"""What TAG's lookahead affinity costs: one lookahead training against one plain all-task training.

    TASKGROUP_SHARED_DATA=/path/to/shared/data .venv/bin/python bench/tag.py [--part taskonomy|sarcos|all]
        [--every 1 5 10] [--taskonomy-epochs 3] [--sarcos-epochs 30] [--quick]

Pins itself to one CPU with one torch thread (a Ray trial with one CPU gets the same). For each part it
loads the dataset and runs one untimed warm-up epoch, then trains the all-task network once plainly, then
with ``lookahead.every = k`` for each k, then plainly again (two plain runs bracket the lookahead runs, so
drift of a shared machine shows as a difference between them), all in this process, and prints per run:
wall seconds, the ratio to the mean plain wall time, the in-run ratio ``wall / (wall - lookahead
seconds)`` (the same ratio measured inside one run, so insensitive to the machine's load changing between
runs), the seconds spent in lookahead, the number of lookahead steps and the seconds per lookahead step;
then whether the trained networks are identical to the plain one (they must be: the lookahead restores the
training exactly) and how close the k > 1 affinity matrices are to k = 1's (Pearson and Spearman
correlation of the off-diagonal entries).

Parts: ``taskonomy`` = taskonomy-mini at its defaults (2,000 / 500 / 500 images at 32x32), tasks s d n k e,
a few epochs; ``sarcos`` = ``$TASKGROUP_SHARED_DATA/real/sarcos.csv`` as a tabular dataset (21 inputs, the 7
torques tau1..tau7 as standardised regressions), the study's 30 epochs. ``--quick`` runs tiny sizes to check
the script itself.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

from workers.spec import TrainingResult  # noqa: E402
from workers.train import load_dataset, train_candidate  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TASKGROUP_SHARED_DATA", ROOT.parent / "shared" / "data"))


def parts(args: argparse.Namespace) -> dict[str, tuple[dict[str, Any], list[str], dict[str, Any]]]:
    """Part name -> (dataset, tasks, training settings)."""
    taskonomy_params: dict[str, Any] = {}
    sarcos_epochs, taskonomy_epochs = args.sarcos_epochs, args.taskonomy_epochs
    if args.quick:
        taskonomy_params = {"resolution": 16, "train_images": 64, "validation_images": 16, "test_images": 16}
        sarcos_epochs = taskonomy_epochs = 1
    torques = [f"tau{i}" for i in range(1, 8)]
    out = {
        "taskonomy": (
            {"name": "taskonomy-mini", "params": taskonomy_params},
            ["s", "d", "n", "k", "e"],
            {"epochs": taskonomy_epochs, "patience": 1000},
        ),
        "sarcos": (
            {
                "name": "tabular",
                "params": {
                    "path": str(SHARED / "real" / "sarcos.csv"),
                    "tasks": dict.fromkeys(torques, "regression"),
                },
            },
            torques,
            {"epochs": sarcos_epochs, "patience": 1000},
        ),
    }
    return {name: part for name, part in out.items() if args.part in (name, "all")}


def run(
    dataset: dict[str, Any], tasks: list[str], settings: dict[str, Any], every: int | None
) -> TrainingResult:
    spec: dict[str, Any] = {"dataset": dataset, "tasks": tasks, "threads": 1, "seed": 0, "settings": settings}
    if every is not None:
        spec["lookahead"] = {"every": every}
    return train_candidate(spec)


def off_diagonal(result: TrainingResult) -> np.ndarray:
    assert result.lookahead is not None
    matrix = result.lookahead.affinity
    tasks = list(matrix)
    return np.array([matrix[i][j] for i in tasks for j in tasks if i != j])


def bench(
    name: str, dataset: dict[str, Any], tasks: list[str], settings: dict[str, Any], every: list[int]
) -> None:
    started = time.perf_counter()
    data, splits = load_dataset(dataset)
    sizes = {split: len(s) for split, s in splits.items()}
    print(
        f"\n== {name}: {data.name} {sizes}, loaded in {time.perf_counter() - started:.1f} s; tasks {tasks}, "
        f"{settings['epochs']} epochs, batch 64, Adam",
        flush=True,
    )
    warm = run(dataset, tasks, {**settings, "epochs": 1}, 1)  # one-time costs (lazy init, kernel caches)
    print(
        f"  warm-up      {warm.wall_seconds:7.1f} s  (1 epoch with lookahead every step, not timed)",
        flush=True,
    )
    first = run(dataset, tasks, settings, None)
    print(f"  plain (1st)  {first.wall_seconds:7.1f} s  ({first.epochs_run} epochs)", flush=True)
    looked: dict[int, TrainingResult] = {}
    for k in every:
        looked[k] = run(dataset, tasks, settings, k)
        print(f"  every {k:<3}    {looked[k].wall_seconds:7.1f} s", flush=True)
    second = run(dataset, tasks, settings, None)
    print(f"  plain (2nd)  {second.wall_seconds:7.1f} s", flush=True)
    plain = (first.wall_seconds + second.wall_seconds) / 2
    print(
        f"  {'run':<10} {'wall s':>8} {'ratio':>7} {'in-run':>7} {'lookahead s':>12} {'steps':>6} "
        f"{'s/step':>8}  identical"
    )
    print(
        f"  {'plain':<10} {plain:8.1f} {1.0:7.2f} {'':>7} {'':>12} {'':>6} {'':>8}  "
        f"(two runs: {first.wall_seconds:.1f}, {second.wall_seconds:.1f})"
    )
    for k, result in looked.items():
        assert result.lookahead is not None
        la = result.lookahead
        same = "yes" if result.selection == first.selection and result.scoring == first.scoring else "NO"
        in_run = result.wall_seconds / (result.wall_seconds - la.seconds)
        print(
            f"  {'every ' + str(k):<10} {result.wall_seconds:8.1f} {result.wall_seconds / plain:7.2f} "
            f"{in_run:7.2f} {la.seconds:12.1f} {la.steps:6d} {la.seconds / max(la.steps, 1):8.3f}  {same}"
        )
    base = min(looked)
    reference = off_diagonal(looked[base])
    for k, result in looked.items():
        if k == base:
            continue
        values = off_diagonal(result)
        pearson = float(np.corrcoef(reference, values)[0, 1])
        spearman = float(spearmanr(reference, values).statistic)
        print(
            f"  affinity every {k} vs every {base}: Pearson {pearson:.3f}, Spearman {spearman:.3f} "
            f"(off-diagonal entries)"
        )
    print(
        f"  mean affinity Z[i->j] (every {base}; row i = the task stepped on, column j = the task measured):"
    )
    matrix = looked[base].lookahead.affinity  # type: ignore[union-attr]
    print("  " + " " * 6 + "".join(f"{j:>10}" for j in tasks))
    for i in tasks:
        print(f"  {i:<6}" + "".join(f"{matrix[i][j]:10.5f}" for j in tasks))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--part", choices=["taskonomy", "sarcos", "all"], default="all")
    parser.add_argument("--every", type=int, nargs="+", default=[1, 5, 10], help="lookahead every k steps")
    parser.add_argument("--taskonomy-epochs", type=int, default=3)
    parser.add_argument("--sarcos-epochs", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the script only")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    torch.set_num_threads(1)
    print(
        f"one core: cpu {sorted(os.sched_getaffinity(0))}, torch threads {torch.get_num_threads()}, "
        f"torch {torch.__version__}"
    )
    for name, (dataset, tasks, settings) in parts(args).items():
        bench(name, dataset, tasks, settings, sorted(args.every))


if __name__ == "__main__":
    main()
