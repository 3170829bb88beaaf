"""Replay any strategy offline on a table where every candidate was measured (issue 11).

    .venv/bin/python bench/replay.py                    # every strategy on every table, the summary table
    .venv/bin/python bench/replay.py --rounds sarcos    # also print the adaptive strategy's rounds there
    .venv/bin/python bench/replay.py --tune             # the settings grid of the adaptive strategy

A strategy (``grouping.strategies``) is driven exactly as the real search drives it, round after round, by
``grouping.strategies.drive``; "training" a request reveals the table's row for it (selection and scoring
losses, wall seconds). Nothing about the strategy lives here. Its final prediction picks a grouping per
budget (on its own selection table), which is scored as the study scores every method (docs/study.md,
Standley et al. section 5): on the ground truth's *test* losses, each task served by the network the method
would serve it with; gap = ``grouping.evaluation.gap_percent`` to the optimal grouping.

Tables:
* the paper's four settings (``../shared/data/standley``): ``results*.txt`` selection, ``*_test.txt``
  scoring, and the ESA files (``results_20.txt``, ``results_large_20.txt``, ``results_small_data_at4.txt``,
  ``results_alt_20.txt``) as the low-fidelity rows, taken as fidelity 0.2 (``at4`` included: the paper calls
  them all its early-stopping approximation). One seed. The files carry no wall times: a training costs
  ``capacity x fidelity`` units and the compute share is in those units.
* the three trained study parts (``docs/study/<part>.json``): every network of every exhaustive seed at
  fidelity 1.0 and of seed 0 at fidelities 0.2 and 0.1, each with its measured wall seconds; the truth is the
  mean over the seeds (taskonomy2: its one seed); the compute share is in seconds, of exhaustive seed 0.

No table has lookahead affinities, so TAG prints ``n/a`` (no affinity is invented). A strategy is told what a
table offers (its low fidelities and seeds) through its options; asking for anything else is an error.
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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grouping import LossTable, LossTableModel, budget_curve, read_loss_table  # noqa: E402
from grouping.evaluation import gap_percent  # noqa: E402
from grouping.noise import indistinguishable_per_budget  # noqa: E402
from grouping.strategies import (  # noqa: E402
    Measurement,
    Problem,
    Round,
    Strategy,
    TrainingFailed,
    TrainingRequest,
    drive,
    make_strategy,
)

log = logging.getLogger("replay")
SHARED = Path(os.environ.get("TASKGROUP_SHARED_DATA", ROOT.parent / "shared" / "data"))
STUDY = ROOT / "docs" / "study"
PAPER_LOW_FIDELITY = 0.2
RowKey = tuple[tuple[str, ...], float, float, int]


class NotInTable(KeyError):
    """A strategy asked for a training the table does not have (a fidelity, seed or lookahead it lacks)."""


@dataclass(frozen=True)
class Row:
    selection: dict[str, float]
    scoring: dict[str, float] | None
    seconds: float | None


@dataclass
class ReplayTable:
    """Every measured training of one table, the ground truth, and what one exhaustive seed cost."""

    name: str
    tasks: tuple[str, ...]
    rows: dict[RowKey, Row]
    truth_selection: LossTable
    truth_scoring: LossTable
    unit: str  # "s" (wall seconds) or "units" (capacity x fidelity)
    noise_floor: tuple[float, ...] = ()  # mean gaps of one-seed exhaustive choices, where several seeds exist
    tuning: bool = False  # used to choose the adaptive strategy's settings
    exhaustive_cost: float = field(init=False)

    def __post_init__(self) -> None:
        self.exhaustive_cost = math.fsum(self.cost(k) for k in self.rows if k[2] == 1.0 and k[3] == 0)

    @property
    def seeds(self) -> int:
        return len({k[3] for k in self.rows if k[2] == 1.0})

    @property
    def low_fidelities(self) -> tuple[float, ...]:
        return tuple(sorted({k[2] for k in self.rows if k[2] < 1.0}))

    def cost(self, key: RowKey) -> float:
        row = self.rows[key]
        if self.unit == "s":
            assert row.seconds is not None
            return row.seconds
        return key[1] * key[2]

    def measure(self, request: TrainingRequest) -> Measurement:
        """Reveal the row of ``request`` (NotInTable if the table lacks it)."""
        key: RowKey = (tuple(request.tasks), request.capacity, request.fidelity, request.seed)
        if request.lookahead:
            raise NotInTable(f"{self.name}: no lookahead affinities in this table ({request.label()})")
        if key not in self.rows:
            if any(k[2:] == key[2:] for k in self.rows):  # the source lacks this one network (paper 4's ESA)
                raise TrainingFailed(f"{self.name}: the source has no row {request.label()}")
            raise NotInTable(f"{self.name}: no training {request.label()} in this table")
        row = self.rows[key]
        return Measurement(
            request=request,
            selection=row.selection,
            scoring=row.scoring,
            wall_seconds=row.seconds,
        )

    def problem(self) -> Problem:
        return Problem(tasks=self.tasks)


# ----------------------------------------------------------------------------------------------- loading
STANDLEY = {
    "paper 1 base": ("results.txt", "results_test.txt", "results_20.txt"),
    "paper 2 larger encoder": ("results_large.txt", "results_large_test.txt", "results_large_20.txt"),
    "paper 3 less data": (
        "results_small_data.txt",
        "results_small_data_test.txt",
        "results_small_data_at4.txt",
    ),
    "paper 4 task set 2": ("results_alt.txt", "results_alt_test.txt", "results_alt_20.txt"),
}


def _rows(
    table: LossTable,
    scoring: LossTable | None,
    fidelity: float,
    seed: int,
    seconds: Mapping[tuple[tuple[str, ...], float], float] | None = None,
) -> dict[RowKey, Row]:
    out = {}
    for cand in table:
        key = (cand.tasks, cand.capacity)
        out[(cand.tasks, cand.capacity, fidelity, seed)] = Row(
            dict(table[cand].losses),
            None if scoring is None or cand not in scoring else dict(scoring[cand].losses),
            None if seconds is None else seconds[key],
        )
    return out


def standley_tables(folder: Path = SHARED / "standley") -> list[ReplayTable]:
    """The paper's four settings (one seed; ESA rows at fidelity 0.2; costs in units)."""
    out = []
    for name, (sel, test, esa) in STANDLEY.items():
        selection = read_loss_table(folder / sel)
        scoring = read_loss_table(folder / test)
        rows = _rows(selection, scoring, 1.0, 0)
        rows.update(_rows(read_loss_table(folder / esa), None, PAPER_LOW_FIDELITY, 0))
        out.append(ReplayTable(name, selection.tasks, rows, selection, scoring, "units", tuning=True))
    return out


