"""Many-task study parts (issue 12, docs/study.md): tox21 (12 assays), wq (14 targets), taskonomy-mini (9).

    .venv/bin/python bench/study_many.py --part tox21|wq|taskonomy9 [--db URL] [--budgets 1,2,3,4]
    .venv/bin/python bench/study_many.py --part tox21 --markdown     # docs/study.md's rows from the JSON

Each part runs up to four jobs through the product (``search.submit.submit_job`` + ``run_job`` on a local Ray
of 2 CPUs) in one results store, so a training one job has done is reused by the next:

* **hoa**: the higher-order approximation (singles, half-size singles and pairs trained; above 12 tasks only
  the groups the pairs' affinity makes promising are predicted, never 2^n), with every budget finalized:
  the chosen networks are trained to the end, so each choice is scored on *measured* test losses;
* **partial**: ``exhaustive`` with ``max_group_size`` k (every group of at most k tasks trained): the exact
  optimum among groupings of such groups, the partial exhaustive check (budgets below n/k SNT cannot be
  served by groups that small);
* **random**: ``exhaustive`` with ``groups``: the all-task network and ``draws`` random partitions of the
  tasks into floor(budget) full-size networks per budget (cost = budget), each scored on the measured test
  losses of its networks; the all-task network is the 1-SNT baseline;
* **seeds**: ``exhaustive`` with ``groups`` [all tasks] and ``noise_seeds`` seeds: the seed-to-seed spread of
  the all-task network's and of the independent singles' test totals, the noise a gap must beat.

Independent singles (full size: n SNT; half size: n/2 SNT) come from the hoa job. Known structure (Tox21):
NR-AR with NR-AR-LBD and NR-ER with NR-ER-LBD measure the same receptors; the part reports their pairwise
affinity's rank among all pairs and the budgets whose choice puts them together.

Writes ``docs/study/many-<part>.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from study import ROOT, SHARED, _run, dump_json, fmt, open_study_store

from grouping.affinity import pairwise_affinity
from grouping.budgets import parse_budgets
from grouping.candidates import FULL
from grouping.evaluation import gap_percent, random_partition, served_total
from grouping.table import LossTable

log = logging.getLogger("study-many")
DEFAULT_DB = Path.home() / ".cache" / "taskgrouping" / "study-many.db"


def _csv_columns(path: Path) -> list[str]:
    """A CSV file's column names (its first line)."""
    with path.open(encoding="utf-8") as handle:
        return handle.readline().strip().split(",")


def _arff_attributes(path: Path) -> list[str]:
    """An ARFF file's attribute names, in order."""
    with path.open(encoding="utf-8", errors="replace") as handle:
        return [line.split()[1] for line in handle if line.lower().startswith("@attribute")]


@dataclass
class ManyPart:
    dataset: dict[str, Any]
    tasks: list[str]
    training: dict[str, Any]
    budgets: list[float]
    known_pairs: list[tuple[str, str]] = field(default_factory=list)
    partial_size: int | None = 3
    """Largest group of the partial exhaustive check (None: not affordable for the part)."""
    draws: int = 5
    """Random partitions per budget."""
    noise_seeds: int = 3
    """Seeds of the noise job (below 2: no noise job)."""

    def _common(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "tasks": self.tasks,
            "training": self.training,
            "budgets": self.budgets,
            "allow_large": True,
        }

    def spec(self) -> dict[str, Any]:
        return {**self._common(), "approximation": "hoa", "finalize_budgets": self.budgets}

    def partial_spec(self) -> dict[str, Any]:
        options = {"max_group_size": self.partial_size}
        return {**self._common(), "approximation": "exhaustive", "approximation_options": options}

    def groups_spec(self, groups: list[list[str]], seeds: int = 1) -> dict[str, Any]:
        """Exhaustive over the singles and ``groups``; with several seeds (the noise job) no half singles,
        which the noise figures do not use."""
        options = {"groups": groups}
        spec = {**self._common(), "approximation": "exhaustive", "approximation_options": options}
        if seeds > 1:
            spec |= {"seeds": seeds, "capacities": {"subsets": [1.0], "singles": []}}
        return spec


