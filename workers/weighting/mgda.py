"""MGDA-UB (Sener & Koltun, NeurIPS 2018, "Multi-task learning as multi-objective optimization").

At every step: the gradient ``g_t`` of each task loss with respect to the shared representation Z
(``context.representation``, the whole batch flattened; the upper bound of the paper, which needs one
backward pass through the heads only), optionally normalised, then the exact minimum-norm point of their
convex hull ``alpha = argmin_{alpha in simplex} |sum_t alpha_t g_t|^2`` (see
:mod:`workers.weighting.min_norm`), then one backward pass of ``sum_t alpha_t L_t`` through the whole
network. The returned weights are the alphas (they sum to 1).

``normalization`` (gradient normalisation before the solver; the alphas are applied to the raw losses):
``"loss+"`` (default: ``g_t / (L_t |g_t|)``, the setting of the authors' released ``sample.json``), ``"l2"``
(``g_t / |g_t|``), ``"loss"`` (``g_t / L_t``) or ``"none"`` (the paper's formulation, which does not
normalise). A normaliser of 0 (zero gradient or zero loss) leaves that gradient as it is.

Departures: the authors' released code solves the min-norm problem approximately (Frank-Wolfe, and a
two-task closed form clipped to [0.001, 0.999]); we solve it exactly (closed form clipped to [0, 1] for two
tasks, Wolfe's active-set algorithm checked against KKT for more). Like the released code (and unlike the
paper's Algorithm 2, which updates the task-specific parameters with their own unscaled gradients) the
task heads receive ``alpha_t * grad L_t``. With one task alpha = 1: plain training.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict

from workers.weighting.base import BackwardContext, LossWeighting
from workers.weighting.gradients import representation_gram
from workers.weighting.min_norm import min_norm_simplex

Normalization = Literal["loss+", "l2", "loss", "none"]


class MGDAOptions(BaseModel):
    """``normalization``: how the representation gradients are normalised before the min-norm solver."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    normalization: Normalization = "loss+"


def gradient_normalizers(
    norms: list[float], losses: list[float], normalization: Normalization
) -> list[float]:
    """The divisor of each task's gradient (1 where the divisor would be 0)."""
    by_kind = {
        "loss+": [loss * norm for loss, norm in zip(losses, norms, strict=True)],
        "l2": list(norms),
        "loss": list(losses),
        "none": [1.0] * len(norms),
    }
    return [d if d > 0 and np.isfinite(d) else 1.0 for d in by_kind[normalization]]


class MGDAWeighting(LossWeighting):
    """Exact min-norm weights of the representation gradients (MGDA-UB, Sener & Koltun, 2018)."""

    name = "mgda"
    Options = MGDAOptions
    options: MGDAOptions

    def representation_gram(
        self, losses: dict[str, torch.Tensor], representation: torch.Tensor
    ) -> tuple[np.ndarray, torch.Tensor]:
        """The Gram matrix of the (normalised) gradients of the losses w.r.t. Z, and the stacked losses."""
        stacked = self.stack_losses(losses)
        gram = representation_gram(stacked, representation, self.name)
        norms = np.sqrt(np.clip(np.diag(gram), 0.0, None)).tolist()
        loss_values = stacked.detach().double().cpu().tolist()
        divisors = np.array(gradient_normalizers(norms, loss_values, self.options.normalization))
        return gram / np.outer(divisors, divisors), stacked

    def backward(self, losses: dict[str, torch.Tensor], context: BackwardContext) -> dict[str, float]:
        if self.n_tasks == 1:
            stacked = self.stack_losses(losses)
            stacked.sum().backward()
            return {self.tasks[0]: 1.0}
        gram, stacked = self.representation_gram(losses, context.representation)
        alpha = min_norm_simplex(gram)
        (torch.as_tensor(alpha, dtype=stacked.dtype, device=stacked.device) * stacked).sum().backward()
        return dict(zip(self.tasks, alpha.tolist(), strict=True))