def study_table(part: str, folder: Path = STUDY, tuning: bool = False) -> ReplayTable:
    """A trained study part: each exhaustive seed at fidelity 1, seed 0 at its ESA fidelities; seconds."""
    data = json.loads((folder / f"{part}.json").read_text())
    tables = {
        name: (m.selection_table(), m.scoring_table())
        for name, m in ((k, LossTableModel.model_validate(v)) for k, v in data["loss_tables"].items())
    }
    rows: dict[RowKey, Row] = {}
    for name, trainings in data["trainings"].items():
        if name.startswith("exhaustive seed "):
            fidelity = 1.0
        elif name.startswith("esa "):
            fidelity = float(name.removeprefix("esa "))
        else:
            continue
        seconds: dict[int, dict[tuple[tuple[str, ...], float], float]] = {}
        for t in trainings:
            seconds.setdefault(t["seed"], {})[(tuple(t["tasks"]), float(t["capacity"]))] = t["wall_seconds"]
        (seed,) = seconds
        selection, scoring = tables[name]
        rows.update(_rows(selection, scoring, fidelity, seed, seconds[seed]))
    truth = tables.get("exhaustive", tables["exhaustive seed 0"])
    floor = tuple(v["mean_gap_percent"] for v in (data.get("one_seed_choice") or {}).values())
    assert truth[1] is not None
    return ReplayTable(part, tuple(data["tasks"]), rows, truth[0], truth[1], "s", floor, tuning)


TUNING_PART = "sarcos"
"""The one study part on which (with the paper's four settings) the adaptive settings were chosen."""


