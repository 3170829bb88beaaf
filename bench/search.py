"""Trainings per minute on Ray (2 CPUs, one Tune trial per training) vs. the same trainings run one after
another in one process, and Ray's overhead per training.

    .venv/bin/python bench/search.py [--cpus 2] [--only planted|taskonomy-mini]

Two workloads: a `planted` exhaustive job (tiny trainings, so the fixed cost per training shows) and a
taskonomy-mini ESA job (trainings of seconds). Both runs train the same plan with one thread per training.
The sequential baseline calls ``workers.train_candidate`` in a loop in this process
(data loaded once, no Ray). The Ray run is a real job (``search.run.run_job``) on a fresh store, so nothing is
reused; its wall time includes Ray start-up of the trial processes, Tune's fixed cost and the store writes.
Overhead per training = (Ray wall x CPUs - sum of the trainings' own wall seconds) / trainings.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path, and this file would shadow the `search`
# package it measures: drop the folder.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # Ray on 127.0.0.1: bench traffic stays local


def measure(label: str, spec_data: dict, cpus: int) -> None:
    """Train the plan of ``spec_data`` sequentially in this process, then as a real job on Ray; print both."""
    import ray

    from search.run import run_job
    from search.submit import prepare, submit_job
    from workers.train import train_candidate

    submission = prepare(spec_data)
    spec, plan = submission.spec, submission.plan
    specs = [plan.training_spec(t).model_copy(update={"threads": 1}) for t in plan.trainings]
    n = len(specs)
    print(
        f"\n{label}: {n} trainings ({spec.approximation}, fidelity {spec.effective_fidelity:g}, "
        f"{spec.training.epochs} epochs full schedule, 1 thread each)"
    )
    train_candidate(specs[0])  # warm: data, imports
    started = time.perf_counter()
    for training in specs:
        train_candidate(training)
    sequential = time.perf_counter() - started

    ray.init(
        num_cpus=cpus,
        include_dashboard=False,
        log_to_driver=False,
        object_store_memory=100 * 1024**2,
    )
    with tempfile.TemporaryDirectory() as tmp:
        from search.store import open_store

        store = open_store(f"sqlite:///{Path(tmp) / 'bench.db'}")
        job = submit_job(store, submission)
        started = time.perf_counter()
        final = run_job(store, job.id, runs_dir=Path(tmp) / "runs")
        parallel = time.perf_counter() - started
        assert final.state == "succeeded", final.error
        trained_seconds = final.result.provenance.training_seconds
    ray.shutdown()

    print(f"  sequential, one process: {sequential:7.1f} s  {60 * n / sequential:7.1f} trainings/min")
    print(f"  Ray, {cpus} CPUs:            {parallel:7.1f} s  {60 * n / parallel:7.1f} trainings/min")
    print(f"  speed-up: {sequential / parallel:.2f}x (ideal {cpus}x)")
    print(
        f"  mean training wall time: {trained_seconds / n:.2f} s inside Ray, "
        f"{sequential / n:.2f} s sequential"
    )
    overhead = (parallel * cpus - trained_seconds) / n
    print(
        f"  Ray overhead per training: {overhead:.2f} CPU-seconds "
        f"(trial start, Tune bookkeeping, store writes, idle CPUs at the tail)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--only", choices=["planted", "taskonomy-mini"], help="run one workload only")
    args = parser.parse_args()
    workloads = {
        "planted": (
            "planted, 4 tasks (tiny trainings: shows the fixed cost per training)",
            {"dataset": {"name": "planted"}, "tasks": ["a1", "a2", "b1", "b2"], "training": {"epochs": 8}},
        ),
        "taskonomy-mini": (
            "taskonomy-mini, 4 tasks s,d,n,e, ESA (trainings of seconds: the speed-up that matters)",
            {"dataset": {"name": "taskonomy-mini"}, "tasks": ["s", "d", "n", "e"], "approximation": "esa"},
        ),
    }
    for name, (label, spec) in workloads.items():
        if args.only in (None, name):
            measure(label, spec, args.cpus)


if __name__ == "__main__":
    main()
