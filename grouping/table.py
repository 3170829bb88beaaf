"""Loss tables: per-candidate per-task losses.

A loss table holds, for some candidates (networks), the loss of each of the candidate's own tasks. A job has
a ``selection`` table (validation losses, on which the grouping is chosen) and optionally a ``scoring`` table
(test losses, on which the chosen grouping is reported), as in Standley et al. (ICML 2020). Rows may be
missing: a candidate that was never trained is simply unavailable to the solver. A row may be *predicted*
rather than measured (the higher-order approximation, :mod:`grouping.hoa`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from grouping.candidates import Candidate


@dataclass(frozen=True)
class TableRow:
    """One row: a candidate, the loss of each of its tasks, and whether the losses were predicted (HOA)."""

    candidate: Candidate
    losses: Mapping[str, float]
    predicted: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "losses", MappingProxyType(dict(self.losses)))
        object.__setattr__(self, "predicted", bool(self.predicted))


@dataclass(frozen=True)
class TableArrays:
    """A table as numpy arrays, rows in table order: what the solver works on."""

    masks: np.ndarray  # (R,) int64 (object: Python ints beyond 62 tasks), bit i set = task i is in it
    capacities: np.ndarray  # (R,) float64
    losses: np.ndarray  # (R, n) float64, NaN where the candidate has no head for the task
    predicted: np.ndarray  # (R,) bool
    candidates: tuple[Candidate, ...] = field(default=())


class LossTable:
    """Ordered tasks plus rows ``Candidate -> per-task losses`` (only the candidate's own tasks).

    Candidates are normalised to the table's task order. Raises ``ValueError`` (naming the row and the task)
    for unknown tasks, duplicate rows, a missing or extra loss, or a NaN/infinite loss. Losses may be any
    finite float (negative log-likelihoods are fine). A task no row covers is allowed here (a partial table,
    e.g. while trainings are still running); :meth:`uncovered_tasks` lists them and the solver rejects them.
    """

    def __init__(self, tasks: Sequence[str], rows: Iterable[TableRow] = ()) -> None:
        tasks = tuple(tasks)
        if not tasks:
            raise ValueError("a loss table needs at least one task")
        for task in tasks:
            if not isinstance(task, str) or not task:
                raise ValueError(f"task names must be non-empty strings, got {task!r}")
        if len(set(tasks)) != len(tasks):
            dup = sorted({t for t in tasks if tasks.count(t) > 1})
            raise ValueError(f"task names must be distinct; repeated: {', '.join(dup)}")
        self._tasks = tasks
        self._index = {t: i for i, t in enumerate(tasks)}
        self._rows: dict[Candidate, TableRow] = {}
        for row in rows:
            self._add(row)

    # -- construction -------------------------------------------------------------------------------------
    @classmethod
    def from_losses(
        cls,
        tasks: Sequence[str],
        losses: Mapping[Candidate, Mapping[str, float]],
        predicted: Iterable[Candidate] = (),
    ) -> LossTable:
        """Build a table from ``{candidate: {task: loss}}``; candidates in ``predicted`` are flagged."""
        flagged = set(predicted)
        return cls(tasks, (TableRow(c, values, c in flagged) for c, values in losses.items()))

    def candidate(self, tasks: Iterable[str], capacity: float = 1.0) -> Candidate:
        """The candidate of these tasks (any order, must be table tasks) at ``capacity``, in table order."""
        names = list(tasks)
        unknown = [t for t in names if t not in self._index]
        if unknown:
            raise ValueError(
                f"unknown task(s) {', '.join(map(repr, unknown))}; "
                f"the table's tasks are {', '.join(self._tasks)}"
            )
        return Candidate(tuple(sorted(names, key=self._index.__getitem__)), capacity)

    def _add(self, row: TableRow) -> None:
        cand = self.candidate(row.candidate.tasks, row.candidate.capacity)
        if cand in self._rows:
            raise ValueError(f"duplicate row for candidate {cand.label()}")
        own = set(cand.tasks)
        extra = [t for t in row.losses if t not in own]
        if extra:
            raise ValueError(
                f"row {cand.label()} has a loss for task(s) {', '.join(map(str, extra))} it does not train "
                "(a candidate has losses only for its own tasks)"
            )
        clean: dict[str, float] = {}
        for task in cand.tasks:
            if task not in row.losses:
                raise ValueError(f"row {cand.label()} has no loss for its task {task!r}")
            value = row.losses[task]
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise ValueError(
                    f"row {cand.label()}, task {task!r}: loss {value!r} is not a number"
                ) from None
            if not math.isfinite(number):
                raise ValueError(
                    f"row {cand.label()}, task {task!r}: loss is {number} (losses must be finite numbers)"
                )
            clean[task] = number
        self._rows[cand] = TableRow(cand, clean, row.predicted)

    # -- access -------------------------------------------------------------------------------------------
    @property
    def tasks(self) -> tuple[str, ...]:
        return self._tasks

    @property
    def n_tasks(self) -> int:
        return len(self._tasks)

    def task_index(self, task: str) -> int:
        try:
            return self._index[task]
        except KeyError:
            raise ValueError(
                f"unknown task {task!r}; the table's tasks are {', '.join(self._tasks)}"
            ) from None

    @property
    def rows(self) -> Mapping[Candidate, TableRow]:
        return MappingProxyType(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[Candidate]:
        return iter(self._rows)

    def __contains__(self, candidate: object) -> bool:
        return candidate in self._rows

    def __getitem__(self, candidate: Candidate) -> TableRow:
        return self._rows[candidate]

    def get(self, candidate: Candidate) -> TableRow | None:
        return self._rows.get(candidate)

    def loss(self, candidate: Candidate, task: str) -> float:
        """Loss of ``task`` in network ``candidate`` (KeyError if the row or head is absent)."""
        return self._rows[candidate].losses[task]

    @property
    def capacities(self) -> tuple[float, ...]:
        """The distinct capacities of the rows, ascending."""
        return tuple(sorted({c.capacity for c in self._rows}))

    def uncovered_tasks(self) -> list[str]:
        """Tasks that no row trains (the solver cannot serve them)."""
        covered = {t for c in self._rows for t in c.tasks}
        return [t for t in self._tasks if t not in covered]

    def single_task_losses(self, task: str) -> dict[Candidate, float]:
        """Loss of ``task`` in each of its single-task networks (every capacity present)."""
        return {c: r.losses[task] for c, r in self._rows.items() if c.tasks == (task,)}

    def select(
        self, keep: Iterable[Candidate] | None = None, *, predicate: Callable[[TableRow], bool] | None = None
    ) -> LossTable:
        """A new table with the rows of ``keep`` (in this table's order) or those where ``predicate(row)``."""
        if keep is not None:
            wanted = set(keep)
            rows = [r for c, r in self._rows.items() if c in wanted]
        else:
            rows = [r for r in self._rows.values() if predicate is None or predicate(r)]
        return LossTable(self._tasks, rows)

    def sorted(self) -> LossTable:
        """The same rows ordered by capacity, size, then task index (the paper's file order)."""
        return LossTable(self._tasks, sorted(self._rows.values(), key=lambda r: self.order_key(r.candidate)))

    def order_key(self, candidate: Candidate) -> tuple[float, int, tuple[int, ...]]:
        """Paper order of a candidate: half singles first, then by size, then by task indices."""
        idx = tuple(self._index[t] for t in candidate.tasks)
        return (-1.0 if candidate.capacity < 1.0 and len(idx) == 1 else candidate.capacity, len(idx), idx)

    def mask(self, candidate: Candidate) -> int:
        """Bit mask of a candidate's tasks (bit i = table task i)."""
        out = 0
        for t in candidate.tasks:
            out |= 1 << self.task_index(t)
        return out

    def arrays(self) -> TableArrays:
        """Numpy view of the table (rows in table order)."""
        n = len(self._tasks)
        cands = tuple(self._rows)
        # bit masks fit int64 up to 62 tasks (the DP takes at most 20); beyond, exact Python integers
        masks = np.array([self.mask(c) for c in cands], dtype=np.int64 if n <= 62 else object)
        caps = np.array([c.capacity for c in cands], dtype=np.float64)
        losses = np.full((len(cands), n), np.nan)
        for r, c in enumerate(cands):
            for t, v in self._rows[c].losses.items():
                losses[r, self._index[t]] = v
        predicted = np.array([self._rows[c].predicted for c in cands], dtype=bool)
        return TableArrays(masks, caps, losses, predicted, cands)

    # -- comparison ---------------------------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LossTable):
            return NotImplemented
        return self._tasks == other._tasks and {
            c: (dict(r.losses), r.predicted) for c, r in self._rows.items()
        } == {c: (dict(r.losses), r.predicted) for c, r in other._rows.items()}

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"LossTable(tasks={list(self._tasks)}, rows={len(self._rows)})"


__all__ = ["LossTable", "TableArrays", "TableRow"]
