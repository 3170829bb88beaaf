"""Multi-Task Attention Network, MTAN (Liu, Johns & Davison, CVPR 2019, "End-to-end multi-task learning
with attention").

A shared trunk (exactly the hard-sharing encoder of the input kind, built with the same widths) and, per
task, a chain of soft-attention modules, one per trunk stage: at stage j the module of task t reads the
stage's shared features and the task's attended features of the previous stage, and outputs a mask in
(0, 1) that selects from the stage's output ``p_j``:

    a_t^j = g_t^j([u_j ; f_j(a_t^{j-1})]) * p_j        (image; the first stage reads u_1 alone)
    a_t^j = g_t^j([p_j ; a_t^{j-1}]) * p_j              (vector)

The task's head (decoder) reads its last attended features ``a_t^J`` instead of the trunk's output.

Image (conv trunk): a module per residual stage (three). ``u_j`` is the activation after the first
convolution of the stage's last residual block and ``p_j`` the block's output (the paper's "first" and
"last" convolution of a SegNet block); ``g`` is 1x1 conv, BN, ReLU, 1x1 conv, BN, sigmoid with
``[2C, C/r, C]`` channels (r = ``reduction``, the paper's r = 1); ``f_j`` is one 3x3 conv + BN + ReLU per
stage, shared by all tasks (as the paper's ``f``), with stride 2 where the trunk halves the resolution.

Vector (MLP trunk, our adaptation): a module per trunk layer; ``p_j`` is the layer's output; ``g`` is
Linear, ReLU, Linear, sigmoid with ``[2W, W/r, W]`` units and no ``f`` (widths already match). Default
``reduction`` 8: in a conv net the paper's 1x1 modules cost about 1/6 of a residual block per task, while
the same shape in an MLP would cost three trunk layers per task, so the vector modules are narrowed.

What the weightings see (``docs/architectures.md``): the *representation* is every shared feature the
attention modules read (``u_j`` and ``p_j`` of every stage), flattened and concatenated into one tensor
that the modules read views of; the trunk itself continues from the original tensors, so the gradient of
a task's loss with respect to the representation is its partial derivative through that task's modules
(the cut between shared and task-specific parameters that MGDA-UB's upper bound needs).
``shared_parameters()`` (GradNorm's ``W``) is the trunk's last layer.

Departures from the paper: a residual conv encoder and dense decoders in place of SegNet's encoder-decoder
(attention on the encoder only; the paper also puts attention modules in the decoder); stride-2
convolutions in ``f`` where the paper max-pools; no biases before batch normalisation; the MLP variant.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from workers.models.base import ModelFamily, MultiTaskModel, MultiTaskNetwork, Stage
from workers.models.conv import STRIDES, ConvFamily, ResidualBlock
from workers.models.mlp import MLPFamily

__all__ = ["MTANConvFamily", "MTANMLPFamily", "MTANModel", "MTANOptions"]


class MTANOptions(BaseModel):
    """``reduction``: the attention modules' hidden width is the stage width / reduction."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reduction: int | None = Field(
        None, ge=1, le=4096, description="hidden width divisor; default: 1 for images (paper), 8 for vectors"
    )


