"""The one formatter of pydantic validation errors: one ``field: problem`` per error, joined by ``; ``.

Every face shows validation errors this way (CLI one-liners, the HTTP API's 422 ``detail``, loss-table files,
dataset parameters, model and weighting options), so a user reads the same words wherever a value is wrong.
It lives in :mod:`grouping` because every package may import grouping (it is pure: no torch, no ray).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

LOCATION_KINDS = ("body", "query", "path", "header")
"""First location parts FastAPI adds: ``body`` is dropped, the others name the parameter's kind."""


def where(loc: Sequence[Any], prefix: str = "", flags: bool = False) -> str:
    """A field name from a pydantic location: ``("rows", 0, "capacity")`` -> ``rows[0].capacity``;
    ``flags``: as the command-line flag of a top-level option (``serve_by`` -> ``--serve-by``)."""
    parts = list(loc)
    if flags and parts:
        parts[0] = "--" + str(parts[0]).replace("_", "-")
    kind = ""
    if parts and parts[0] in LOCATION_KINDS:
        kind = str(parts.pop(0))
    name = prefix
    for part in parts:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name = f"{name}.{part}" if name else str(part)
    if kind in ("query", "path", "header") and name:
        return f"{kind} parameter {name}"
    return name


def describe(error: Mapping[str, Any], noun: str = "field", show_input: bool = False) -> str:
    """One error's message; an unknown key says so and that it must go (``noun``: field, option...)."""
    if error.get("type") == "extra_forbidden":
        return f"unknown {noun}: remove it"
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    if show_input and error.get("type") != "missing":
        message += f" (got {error.get('input')!r})"
    return message


def format_errors(
    errors: Iterable[Mapping[str, Any]],
    prefix: str = "",
    noun: str = "field",
    show_input: bool = False,
    flags: bool = False,
) -> str:
    """``field: problem; field: problem`` for pydantic error dicts (``prefix`` names the enclosing field,
    ``flags`` names top-level fields as command-line flags)."""
    lines = []
    for error in errors:
        name = where(error.get("loc", ()), prefix, flags)
        message = describe(error, noun, show_input)
        lines.append(f"{name}: {message}" if name else message)
    return "; ".join(lines)


def format_validation_error(
    exc: ValidationError,
    prefix: str = "",
    noun: str = "field",
    show_input: bool = False,
    flags: bool = False,
) -> str:
    """:func:`format_errors` of a ValidationError."""
    return format_errors(exc.errors(include_url=False), prefix, noun, show_input, flags)


__all__ = ["describe", "format_errors", "format_validation_error", "where"]
