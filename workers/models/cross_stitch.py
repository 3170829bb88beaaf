"""Cross-stitch networks (Misra, Shrivastava, Gupta & Hebert, CVPR 2016, "Cross-stitch networks for
multi-task learning").

One column per task (the hard-sharing single-task network of the input kind, see
:mod:`workers.models.columns`); at the end of every stage a cross-stitch unit replaces the k columns'
features ``x_1 .. x_k`` by learned linear combinations ``x~_t = sum_j alpha_tj x_j`` (the paper's Eq. 1,
generalised from two tasks to k: one k x k matrix per unit, shared over channels and positions).

Initialisation: ``alpha_tt = 1 - mixing`` and ``alpha_tj = mixing / (k - 1)``, i.e. identity plus a small
mixing (the paper's convex initialisation, whose best setting for two tasks is alpha_S = 0.9,
alpha_D = 0.1: ``mixing`` 0.1). With ``mixing`` 0 every unit is the identity and the network computes
exactly what k independent single-task networks compute (checked by the tests).

Departures from the paper: the columns are trained from scratch together (the paper initialises them
from fine-tuned single-task AlexNets); the units learn with the trainer's optimiser and learning rate
(the paper scales the units' learning rate up by orders of magnitude; Adam's per-parameter step sizes
make that less necessary); units sit at every stage end of our small encoders (the paper places them
after the pooling layers and fc6/fc7 of AlexNet, which are its stage ends).
"""

from __future__ import annotations

import math

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from workers.models.columns import ColumnsFamily, mixing_matrix
from workers.models.conv import ConvFamily
from workers.models.mlp import MLPFamily

__all__ = [
    "CrossStitchConvFamily",
    "CrossStitchMLPFamily",
    "CrossStitchOptions",
    "CrossStitchUnit",
]


class CrossStitchOptions(BaseModel):
    """``mixing``: the weight each unit initially gives, in total, to the other tasks' columns."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mixing: float = Field(0.1, ge=0.0, le=1.0, description="initial off-diagonal total (paper: 0.1)")


class CrossStitchUnit(nn.Module):
    """``x~ = alpha @ x`` over the task axis of stacked features ``(batch, k, ...)``."""

    def __init__(self, tasks: int, mixing: float) -> None:
        super().__init__()
        self.alpha = nn.Parameter(mixing_matrix(tasks, mixing))

    def forward(self, stacked: torch.Tensor) -> torch.Tensor:
        return torch.matmul(self.alpha, stacked.flatten(2)).reshape(stacked.shape)


class _CrossStitch(ColumnsFamily):
    architecture = "cross-stitch"

    def unit(self, shape: tuple[int, ...]) -> nn.Module:
        options: CrossStitchOptions = self.architecture_options  # type: ignore[assignment]
        return CrossStitchUnit(len(self.tasks), options.mixing)

    def unit_flops(self, shape: tuple[int, ...]) -> int:
        k = len(self.tasks)
        return 2 * k * k * math.prod(shape)


class CrossStitchMLPFamily(_CrossStitch):
    """Cross-stitch over MLP columns: a unit after every trunk layer."""

    input_kind = "vector"
    Options = MLPFamily.Options
    base = MLPFamily


class CrossStitchConvFamily(_CrossStitch):
    """Cross-stitch over conv columns: a unit after the stem and after each residual stage."""

    input_kind = "image"
    Options = ConvFamily.Options
    base = ConvFamily
