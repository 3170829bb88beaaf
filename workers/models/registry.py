"""Architectures as a registry: name -> the model family that builds it for each input kind, and its options.

| name | image | vector | what is shared |
|---|---|---|---|
| ``hard`` (default) | yes | yes | the whole encoder (Standley et al. 2020) |
| ``cross-stitch`` | yes | yes | one column per task, learned linear mixing (Misra et al. 2016) |
| ``mtan`` | yes | yes | the trunk; per-task attention masks over it (Liu et al. 2019) |
| ``nddr`` | yes | no | one column per task, 1x1-conv fusion (Gao et al. 2019) |

Every family keeps the capacity multiplier's meaning (capacity scales the widths so that the candidate's
FLOPs are ``capacity`` times those of the same architecture at full size), and a candidate's cost in SNT
is its FLOPs relative to the full-size hard-sharing network of the same tasks
(:func:`workers.models.cost.architecture_cost`). ``docs/architectures.md`` describes each architecture,
what "representation" and "shared parameters" mean for it, and where it departs from its paper.

The architecture's own options (``ModelSettings.options`` of a training) are validated by the entry's
``Options``; the trunk widths are the dataset's (``Dataset.model_options``), validated by the family.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from grouping.validation import format_validation_error
from workers.datasets.base import TaskInfo
from workers.models.base import ModelFamily, MultiTaskNetwork, NoArchitectureOptions
from workers.models.capacity import multiplier_for_capacity
from workers.models.conv import ConvFamily
from workers.models.cross_stitch import CrossStitchConvFamily, CrossStitchMLPFamily, CrossStitchOptions
from workers.models.mlp import MLPFamily
from workers.models.mtan import MTANConvFamily, MTANMLPFamily, MTANOptions
from workers.models.nddr import NDDRConvFamily, NDDROptions

__all__ = [
    "ARCHITECTURES",
    "DEFAULT_ARCHITECTURE",
    "FAMILIES",
    "Architecture",
    "architectures_for",
    "build_model",
    "get_architecture",
    "make_family",
]


@dataclass(frozen=True)
class Architecture:
    """One registered architecture: its ``families`` (input kind -> family class) and ``Options``."""

    name: str
    families: Mapping[str, type[ModelFamily]]
    Options: type[BaseModel]
    paper: str

    def parse_options(self, options: Mapping[str, Any] | None) -> BaseModel:
        """``options`` checked against ``Options``; a ValueError names the bad option and the known ones."""
        try:
            return self.Options.model_validate(dict(options or {}))
        except ValidationError as exc:
            problems = format_validation_error(exc, noun="option", show_input=True)
            message = f"model options for {self.name!r}: {problems}; {self.describe_options()}"
            raise ValueError(message) from None

    def describe_options(self) -> str:
        """A one-line list of the options and their defaults, for error messages."""
        fields = self.Options.model_fields
        if not fields:
            return f"{self.name!r} takes no options"
        return f"known options of {self.name!r}: " + ", ".join(
            f"{key}={info.default!r}" for key, info in fields.items()
        )


DEFAULT_ARCHITECTURE = "hard"

ARCHITECTURES: dict[str, Architecture] = {
    entry.name: entry
    for entry in (
        Architecture(
            "hard",
            {MLPFamily.input_kind: MLPFamily, ConvFamily.input_kind: ConvFamily},
            NoArchitectureOptions,
            "hard parameter sharing (Standley et al., ICML 2020)",
        ),
        Architecture(
            "cross-stitch",
            {"vector": CrossStitchMLPFamily, "image": CrossStitchConvFamily},
            CrossStitchOptions,
            "cross-stitch networks (Misra et al., CVPR 2016)",
        ),
        Architecture(
            "mtan",
            {"vector": MTANMLPFamily, "image": MTANConvFamily},
            MTANOptions,
            "multi-task attention network (Liu, Johns & Davison, CVPR 2019)",
        ),
        Architecture(
            "nddr",
            {"image": NDDRConvFamily},
            NDDROptions,
            "NDDR-CNN (Gao et al., CVPR 2019)",
        ),
    )
}

FAMILIES: dict[str, type[ModelFamily]] = dict(ARCHITECTURES[DEFAULT_ARCHITECTURE].families)
"""Input kind -> the hard-sharing family (the default architecture)."""


def get_architecture(name: str) -> Architecture:
    """The registry entry ``name``; a ValueError lists the known architectures."""
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise ValueError(
            f"architecture: unknown architecture {name!r}; choose one of {', '.join(sorted(ARCHITECTURES))}"
        ) from None


def architectures_for(input_kind: str) -> list[str]:
    """The architectures that apply to ``input_kind`` (sorted)."""
    return sorted(name for name, entry in ARCHITECTURES.items() if input_kind in entry.families)


def make_family(
    input_kind: str,
    input_shape: tuple[int, ...],
    tasks: list[TaskInfo],
    options: dict[str, Any] | None = None,
    architecture: str = DEFAULT_ARCHITECTURE,
    architecture_options: Mapping[str, Any] | None = None,
) -> ModelFamily:
    """The family of ``architecture`` for ``input_kind`` with validated options (clear ValueErrors).

    ``options`` are the full-size trunk widths (the dataset's), ``architecture_options`` the
    architecture's own. An architecture that does not apply to the input kind is a ValueError naming the
    ones that do.
    """
    if not any(input_kind in entry.families for entry in ARCHITECTURES.values()):
        known = sorted({kind for entry in ARCHITECTURES.values() for kind in entry.families})
        raise ValueError(f"input_kind: no model family for {input_kind!r}; known: {', '.join(known)}")
    entry = get_architecture(architecture)
    if input_kind not in entry.families:
        raise ValueError(
            f"architecture: {architecture!r} does not apply to {input_kind} inputs; for {input_kind} inputs "
            f"choose one of {', '.join(architectures_for(input_kind))}"
        )
    cls = entry.families[input_kind]
    try:
        parsed = cls.Options.model_validate(options or {})
    except ValidationError as exc:
        raise ValueError(f"model options ({input_kind}): {format_validation_error(exc)}") from None
    return cls(input_shape, tasks, parsed, entry.parse_options(architecture_options))


def build_model(
    input_kind: str,
    input_shape: tuple[int, ...],
    tasks: list[TaskInfo],
    capacity: float = 1.0,
    options: dict[str, Any] | None = None,
    architecture: str = DEFAULT_ARCHITECTURE,
    architecture_options: Mapping[str, Any] | None = None,
) -> MultiTaskNetwork:
    """A freshly initialised network for ``tasks`` at ``capacity`` (seed the torch RNG first)."""
    family = make_family(input_kind, input_shape, tasks, options, architecture, architecture_options)
    return family.build(multiplier_for_capacity(family, capacity))
