"""Benchmark of the exact grouping solvers: the DP over task subsets and the sparse MILP solver, side by side.

Three parts (``--parts``, default all):

* ``dense``: the paper's candidate set (2^n - 1 full-size subsets and n half-size singles, losses uniform in
  [0.5, 1.5]) for n = 5..16, full budget sweep (1, 1.5, ..., n SNT): the DP (``method="dp"``), the sparse
  solver (``method="milp"``, up to ``--sparse-max-n``) and the plain reference MILP of ``grouping.milp`` (one
  scipy/HiGHS call per budget, every head binary; extrapolated from sampled budgets above ``--milp-max-n``).
* ``goal27``: the issue's first goal: a 27-task table with about 3,000 candidate networks, every budget 1..10,
  exact in < 30 s. We do not have MTG-Net's published table (27 tasks, 3,185 measured groups), so the table is
  **synthetic**: a latent pairwise-affinity model (tasks in 5 latent clusters; task ``a`` in group ``G`` has
  loss ``base_a * (1 - gain)`` with ``gain`` the mean affinity of ``a`` to its partners, scaled up for larger
  groups, minus a capacity penalty per partner, times 2 % log-normal noise), so that groups of related tasks
  help and unrelated ones hurt. Candidates: the all-task network, every single and pair, half-size singles,
  and random groups of 3 to 10 tasks (half of them drawn mostly inside one cluster) up to 3,000 rows. The DP
  cannot take 27 tasks; it is run side by side on the same model at 16 tasks.
* ``goal40``: the second goal: random sparse tables of 40 tasks and 5,000 candidates (every single, the half
  singles, the all-task network, random groups of 2 to 20 tasks, losses uniform in [0.5, 1.5]), 10 budgets
  (1..10 SNT), in < 60 s or a proven gap <= 0.1 %: the sweep runs with ``time_limit=60``.

Times are wall-clock seconds of whole sweeps (building the arrays included), measured in the same run.

    .venv/bin/python bench/solver.py                         # every part
    .venv/bin/python bench/solver.py --parts goal27,goal40
    .venv/bin/python bench/solver.py --parts dense --sizes 5,8 --milp-max-n 8

Targets (a 2-core machine): dense n = 10 under 1 s, n = 12 under 10 s, n = 14 under 60 s, memory under
2 GiB; goal27 < 30 s exact; goal40 < 60 s or gap <= 0.1 %.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import logging
import math
import platform
import resource
import time
import tracemalloc

import numpy as np

from grouping.budgets import default_budgets
from grouping.candidates import HALF, Candidate, paper_candidates
from grouping.milp import milp_solve
from grouping.results import BudgetCurve
from grouping.solver import GroupingSolver, budget_curve
from grouping.table import LossTable, TableRow

logger = logging.getLogger("bench.solver")


# -- tables --------------------------------------------------------------------------------------------------
def random_table(n: int, seed: int) -> LossTable:
    """The paper's candidate set over n tasks, losses uniform in [0.5, 1.5]."""
    rng = np.random.default_rng(seed)
    tasks = [f"t{i}" for i in range(n)]
    rows = [TableRow(c, {t: float(rng.uniform(0.5, 1.5)) for t in c.tasks}) for c in paper_candidates(tasks)]
    return LossTable(tasks, rows)


def latent_table(n: int = 27, rows: int = 3000, seed: int = 0, clusters: int = 5) -> LossTable:
    """A synthetic loss table from a latent pairwise-affinity model (see the module doc)."""
    rng = np.random.default_rng(seed)
    tasks = [f"t{i:02d}" for i in range(n)]
    centres = rng.normal(size=(clusters, 8))
    label = rng.integers(0, clusters, n)
    z = centres[label] + 0.6 * rng.normal(size=(n, 8))
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    affinity = 0.12 * (z @ z.T) - 0.03  # related tasks help (up to +9 %), unrelated ones hurt (-3 %)
    base = rng.uniform(0.3, 1.2, n)
    groups: set[tuple[int, ...]] = {tuple(range(n))}
    groups.update((i,) for i in range(n))
    groups.update(itertools.combinations(range(n), 2))
    while len(groups) < rows - n:
        k = int(rng.integers(3, min(10, n) + 1))
        if rng.random() < 0.5:  # mostly inside one latent cluster
            pool = np.union1d(
                np.flatnonzero(label == rng.integers(clusters)), rng.choice(n, 2, replace=False)
            )
            if len(pool) < k:
                continue
            group = rng.choice(pool, size=k, replace=False)
        else:
            group = rng.choice(n, size=k, replace=False)
        groups.add(tuple(sorted(int(i) for i in group)))
    out = []
    for group in sorted(groups, key=lambda g: (len(g), g)):
        m = len(group) - 1
        losses = {}
        for a in group:
            partners = [b for b in group if b != a]
            gain = affinity[a, partners].mean() * (1 + 0.3 * math.log(m)) - 0.006 * m if m else 0.0
            losses[tasks[a]] = float(base[a] * (1 - gain) * math.exp(rng.normal(0, 0.02)))
        out.append(TableRow(Candidate(tuple(tasks[i] for i in group)), losses))
    out += [
        TableRow(Candidate((tasks[a],), HALF), {tasks[a]: float(base[a] * rng.uniform(1.03, 1.12))})
        for a in range(n)
    ]
    return LossTable(tasks, out)


