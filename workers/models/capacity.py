"""Capacity -> width multiplier, chosen by counting inference FLOPs.

The paper's cost unit is the SNT (standard network time): a full-size network costs 1 whatever its
number of heads, a half-size network 0.5 (Standley et al. 2020, Sec. 3). We keep that accounting for
*cost* (the grouping solver never sees FLOPs), but we make the half-size network really cost half:
for a candidate with tasks T, the multiplier m is chosen so that

    FLOPs(model(T, m)) / FLOPs(model(T, 1)) ≈ capacity,

where FLOPs is the forward pass of one sample *including every head and decoder of T* (matrix
multiplications and convolutions, as ``torch.utils.flop_counter.FlopCounterMode`` counts them). Most layers
cost ~ width², the input and output layers ~ width, so m ≈ sqrt(capacity) but not exactly; we solve
for m by bisection on the counted FLOPs (on the ``meta`` device: no memory, no arithmetic) instead of
assuming the square root. Widths are rounded per layer, so the ratio is met to within rounding (the
tests check 10%). The real FLOPs per sample of a trained candidate are reported in
``TrainingResult.flops_per_sample``: a 5-task full-size network counts 1 SNT but does more work than a
single-task one, because of its extra decoders.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from workers.models.base import ModelFamily

__all__ = ["count_flops", "family_flops", "multiplier_for_capacity"]


def count_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Inference FLOPs of one sample through a built ``model`` (encoder and every head).

    Counts what ``torch.utils.flop_counter.FlopCounterMode`` counts for these models (2 x the
    multiply-accumulates of every convolution and linear layer; normalisation, activations, additions
    and upsampling are free) with forward hooks on one zero sample. Capacity solving uses the
    families' closed-form :meth:`ModelFamily.flops` instead (no forward pass). The hooks see
    ``nn.Conv2d`` and ``nn.Linear`` modules only: a cross-stitch unit's mixing is a matrix product they
    miss, so for architectures other than hard sharing use :meth:`ModelFamily.flops`.
    """
    flops = 0

    def hook(module: nn.Module, args: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal flops
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            flops += 2 * output.numel() * (module.in_channels // module.groups) * kh * kw
        elif isinstance(module, nn.Linear):
            flops += 2 * output.numel() * module.in_features

    device = next(iter(model.parameters())).device
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros((1, *input_shape), device=device))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return flops


_FLOPS: dict[tuple[object, ...], int] = {}
_MULTIPLIERS: dict[tuple[object, ...], float] = {}
_CACHE_LIMIT = 8192


def family_flops(family: ModelFamily, multiplier: float) -> int:
    """FLOPs per sample of ``family`` built at ``multiplier`` (cached per architecture and multiplier)."""
    key = (family.key(), float(multiplier))
    if key not in _FLOPS:
        if len(_FLOPS) >= _CACHE_LIMIT:
            _FLOPS.clear()
        _FLOPS[key] = family.flops(multiplier)
    return _FLOPS[key]


def multiplier_for_capacity(
    family: ModelFamily, capacity: float, iterations: int = 24, tolerance: float = 0.005
) -> float:
    """The width multiplier whose FLOPs ratio to the full-size (m = 1) model is closest to ``capacity``."""
    if not capacity > 0 or not math.isfinite(capacity):
        raise ValueError(f"capacity: must be a finite number > 0, got {capacity}")
    if capacity == 1.0:
        return 1.0
    key = (family.key(), float(capacity), iterations, tolerance)
    if key not in _MULTIPLIERS:
        if len(_MULTIPLIERS) >= _CACHE_LIMIT:
            _MULTIPLIERS.clear()
        _MULTIPLIERS[key] = _solve(family, float(capacity), iterations, tolerance)
    return _MULTIPLIERS[key]


def _solve(family: ModelFamily, capacity: float, iterations: int, tolerance: float) -> float:
    """Bisection on the counted FLOPs; stops early once within ``tolerance`` (relative) of the target."""
    target = capacity * family_flops(family, 1.0)
    lo, hi = 0.0, 1.0
    while family_flops(family, hi) < target:  # capacity > 1: widen the bracket
        lo, hi = hi, hi * 2
        if hi > 1e4:
            raise ValueError(f"capacity: {capacity} is beyond what the widths can reach")
    for _ in range(iterations):
        mid = (lo + hi) / 2
        flops = family_flops(family, mid)
        if abs(flops - target) <= tolerance * target:
            return mid
        if flops < target:
            lo = mid
        else:
            hi = mid
    candidates = [m for m in (lo, hi) if m > 0]
    return min(candidates, key=lambda m: (abs(family_flops(family, m) - target), m))