def all_tables() -> list[ReplayTable]:
    out = standley_tables() if (SHARED / "standley").is_dir() else []
    for part in ("taskonomy1", "taskonomy2", "sarcos"):
        if (STUDY / f"{part}.json").is_file():
            out.append(study_table(part, tuning=part == TUNING_PART))
    return out


# ------------------------------------------------------------------------------------------------ replay
@dataclass
class Outcome:
    """What a strategy did on a table and how good its choice is."""

    strategy: str
    table: str
    gaps: dict[float, float | None]
    share: float
    trainings: int
    rounds: list[Round]
    seconds: float  # wall time of the replay itself
    choices: dict[float, list[str]] = field(default_factory=dict)

    @property
    def mean_gap(self) -> float | None:
        known = [g for g in self.gaps.values() if g is not None]
        return statistics.fmean(known) if known else None

    @property
    def max_gap(self) -> float | None:
        known = [g for g in self.gaps.values() if g is not None]
        return max(known) if known else None


def optimal_totals(table: ReplayTable, budgets: Sequence[float]) -> dict[float, float | None]:
    curve = budget_curve(table.truth_selection, budgets=budgets, scoring=table.truth_scoring)
    return {g.budget: g.scoring_total for g in curve.curve}


def replay(strategy: Strategy, table: ReplayTable, label: str | None = None) -> Outcome:
    """Drive ``strategy`` on ``table`` to its end, then score its choice on the truth (module doc)."""
    started = time.monotonic()
    history = drive(strategy, table.measure)
    measured = [m for _, ms in history for m in ms]
    prediction = strategy.predict(measured)
    problem = strategy.problem
    curve = prediction.curve(problem, scoring=table.truth_scoring)  # the choice, totalled on the truth
    optimal = optimal_totals(table, problem.effective_budgets())
    gaps = {g.budget: gap_percent(g.scoring_total, optimal[g.budget]) for g in curve.curve}
    keys = {
        (tuple(m.request.tasks), m.request.capacity, m.request.fidelity, m.request.seed) for m in measured
    }
    share = math.fsum(table.cost(k) for k in keys) / table.exhaustive_cost
    return Outcome(
        strategy=label or strategy.name,
        table=table.name,
        gaps=gaps,
        share=share,
        trainings=len(keys),
        rounds=[r for r, _ in history],
        seconds=time.monotonic() - started,
        choices={g.budget: [n.label for n in g.networks] for g in curve.curve},
    )


ADAPTIVE_SETTINGS: dict[str, Any] = {}
"""The adaptive strategy's settings used for the report: its defaults (chosen with ``--tune``)."""


