"""A small ResNet-like encoder with one convolutional decoder per dense task, for image inputs.

Standley et al. (2020) use a ResNet-50-like encoder and per-task decoders of transposed convolutions
on 256x256 Taskonomy images; this is the same shape at toy scale for the 32x32 or 64x64 images of
``taskonomy-mini``: a 3x3 stem and three residual stages (``channels``, 2x, 4x; the last two stride 2)
give the representation at 1/4 resolution; each dense decoder mirrors it with two (conv, BN, ReLU,
2x nearest upsampling) stages and a 3x3 output convolution. Per-sample tasks (regression, binary,
multiclass) on images get a global-average-pool + linear head.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from workers.losses import kind_spec, output_channels
from workers.models.base import ModelFamily, MultiTaskModel, Stage, scaled

__all__ = ["STRIDES", "ConvFamily", "ConvOptions", "DenseDecoder", "ResidualBlock"]

STRIDES = (1, 2, 2)
"""Stride of the first block of each of the three residual stages."""


class ConvOptions(BaseModel):
    """Full-size (capacity 1.0) widths; a candidate's capacity scales every channel count."""

    model_config = ConfigDict(extra="forbid")

    channels: int = Field(8, ge=1, le=4096, description="channels of the first stage at capacity 1")
    blocks: int = Field(1, ge=1, le=16, description="residual blocks per stage")


def _conv_bn(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class ResidualBlock(nn.Module):
    """The basic ResNet block (He et al. 2016): two 3x3 convolutions plus a (projected) shortcut."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_intermediate(x)[1]

    def forward_with_intermediate(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(u, p)``: the first convolution's activation and the block's output (MTAN reads both)."""
        mid = F.relu(self.bn1(self.conv1(x)))
        return mid, F.relu(self.bn2(self.conv2(mid)) + self.shortcut(x))


class DenseDecoder(nn.Module):
    """Representation (C3, H/4, W/4) -> per-pixel map (outputs, H, W)."""

    def __init__(self, cin: int, mid: int, low: int, outputs: int, size: tuple[int, int]) -> None:
        super().__init__()
        self.size = size
        self.body = nn.Sequential(
            *_conv_bn(cin, mid),
            nn.Upsample(scale_factor=2, mode="nearest"),
            *_conv_bn(mid, low),
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(low, outputs, 3, 1, 1),
        )

    def forward(self, representation: torch.Tensor) -> torch.Tensor:
        out = self.body(representation)
        if tuple(out.shape[-2:]) != self.size:  # sizes not divisible by 4
            out = F.interpolate(out, size=self.size, mode="bilinear", align_corners=False)
        return out


class ConvFamily(ModelFamily):
    input_kind = "image"
    Options = ConvOptions

    def _setup(self) -> None:
        super()._setup()
        if len(self.input_shape) != 3:
            raise ValueError(f"inputs: a conv model needs image inputs (C, H, W), got {self.input_shape}")

    def widths(self, multiplier: float) -> tuple[int, int, int]:
        """Channels of the three stages at ``multiplier`` (each rounded on its own)."""
        opts: ConvOptions = self.options  # type: ignore[assignment]
        c1, c2, c3 = (scaled(opts.channels * f, multiplier) for f in (1, 2, 4))
        return c1, c2, c3

    def stages(self, multiplier: float) -> list[Stage]:
        """The stem and the three residual stages: where each ends in the encoder, and its output shape."""
        opts: ConvOptions = self.options  # type: ignore[assignment]
        _, h, w = self.input_shape
        out = [Stage(3, (self.widths(multiplier)[0], h, w))]  # conv, BN, ReLU
        for index, (channels, stride) in enumerate(zip(self.widths(multiplier), STRIDES, strict=True)):
            h, w = (h - 1) // stride + 1, (w - 1) // stride + 1
            out.append(Stage(3 + (index + 1) * opts.blocks, (channels, h, w)))
        return out

    def flops(self, multiplier: float) -> int:
        opts: ConvOptions = self.options  # type: ignore[assignment]
        c1, c2, c3 = self.widths(multiplier)
        channels, h, w = self.input_shape

        def conv(cin: int, cout: int, kernel: int, height: int, width: int) -> int:
            return 2 * cin * cout * kernel * kernel * height * width

        total = conv(channels, c1, 3, h, w)
        cin = c1
        for cout, stride in zip((c1, c2, c3), STRIDES, strict=True):
            for i in range(opts.blocks):
                s = stride if i == 0 else 1
                h, w = (h - 1) // s + 1, (w - 1) // s + 1  # 3x3 pad 1 and 1x1 pad 0 give the same size
                total += conv(cin, cout, 3, h, w) + conv(cout, cout, 3, h, w)
                if s != 1 or cin != cout:
                    total += conv(cin, cout, 1, h, w)
                cin = cout
        for task in self.tasks:
            outputs = output_channels(task)
            if kind_spec(task).dense:
                total += (
                    conv(c3, c2, 3, h, w) + conv(c2, c1, 3, 2 * h, 2 * w) + conv(c1, outputs, 3, 4 * h, 4 * w)
                )
            else:
                total += 2 * c3 * outputs
        return total

    def build(self, multiplier: float) -> MultiTaskModel:
        opts: ConvOptions = self.options  # type: ignore[assignment]
        c1, c2, c3 = self.widths(multiplier)
        layers: list[nn.Module] = [*_conv_bn(self.input_shape[0], c1)]
        cin = c1
        block: ResidualBlock | None = None
        for cout, stride in zip((c1, c2, c3), STRIDES, strict=True):
            for i in range(opts.blocks):
                block = ResidualBlock(cin, cout, stride if i == 0 else 1)
                layers.append(block)
                cin = cout
        assert block is not None
        size = (self.input_shape[1], self.input_shape[2])
        heads: dict[str, nn.Module] = {}
        for task in self.tasks:
            outputs = output_channels(task)
            if kind_spec(task).dense:
                heads[task.name] = DenseDecoder(c3, c2, c1, outputs, size)
            else:
                heads[task.name] = nn.Sequential(
                    nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c3, outputs)
                )
        return MultiTaskModel(nn.Sequential(*layers), heads, last_shared=block.conv2, multiplier=multiplier)
