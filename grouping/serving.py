"""The serving rule: which of a set of chosen networks serves each task (one definition for the solver,
the baselines and the evaluation).

Standley et al. (ICML 2020), section 3.3: every task is served by the chosen network in which its loss is
lowest; the others that train it use it as an auxiliary task. Which table decides ("lowest loss" on the
selection or the scoring table) is the caller's choice (``serve_by`` in :mod:`grouping.solver`). Ties go to
the network listed first.
"""

from __future__ import annotations

from collections.abc import Sequence

from grouping.candidates import Candidate
from grouping.table import LossTable


def serve_by_table(networks: Sequence[Candidate], table: LossTable) -> dict[str, Candidate]:
    """Each task of ``table`` that some network trains, served by the one with its lowest loss in ``table``
    (ties: the earlier network of ``networks``); tasks no network trains are left out."""
    out: dict[str, Candidate] = {}
    for task in table.tasks:
        holders = [c for c in networks if task in c.tasks]
        if holders:
            out[task] = min(holders, key=lambda c: table.loss(c, task))  # min keeps the first of equals
    return out


def serving(networks: Sequence[Candidate], table: LossTable, role: str = "selection") -> dict[str, Candidate]:
    """:func:`serve_by_table`, checked: ValueError if a network is not in ``table`` (the ``role`` table) or
    a task has no network."""
    missing = [c.label() for c in networks if c not in table]
    if missing:
        raise ValueError(f"network(s) {', '.join(missing)} are not in the {role} table")
    out = serve_by_table(networks, table)
    for task in table.tasks:
        if task not in out:
            raise ValueError(f"task {task!r} is trained by none of the networks; add a network with it")
    return out


__all__ = ["serve_by_table", "serving"]
