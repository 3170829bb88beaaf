"""NDDR-CNN (Gao, Ma, Zhao, Liu & Yuille, CVPR 2019, "NDDR-CNN: layerwise feature fusing in multi-task
CNNs by neural discriminative dimensionality reduction").

One column per task (the hard-sharing single-task conv network, see :mod:`workers.models.columns`); at
the end of every stage an NDDR layer concatenates the k columns' features along the channels
(``k C`` channels) and gives each task back ``C`` channels through its own 1x1 convolution, batch
normalisation and ReLU. Images only: the layer is a convolution over feature maps.

Initialisation (the paper's "diagonal" initialisation): the 1x1 weights of task t are ``1 - mixing``
times the identity on its own column's channels and ``mixing / (k - 1)`` times the identity on each other
column's (the paper's alpha = 0.9, beta = 0.1 for two tasks: ``mixing`` 0.1).

Cost: the 1x1 convolutions cost ``2 k^2 C^2`` FLOPs per pixel per stage end, which is not negligible
(a 3x3 convolution of the column costs ``18 C^2``): the measured FLOPs price it.

Departures from the paper: columns trained from scratch together (the paper starts from pretrained
single-task VGG/ResNet columns); NDDR layers at every stage end of our small encoder (the paper puts
one after each of VGG-16's five stages, which is the same rule); the layers learn with the trainer's
optimiser and learning rate (the paper scales the NDDR layers' learning rate and weight decay).
"""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from workers.models.columns import ColumnsFamily, mixing_matrix
from workers.models.conv import ConvFamily

__all__ = ["NDDRConvFamily", "NDDROptions", "NDDRUnit"]


class NDDROptions(BaseModel):
    """``mixing``: the weight each NDDR layer initially gives, in total, to the other tasks' columns."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mixing: float = Field(0.1, ge=0.0, le=1.0, description="initial off-diagonal total (paper: 0.1)")


class NDDRUnit(nn.Module):
    """Per task: 1x1 conv (k C -> C, no bias), BN, ReLU over the concatenated columns.

    Input and output: stacked column features ``(batch, k, C, H, W)``."""

    def __init__(self, tasks: int, channels: int, mixing: float) -> None:
        super().__init__()
        weights = torch.kron(mixing_matrix(tasks, mixing), torch.eye(channels))  # (k C, k C): row t = task t
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        for task in range(tasks):
            conv = nn.Conv2d(tasks * channels, channels, 1, bias=False)
            with torch.no_grad():
                conv.weight.copy_(weights[task * channels : (task + 1) * channels, :, None, None])
            self.convs.append(conv)
            self.norms.append(nn.BatchNorm2d(channels))

    def forward(self, stacked: torch.Tensor) -> torch.Tensor:
        joined = stacked.flatten(1, 2)
        fused = [torch.relu(norm(conv(joined))) for conv, norm in zip(self.convs, self.norms, strict=True)]
        return torch.stack(fused, dim=1)


class NDDRConvFamily(ColumnsFamily):
    """NDDR layers after the stem and after each residual stage of conv columns."""

    architecture = "nddr"
    input_kind = "image"
    Options = ConvFamily.Options
    base = ConvFamily

    def unit(self, shape: tuple[int, ...]) -> nn.Module:
        options: NDDROptions = self.architecture_options  # type: ignore[assignment]
        return NDDRUnit(len(self.tasks), shape[0], options.mixing)

    def unit_flops(self, shape: tuple[int, ...]) -> int:
        k = len(self.tasks)
        channels, height, width = shape
        return k * 2 * (k * channels) * channels * height * width
