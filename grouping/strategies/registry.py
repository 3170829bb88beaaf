"""The registry of strategies: name -> class (no if/elif chains; add a strategy with :func:`register`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from grouping.strategies.base import Problem, Strategy
from grouping.validation import format_validation_error

STRATEGIES: dict[str, type[Strategy]] = {}
"""Registered strategies by name (``exhaustive``, ``esa``, ``hoa``, ``tag``, ``adaptive``)."""

S = TypeVar("S", bound=type[Strategy])


def register(cls: S) -> S:
    """Class decorator: make ``cls`` available as ``make_strategy(cls.name, ...)``."""
    if cls.name in STRATEGIES and STRATEGIES[cls.name] is not cls:
        raise ValueError(f"a strategy named {cls.name!r} is already registered")
    STRATEGIES[cls.name] = cls
    return cls


def make_strategy(
    name: str, problem: Problem, options: BaseModel | Mapping[str, Any] | None = None
) -> Strategy:
    """The strategy ``name`` for ``problem`` with ``options`` (a mapping or the strategy's Options model).

    ValueError naming the strategy for an unknown name or invalid options."""
    try:
        cls = STRATEGIES[name]
    except KeyError:
        raise ValueError(
            f"unknown strategy {name!r}; choose one of {', '.join(sorted(STRATEGIES))}"
        ) from None
    try:
        return cls(problem, options)
    except ValidationError as exc:
        raise ValueError(f"{name} options: {format_validation_error(exc, noun='option')}") from None


__all__ = ["STRATEGIES", "make_strategy", "register"]
