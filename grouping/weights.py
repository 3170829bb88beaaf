"""The one weight grammar: per-task weights of the objective, as every face reads them.

Weights are given as a mapping ``{task: weight}``, as text ``s=2,d=1``, or as a JSON object in text
(``{"s": 2, "d": 1}``). :func:`parse_weights` returns ``{task: float}`` (or None for "no weights") or raises a
``ValueError`` whose message starts with ``weights:``. Whether the tasks exist is checked where the tasks are
known (:func:`grouping.objective.check_weights`, and the job spec).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

WeightsInput = str | Mapping[str, float | int | str] | None


def _pairs(text: str) -> list[tuple[str, object]]:
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON: {exc.msg} at character {exc.pos}") from None
        if not isinstance(data, dict):
            raise ValueError("expected TASK=WEIGHT pairs like s=2,d=1 or a JSON object {task: weight}")
        return list(data.items())
    pairs: list[tuple[str, object]] = []
    for part in text.split(","):
        if not part.strip():
            continue
        name, sep, number = part.partition("=")
        if not sep or not name.strip():
            raise ValueError(
                f"expected TASK=WEIGHT pairs like s=2,d=1 or a JSON object, got {part.strip()!r}"
            )
        pairs.append((name.strip(), number.strip()))
    return pairs


def _weight(task: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"the weight of {task!r} must be a number, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"the weight of {task!r} must be a number, got {value!r}") from None
    if not (math.isfinite(number) and number >= 0):
        raise ValueError(f"the weight of {task!r} must be a finite number >= 0, got {value!r}")
    return number


def parse_weights(value: WeightsInput) -> dict[str, float] | None:
    """``{task: weight}`` from a mapping or text (see the module doc); None for None or blank text."""
    try:
        if value is None:
            return None
        if isinstance(value, str):
            text = value.strip()
            if not text:
                return None
            pairs = _pairs(text)
        elif isinstance(value, Mapping):
            pairs = list(value.items())
        else:
            raise ValueError(f"expected {{task: weight}} or text like s=2,d=1, got {value!r}")
        out: dict[str, float] = {}
        for task, number in pairs:
            if not isinstance(task, str) or not task:
                raise ValueError(f"task names must be non-empty strings, got {task!r}")
            if task in out:
                raise ValueError(f"task {task!r} is given twice")
            out[task] = _weight(task, number)
    except ValueError as exc:
        raise ValueError(f"weights: {exc}") from None
    return out


__all__ = ["WeightsInput", "parse_weights"]