def _tox21() -> ManyPart:
    """Tox21's 12 assays (every column after the SMILES), molecules as 2048-bit Morgan fingerprints."""
    path = SHARED / "real" / "tox21.csv"
    assays = _csv_columns(path)[1:]
    return ManyPart(
        dataset={
            "name": "tabular",
            "params": {
                "path": str(path),
                "tasks": dict.fromkeys(assays, "binary"),
                "featurize": {"smiles": {"method": "morgan", "options": {"bits": 2048}, "invalid": "drop"}},
            },
        },
        tasks=assays,
        training={"epochs": 20, "patience": 5},
        budgets=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        known_pairs=[("NR-AR", "NR-AR-LBD"), ("NR-ER", "NR-ER-LBD")],
    )


def _wq() -> ManyPart:
    """wq's 14 bioindicator targets (the last 14 attributes; the 16 chemical parameters are the inputs)."""
    path = SHARED / "real" / "wq.arff"
    targets = _arff_attributes(path)[-14:]
    return ManyPart(
        dataset={
            "name": "tabular",
            "params": {"path": str(path), "tasks": dict.fromkeys(targets, "regression")},
        },
        tasks=targets,
        training={"epochs": 30, "patience": 5},
        budgets=[2.0, 3.0, 4.0, 5.0, 6.0, 8.0],
    )


def _taskonomy9() -> ManyPart:
    return ManyPart(
        dataset={"name": "taskonomy-mini", "params": {}},
        tasks=["s", "d", "n", "k", "e", "a", "o", "r", "c"],
        training={"epochs": 15},
        budgets=[1.0, 2.0, 3.0, 4.0],
        partial_size=None,  # 84 triples at 35-60 s each: over the part's hour on this machine
        draws=3,
    )


PARTS: dict[str, Callable[[], ManyPart]] = {"tox21": _tox21, "wq": _wq, "taskonomy9": _taskonomy9}


def _singles(result: Any, capacity: float) -> float | None:
    """Sum of the measured test losses of the singles at ``capacity`` (None if one is missing)."""
    table = result.loss_table.scoring_table()
    if table is None:
        return None
    total = 0.0
    for task in result.tasks:
        single = table.candidate([task], capacity)
        if single not in table:
            return None
        total += table.loss(single, task)
    return total


def _known(part: ManyPart, result: Any) -> list[dict[str, Any]]:
    """Each known pair's mean pairwise gain (test), its rank among all pairs, and the budgets whose choice
    serves both from one network."""
    table = result.loss_table.scoring_table()
    if table is None or not part.known_pairs:
        return []
    pairs = pairwise_affinity(table).pair_mean()
    ranked = sorted((v for v in pairs.values() if not math.isnan(v)), reverse=True)
    out = []
    for a, b in part.known_pairs:
        gain = pairs.get((a, b), pairs.get((b, a), math.nan))
        together = [
            g.budget for g in result.curve if any(a in n.serves and b in n.serves for n in g.networks)
        ]
        rank = ranked.index(gain) + 1 if not math.isnan(gain) else None
        out.append({"pair": [a, b], "gain": gain, "rank": rank, "of": len(ranked), "together_at": together})
    return out


def _finalized(result: Any) -> list[dict[str, Any]]:
    return [
        {
            "budget": f.budget,
            "networks": f.networks,
            "predicted_test": f.predicted_scoring_total,
            "measured_test": f.measured_scoring_total,
            "measured_validation": f.measured_selection_total,
            "predicted_validation": f.predicted_selection_total,
            "choice_changes": f.choice_changes,
        }
        for f in result.finalized
    ]


def _partial(result: Any) -> list[dict[str, Any]]:
    """The partial exhaustive job's choice per budget (on validation) and its test total; budgets the
    groups cannot serve are not in the curve."""
    return [
        {"budget": g.budget, "networks": [n.label for n in g.networks], "measured_test": g.scoring_total}
        for g in result.curve
    ]


