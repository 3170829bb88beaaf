"""One column per task, joined by exchange units at the end of every stage: cross-stitch and NDDR.

Cross-stitch networks (Misra et al., CVPR 2016) and NDDR-CNN (Gao et al., CVPR 2019) start from one
single-task network per task (a *column*) and insert, at stage ends, a learned unit that mixes the k
columns' features. Here a column is exactly the hard-sharing network of the same family built for that
task alone at the same width multiplier (its encoder and its head), so a network of k tasks costs about k
single networks plus its units; a unit sits at the end of every stage of the family
(:meth:`~workers.models.mlp.MLPFamily.stages`: every trunk layer of an MLP; the stem and each residual
stage of the conv encoder).

With one task there is nothing to exchange: the network *is* the hard-sharing single-task network (same
layers, FLOPs and initialisation).

What the weightings see (``docs/architectures.md``): the *representation* is the k columns' features
entering the last unit, stacked as ``(batch, k, ...)``: everything before it is coupled through the units,
everything after it (the last unit's row for a task, then the task's head) belongs to one task, so it
separates shared from task-specific as MGDA-UB's upper bound needs. ``shared_parameters()`` (GradNorm's
``W``) are the last layers of all columns, the layers just before the representation.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

import torch
from torch import nn

from workers.models.base import ModelFamily, MultiTaskModel, MultiTaskNetwork
from workers.models.conv import ConvFamily
from workers.models.mlp import MLPFamily

__all__ = ["ColumnsFamily", "ColumnsModel", "mixing_matrix"]


def mixing_matrix(tasks: int, mixing: float) -> torch.Tensor:
    """``tasks x tasks``: ``1 - mixing`` on the diagonal, ``mixing / (tasks - 1)`` elsewhere (rows sum to 1).

    Identity plus a small mixing; ``mixing`` 0 gives the identity (independent columns)."""
    if tasks == 1:
        return torch.ones(1, 1)
    return torch.full((tasks, tasks), mixing / (tasks - 1)).fill_diagonal_(1.0 - mixing)


class ColumnsModel(MultiTaskNetwork):
    """k columns (hard-sharing single-task encoders) run in lockstep; ``units[i]`` mixes them at ``ends[i]``.

    A unit maps the stacked column features ``(batch, k, ...)`` to the same shape.
    """

    def __init__(
        self, columns: list[MultiTaskModel], units: list[nn.Module], ends: list[int], multiplier: float
    ) -> None:
        super().__init__()
        if len(columns) < 2:
            raise ValueError("tasks: a network of columns needs at least two tasks")
        if len(units) != len(ends) or not ends:
            raise ValueError(f"units: expected one unit per stage end {ends}, got {len(units)}")
        lengths = {len(column.encoder) for column in columns}
        if lengths != {ends[-1]}:
            raise ValueError(f"columns: the last stage must end the encoder ({ends[-1]}), got {lengths}")
        self.task_names = [column.task_names[0] for column in columns]
        self.columns = nn.ModuleList(column.encoder for column in columns)
        self.heads = nn.ModuleList(column.heads[0] for column in columns)
        self.units = nn.ModuleList(units)
        self.ends = list(ends)
        self._last_layers = [column.last_shared_layer() for column in columns]  # not registered twice
        self.multiplier = multiplier

    def forward(self, inputs: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        features = [inputs] * len(self.columns)
        start = 0
        representation = inputs
        for end, unit in zip(self.ends, self.units, strict=True):
            for index, column in enumerate(self.columns):
                for layer in range(start, end):
                    features[index] = column[layer](features[index])
            representation = torch.stack(features, dim=1)
            # contiguous: a strided view can take another matmul kernel, whose rounding differs
            features = [feature.contiguous() for feature in unit(representation).unbind(dim=1)]
            start = end
        outputs = {
            name: head(feature)
            for name, head, feature in zip(self.task_names, self.heads, features, strict=True)
        }
        return representation, outputs

    def shared_parameters(self) -> list[nn.Parameter]:
        """The last layer of every column (the layers just before the representation)."""
        return [p for layer in self._last_layers for p in layer.parameters()]


class ColumnsFamily(ModelFamily):
    """A family of :class:`ColumnsModel` s over the hard-sharing family ``base`` of the input kind."""

    base: ClassVar[type[MLPFamily] | type[ConvFamily]]

    def _setup(self) -> None:
        super()._setup()
        self.hard = self.base(self.input_shape, self.tasks, self.options)  # checks the inputs and tasks
        self.singles = [self.base(self.input_shape, [task], self.options) for task in self.tasks]

    @abstractmethod
    def unit(self, shape: tuple[int, ...]) -> nn.Module:
        """A freshly initialised exchange unit for k columns whose features have ``shape`` per sample."""

    @abstractmethod
    def unit_flops(self, shape: tuple[int, ...]) -> int:
        """Inference FLOPs of one sample through :meth:`unit` (as FlopCounterMode counts them)."""

    def flops(self, multiplier: float) -> int:
        if len(self.tasks) == 1:
            return self.hard.flops(multiplier)
        columns = sum(single.flops(multiplier) for single in self.singles)
        return columns + sum(self.unit_flops(stage.shape) for stage in self.hard.stages(multiplier))

    def build(self, multiplier: float) -> MultiTaskNetwork:
        if len(self.tasks) == 1:
            return self.hard.build(multiplier)
        columns = [single.build(multiplier) for single in self.singles]
        stages = self.hard.stages(multiplier)
        units = [self.unit(stage.shape) for stage in stages]
        return ColumnsModel(columns, units, [stage.end for stage in stages], multiplier)
