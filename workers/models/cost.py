"""The inference cost of a candidate in SNT, for any architecture, from counted FLOPs.

Standley et al. (2020) price a network in SNT (standard network time): a full-size network costs 1
whatever its number of heads, a half-size one 0.5. That accounting holds for hard parameter sharing,
where the candidates of a job differ only in their heads. A soft-sharing network is not one network's
time: a cross-stitch network of k tasks runs k columns. So the unit is pinned to hard sharing and the
other architectures are priced by their FLOPs:

    1 SNT = FLOPs of the full-size (capacity 1) hard-sharing network for the same tasks
    cost(architecture, tasks, capacity) = capacity * FLOPs(architecture, tasks, 1) / FLOPs(hard, tasks, 1)

Hard sharing therefore costs exactly its capacity (the paper's accounting, unchanged), a cross-stitch
network of k tasks about k (its columns plus the units), MTAN one trunk plus its attention modules.
Capacity keeps its meaning within an architecture (a half-size network of any architecture does half the
FLOPs of its full-size self, see :mod:`workers.models.capacity`); the built network's FLOPs meet the
capacity to within width rounding, which the tests bound at 10% against
``torch.utils.flop_counter.FlopCounterMode``. FLOPs are the families' closed forms (no forward pass).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from workers.datasets.base import Dataset, TaskInfo
from workers.models.capacity import family_flops
from workers.models.registry import DEFAULT_ARCHITECTURE, make_family

__all__ = ["architecture_cost", "candidate_cost"]


def architecture_cost(
    architecture: str,
    input_kind: str,
    input_shape: tuple[int, ...],
    tasks: list[TaskInfo],
    capacity: float = 1.0,
    options: dict[str, Any] | None = None,
    architecture_options: Mapping[str, Any] | None = None,
) -> float:
    """Cost in SNT of a candidate (``tasks`` at ``capacity``) built as ``architecture``.

    ``options`` are the trunk widths (the dataset's ``model_options``), shared by the candidate and the
    hard-sharing reference; ``architecture_options`` the architecture's own. ValueError for an unknown
    architecture, one that does not apply to ``input_kind``, or a capacity that is not a finite number > 0.
    """
    if not capacity > 0 or not math.isfinite(capacity):
        raise ValueError(f"capacity: must be a finite number > 0, got {capacity}")
    family = make_family(input_kind, input_shape, tasks, options, architecture, architecture_options)
    if family.architecture == DEFAULT_ARCHITECTURE:
        return float(capacity)
    reference = make_family(input_kind, input_shape, tasks, options)
    return float(capacity) * family_flops(family, 1.0) / family_flops(reference, 1.0)


def candidate_cost(
    dataset: Dataset,
    tasks: list[str],
    capacity: float = 1.0,
    architecture: str = DEFAULT_ARCHITECTURE,
    architecture_options: Mapping[str, Any] | None = None,
) -> float:
    """:func:`architecture_cost` for tasks of a dataset, with the dataset's input shape and trunk widths.

    ``architecture`` and ``architecture_options`` are a training's ``settings.model.architecture`` and
    ``settings.model.options``. (A file-backed dataset reads its data once to know its input shape.)
    """
    infos = [dataset.task(name) for name in tasks]
    return architecture_cost(
        architecture,
        dataset.input_kind,
        tuple(dataset.input_shape()),
        infos,
        capacity,
        dict(dataset.model_options()),
        architecture_options,
    )