def random_sparse_table(n: int = 40, rows: int = 5000, seed: int = 0, max_size: int = 20) -> LossTable:
    """Every single and half single, the all-task network and random groups of 2..max_size tasks, losses
    uniform in [0.5, 1.5]."""
    rng = np.random.default_rng(seed)
    tasks = [f"t{i:02d}" for i in range(n)]
    groups: set[tuple[int, ...]] = {tuple(range(n))}
    groups.update((i,) for i in range(n))
    while len(groups) < rows - n:
        k = int(rng.integers(2, max_size + 1))
        groups.add(tuple(sorted(int(i) for i in rng.choice(n, size=k, replace=False))))
    out = [
        TableRow(Candidate(tuple(tasks[i] for i in g)), {tasks[i]: float(rng.uniform(0.5, 1.5)) for i in g})
        for g in sorted(groups)
    ]
    out += [TableRow(Candidate((t,), HALF), {t: float(rng.uniform(0.5, 1.5))}) for t in tasks]
    return LossTable(tasks, out)


# -- measuring -----------------------------------------------------------------------------------------------
def timed_curve(table: LossTable, budgets: list[float] | None, **kwargs) -> tuple[BudgetCurve, float]:
    start = time.perf_counter()
    curve = budget_curve(table, budgets=budgets, **kwargs)
    return curve, time.perf_counter() - start


def agree(a: BudgetCurve, b: BudgetCurve) -> str:
    """'yes' if both curves have the same totals (rel 1e-9) and networks at every budget."""
    same_totals = all(
        math.isclose(x.selection_total, y.selection_total, rel_tol=1e-9)
        for x, y in zip(a.curve, b.curve, strict=True)
    )
    same_nets = all(
        [n.label for n in x.networks] == [n.label for n in y.networks]
        for x, y in zip(a.curve, b.curve, strict=True)
    )
    return "yes" if same_totals and same_nets else ("totals only" if same_totals else "NO")


def gaps(curve: BudgetCurve) -> str:
    worst = max(g.optimality_gap or 0.0 for g in curve.curve)
    return "0 (all proven)" if worst == 0 else f"max {worst:.3%}"


def sample_budgets(budgets: list[float], count: int) -> list[float]:
    """``count`` budgets spread over the sweep (all of them if count >= len)."""
    if count >= len(budgets):
        return budgets
    idx = np.linspace(0, len(budgets) - 1, count + 2)[1:-1].round().astype(int)
    return [budgets[i] for i in sorted(set(idx))]


def dense_one(n: int, args: argparse.Namespace) -> dict:
    table = random_table(n, args.seed + n)
    budgets = default_budgets(n)
    gc.collect()
    tracemalloc.start()
    curve, dp_seconds = timed_curve(table, None, method="dp")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert [g.budget for g in curve.curve] == budgets
    totals = [g.selection_total for g in curve.curve]
    assert all(b <= a for a, b in itertools.pairwise(totals)), "curve got worse"
    out = {"n": n, "rows": len(table), "budgets": len(budgets), "dp": dp_seconds, "peak": peak / 2**20}
    if n <= args.sparse_max_n:
        sparse, seconds = timed_curve(table, None, method="milp")
        out.update(sparse=seconds, sparse_agree=agree(curve, sparse))
    if n <= args.milp_max_n or n <= args.milp_sample_max_n:
        run = budgets if n <= args.milp_max_n else sample_budgets(budgets, args.milp_sample)
        solver = GroupingSolver(table, max_budget=max(budgets), method="dp")
        spent, ok, timeouts = 0.0, True, 0
        for budget in run:
            start = time.perf_counter()
            ref = milp_solve(table, budget, time_limit=args.milp_timeout)
            spent += time.perf_counter() - start
            if ref.status != 0:
                timeouts += 1
                continue
            ok &= math.isclose(ref.value, solver.optimum(budget), rel_tol=1e-7)
        mark = "~" if len(run) < len(budgets) else ""
        out["ref"] = f"{'>=' if timeouts else ''}{mark}{spent / len(run) * len(budgets):.2f}"
        out["ref_agree"] = "yes" if ok else "NO"
    return out


