"""The loss-weighting interface: how the per-task losses of one batch become one backward pass.

Standley et al. (2020) train every network on the plain sum of its task losses (``equal``); the other
methods of the registry rebalance tasks, which changes which subsets win. Every method implements
:class:`LossWeighting` and passes the shared suite in ``tests/workers/test_weighting.py``.

Options: each method declares its options as a pydantic model ``Options`` (unknown or invalid options
raise a :class:`ValueError` that names the method, the option and the known options), so that the
options of :class:`workers.spec.TrainingSettings` are validated before any training starts.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict, ValidationError
from torch import nn

from grouping.validation import format_validation_error


@dataclass
class BackwardContext:
    """What a weighting method may need beyond the losses, passed by the trainer at every step.

    ``representation``: the shared representation for the batch, a tensor that separates the shared part
    of the network from the task-specific part (part of the graph; MGDA-UB and Pareto MTL take gradients
    with respect to it); for hard sharing the encoder's output, for the other architectures see
    ``docs/architectures.md``. ``shared_parameters``: the last shared layer's parameters (GradNorm
    measures gradient norms there). ``epoch`` and ``step`` count from 0.
    """

    representation: torch.Tensor
    shared_parameters: list[nn.Parameter]
    epoch: int = 0
    step: int = 0
    extras: dict[str, object] = field(default_factory=dict)


class NoOptions(BaseModel):
    """Options of a method that has none (any option given is an error)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class LossWeighting(nn.Module, ABC):
    """Combines per-task losses into gradients on the model.

    ``backward`` must leave the gradients of the model (and of the method's own learnable parameters,
    if any) in ``.grad``; the trainer then steps the optimiser. It returns the weights it applied, for
    the training curve (finite; non-negative unless the class sets ``negative_weights``). A method with
    learnable parameters exposes them through ``nn.Module``
    parameters; the trainer optimises them in a group without weight decay. ``epoch_end`` receives the
    epoch's mean (unweighted) training loss and a KPI in [0, 1] (higher is better) per task, for methods
    that adapt per epoch (DWA, DTP).

    State that must survive a checkpoint (learnable parameters, loss histories, smoothed KPIs) is part
    of ``state_dict()``: parameters as parameters, bookkeeping as ``nn.Module`` extra state.
    """

    name: ClassVar[str]
    Options: ClassVar[type[BaseModel]] = NoOptions
    negative_weights: ClassVar[bool] = False
    """True for a method whose weights may be negative (Pareto MTL); every other method's are >= 0."""

    def __init__(self, tasks: list[str], **options: object) -> None:
        super().__init__()
        if not tasks:
            raise ValueError("tasks: a loss weighting needs at least one task")
        if len(set(tasks)) != len(tasks):
            raise ValueError(f"tasks: duplicate task names in {list(tasks)}")
        self.tasks = list(tasks)
        self.options = self.parse_options(options)

    @classmethod
    def parse_options(cls, options: dict[str, object]) -> BaseModel:
        """``options`` checked against ``cls.Options``; a ValueError names the bad option and known ones."""
        try:
            return cls.Options(**options)
        except ValidationError as error:
            problems = format_validation_error(error, noun="option", show_input=True)
            raise ValueError(
                f"weighting_options for {cls.name!r}: {problems}; {cls.describe_options()}"
            ) from None

    @classmethod
    def describe_options(cls) -> str:
        """A one-line list of the method's options and their defaults, for error messages and docs."""
        fields = cls.Options.model_fields
        if not fields:
            return f"{cls.name!r} takes no options"
        known = ", ".join(f"{key}={info.default!r}" for key, info in fields.items())
        return f"known options of {cls.name!r}: {known}"

    @property
    def n_tasks(self) -> int:
        return len(self.tasks)

    def stack_losses(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        """The losses as one vector in ``self.tasks`` order; ValueError for missing, extra or non-scalar."""
        missing = [t for t in self.tasks if t not in losses]
        if missing:
            raise ValueError(
                f"losses: no loss for task(s) {missing}; expected one scalar per task {self.tasks}"
            )
        extra = sorted(set(losses) - set(self.tasks))
        if extra:
            raise ValueError(f"losses: unexpected task(s) {extra}; this weighting was built for {self.tasks}")
        for task in self.tasks:
            if losses[task].numel() != 1:
                raise ValueError(
                    f"losses[{task!r}]: expected a scalar loss, got shape {tuple(losses[task].shape)}"
                )
        return torch.stack([losses[t].reshape(()) for t in self.tasks])

    def check_per_task(self, what: str, values: dict[str, float]) -> list[float]:
        """Per-task floats (``train_losses`` or ``kpis``) in task order; ValueError if missing/non-finite."""
        missing = [t for t in self.tasks if t not in values]
        if missing:
            raise ValueError(f"{what}: no value for task(s) {missing}; expected one per task {self.tasks}")
        out = [float(values[t]) for t in self.tasks]
        bad = [t for t, v in zip(self.tasks, out, strict=True) if not math.isfinite(v)]
        if bad:
            raise ValueError(f"{what}: non-finite value for task(s) {bad}")
        return out

    def floats_from_state(self, state: dict[str, Any], key: str) -> list[float] | None:
        """``state[key]`` as floats, one per task (None stays None); ValueError if the task count differs."""
        values = state.get(key)
        if values is None:
            return None
        out = [float(v) for v in values]
        if len(out) != self.n_tasks:
            raise ValueError(
                f"state_dict: {self.name} state {key!r} has {len(out)} values, this weighting has "
                f"{self.n_tasks} tasks {self.tasks}"
            )
        return out

    @abstractmethod
    def backward(self, losses: dict[str, torch.Tensor], context: BackwardContext) -> dict[str, float]:
        """Backpropagate the weighted losses; return the weight applied to each task."""

    def after_step(self) -> None:
        """Called after every optimiser step (e.g. GradNorm renormalises its weights); default: nothing."""

    def epoch_end(self, epoch: int, train_losses: dict[str, float], kpis: dict[str, float]) -> None:
        """Called after every epoch; the default does nothing."""

    def extra_repr(self) -> str:
        return f"tasks={self.tasks}, options={self.options.model_dump()}"


class EqualWeighting(LossWeighting):
    """The paper's choice: the plain sum of the task losses (every weight 1)."""

    name = "equal"

    def backward(self, losses: dict[str, torch.Tensor], context: BackwardContext) -> dict[str, float]:
        self.stack_losses(losses).sum().backward()
        return dict.fromkeys(self.tasks, 1.0)