def random_partitions(
    tasks: list[str], budgets: list[float], draws: int, seed: int = 0
) -> dict[float, list[list[tuple[str, ...]]]]:
    """``draws`` random partitions of ``tasks`` into floor(budget) groups per budget of 2 SNT or more."""
    rng = random.Random(seed)
    out: dict[float, list[list[tuple[str, ...]]]] = {}
    for budget in budgets:
        k = min(len(tasks), math.floor(budget + 1e-9))
        if k >= 2:
            out[budget] = [random_partition(tasks, k, rng) for _ in range(draws)]
    return out


def _partition_total(table: LossTable, groups: list[tuple[str, ...]]) -> float | None:
    """Test total of a partition, each task served by its own group's full-size network."""
    served = {t: table.candidate(list(g), FULL) for g in groups for t in g}
    return served_total(served, table)


def _random(
    result: Any, partitions: dict[float, list[list[tuple[str, ...]]]]
) -> tuple[float | None, list[dict[str, Any]]]:
    """The all-task network's test total and, per budget, the random partitions' test totals."""
    table = result.loss_table.scoring_table()
    everything = table.candidate(list(result.tasks), FULL)
    all_task = served_total(dict.fromkeys(result.tasks, everything), table)
    rows = []
    for budget, draws in partitions.items():
        totals = [t for t in (_partition_total(table, groups) for groups in draws) if t is not None]
        rows.append(
            {
                "budget": budget,
                "draws": len(totals),
                "mean": statistics.fmean(totals) if totals else None,
                "min": min(totals, default=None),
                "max": max(totals, default=None),
                "partitions": [["+".join(g) for g in groups] for groups in draws],
            }
        )
    return all_task, rows


def _noise(store: Any, result: Any) -> dict[str, Any]:
    """Per seed, the all-task network's and the independent singles' test totals, and their spread."""
    records = store.get_trainings([t.key for t in result.provenance.trainings])
    by_seed: dict[int, dict[str, float]] = {}
    n = len(result.tasks)
    for t in result.provenance.trainings:
        record = records[t.key]
        if record.result is None or t.capacity != FULL:
            continue
        totals = by_seed.setdefault(t.seed, {"all_task": 0.0, "singles": 0.0})
        totals["all_task" if len(t.tasks) == n else "singles"] += math.fsum(record.result.scoring.values())
    out: dict[str, Any] = {"seeds": sorted(by_seed)}
    for what in ("all_task", "singles"):
        values = [v[what] for v in by_seed.values()]
        sd = statistics.stdev(values) if len(values) > 1 else None
        mean = statistics.fmean(values)
        out[what] = {"totals": values, "sd": sd, "sd_percent": None if sd is None else 100 * sd / mean}
    return out


def _job_cost(run: Any) -> dict[str, Any]:
    """A study job's trainings (run, reused), their training-seconds and the job's wall seconds."""
    p = run.result.provenance
    return {
        "trained": p.trained,
        "reused": p.reused,
        "training_seconds": round(p.training_seconds, 1),
        "wall_seconds": run.job_wall_seconds,
    }


def _hoa_part(store: Any, name: str, part: ManyPart, run: Any) -> dict[str, Any]:
    """The hoa job's figures: table size, trainings, search and finalize seconds, the finalized budgets."""
    result = run.result
    trainings = result.provenance.trainings
    finalize_keys = {k for f in result.finalized for k in f.trainings}
    n = len(part.tasks)
    return {
        "part": name,
        "dataset": part.dataset,
        "tasks": part.tasks,
        "training": part.training,
        "candidates_in_table": len(result.loss_table.rows),
        "all_subsets": 2**n - 1,
        "trainings": len(trainings),
        "training_seconds": round(math.fsum(t.wall_seconds or 0.0 for t in trainings), 1),
        "job_wall_seconds": run.job_wall_seconds,
        # what finalizing cost beside the search (issue 13): the finalize trainings' wall seconds from the
        # store (a chosen network the search had trained runs again once to keep its weights; the store keeps
        # its first result and time, which stands in for the second)
        "finalize_seconds": round(
            math.fsum(r.wall_seconds or 0.0 for r in store.get_trainings(sorted(finalize_keys)).values()), 1
        ),
        "search_seconds": round(
            math.fsum(t.wall_seconds or 0.0 for t in trainings if t.key not in finalize_keys), 1
        ),
        "finalized": _finalized(result),
        "known_pairs": _known(part, result),
    }


