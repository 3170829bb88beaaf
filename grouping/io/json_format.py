"""JSON loss tables, in the schema of :class:`grouping.schema.LossTableModel` (see ``docs/loss-tables.md``).

A JSON file may carry a scoring table next to the selection table (key ``scoring``). Syntax errors name the
line; schema errors name the JSON path of the offending entry (e.g. ``rows[3].losses.s``), JSON having no
line structure worth reporting once parsed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import ClassVar

from pydantic import ValidationError

from grouping.io.base import LoadedTables, LossTableError
from grouping.schema import LossTableModel
from grouping.table import LossTable
from grouping.validation import format_validation_error


class JsonFormat:
    """Read and write JSON loss tables (``.json``)."""

    name: ClassVar[str] = "json"
    extensions: ClassVar[tuple[str, ...]] = (".json",)
    description: ClassVar[str] = (
        "the documented JSON schema (LossTableModel), optionally with a scoring table"
    )

    def loads(self, text: str, source: str, tasks: Sequence[str] | None = None) -> LoadedTables:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise LossTableError(
                source, exc.lineno, f"invalid JSON: {exc.msg} (column {exc.colno})"
            ) from None
        if tasks is not None and isinstance(data, dict):
            given = list(tasks)
            if sorted(given) != sorted(data.get("tasks") or []):
                raise LossTableError(source, None, f"task names {given} do not match the file's tasks")
            data = {**data, "tasks": given}
        try:
            model = LossTableModel.model_validate(data)
        except ValidationError as exc:
            raise LossTableError(source, None, format_validation_error(exc)) from None
        return LoadedTables(model.selection_table(), model.scoring_table())

    def dumps(self, table: LossTable, scoring: LossTable | None = None) -> str:
        model = LossTableModel.from_tables(table, scoring)
        return model.model_dump_json(indent=2, exclude_none=True) + "\n"


__all__ = ["JsonFormat"]
