"""Benchmark of the exact grouping solver: a full budget sweep (1, 1.5, ..., n SNT) on random loss tables.

For each number of tasks n, a random table over the paper's candidate set (2^n - 1 full-size subsets and n
half-size singles, losses uniform in [0.5, 1.5]) is solved for the whole sweep by one dynamic programme
(``grouping.budget_curve``). The same budgets are solved in the same process by the MILP reference
(``grouping.milp``, HiGHS through scipy), one budget per call with a time limit, and both answers are
compared. Printed per n: the DP sweep time, its peak traced memory (tracemalloc: numpy buffers included),
the MILP time (summed over the budgets it ran; extrapolated to the whole sweep where only a sample of
budgets is run, marked ``~``), and the ratio MILP / DP.

    .venv/bin/python bench/solver.py                       # n = 5, 8, 10, 12, 14, 16
    .venv/bin/python bench/solver.py --sizes 5,8 --milp-max-n 8

Targets (a 2-core machine): n = 10 under 1 s, n = 12 under 10 s, n = 14 under 60 s, memory under 2 GiB.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import math
import platform
import resource
import time
import tracemalloc

import numpy as np

from grouping.budgets import default_budgets
from grouping.candidates import paper_candidates
from grouping.milp import milp_solve
from grouping.solver import GroupingSolver, budget_curve
from grouping.table import LossTable, TableRow


def random_table(n: int, seed: int) -> LossTable:
    rng = np.random.default_rng(seed)
    tasks = [f"t{i}" for i in range(n)]
    rows = [TableRow(c, {t: float(rng.uniform(0.5, 1.5)) for t in c.tasks}) for c in paper_candidates(tasks)]
    return LossTable(tasks, rows)


def sample_budgets(budgets: list[float], count: int) -> list[float]:
    """``count`` budgets spread over the sweep (all of them if count >= len)."""
    if count >= len(budgets):
        return budgets
    idx = np.linspace(0, len(budgets) - 1, count + 2)[1:-1].round().astype(int)
    return [budgets[i] for i in sorted(set(idx))]


def bench_one(n: int, args: argparse.Namespace) -> dict:
    table = random_table(n, args.seed + n)
    budgets = default_budgets(n)
    gc.collect()
    tracemalloc.start()
    start = time.perf_counter()
    curve = budget_curve(table)
    dp_seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert [g.budget for g in curve.curve] == budgets
    totals = [g.selection_total for g in curve.curve]
    assert all(b <= a for a, b in itertools.pairwise(totals)), "curve got worse"

    out = {
        "n": n,
        "candidates": len(table),
        "budgets": len(budgets),
        "dp_s": dp_seconds,
        "peak_mib": peak / 2**20,
        "milp_s": None,
        "milp_runs": 0,
        "estimated": False,
        "agree": None,
        "timeouts": 0,
    }
    if n > args.milp_max_n and n > args.milp_sample_max_n:
        return out
    run = budgets if n <= args.milp_max_n else sample_budgets(budgets, args.milp_sample)
    solver = GroupingSolver(table, max_budget=max(budgets))
    spent, agree, timeouts = 0.0, True, 0
    for budget in run:
        start = time.perf_counter()
        ref = milp_solve(table, budget, time_limit=args.milp_timeout)
        spent += time.perf_counter() - start
        if ref.status != 0:
            timeouts += 1
            continue
        agree &= math.isclose(ref.value, solver.optimum(budget), rel_tol=1e-7)
    out.update(milp_runs=len(run), agree=agree, timeouts=timeouts)
    out["milp_s"] = spent if len(run) == len(budgets) else spent / len(run) * len(budgets)
    out["estimated"] = len(run) < len(budgets)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Time the exact grouping solver against a MILP (HiGHS).")
    parser.add_argument("--sizes", default="5,8,10,12,14,16", help="numbers of tasks, comma-separated")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--milp-max-n", type=int, default=10, help="run the MILP on every budget up to this n"
    )
    parser.add_argument(
        "--milp-sample-max-n", type=int, default=12, help="beyond --milp-max-n, up to this n, ..."
    )
    parser.add_argument(
        "--milp-sample", type=int, default=2, help="... run the MILP on this many budgets only"
    )
    parser.add_argument("--milp-timeout", type=float, default=120.0, help="MILP time limit per budget (s)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]

    print(
        f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}, seed {args.seed}"
    )
    header = (
        f"{'n':>3} {'cands':>6} {'budgets':>7} {'DP sweep s':>10} {'peak MiB':>9} "
        f"{'MILP runs':>9} {'MILP sweep s':>12} {'MILP/DP':>8}  agree"
    )
    print(header)
    print("-" * len(header))
    for n in sizes:
        r = bench_one(n, args)
        if r["milp_s"] is None:
            milp, ratio, agree = "-", "-", "-"
        else:
            mark = "~" if r["estimated"] else ""
            more = ">=" if r["timeouts"] else ""
            milp = f"{more}{mark}{r['milp_s']:.2f}"
            ratio = f"{more}{mark}{r['milp_s'] / r['dp_s']:.0f}x"
            agree = "yes" if r["agree"] else "NO"
            if r["timeouts"]:
                agree += f" ({r['timeouts']} timed out)"
        print(
            f"{n:>3} {r['candidates']:>6} {r['budgets']:>7} {r['dp_s']:>10.3f} {r['peak_mib']:>9.1f} "
            f"{r['milp_runs'] or '-':>9} {milp:>12} {ratio:>8}  {agree}",
            flush=True,
        )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"peak resident memory of the whole run: {rss:.0f} MiB")
    print("~ = extrapolated from the sampled budgets (mean time per budget x number of budgets)")


if __name__ == "__main__":
    main()
