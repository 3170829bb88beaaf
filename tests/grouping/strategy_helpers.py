"""Shared helpers of the strategy tests: a table every candidate of which can be "trained"."""

from __future__ import annotations

import math
from collections.abc import Mapping
from itertools import combinations

from grouping.candidates import Candidate
from grouping.strategies import Measurement, Problem, TrainingRequest
from grouping.table import LossTable, TableRow


class TableTrainer:
    """``measure(request)`` reveals a row of ``tables[fidelity]`` (selection) and of ``scoring`` at full
    fidelity; ``seed_shift`` multiplies every loss of seed s by ``1 + seed_shift * s`` (a known seed effect);
    counts what it revealed."""

    def __init__(
        self,
        tables: Mapping[float, LossTable],
        scoring: LossTable | None = None,
        seed_shift: float = 0.0,
        seconds: float | None = None,
    ) -> None:
        self.tables = tables
        self.scoring = scoring
        self.seed_shift = seed_shift
        self.seconds = seconds
        self.revealed: list[TrainingRequest] = []

    def measure(self, request: TrainingRequest) -> Measurement:
        self.revealed.append(request)
        table = self.tables[request.fidelity]
        cand = request.candidate
        factor = 1.0 + self.seed_shift * request.seed
        scoring = None
        if self.scoring is not None and request.fidelity == 1.0:
            scoring = {t: v * factor for t, v in self.scoring[cand].losses.items()}
        return Measurement(
            request=request,
            selection={t: v * factor for t, v in table[cand].losses.items()},
            scoring=scoring,
            wall_seconds=self.seconds,
        )


def planted_table(
    groups: tuple[tuple[str, ...], ...] = (("a1", "a2", "a3"), ("b1", "b2")),
    loner: str = "c",
    help_: float = 0.08,
    hurt: float = 0.12,
    half_penalty: float = 0.1,
) -> tuple[Problem, LossTable]:
    """Tasks in ``groups`` lower each other's loss by ``help_`` (log units, mean over partners, as HOA
    assumes); a partner from another group or ``loner`` raises it by ``hurt``; every single's loss is 1 and a
    half-size single's ``exp(half_penalty)``. The best grouping at budget ``len(groups) + 1`` is then the
    groups plus the loner alone, by construction."""
    tasks = (*(t for g in groups for t in g), loner)
    home = {t: i for i, g in enumerate(groups) for t in g}
    rows = [TableRow(Candidate((t,), 0.5), {t: math.exp(half_penalty)}) for t in tasks]
    for size in range(1, len(tasks) + 1):
        for group in combinations(tasks, size):
            losses = {}
            for t in group:
                partners = [b for b in group if b != t]
                if not partners:
                    losses[t] = 1.0
                    continue
                effect = [
                    -help_ if t in home and b in home and home[t] == home[b] else hurt for b in partners
                ]
                losses[t] = math.exp(sum(effect) / len(effect))
            rows.append(TableRow(Candidate(group), losses))
    return Problem(tasks=tasks), LossTable(tasks, rows)


def low_fidelity(table: LossTable, offset: float = 0.7, shrink: float = 0.5) -> LossTable:
    """An early-stopped view: every log loss raised by ``offset`` and its sharing effect shrunk."""
    rows = []
    for cand in table:
        row = table[cand]
        losses = {}
        for t, v in row.losses.items():
            single = table.loss(Candidate((t,), cand.capacity if cand.size == 1 else 1.0), t)
            losses[t] = math.exp(offset + math.log(single) + shrink * (math.log(v) - math.log(single)))
        rows.append(TableRow(cand, losses))
    return LossTable(table.tasks, rows)