def run_part(name: str, args: argparse.Namespace) -> dict[str, Any]:
    part = PARTS[name]()
    if args.budgets:
        part.budgets = parse_budgets(args.budgets)
    store = open_study_store(args.db or f"sqlite:///{DEFAULT_DB}")
    hoa = _run(store, f"many-{name}-hoa", part.spec(), runs_dir=args.runs_dir)
    data = _hoa_part(store, name, part, hoa)
    partitions = random_partitions(part.tasks, part.budgets, part.draws)
    groups = {tuple(g) for draws in partitions.values() for p in draws for g in p if len(g) > 1}
    spec = part.groups_spec([part.tasks] + [list(g) for g in sorted(groups)])
    random_run = _run(store, f"many-{name}-random", spec, runs_dir=args.runs_dir)
    all_task, data["random"] = _random(random_run.result, partitions)
    data["jobs"] = {"hoa": _job_cost(hoa), "random": _job_cost(random_run)}
    n = len(part.tasks)
    data["baselines"] = {
        "all-task network (1 SNT)": all_task,
        f"independent singles ({n} SNT)": _singles(hoa.result, 1.0),
        f"independent half singles ({n / 2:g} SNT)": _singles(hoa.result, 0.5),
    }
    if part.partial_size is not None:
        job = f"many-{name}-partial{part.partial_size}"
        partial = _run(store, job, part.partial_spec(), runs_dir=args.runs_dir)
        data["partial"] = {"max_group_size": part.partial_size, "curve": _partial(partial.result)}
        data["jobs"]["partial"] = _job_cost(partial)
    if part.noise_seeds > 1:
        spec = part.groups_spec([part.tasks], seeds=part.noise_seeds)
        seeds = _run(store, f"many-{name}-seeds", spec, runs_dir=args.runs_dir)
        data["noise"] = _noise(store, seeds.result)
        data["jobs"]["seeds"] = _job_cost(seeds)
    return data


def _percent(value: float | None, against: float | None) -> str:
    """``value`` against ``against`` in percent (signed), or '-'."""
    gap = gap_percent(value, against)
    return "-" if gap is None else f"{gap:+.1f}%"


def _label_tasks(label: str, tasks: list[str]) -> list[str]:
    """A network label's tasks, the inverse of :meth:`grouping.candidates.Candidate.label`: comma-separated,
    one task, or one-letter task names concatenated."""
    body = label.removesuffix("@0.5")
    if "," in body:
        return body.split(",")
    return [body] if body in tasks else list(body)


def _networks_text(networks: list[str], all_tasks: list[str]) -> str:
    """The chosen networks, short: the all-task network named, large groups by their size."""
    out = []
    for label in networks:
        tasks = _label_tasks(label, all_tasks)
        half = " (half)" if label.endswith("@0.5") else ""
        if len(tasks) == len(all_tasks):
            out.append(f"all-task{half}")
        elif len(tasks) > 4:
            out.append(f"{len(tasks)}-task network{half}")
        else:
            out.append("{" + ", ".join(tasks) + "}" + half)
    return " + ".join(out)


