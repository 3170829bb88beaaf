"""Preference vectors of Pareto MTL: K unit vectors spread evenly over the positive orthant of R^m.

Lin et al. (NeurIPS 2019, "Pareto multi-task learning") split the loss space of m tasks into K sub-regions
by K preference vectors ``u_1 .. u_K``; the training that follows ``u_k`` keeps its loss vector closer (in
angle) to ``u_k`` than to any other. A large component of ``u_k`` lets that task keep a larger loss: ``u_k``
is the direction of the loss vector the training aims at.

Construction (``preference_vectors(m, K)``, rows in this order):

* m = 1: K copies of ``(1,)`` (one task has no trade-off);
* m = 2: ``u_k = (cos t_k, sin t_k)`` with ``t_k = k pi / (2 (K - 1))``, k = 0 .. K-1: evenly spread angles
  from task 1's axis to task 2's, both included (the paper's and the released code's ``circle_points``);
  K = 1 gives the diagonal ``t = pi / 4`` (the released code would give the axis ``t = 0``);
* m >= 3 (the paper shows two tasks only): the Das-Dennis simplex lattice (Das & Dennis, SIAM J. Optim.
  1998) with the fewest divisions H that give at least K points, ``{w : w_i in {0, 1/H, ..., 1}, sum w =
  1}``, each normalised to unit length; if it has more than K points, K of them are chosen greedily, first the
  one closest to the diagonal ``(1, ..., 1)``, then each time the one farthest in angle from those chosen
  (ties to the earlier in the lattice's order); the chosen vectors are listed in the lattice's order
  (lexicographically decreasing weights, so k = 0 leans toward task 1's axis).

``balanced_index(vectors)`` is the index of the vector closest to the diagonal (the lowest on ties): the
default preference of a training.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

__all__ = ["balanced_index", "preference_vectors", "simplex_lattice"]

#: decimals to which cosines are rounded before comparing them, so that ties break by index, not round-off
DECIMALS = 12


def _compositions(total: int, parts: int) -> Iterator[tuple[int, ...]]:
    """Non-negative integer vectors of ``parts`` entries summing to ``total``, lexicographically
    decreasing."""
    if parts == 1:
        yield (total,)
        return
    for first in range(total, -1, -1):
        for rest in _compositions(total - first, parts - 1):
            yield (first, *rest)


def simplex_lattice(tasks: int, divisions: int) -> np.ndarray:
    """The Das-Dennis lattice: every point of the unit simplex of R^tasks with coordinates in steps of
    ``1 / divisions``, in lexicographically decreasing order: ``comb(divisions + tasks - 1, tasks - 1)``
    rows."""
    if tasks < 1 or divisions < 1:
        raise ValueError(f"simplex_lattice: tasks and divisions must be >= 1, got {tasks}, {divisions}")
    return np.array(list(_compositions(divisions, tasks)), dtype=np.float64) / divisions


def balanced_index(vectors: np.ndarray) -> int:
    """Index of the row closest in angle to the diagonal (1, ..., 1); the lowest index on ties."""
    rows = np.asarray(vectors, dtype=np.float64)
    diagonal = np.ones(rows.shape[1]) / math.sqrt(rows.shape[1])
    cosines = np.round(rows @ diagonal / np.linalg.norm(rows, axis=1), DECIMALS)
    return int(np.argmax(cosines))


def _spread(unit: np.ndarray, count: int) -> list[int]:
    """Greedy farthest-point choice of ``count`` rows of ``unit`` (unit vectors), from the most balanced."""
    chosen = [balanced_index(unit)]
    closest = np.round(unit @ unit[chosen[0]], DECIMALS)  # the largest cosine to a chosen row, per row
    closest[chosen[0]] = np.inf
    while len(chosen) < count:
        pick = int(np.argmin(closest))  # farthest in angle from every chosen row; first on ties
        chosen.append(pick)
        closest = np.maximum(closest, np.round(unit @ unit[pick], DECIMALS))
        closest[pick] = np.inf
    return sorted(chosen)


def preference_vectors(tasks: int, count: int) -> np.ndarray:
    """``count`` unit preference vectors for ``tasks`` tasks, shape (count, tasks) (module docstring)."""
    if tasks < 1 or count < 1:
        raise ValueError(f"preference_vectors: tasks and count must be >= 1, got {tasks}, {count}")
    if tasks == 1:
        return np.ones((count, 1))
    if tasks == 2:
        angles = np.array([math.pi / 4]) if count == 1 else np.linspace(0.0, math.pi / 2, count)
        return np.stack([np.cos(angles), np.sin(angles)], axis=1)
    divisions = 1
    while math.comb(divisions + tasks - 1, tasks - 1) < count:
        divisions += 1
    lattice = simplex_lattice(tasks, divisions)
    unit = lattice / np.linalg.norm(lattice, axis=1, keepdims=True)
    return unit[_spread(unit, count)] if len(unit) > count else unit
