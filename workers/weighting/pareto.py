"""Pareto MTL (Lin, Zhen, Li, Zhang & Kwong, NeurIPS 2019, "Pareto multi-task learning").

The m task losses ``F = (L_1, ..., L_m)`` are one multi-objective problem. Pareto MTL splits the loss space
into K sub-regions by K preference vectors ``u_1 .. u_K`` (:mod:`workers.weighting.preferences`) and trains
one network per sub-region: the training that follows ``u_k`` solves

    min F(theta)   subject to   G_j(theta) = (u_j - u_k)^T F(theta) <= 0   for every j != k,

i.e. its loss vector stays closer in angle to ``u_k`` than to any other preference vector. The K trainings
of a family (``preference`` = 0 .. K-1, the same ``preferences`` = K) give K Pareto-optimal trade-offs; the
store keys them apart because the options are part of the training settings.

Every step (the paper's Sec. 3.2, Eqs. 11-14):

1. the constraints are evaluated on the batch losses scaled to unit length, ``G_j = (u_j - u_k) . F / |F|``
   (as the released code does; the sign is what matters), and the active set is
   ``I = {j != k : G_j > -epsilon}`` (``epsilon`` 0: the violated constraints, as the released code; the
   paper writes ``G_j >= -epsilon``);
2. the direction is the minimum-norm element of the convex hull of the task gradients ``g_i`` and the
   active constraints' gradients ``grad G_j = sum_i (u_j - u_k)_i g_i``:
   ``(lambda, beta) = argmin |sum_i lambda_i g_i + sum_j beta_j grad G_j|^2`` over ``lambda, beta >= 0``,
   ``sum lambda + sum beta = 1``. This is the dual of the paper's subproblem (Eq. 12)
   ``min_{d, a} a + |d|^2 / 2`` s.t. ``g_i . d <= a``, ``grad G_j . d <= a`` (``d = -sum lambda_i g_i -
   sum beta_j grad G_j``); it is solved exactly by :func:`workers.weighting.min_norm.min_norm_simplex` on
   the (m + |I|)-square Gram matrix, and its KKT conditions are checked in the tests;
3. the step is reduced to per-task weights (Eq. 14), ``alpha_i = lambda_i + sum_j beta_j (u_j - u_k)_i``,
   rescaled so that ``sum_i |alpha_i| = m`` (the released code's ``normalize_coeff``; it keeps the loss
   scale of ``equal``), and one backward pass of ``sum_i alpha_i L_i`` follows.

Initial solution (the paper's Sec. 3.3; the released code's ``get_d_paretomtl_init``): until a step finds
no violated constraint, and for at most ``init_epochs`` epochs, the step descends the violated
constraints only: ``beta`` = min-norm over ``{grad G_j : G_j > 0}`` and ``alpha_i = sum_j beta_j (u_j -
u_k)_i``. The first feasible step ends this phase for good.

A weight may be NEGATIVE (unlike every other method of the registry): with an active constraint the
direction may raise one task's loss to bring the loss vector back into its sub-region. (Where the min-norm
point d is not zero, ``v . d >= |d|^2 > 0`` for every vector v of the hull, so the update still descends
every task and every active constraint at first order.)

Options: ``preferences`` K (default 5, the released code's), ``preference`` k in 0 .. K-1 (default: the
vector closest to the diagonal, i.e. the most balanced trade-off), ``epsilon`` (default 0) and
``init_epochs`` (default 2, the released code's bound on the search for a feasible start).

Departures: the gradients are taken with respect to the shared representation (MGDA-UB's upper bound,
``context.representation``: one backward pass per task through the task-specific layers; the released
code differentiates every parameter and points to this route for large networks); the min-norm problem is
solved exactly (the released code uses Frank-Wolfe iterations); the preference vectors for three tasks or
more (the paper shows two) and the boundary of the active set are ours, as said above. One task: no
constraint, weight exactly 1 (plain training).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from workers.weighting.base import BackwardContext, LossWeighting
from workers.weighting.gradients import representation_gram
from workers.weighting.min_norm import min_norm_simplex
from workers.weighting.preferences import balanced_index, preference_vectors

__all__ = [
    "ParetoOptions",
    "ParetoStep",
    "ParetoWeighting",
    "active_constraints",
    "constraint_values",
    "initial_step",
    "pareto_step",
    "rescale",
]


class ParetoOptions(BaseModel):
    """``preferences``: K vectors; ``preference``: which one (None: the most balanced); ``epsilon``: the
    active-set margin; ``init_epochs``: epochs at most spent looking for a feasible start."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    preferences: int = Field(5, ge=1, le=1000)
    preference: int | None = Field(None, ge=0)
    epsilon: float = Field(0.0, ge=0.0, le=2.0)
    init_epochs: int = Field(2, ge=0, le=10_000)

    @model_validator(mode="after")
    def _preference_in_range(self) -> ParetoOptions:
        if self.preference is not None and self.preference >= self.preferences:
            raise ValueError(
                f"preference: must be below preferences ({self.preferences}), got {self.preference}"
            )
        return self


