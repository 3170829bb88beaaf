"""Built-in datasets, as a registry: name -> dataset class."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from grouping.validation import format_validation_error
from workers.datasets.base import SPLITS, Dataset, Split, SplitName, TaskInfo, TaskKind

DATASETS: dict[str, type[Dataset]] = {}


def register(cls: type[Dataset]) -> type[Dataset]:
    """Class decorator: add a dataset to the registry under its ``name``."""
    DATASETS[cls.name] = cls
    return cls


def get_dataset(name: str, params: dict[str, Any] | None = None) -> Dataset:
    """The dataset ``name`` with validated ``params``; ValueError says what is wrong and what is known."""
    try:
        cls = DATASETS[name]
    except KeyError:
        raise ValueError(
            f"dataset: unknown dataset {name!r}; choose one of {', '.join(sorted(DATASETS))}"
        ) from None
    try:
        parsed = cls.Params.model_validate(params or {})
    except ValidationError as exc:
        raise ValueError(f"dataset.params ({name}): {format_validation_error(exc)}") from None
    return cls(parsed)


__all__ = [
    "DATASETS",
    "SPLITS",
    "Dataset",
    "Split",
    "SplitName",
    "TaskInfo",
    "TaskKind",
    "get_dataset",
    "register",
]

from workers.datasets import planted as _planted  # noqa: E402,F401
from workers.datasets import tabular as _tabular  # noqa: E402,F401
from workers.datasets import taskonomy_mini as _taskonomy_mini  # noqa: E402,F401
