"""The multi-task networks the families build, and the family interface.

:class:`MultiTaskNetwork` is what the trainer and the loss weightings see, whatever the architecture:
``forward(x) -> (representation, {task: prediction})`` and ``shared_parameters()``. The
*representation* is a tensor that separates what the tasks share from what is task-specific (every path
from a shared parameter to a task loss passes through it): MGDA-UB and Pareto MTL differentiate the task
losses against it. ``shared_parameters()`` is the last shared layer, where GradNorm measures gradient
norms. What both mean for each soft-sharing architecture is said in ``docs/architectures.md``.

:class:`MultiTaskModel` is hard parameter sharing as in Standley et al. (ICML 2020): every task of a
candidate reads the same encoder output (the representation) and has its own head (a decoder for dense
tasks); the encoder's last layer is the shared layer.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import torch
from pydantic import BaseModel, ConfigDict
from torch import nn

from workers.datasets.base import TaskInfo

__all__ = ["ModelFamily", "MultiTaskModel", "MultiTaskNetwork", "NoArchitectureOptions", "Stage"]


class MultiTaskNetwork(nn.Module, ABC):
    """The interface of every architecture's network: ``task_names``, ``heads``, ``multiplier``.

    ``forward(x)`` returns ``(representation, {task: prediction})``; ``shared_parameters()`` the
    parameters of the last shared layer (GradNorm's ``W``, Chen et al. 2018).
    """

    task_names: list[str]
    heads: nn.ModuleList
    multiplier: float

    @abstractmethod
    def forward(self, inputs: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``(representation, {task: prediction})`` for a batch of inputs."""

    @abstractmethod
    def shared_parameters(self) -> list[nn.Parameter]:
        """Parameters of the last shared layer (GradNorm's ``W``)."""

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())


class MultiTaskModel(MultiTaskNetwork):
    """Shared ``encoder`` plus ``heads`` (one per task, in ``task_names`` order).

    ``forward(x)`` returns ``(representation, {task: prediction})``. Heads live in an ``nn.ModuleList``
    (not a ModuleDict) because task names may hold characters a ModuleDict key may not (e.g. ``.``).
    """

    def __init__(
        self,
        encoder: nn.Module,
        heads: dict[str, nn.Module],
        last_shared: nn.Module,
        multiplier: float = 1.0,
    ) -> None:
        super().__init__()
        if not heads:
            raise ValueError("tasks: a multi-task model needs at least one head")
        self.task_names = list(heads)
        self.encoder = encoder
        self.heads = nn.ModuleList(heads.values())
        self._last_shared = [last_shared]  # a plain list: not registered twice as a submodule
        self.multiplier = multiplier

    def forward(self, inputs: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        representation = self.encoder(inputs)
        outputs = {name: head(representation) for name, head in zip(self.task_names, self.heads, strict=True)}
        return representation, outputs

    def shared_parameters(self) -> list[nn.Parameter]:
        """Parameters of the encoder's last layer (GradNorm's ``W``, Chen et al. 2018)."""
        return list(self._last_shared[0].parameters())

    def last_shared_layer(self) -> nn.Module:
        """The encoder's last layer (the module whose parameters :meth:`shared_parameters` returns)."""
        return self._last_shared[0]


class NoArchitectureOptions(BaseModel):
    """Options of an architecture that has none (hard sharing): any option given is an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Stage:
    """Where a stage of a hard-sharing encoder ends: ``end`` indexes the encoder's ``nn.Sequential``
    (layers ``[previous end, end)`` form the stage) and ``shape`` is one sample's features there."""

    end: int
    shape: tuple[int, ...]


class ModelFamily(ABC):
    """Builds networks of one architecture for one input shape and task list.

    ``options`` are the full-size trunk widths (the dataset's ``model_options``, validated by
    ``Options``); ``architecture_options`` are the architecture's own options (validated by the
    registry entry's ``Options``, see :mod:`workers.models.registry`). ``build(multiplier)`` scales every
    hidden width by ``multiplier`` (each width rounded on its own, at least 1);
    :func:`workers.models.capacity.multiplier_for_capacity` chooses the multiplier that gives a candidate
    the FLOPs its capacity asks for.
    """

    architecture: ClassVar[str] = "hard"
    input_kind: ClassVar[str]
    Options: ClassVar[type[BaseModel]]

    def __init__(
        self,
        input_shape: tuple[int, ...],
        tasks: list[TaskInfo],
        options: BaseModel,
        architecture_options: BaseModel | None = None,
    ) -> None:
        self.input_shape = tuple(int(s) for s in input_shape)
        self.tasks = list(tasks)
        self.options = options
        self.architecture_options = architecture_options or NoArchitectureOptions()
        self._setup()

    def _setup(self) -> None:  # noqa: B027 (a hook: families that need nothing more keep it)
        """Check the inputs and tasks and build what the family needs, from the fields set above (each
        family overrides it, calling its parent's first)."""

    @abstractmethod
    def build(self, multiplier: float) -> MultiTaskNetwork:
        """A freshly initialised model (uses the global torch RNG: seed it first)."""

    @abstractmethod
    def flops(self, multiplier: float) -> int:
        """Inference FLOPs of one sample through ``build(multiplier)``, from the layer sizes alone.

        Counts what ``torch.utils.flop_counter.FlopCounterMode`` counts (2 x the multiply-accumulates
        of every convolution and linear layer); the tests check the two agree exactly. Computed in
        closed form because capacity solving evaluates dozens of multipliers and a real or meta
        forward pass costs 10-300 ms each on a busy machine.
        """

    def key(self) -> tuple[object, ...]:
        """What determines the network (for caches): architecture, family, input shape, heads, options."""
        from workers.losses import output_channels

        heads = tuple((str(t.kind), output_channels(t)) for t in self.tasks)
        return (
            self.architecture,
            self.input_kind,
            self.input_shape,
            heads,
            self.options.model_dump_json(),
            self.architecture_options.model_dump_json(),
        )


def scaled(width: int, multiplier: float) -> int:
    """``width * multiplier`` rounded, at least 1."""
    return max(1, round(width * multiplier))
