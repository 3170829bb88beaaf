"""The one budget grammar: what a user may write for budgets, in the CLI, the HTTP API and job specs.

A budget is an inference cost in SNT (standard network time, the cost of one full-size network; Standley et
al., ICML 2020, section 3.3). Budgets are given as

* text: a sweep ``START:STOP[:STEP]`` (stop included, step 0.5 by default; ``1:5:0.5``), a list ``1,2.5,4``,
  or one number ``2.5``;
* one number;
* a list of numbers.

:func:`parse_budgets` turns any of these into sorted, distinct, finite, positive floats, or raises a
``ValueError`` whose message starts with ``budgets:`` and says what is expected. Sweeps are computed with
exact decimals (``0.1:0.3:0.1`` ends at 0.3, not 0.30000000000000004) and refused above
:data:`MAX_BUDGETS` budgets before anything is built (``1:1e9:0.001`` is a typo, not a study).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

DEFAULT_STEP = 0.5
"""Step of a sweep that gives none, and of the default sweep 1, 1.5, ..., n (the paper's)."""

MAX_BUDGETS = 10_000
"""Most budgets one request may hold."""

BudgetsInput = str | float | int | Sequence[float | int | str]


def as_fraction(x: float) -> Fraction:
    """The decimal a user meant by a float (``0.1`` -> 1/10, not its binary expansion)."""
    return Fraction(repr(float(x)))


def budget_range(start: float, stop: float, step: float) -> list[float]:
    """``start, start+step, ..., stop`` (inclusive), computed with exact decimals (no 0.1 + 0.2 drift).

    Refuses more than :data:`MAX_BUDGETS` budgets before building anything."""
    if not all(math.isfinite(x) for x in (start, stop, step)):
        raise ValueError(f"budget range {start:g}:{stop:g}:{step:g} must be finite numbers")
    a, b, s = as_fraction(start), as_fraction(stop), as_fraction(step)
    if s <= 0:
        raise ValueError(f"budget step must be > 0, got {step}")
    if b < a:
        raise ValueError(f"budget range is empty: stop {stop} < start {start}")
    count = int((b - a) / s) + 1
    if count > MAX_BUDGETS:
        raise ValueError(
            f"the sweep {start:g}:{stop:g}:{step:g} has more than {MAX_BUDGETS} budgets; use a larger step "
            "or a shorter range"
        )
    return [float(a + i * s) for i in range(count)]


def default_budgets(n_tasks: int, start: float = 1.0, step: float = DEFAULT_STEP) -> list[float]:
    """1, 1.5, ..., n SNT (the paper's sweep for 5 tasks: 1..5 by 0.5)."""
    return budget_range(start, float(n_tasks), step)


def _from_text(text: str) -> list[float]:
    usage = f"expected START:STOP[:STEP] like 1:5:0.5, a list like 1,2,3 or one number, got {text!r}"
    sweep = ":" in text
    try:
        parts = [float(x) for x in text.split(":" if sweep else ",") if x.strip()]
    except ValueError:
        raise ValueError(usage) from None
    if not parts or (sweep and len(parts) not in (2, 3)):
        raise ValueError(usage)
    if not sweep:
        return parts
    return budget_range(parts[0], parts[1], parts[2] if len(parts) == 3 else DEFAULT_STEP)


def _numbers(values: Sequence[object]) -> list[float]:
    try:
        if any(isinstance(v, bool) or not isinstance(v, int | float | str) for v in values):
            raise ValueError
        return [float(v) for v in values]  # type: ignore[arg-type]
    except ValueError:
        raise ValueError(
            f"expected a list of numbers, a sweep like '1:5:0.5' or one number, got {list(values)!r}"
        ) from None


def parse_budgets(value: BudgetsInput) -> list[float]:
    """Budgets from text, one number or a list (see the module doc); sorted, duplicates dropped.

    ValueError (message ``budgets: ...``) for anything else, an empty list, more than :data:`MAX_BUDGETS`
    budgets, or a budget that is not a finite number > 0 SNT."""
    try:
        if isinstance(value, str):
            values = _from_text(value.strip())
        elif isinstance(value, int | float) and not isinstance(value, bool):
            values = [float(value)]
        elif isinstance(value, Sequence) and not isinstance(value, bytes):
            values = _numbers(value)
        else:
            raise ValueError(f"expected a sweep like '1:5:0.5', a list or one number, got {value!r}")
        if not values:
            raise ValueError("give at least one budget")
        if len(values) > MAX_BUDGETS:
            raise ValueError(f"{len(values)} budgets; at most {MAX_BUDGETS}")
        for budget in values:
            if not (math.isfinite(budget) and budget > 0):
                raise ValueError(f"every budget must be a finite number of SNT > 0, got {budget:g}")
    except ValueError as exc:
        raise ValueError(f"budgets: {exc}") from None
    return sorted(set(values))


__all__ = [
    "DEFAULT_STEP",
    "MAX_BUDGETS",
    "BudgetsInput",
    "as_fraction",
    "budget_range",
    "default_budgets",
    "parse_budgets",
]