@dataclass(frozen=True)
class ParetoStep:
    """One step's solution: ``weights`` alpha (one per task, before :func:`rescale`), ``coefficients``
    (lambda then beta: the min-norm point's weights over the hull's vectors), the ``active`` constraint
    indices j, and the hull's Gram matrix (task gradients first, then the active constraints')."""

    weights: np.ndarray
    coefficients: np.ndarray
    active: np.ndarray
    gram: np.ndarray


def constraint_values(losses: np.ndarray, vectors: np.ndarray, index: int) -> np.ndarray:
    """``G_j = (u_j - u_k) . F / |F|`` for every preference vector j (0 for j = k; all 0 if F = 0)."""
    f = np.asarray(losses, dtype=np.float64)
    norm = float(np.linalg.norm(f))
    differences = np.asarray(vectors, dtype=np.float64) - vectors[index]
    return differences @ (f / norm) if norm > 0 else np.zeros(len(differences))


def active_constraints(losses: np.ndarray, vectors: np.ndarray, index: int, epsilon: float) -> np.ndarray:
    """Indices j != k with ``G_j > -epsilon`` (a constraint with ``u_j = u_k`` is never active)."""
    values = constraint_values(losses, vectors, index)
    distinct = np.abs(np.asarray(vectors) - vectors[index]).max(axis=1) > 1e-12
    return np.flatnonzero(distinct & (values > -epsilon))


def _solve(gram: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Min-norm over the vectors ``rows @ g`` (g the task gradients): their Gram, the coefficients, alpha."""
    hull = rows @ gram @ rows.T
    coefficients = min_norm_simplex(hull)
    return hull, coefficients, rows.T @ coefficients


def pareto_step(
    gram: np.ndarray, losses: np.ndarray, vectors: np.ndarray, index: int, epsilon: float = 0.0
) -> ParetoStep:
    """The main step: min-norm over the task gradients and the active constraints' gradients (Eq. 14)."""
    m = gram.shape[0]
    active = active_constraints(losses, vectors, index, epsilon)
    rows = np.vstack([np.eye(m), np.asarray(vectors)[active] - vectors[index]])
    hull, coefficients, weights = _solve(np.asarray(gram, dtype=np.float64), rows)
    return ParetoStep(weights, coefficients, active, hull)


def initial_step(gram: np.ndarray, losses: np.ndarray, vectors: np.ndarray, index: int) -> ParetoStep | None:
    """The initial-solution step (descend the violated constraints only); None when none is violated."""
    active = active_constraints(losses, vectors, index, 0.0)
    if len(active) == 0:
        return None
    rows = np.asarray(vectors)[active] - vectors[index]
    hull, coefficients, weights = _solve(np.asarray(gram, dtype=np.float64), rows)
    return ParetoStep(weights, coefficients, active, hull)


def rescale(weights: np.ndarray, tasks: int) -> np.ndarray:
    """``weights * tasks / sum |weights|`` (the released code's normalisation); zeros stay zeros."""
    total = float(np.abs(weights).sum())
    return weights * (tasks / total) if total > 0 else np.asarray(weights, dtype=np.float64)


class ParetoWeighting(LossWeighting):
    """Min-norm steps within the sub-region of one preference vector (Lin et al., 2019)."""

    name = "pareto"
    negative_weights = True
    Options = ParetoOptions
    options: ParetoOptions

    def __init__(self, tasks: list[str], **options: object) -> None:
        super().__init__(tasks, **options)
        self.vectors = preference_vectors(self.n_tasks, self.options.preferences)
        chosen = self.options.preference
        self.index = balanced_index(self.vectors) if chosen is None else chosen
        self.searching = self.options.init_epochs > 0  # still looking for a feasible start

    @property
    def preference_vector(self) -> np.ndarray:
        """``u_k``: the preference vector this training follows."""
        return self.vectors[self.index]

    def backward(self, losses: dict[str, torch.Tensor], context: BackwardContext) -> dict[str, float]:
        stacked = self.stack_losses(losses)
        if self.n_tasks == 1:
            stacked.sum().backward()
            return {self.tasks[0]: 1.0}
        gram = representation_gram(stacked, context.representation, self.name)
        values = stacked.detach().double().cpu().numpy()
        step = None
        if self.searching and context.epoch < self.options.init_epochs:
            step = initial_step(gram, values, self.vectors, self.index)
        if step is None:
            self.searching = False
            step = pareto_step(gram, values, self.vectors, self.index, self.options.epsilon)
        weights = rescale(step.weights, self.n_tasks)
        (torch.as_tensor(weights, dtype=stacked.dtype, device=stacked.device) * stacked).sum().backward()
        return dict(zip(self.tasks, weights.tolist(), strict=True))

    def get_extra_state(self) -> dict[str, Any]:
        return {"searching": bool(self.searching)}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.searching = bool(state.get("searching", False))
