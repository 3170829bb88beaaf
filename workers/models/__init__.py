"""Multi-task models with hard parameter sharing, as a registry: input kind -> model family.

``build_model`` is what the trainer calls: it picks the family for the dataset's input kind
(``vector`` -> MLP trunk + heads, ``image`` -> conv encoder + per-task decoders), validates the
family's options, and scales the widths so that the candidate's inference FLOPs are ``capacity`` times
those of the full-size model with the same tasks (see :mod:`workers.models.capacity`).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from grouping.validation import format_validation_error
from workers.datasets.base import TaskInfo
from workers.models.base import ModelFamily, MultiTaskModel
from workers.models.capacity import count_flops, family_flops, multiplier_for_capacity
from workers.models.conv import ConvFamily, ConvOptions
from workers.models.mlp import MLPFamily, MLPOptions

FAMILIES: dict[str, type[ModelFamily]] = {
    MLPFamily.input_kind: MLPFamily,
    ConvFamily.input_kind: ConvFamily,
}


def make_family(
    input_kind: str,
    input_shape: tuple[int, ...],
    tasks: list[TaskInfo],
    options: dict[str, Any] | None = None,
) -> ModelFamily:
    """The model family for ``input_kind`` with validated ``options`` (clear ValueErrors)."""
    try:
        cls = FAMILIES[input_kind]
    except KeyError:
        raise ValueError(
            f"input_kind: no model family for {input_kind!r}; known: {', '.join(sorted(FAMILIES))}"
        ) from None
    try:
        parsed = cls.Options.model_validate(options or {})
    except ValidationError as exc:
        raise ValueError(f"model options ({input_kind}): {format_validation_error(exc)}") from None
    return cls(input_shape, tasks, parsed)


def build_model(
    input_kind: str,
    input_shape: tuple[int, ...],
    tasks: list[TaskInfo],
    capacity: float = 1.0,
    options: dict[str, Any] | None = None,
) -> MultiTaskModel:
    """A freshly initialised model for ``tasks`` at ``capacity`` (seed the torch RNG first)."""
    family = make_family(input_kind, input_shape, tasks, options)
    return family.build(multiplier_for_capacity(family, capacity))


__all__ = [
    "FAMILIES",
    "ConvFamily",
    "ConvOptions",
    "MLPFamily",
    "MLPOptions",
    "ModelFamily",
    "MultiTaskModel",
    "build_model",
    "count_flops",
    "family_flops",
    "make_family",
    "multiplier_for_capacity",
]