class MTANModel(MultiTaskNetwork):
    """A hard-sharing trunk, per-task attention chains over its ``stages``, and the trunk's heads.

    ``stages`` end where attention modules tap the trunk (the stem, if any, runs inside the first stage);
    ``attention[t][j]`` is task t's module at stage j; ``bridges[j - 1]`` is the paper's ``f_j``.
    """

    def __init__(
        self,
        trunk: MultiTaskModel,
        stages: list[Stage],
        attention: list[list[nn.Module]],
        bridges: list[nn.Module],
    ) -> None:
        super().__init__()
        if len(attention) != len(trunk.task_names) or any(len(a) != len(stages) for a in attention):
            raise ValueError("attention: expected one module per task and stage")
        if len(bridges) != len(stages) - 1:
            raise ValueError(f"bridges: expected {len(stages) - 1}, got {len(bridges)}")
        self.task_names = list(trunk.task_names)
        self.encoder = trunk.encoder
        self.heads = trunk.heads
        self.attention = nn.ModuleList(nn.ModuleList(chain) for chain in attention)
        self.bridges = nn.ModuleList(bridges)
        self.ends = [stage.end for stage in stages]
        self._last_shared = [trunk.last_shared_layer()]  # not registered twice
        self.multiplier = trunk.multiplier

    def shared_features(self, inputs: torch.Tensor) -> list[tuple[torch.Tensor, ...]]:
        """Per stage ``(u, p)`` (a residual block's intermediate and output) or ``(p,)`` (any other layer)."""
        features: list[tuple[torch.Tensor, ...]] = []
        hidden, start = inputs, 0
        for end in self.ends:
            for index in range(start, end - 1):
                hidden = self.encoder[index](hidden)
            last = self.encoder[end - 1]
            if isinstance(last, ResidualBlock):
                mid, hidden = last.forward_with_intermediate(hidden)
                features.append((mid, hidden))
            else:
                hidden = last(hidden)
                features.append((hidden,))
            start = end
        return features

    def forward(self, inputs: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        groups = self.shared_features(inputs)
        flat = [tensor for group in groups for tensor in group]
        representation = torch.cat([tensor.flatten(1) for tensor in flat], dim=1)
        pieces = representation.split([tensor[0].numel() for tensor in flat], dim=1)
        views = iter(piece.reshape(tensor.shape) for piece, tensor in zip(pieces, flat, strict=True))
        stages = [tuple(next(views) for _ in group) for group in groups]
        outputs = {}
        for name, chain, head in zip(self.task_names, self.attention, self.heads, strict=True):
            attended: torch.Tensor | None = None
            for index, (module, features) in enumerate(zip(chain, stages, strict=True)):
                mask_input = features[0]
                if attended is not None:
                    mask_input = torch.cat([mask_input, self.bridges[index - 1](attended)], dim=1)
                attended = module(mask_input) * features[-1]
            outputs[name] = head(attended)
        return representation, outputs

    def shared_parameters(self) -> list[nn.Parameter]:
        """The trunk's last layer."""
        return list(self._last_shared[0].parameters())


class _MTANFamily(ModelFamily):
    architecture = "mtan"
    base: ClassVar[type[MLPFamily] | type[ConvFamily]]
    default_reduction: ClassVar[int]

    def _setup(self) -> None:
        super()._setup()
        self.hard = self.base(self.input_shape, self.tasks, self.options)

    @property
    def reduction(self) -> int:
        options: MTANOptions = self.architecture_options  # type: ignore[assignment]
        return options.reduction if options.reduction is not None else self.default_reduction

    def hidden(self, width: int) -> int:
        """The attention modules' hidden width for a stage of ``width`` channels or units."""
        return max(1, round(width / self.reduction))


class MTANConvFamily(_MTANFamily):
    """Attention over the three residual stages of the conv encoder."""

    input_kind = "image"
    Options = ConvFamily.Options
    base = ConvFamily
    default_reduction = 1

    def _stages(self, multiplier: float) -> list[Stage]:
        return self.hard.stages(multiplier)[1:]  # the residual stages (the stem runs inside the first)

    def flops(self, multiplier: float) -> int:
        stages = self._stages(multiplier)
        per_task = 0
        for index, stage in enumerate(stages):
            channels, height, width = stage.shape
            inputs = channels if index == 0 else 2 * channels
            mid = self.hidden(channels)
            per_task += 2 * (inputs * mid + mid * channels) * height * width
            if index > 0:
                previous = stages[index - 1].shape[0]
                per_task += 2 * previous * channels * 9 * height * width  # the bridge f into this stage
        return self.hard.flops(multiplier) + len(self.tasks) * per_task

    def build(self, multiplier: float) -> MultiTaskNetwork:
        trunk = self.hard.build(multiplier)
        stages = self._stages(multiplier)
        bridges: list[nn.Module] = [
            nn.Sequential(
                nn.Conv2d(before.shape[0], after.shape[0], 3, stride, 1, bias=False),
                nn.BatchNorm2d(after.shape[0]),
                nn.ReLU(inplace=True),
            )
            for before, after, stride in zip(stages[:-1], stages[1:], STRIDES[1:], strict=True)
        ]
        attention = [
            [self._module(stage.shape[0], index) for index, stage in enumerate(stages)] for _ in self.tasks
        ]
        return MTANModel(trunk, stages, attention, bridges)

    def _module(self, channels: int, index: int) -> nn.Module:
        inputs, mid = channels if index == 0 else 2 * channels, self.hidden(channels)
        return nn.Sequential(
            nn.Conv2d(inputs, mid, 1, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, channels, 1, bias=False),
            nn.BatchNorm2d(channels),
            nn.Sigmoid(),
        )


class MTANMLPFamily(_MTANFamily):
    """Attention over every trunk layer of the MLP."""

    input_kind = "vector"
    Options = MLPFamily.Options
    base = MLPFamily
    default_reduction = 8

    def flops(self, multiplier: float) -> int:
        per_task = 0
        for index, stage in enumerate(self.hard.stages(multiplier)):
            (width,) = stage.shape
            inputs = width if index == 0 else 2 * width
            per_task += 2 * (inputs * self.hidden(width) + self.hidden(width) * width)
        return self.hard.flops(multiplier) + len(self.tasks) * per_task

    def build(self, multiplier: float) -> MultiTaskNetwork:
        trunk = self.hard.build(multiplier)
        stages = self.hard.stages(multiplier)
        attention = [
            [self._module(stage.shape[0], index) for index, stage in enumerate(stages)] for _ in self.tasks
        ]
        return MTANModel(trunk, stages, attention, [nn.Identity() for _ in stages[1:]])

    def _module(self, width: int, index: int) -> nn.Module:
        inputs, mid = width if index == 0 else 2 * width, self.hidden(width)
        return nn.Sequential(nn.Linear(inputs, mid), nn.ReLU(), nn.Linear(mid, width), nn.Sigmoid())
