"""Task gradients at the shared representation, as a Gram matrix (MGDA-UB and Pareto MTL).

Sener & Koltun (NeurIPS 2018) bound the multi-objective step by the gradients of the task losses with
respect to the shared representation Z instead of the shared parameters: one backward pass per task
through the task-specific layers only. ``context.representation`` is that Z for every architecture
(``docs/architectures.md``).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["representation_gram"]


def representation_gram(stacked: torch.Tensor, representation: torch.Tensor, method: str) -> np.ndarray:
    """The float64 Gram matrix ``G_ij = g_i . g_j`` of ``g_i = d stacked[i] / d representation``.

    A loss that does not reach the representation has a zero gradient. ValueError (naming ``method``)
    when the representation is not part of the graph.
    """
    if not representation.requires_grad:
        raise ValueError(
            f"context.representation: {method} needs the shared representation as part of the graph "
            "(a tensor that requires grad, not detached)"
        )
    rows = []
    for loss in stacked:
        (grad,) = torch.autograd.grad(loss, representation, retain_graph=True, allow_unused=True)
        rows.append(torch.zeros_like(representation) if grad is None else grad.detach())
    grads = torch.stack([g.reshape(-1) for g in rows]).double()
    return (grads @ grads.T).cpu().numpy()
