"""Promising task groups for many tasks, from pairwise affinities, without enumerating the 2^n subsets.

Standley et al. (ICML 2020) train or predict (HOA, section 3.4) every subset of the tasks: 2^n - 1 networks,
which stops being possible beyond a dozen tasks. Here the candidate groups come from the pairwise affinity
table (:mod:`grouping.affinity`: measured pairs, or predicted pair gains) in the spirit of the paper's
observation that groups of mutually helpful tasks do best:

* every single task and every pair (the plan trains them anyway), and the all-task group (the paper's 1-SNT
  baseline: without it no budget below n / max_size SNT could be served, and the study's wq part showed the
  all-task network can be the best choice);
* **cliques** of the *positive-transfer graph* (an edge where the mean gain of the pair exceeds ``min_gain``)
  of 3 to ``max_size`` tasks, and its **communities** (greedy modularity, weighted by the gains) of that size;
* **beam growth**: for every task, a beam of ``beam_width`` groups containing it, grown one task at a time up
  to ``max_size`` by *predicted gain*, the HOA prediction of the group's total relative gain
  ``sum_{a in G} mean_{b in G, b != a} gain[a, b]``; a group is extended only by tasks with a known gain to
  each of its tasks and only if the extension raises the predicted gain.

A group of three tasks or more is kept only if the gain of each of its pairs is known (both directions), so
that HOA can predict it (:func:`grouping.hoa.higher_order_approximation` with ``groups``).

At most ``n + n(n-1)/2 + n * beam_width * (max_size - 2) + max_cliques + n + 1`` groups, whatever n. The
result is deterministic (sorted by size, then task indices; ties in the beam by task indices). Departure from
the paper: it has no such step (it enumerates all subsets); MTG-Net (Song et al., NeurIPS 2022) and TAG (Fifty
et al., NeurIPS 2021) also rank groups by predicted gain instead.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence

import networkx as nx
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from grouping.affinity import AffinityTable
from grouping.candidates import FULL, HALF, Candidate


class CandidateGroupOptions(BaseModel):
    """How many groups to build and how large (the boundary model a plan or a job spec carries)."""

    model_config = ConfigDict(extra="forbid")

    beam_width: int = Field(4, ge=1, description="groups kept per task and per size while growing")
    max_size: int = Field(6, ge=2, description="largest group (tasks)")
    min_gain: float = Field(0.0, description="edge of the positive-transfer graph: mean pair gain above this")
    max_cliques: int = Field(1000, ge=0, description="most maximal cliques examined (can be exponential)")


def predicted_gain(gain: np.ndarray, group: Sequence[int]) -> float:
    """``sum_{a in G} mean_{b in G, b != a} gain[a, b]`` (NaN if a pair is unknown, 0 for a single)."""
    if len(group) < 2:
        return 0.0
    idx = np.asarray(group)
    sub = gain[np.ix_(idx, idx)]
    off = ~np.eye(len(idx), dtype=bool)
    return float(sub[off].reshape(len(idx), len(idx) - 1).mean(axis=1).sum())


def transfer_graph(affinity: AffinityTable, min_gain: float = 0.0) -> nx.Graph:
    """Tasks as nodes (indices), an edge ``weight = mean gain`` where the mean gain of the pair exceeds
    ``min_gain`` (unknown pairs: no edge)."""
    graph = nx.Graph()
    n = len(affinity.tasks)
    graph.add_nodes_from(range(n))
    for i, j in itertools.combinations(range(n), 2):
        mean = (affinity.gain[i, j] + affinity.gain[j, i]) / 2
        if math.isfinite(mean) and mean > min_gain:
            graph.add_edge(i, j, weight=float(mean))
    return graph


def _beam(gain: np.ndarray, anchor: int, width: int, max_size: int) -> set[tuple[int, ...]]:
    n = gain.shape[0]
    known = np.isfinite(gain) & np.isfinite(gain.T)
    out: set[tuple[int, ...]] = set()
    beam: list[tuple[float, tuple[int, ...]]] = [(0.0, (anchor,))]
    for _ in range(2, max_size + 1):
        children: dict[tuple[int, ...], float] = {}
        for score, group in beam:
            for b in range(n):
                if b in group or not all(known[a, b] for a in group):
                    continue
                child = tuple(sorted((*group, b)))
                if child in children:
                    continue
                value = predicted_gain(gain, child)
                if value > score:
                    children[child] = value
        if not children:
            break
        ranked = sorted(children.items(), key=lambda kv: (-kv[1], kv[0]))[:width]
        beam = [(v, g) for g, v in ranked]
        out.update(g for _, g in beam if len(g) >= 3)
    return out


def candidate_groups(
    affinity: AffinityTable, options: CandidateGroupOptions | None = None
) -> list[tuple[str, ...]]:
    """Promising groups of ``affinity``'s tasks (see the module doc), as task-name tuples in table order,
    sorted by size then task indices; every single, every pair and the all-task group included."""
    options = options or CandidateGroupOptions()
    tasks = affinity.tasks
    n = len(tasks)
    gain = np.asarray(affinity.gain, dtype=np.float64)
    if gain.shape != (n, n):
        raise ValueError(f"the affinity matrix is {gain.shape}, expected ({n}, {n}) for {n} tasks")
    groups: set[tuple[int, ...]] = {(i,) for i in range(n)}
    groups.update(itertools.combinations(range(n), 2))
    groups.add(tuple(range(n)))
    graph = transfer_graph(affinity, options.min_gain)
    for clique in itertools.islice(nx.find_cliques(graph), options.max_cliques):
        if 3 <= len(clique) <= options.max_size:
            groups.add(tuple(sorted(clique)))
    if graph.number_of_edges():
        for community in nx.community.greedy_modularity_communities(graph, weight="weight"):
            if 3 <= len(community) <= options.max_size:
                groups.add(tuple(sorted(community)))
    for anchor in range(n):
        groups.update(_beam(gain, anchor, options.beam_width, options.max_size))
    known = np.isfinite(gain) & np.isfinite(gain.T)
    groups = {g for g in groups if len(g) < 3 or all(known[a, b] for a, b in itertools.combinations(g, 2))}
    return [tuple(tasks[i] for i in g) for g in sorted(groups, key=lambda g: (len(g), g))]


def group_candidates(
    groups: Iterable[Sequence[str]], capacity: float = FULL, half_singles: bool = True
) -> list[Candidate]:
    """The networks of ``groups`` at ``capacity``, after the half-size singles of their tasks (the paper's
    cheap networks) when ``half_singles``."""
    groups = [tuple(g) for g in groups]
    out: list[Candidate] = []
    if half_singles:
        out.extend(Candidate(g, HALF) for g in groups if len(g) == 1)
    out.extend(Candidate(g, capacity) for g in groups)
    return out


__all__ = [
    "CandidateGroupOptions",
    "candidate_groups",
    "group_candidates",
    "predicted_gain",
    "transfer_graph",
]