def adaptive_options(table: ReplayTable, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings, told what the table offers: its lowest low fidelity at least the asked one (the paper's
    files have only 0.2) and, with seeds='auto', at most the seeds it has."""
    options = dict(settings)
    wanted = options.get("low_fidelity", 0.1)
    lows = table.low_fidelities
    if lows and wanted not in lows:
        options["low_fidelity"] = min((f for f in lows if f >= wanted), default=max(lows))
    options["max_seeds"] = min(options.get("max_seeds", 3), table.seeds)
    return options


MethodFactory = Callable[[ReplayTable], Strategy | str]
"""A method of the report: a strategy for a table, or the text to print where it does not apply."""


COMPUTE_SWEEP = (0.10, 0.25, 0.50)
"""Other compute caps F at which the adaptive strategy is also replayed (the gap-versus-compute view)."""


def methods(
    settings: Mapping[str, Any] | None = None, sweep: Sequence[float] = COMPUTE_SWEEP
) -> dict[str, MethodFactory]:
    """The report's methods: the paper's approximations, TAG, adaptive at its defaults (F = 0.15), with
    ``seeds="auto"`` where a table has several seeds, and at the other caps of ``sweep``."""
    chosen = dict(ADAPTIVE_SETTINGS if settings is None else settings)

    def esa(fidelity: float) -> MethodFactory:
        def make(t: ReplayTable) -> Strategy | str:
            if fidelity not in t.low_fidelities:
                return f"n/a: no fidelity {fidelity:g} rows"
            return make_strategy("esa", t.problem(), {"fidelity": fidelity})

        return make

    def tag(t: ReplayTable) -> Strategy | str:
        return "n/a: no lookahead affinities"

    def adaptive(**extra: Any) -> MethodFactory:
        def make(t: ReplayTable) -> Strategy | str:
            if extra.get("seeds") == "auto" and t.seeds < 2:
                return "n/a: one seed"
            try:
                return make_strategy("adaptive", t.problem(), adaptive_options(t, {**chosen, **extra}))
            except ValueError as exc:  # a cap below the start round's cost (the paper's files: fidelity 0.2)
                return f"n/a: {str(exc).split(':')[0]}"

        return make

    out: dict[str, MethodFactory] = {
        "exhaustive (1 seed)": lambda t: make_strategy("exhaustive", t.problem()),
        "hoa": lambda t: make_strategy("hoa", t.problem()),
        "esa 0.2": esa(0.2),
        "esa 0.1": esa(0.1),
        "tag": tag,
        "adaptive": adaptive(),
        "adaptive seeds=auto": adaptive(seeds="auto"),
    }
    for cap in sweep:
        out[f"adaptive F={cap:g}"] = adaptive(max_compute=cap)
    return out


def run_all(
    tables: Iterable[ReplayTable], chosen: Mapping[str, MethodFactory]
) -> dict[tuple[str, str], Outcome | str]:
    out: dict[tuple[str, str], Outcome | str] = {}
    for table in tables:
        for name, make in chosen.items():
            strategy = make(table)
            out[(name, table.name)] = strategy if isinstance(strategy, str) else replay(strategy, table, name)
            log.info("%s on %s: %s", name, table.name, _cell(out[(name, table.name)]))
    return out


def _cell(outcome: Outcome | str) -> str:
    if isinstance(outcome, str):
        return outcome
    return f"{outcome.mean_gap:.2f} / {outcome.max_gap:.2f} @ {outcome.share:.3f}"


def print_report(tables: Sequence[ReplayTable], results: Mapping[tuple[str, str], Outcome | str]) -> None:
    names = list(dict.fromkeys(k[0] for k in results))
    print("\nmean gap % / max gap % over the budgets @ compute share of one exhaustive seed")
    print("(gap: the choice's total on the truth's test losses vs the optimal grouping's; compute in wall")
    print(
        " seconds for the study parts, in capacity x fidelity units for the paper's files, which have none)\n"
    )
    header = (
        f"| {'strategy':<20} | " + " | ".join(f"{t.name}{' *' if t.tuning else ''}" for t in tables) + " |"
    )
    print(header)
    print("|" + "---|" * (len(tables) + 1))
    for name in names:
        cells = [_cell(results[(name, t.name)]) for t in tables]
        print(f"| {name:<20} | " + " | ".join(cells) + " |")
    floors = [
        f"{t.name} {min(t.noise_floor):.2f}-{max(t.noise_floor):.2f}% "
        f"(mean {statistics.fmean(t.noise_floor):.2f}%)"
        for t in tables
        if t.noise_floor
    ]
    print("\n* = a table on which the adaptive settings were chosen; the others were not used for it.")
    if floors:
        print("noise floor (one-seed exhaustive choice on the mean-of-seeds truth): " + "; ".join(floors))


def print_rounds(outcome: Outcome) -> None:
    rounds, trainings = len(outcome.rounds), outcome.trainings
    print(f"\n{outcome.strategy} on {outcome.table}: {rounds} rounds, {trainings} trainings")
    for r in outcome.rounds:
        print(f"  {r.why}" if r.why.startswith("round") else f"  round {r.index}: {r.why}")
    for budget, labels in outcome.choices.items():
        gap = outcome.gaps[budget]
        print(f"  {budget:g} SNT: {' + '.join(labels)}  (gap {gap:+.2f}%)" if gap is not None else "")


# --------------------------------------------------------------------------------------------------- noise
def print_noise(table: ReplayTable) -> None:
    """The exhaustive search with every seed the table has: per budget, the runner-ups within seed noise
    of its choice (``grouping.noise``), as a job result's ``indistinguishable_from``."""
    problem = table.problem().model_copy(update={"seeds": table.seeds})
    strategy = make_strategy("exhaustive", problem)
    measured = [m for _, ms in drive(strategy, table.measure) for m in ms]
    prediction = strategy.predict(measured)
    curve = prediction.curve(problem)
    # the totals are of means over the seeds: the spread that enters them is the seed sd / sqrt(seeds)
    root = math.sqrt(table.seeds)
    spread = {c.label(): {t: sd / root for t, sd in v.items()} for c, v in prediction.seed_spread.items()}
    found = indistinguishable_per_budget(curve, prediction.selection, spread)
    print(
        f"\n{table.name}: exhaustive, mean of {table.seeds} seeds; runner-ups within the spread of that mean"
    )
    for grouping in curve.curve:
        close = found[grouping.budget]
        names = "; ".join(f"{' + '.join(r.networks)} ({r.difference:+.4f} +- {r.spread:.4f})" for r in close)
        choice = " + ".join(n.label for n in grouping.networks)
        print(f"  {grouping.budget:g} SNT: {choice} ({grouping.selection_total:.4f}); {names or 'none'}")


# -------------------------------------------------------------------------------------------------- tuning
TUNING_GRID: list[dict[str, Any]] = [
    {},  # the defaults: start "pairs", low_fidelity 0.1, anchor, 128 draws, calibration "both", median
    {"low_fidelity": 0.2},
    {"start": "singles"},
    {"start": "anchor"},
    {"anchor": False},
    {"samples": 32},
    {"batch": 4},
    {"calibration": "up"},
    {"calibration": "off"},
    {"explore_low": True},
    {"point": "mean"},
    {"prior": {"fidelity_sd": 0.15}},
    {"prior": {"sharing_sd": 0.5, "size_sd": 0.2, "capacity_sd": 0.15}},
]
"""The settings ``--tune`` compares (each a change from the defaults), on the tuning tables only."""

TUNING_SEEDS = 3
"""Random seeds (of the posterior draws) each setting is replayed with; the mean gap is their mean."""


def tune(tables: Sequence[ReplayTable], grid: Sequence[Mapping[str, Any]], seeds: int = TUNING_SEEDS) -> None:
    """Print each setting's mean gap (over random seeds) and largest compute share on the tuning tables."""
    tuning = [t for t in tables if t.tuning]
    print(f"tuning on: {', '.join(t.name for t in tuning)}; {seeds} random seeds each", flush=True)
    for settings in grid:
        cells, means, shares = [], [], []
        for t in tuning:
            runs = [
                replay(
                    make_strategy(
                        "adaptive", t.problem(), adaptive_options(t, {**settings, "random_seed": r})
                    ),
                    t,
                )
                for r in range(seeds)
            ]
            gap = statistics.fmean(o.mean_gap for o in runs if o.mean_gap is not None)
            means.append(gap)
            shares.append(max(o.share for o in runs))
            cells.append(f"{t.name}: {gap:.2f}")
        print(
            f"{json.dumps(settings):<70} mean {statistics.fmean(means):.2f}%  max share {max(shares):.3f}  "
            + "  ".join(cells),
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", nargs="*", default=[], help="print the adaptive rounds on these tables")
    parser.add_argument(
        "--tune", action="store_true", help="run the adaptive settings grid on the tuning tables"
    )
    parser.add_argument("--tables", nargs="*", help="only these tables (names as printed)")
    parser.add_argument(
        "--noise", action="store_true", help="print the runner-ups within seed noise where a table has seeds"
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(name)s %(message)s"
    )
    tables = all_tables()
    if args.tables:
        tables = [t for t in tables if t.name in args.tables]
    if not tables:
        raise SystemExit(f"no tables found (shared data at {SHARED}, study JSON at {STUDY})")
    if args.tune:
        tune(tables, TUNING_GRID)
        return 0
    if args.noise:
        for table in tables:
            if table.seeds > 1:
                print_noise(table)
        return 0
    started = time.monotonic()
    results = run_all(tables, methods())
    print_report(tables, results)
    for name in args.rounds:
        outcome = results.get(("adaptive", name))
        if isinstance(outcome, Outcome):
            print_rounds(outcome)
    print(f"\nreplayed in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
