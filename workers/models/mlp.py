"""MLP trunk plus small per-task heads, for vector inputs (tabular, planted).

The trunk is ``depth`` blocks of Linear + ReLU of ``width`` units; each head is Linear(width,
head_width) + ReLU + Linear(head_width, outputs), or a single Linear when ``head_width`` is 0. This is
the vector analogue of the paper's shared encoder with task-specific decoders.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from workers.losses import kind_spec, output_channels
from workers.models.base import ModelFamily, MultiTaskModel, Stage, scaled

__all__ = ["MLPFamily", "MLPOptions"]


class MLPOptions(BaseModel):
    """Full-size (capacity 1.0) widths; a candidate's capacity scales the hidden widths."""

    model_config = ConfigDict(extra="forbid")

    width: int = Field(128, ge=1, le=65_536, description="trunk units per layer at capacity 1")
    depth: int = Field(2, ge=1, le=64, description="trunk layers")
    head_width: int = Field(
        32, ge=0, le=65_536, description="hidden units per head at capacity 1; 0 = linear"
    )


class MLPFamily(ModelFamily):
    input_kind = "vector"
    Options = MLPOptions

    def _setup(self) -> None:
        super()._setup()
        if len(self.input_shape) != 1:
            raise ValueError(
                f"inputs: an MLP needs vector inputs of shape (features,), got {self.input_shape}"
            )
        for task in self.tasks:
            if kind_spec(task).dense:
                raise ValueError(
                    f"tasks: task {task.name!r} is {task.kind} (per pixel) but the inputs are vectors"
                )

    def stages(self, multiplier: float) -> list[Stage]:
        """One stage per trunk layer (Linear, ReLU): where each ends in the encoder, and its width."""
        opts: MLPOptions = self.options  # type: ignore[assignment]
        width = scaled(opts.width, multiplier)
        return [Stage(2 * (layer + 1), (width,)) for layer in range(opts.depth)]

    def flops(self, multiplier: float) -> int:
        opts: MLPOptions = self.options  # type: ignore[assignment]
        width = scaled(opts.width, multiplier)
        macs = self.input_shape[0] * width + (opts.depth - 1) * width * width
        for task in self.tasks:
            outputs = output_channels(task)
            if opts.head_width == 0:
                macs += width * outputs
            else:
                hidden = scaled(opts.head_width, multiplier)
                macs += width * hidden + hidden * outputs
        return 2 * macs

    def build(self, multiplier: float) -> MultiTaskModel:
        opts: MLPOptions = self.options  # type: ignore[assignment]
        width = scaled(opts.width, multiplier)
        layers: list[nn.Module] = []
        features = self.input_shape[0]
        last: nn.Linear | None = None
        for _ in range(opts.depth):
            last = nn.Linear(features, width)
            layers += [last, nn.ReLU()]
            features = width
        assert last is not None
        heads: dict[str, nn.Module] = {}
        for task in self.tasks:
            outputs = output_channels(task)
            if opts.head_width == 0:
                heads[task.name] = nn.Linear(width, outputs)
            else:
                hidden = scaled(opts.head_width, multiplier)
                heads[task.name] = nn.Sequential(
                    nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, outputs)
                )
        return MultiTaskModel(nn.Sequential(*layers), heads, last_shared=last, multiplier=multiplier)
