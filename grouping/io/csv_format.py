"""CSV loss tables: one row per candidate.

Columns: ``tasks`` (the network's tasks joined by ``|``, e.g. ``s|d|n``), ``capacity`` (1 = full size), then
one column per task holding the loss (EMPTY = the network has no head for that task), and an optional
``predicted`` column (``true``/``false``, empty = false) flagging rows predicted by HOA. The task columns'
order in the header is the table's task order. Redundancy is checked: a loss cell must be filled exactly for
the tasks listed in ``tasks``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any, ClassVar

from grouping.candidates import Candidate
from grouping.io.base import LoadedTables, LossTableError, format_loss, parse_loss
from grouping.table import LossTable, TableRow

RESERVED = ("tasks", "capacity", "predicted")
TASK_SEPARATOR = "|"
_TRUE = {"true", "1", "yes", "y"}
_FALSE = {"false", "0", "no", "n", ""}


class CsvFormat:
    """Read and write CSV loss tables (``.csv``)."""

    name: ClassVar[str] = "csv"
    extensions: ClassVar[tuple[str, ...]] = (".csv",)
    description: ClassVar[str] = "one row per candidate: tasks (s|d|n), capacity, one loss column per task"

    def loads(self, text: str, source: str, tasks: Sequence[str] | None = None) -> LoadedTables:
        reader = csv.reader(io.StringIO(text))
        header, names = _header(reader, source, tasks)
        col = {h: i for i, h in enumerate(header)}
        rows: list[TableRow] = []
        seen: dict[tuple[frozenset[str], float], int] = {}
        for record in reader:
            lineno = reader.line_num
            if not any(cell.strip() for cell in record):
                continue
            if len(record) != len(header):
                raise LossTableError(
                    source, lineno, f"expected {len(header)} columns (as in the header), found {len(record)}"
                )
            row = _row([c.strip() for c in record], col, names, source, lineno)
            key = (frozenset(row.candidate.tasks), row.candidate.capacity)
            if key in seen:
                raise LossTableError(
                    source,
                    lineno,
                    f"network {'|'.join(row.candidate.tasks)} at capacity {key[1]:g} appears twice "
                    f"(lines {seen[key]} and {lineno})",
                )
            seen[key] = lineno
            rows.append(row)
        table = LossTable(names, rows)
        uncovered = table.uncovered_tasks()
        if uncovered:
            raise LossTableError(
                source,
                None,
                f"task(s) {', '.join(uncovered)} have no loss on any row: no network trains them",
            )
        return LoadedTables(table)

    def dumps(self, table: LossTable, scoring: LossTable | None = None) -> str:
        if scoring is not None:
            raise ValueError("a CSV file holds one table: write the scoring table to its own file")
        clash = [t for t in table.tasks if t in RESERVED or TASK_SEPARATOR in t]
        if clash:
            raise ValueError(f"task names {clash} cannot be CSV columns (reserved names or containing '|')")
        with_flag = any(r.predicted for r in table.rows.values())
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["tasks", "capacity", *table.tasks, *(["predicted"] if with_flag else [])])
        for cand, row in table.rows.items():
            cells = [format_loss(row.losses[t]) if t in row.losses else "" for t in table.tasks]
            flag = [("true" if row.predicted else "false")] if with_flag else []
            writer.writerow([TASK_SEPARATOR.join(cand.tasks), f"{cand.capacity!r}", *cells, *flag])
        return out.getvalue()


def _header(reader: Any, source: str, tasks: Sequence[str] | None) -> tuple[list[str], tuple[str, ...]]:
    """The header's columns and the table's task names (``tasks`` renames them, in that order)."""
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise LossTableError(
            source, None, "the file is empty (expected a header: tasks,capacity,...)"
        ) from None
    for required in ("tasks", "capacity"):
        if required not in header:
            raise LossTableError(source, 1, f"the header has no {required!r} column")
    dups = sorted({h for h in header if header.count(h) > 1})
    if dups:
        raise LossTableError(source, 1, f"repeated header column(s): {', '.join(dups)}")
    task_cols = [h for h in header if h not in RESERVED]
    if not task_cols or not all(task_cols):
        raise LossTableError(source, 1, "the header needs one non-empty column name per task")
    if tasks is None:
        return header, tuple(task_cols)
    if sorted(tasks) != sorted(task_cols):
        raise LossTableError(
            source, 1, f"task names {list(tasks)} do not match the header's task columns {task_cols}"
        )
    return header, tuple(tasks)


def _members(
    cells: list[str], col: dict[str, int], names: tuple[str, ...], source: str, line: int
) -> list[str]:
    """The tasks of the row's network (its ``tasks`` cell), checked against the table's tasks."""
    members = [t.strip() for t in cells[col["tasks"]].split(TASK_SEPARATOR) if t.strip()]
    if not members:
        raise LossTableError(source, line, "the 'tasks' cell is empty (e.g. s|d|n)")
    unknown = [t for t in members if t not in col or t in RESERVED]
    if unknown:
        raise LossTableError(
            source, line, f"unknown task(s) {', '.join(unknown)} in 'tasks'; known: {', '.join(names)}"
        )
    if len(set(members)) != len(members):
        raise LossTableError(source, line, f"a task is repeated in 'tasks' ({'|'.join(members)})")
    return members


def _row(cells: list[str], col: dict[str, int], names: tuple[str, ...], source: str, line: int) -> TableRow:
    """One data line as a table row: its network, its capacity, its flag and one loss per task it trains."""
    members = _members(cells, col, names, source, line)
    cap_cell = cells[col["capacity"]]
    capacity = parse_loss(cap_cell, source, line, "capacity") if cap_cell else None
    if capacity is None or capacity <= 0:
        raise LossTableError(source, line, f"capacity must be a number > 0, got {cap_cell!r}")
    predicted = False
    if "predicted" in col:
        flag = cells[col["predicted"]].lower()
        if flag not in _TRUE | _FALSE:
            raise LossTableError(source, line, f"predicted must be true or false, got {flag!r}")
        predicted = flag in _TRUE
    losses: dict[str, float] = {}
    for task in names:
        cell = cells[col[task]]
        if task in members and not cell:
            raise LossTableError(source, line, f"task {task} is in 'tasks' but its loss cell is empty")
        if task not in members and cell:
            raise LossTableError(
                source, line, f"task {task} has a loss but is not in 'tasks' ({'|'.join(members)})"
            )
        if cell:
            losses[task] = parse_loss(cell, source, line, f"column {task}")
    return TableRow(Candidate(tuple(t for t in names if t in members), capacity), losses, predicted)


__all__ = ["CsvFormat"]