def markdown_part(data: dict[str, Any]) -> str:
    """docs/study.md's table of a part: per budget the choice, its test total and its differences."""
    all_task = data["baselines"]["all-task network (1 SNT)"]
    random_rows = {r["budget"]: r for r in data.get("random", [])}
    partial = {r["budget"]: r["measured_test"] for r in data.get("partial", {}).get("curve", [])}
    lines = [
        "| budget (SNT) | chosen networks (HOA, finalized) | test total | vs all-task | vs random mean "
        "(random min..max) | vs partial check |",
        "|---|---|---|---|---|---|",
    ]
    for f in data["finalized"]:
        r = random_rows.get(f["budget"])
        spread = (
            "-"
            if r is None
            else f"{_percent(f['measured_test'], r['mean'])} ({r['min']:.4f}..{r['max']:.4f})"
        )
        lines.append(
            f"| {f['budget']:g} | {_networks_text(f['networks'], data['tasks'])} | "
            f"{fmt(f['measured_test'], '.4f')} | "
            f"{_percent(f['measured_test'], all_task)} | {spread} | "
            f"{_percent(f['measured_test'], partial.get(f['budget']))} |"
        )
    return "\n".join(lines)


def print_part(data: dict[str, Any]) -> None:
    print(
        f"\n{data['part']}: {len(data['tasks'])} tasks, {data['candidates_in_table']} candidates in the table"
        f" (of {data['all_subsets']} subsets), {data['trainings']} trainings, "
        f"{data['training_seconds']:.0f} training-seconds, job {data['job_wall_seconds']} s"
    )
    random_rows = {r["budget"]: r for r in data.get("random", [])}
    partial = {r["budget"]: r for r in data.get("partial", {}).get("curve", [])}
    print("  budget  measured test  predicted test  vs random mean (min..max)  vs partial  networks")
    for f in data["finalized"]:
        r = random_rows.get(f["budget"], {})
        spread = f"({fmt(r.get('min'), '.4f')}..{fmt(r.get('max'), '.4f')})" if r else ""
        against = partial.get(f["budget"], {}).get("measured_test")
        print(
            f"  {f['budget']:6g}  {fmt(f['measured_test']):>13}  {fmt(f['predicted_test']):>14}  "
            f"{_percent(f['measured_test'], r.get('mean')):>7} {spread:>18}  "
            f"{_percent(f['measured_test'], against):>10}  {' + '.join(f['networks'])}"
        )
    for budget, row in partial.items():
        print(
            f"  partial (groups <= {data['partial']['max_group_size']} tasks) {budget:g} SNT: "
            f"{fmt(row['measured_test'])}"
        )
    print(
        f"  search {data['search_seconds']:.0f} training-seconds, finalize {data['finalize_seconds']:.0f} "
        f"({data['finalize_seconds'] / max(data['search_seconds'], 1e-9):.2f}x the search)"
    )
    for name, value in data["baselines"].items():
        print(f"  baseline {name}: {fmt(value)}")
    noise = data.get("noise")
    if noise:
        for what in ("all_task", "singles"):
            print(
                f"  seed noise ({len(noise['seeds'])} seeds) {what}: "
                f"sd {fmt(noise[what]['sd_percent'], '.2f')}% of its test total"
            )
    for job, cost in data.get("jobs", {}).items():
        print(
            f"  job {job}: {cost['trained']} trained, {cost['reused']} reused, {cost['wall_seconds']} s wall"
        )
    for k in data["known_pairs"]:
        print(
            f"  known pair {'+'.join(k['pair'])}: gain {k['gain']:+.4f}, rank {k['rank']} of {k['of']}, "
            f"served together at {k['together_at'] or 'no budget'}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--part", required=True, choices=list(PARTS))
    parser.add_argument("--db", help=f"results store URL (default sqlite:///{DEFAULT_DB})")
    parser.add_argument("--budgets", help="budgets to choose and finalize (default: the part's)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="the study's docs folder")
    parser.add_argument("--runs-dir", type=Path, help="Ray Tune's experiment folders (default: product's)")
    parser.add_argument("--markdown", action="store_true", help="print the part from its JSON")
    args = parser.parse_args(argv)
    path = args.out / "study" / f"many-{args.part}.json"
    if args.markdown:
        data = json.loads(path.read_text())
        print_part(data)
        print()
        print(markdown_part(data))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    started = time.monotonic()
    data = run_part(args.part, args)
    data["script_seconds"] = round(time.monotonic() - started, 1)
    path.write_text(dump_json(data))
    print_part(data)
    print(f"\nwrote {path} ({data['script_seconds']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