def part_dense(args: argparse.Namespace) -> None:
    print("\n## dense: the paper's candidate set, budgets 1..n by 0.5 (seconds per whole sweep)")
    header = (
        f"{'n':>3} {'rows':>6} {'budgets':>7} {'DP s':>8} {'DP MiB':>7} {'sparse s':>9} {'sparse=DP':>9} "
        f"{'ref MILP s':>11} {'ref=DP':>6}"
    )
    print(header)
    print("-" * len(header))
    for n in [int(s) for s in args.sizes.split(",")]:
        r = dense_one(n, args)
        sparse = f"{r['sparse']:.2f}" if "sparse" in r else "-"
        print(
            f"{n:>3} {r['rows']:>6} {r['budgets']:>7} {r['dp']:>8.3f} {r['peak']:>7.1f} "
            f"{sparse:>9} {r.get('sparse_agree', '-'):>9} {r.get('ref', '-'):>11} "
            f"{r.get('ref_agree', '-'):>6}",
            flush=True,
        )
    print("~ = extrapolated from sampled budgets; >= = some budgets hit the reference's time limit")


def part_goal27(args: argparse.Namespace) -> None:
    budgets = [float(b) for b in range(1, 11)]
    print("\n## goal27: synthetic latent-affinity table, budgets 1..10 SNT (target: exact in < 30 s)")
    for n, rows in ((16, 1500), (27, 3000)):
        start = time.perf_counter()
        table = latent_table(n, rows, seed=args.seed)
        built = time.perf_counter() - start
        sparse, seconds = timed_curve(table, budgets, method="milp", time_limit=args.goal27_limit)
        line = f"n={n} rows={len(table)} (built in {built:.1f} s): sparse MILP {seconds:.1f} s, "
        line += f"gaps {gaps(sparse)}"
        if n <= 20:
            dp, dp_seconds = timed_curve(table, budgets, method="dp")
            line += f"; DP {dp_seconds:.1f} s; same groupings: {agree(dp, sparse)}"
        else:
            line += "; DP: n/a (at most 20 tasks)"
        print(line, flush=True)
        print("   budget  total      gap      networks")
        for g in sparse.curve:
            print(
                f"   {g.budget:>6g}  {g.selection_total:.5f}  {g.optimality_gap or 0:.4%}  {len(g.networks)}"
            )


def part_goal40(args: argparse.Namespace) -> None:
    budgets = [float(b) for b in range(1, 11)]
    print(
        "\n## goal40: random sparse tables, 40 tasks x 5,000 candidates, budgets 1..10 SNT "
        f"(target: < 60 s or gap <= 0.1 %; time limit {args.goal40_limit:g} s)"
    )
    for seed in range(args.goal40_tables):
        table = random_sparse_table(40, 5000, seed=args.seed + seed)
        sparse, seconds = timed_curve(table, budgets, method="milp", time_limit=args.goal40_limit)
        worst = max(g.optimality_gap or 0.0 for g in sparse.curve)
        verdict = (
            "met: exact in < 60 s"
            if seconds < 60 and worst == 0
            else ("met: proven gap <= 0.1 %" if worst <= 1e-3 else "NOT met")
        )
        print(
            f"seed {args.seed + seed}: {seconds:.1f} s, gaps {gaps(sparse)}: goal {verdict}; DP: n/a",
            flush=True,
        )


PARTS = {"dense": part_dense, "goal27": part_goal27, "goal40": part_goal40}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Time the exact grouping solvers (DP and sparse MILP).")
    parser.add_argument(
        "--parts", default="dense,goal27,goal40", help=f"comma-separated of {', '.join(PARTS)}"
    )
    parser.add_argument("--sizes", default="5,8,10,12,14,16", help="dense: numbers of tasks")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--sparse-max-n", type=int, default=12, help="dense: run the sparse solver up to this n"
    )
    parser.add_argument(
        "--milp-max-n", type=int, default=8, help="dense: reference MILP on every budget up to n"
    )
    parser.add_argument(
        "--milp-sample-max-n", type=int, default=10, help="... then on sampled budgets up to n"
    )
    parser.add_argument("--milp-sample", type=int, default=2, help="... this many budgets")
    parser.add_argument(
        "--milp-timeout", type=float, default=120.0, help="reference MILP limit per budget (s)"
    )
    parser.add_argument(
        "--goal27-limit", type=float, default=120.0, help="time limit of the goal27 sweeps (s)"
    )
    parser.add_argument(
        "--goal40-limit", type=float, default=60.0, help="time limit of the goal40 sweeps (s)"
    )
    parser.add_argument("--goal40-tables", type=int, default=2, help="how many random 40-task tables")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each budget of the sparse solver")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}, seed {args.seed}"
    )
    for name in args.parts.split(","):
        PARTS[name](args)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"\npeak resident memory of the whole run: {rss:.0f} MiB")


if __name__ == "__main__":
    main()
