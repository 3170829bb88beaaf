"""The higher-order approximation (HOA) of Standley et al. (ICML 2020), section 3.4.

Train only the single-task networks and the ``n(n-1)/2`` pairs; predict the loss of task ``a`` in a network
of a group ``G`` (``|G| >= 3``) as the mean of ``a``'s loss in the pair networks ``{a, b}``, ``b`` in ``G``::

    L_hat[G, a] = mean_{b in G, b != a} L[{a, b}, a]

The returned table keeps every measured row of at most two tasks (all capacities) and adds a predicted row
(``predicted=True``) for every subset of three tasks or more at the pairs' capacity (full size by default).
Like the paper, measured rows of three tasks or more are *replaced* by predictions unless
``keep_measured=True``.

Sparse candidate sets: with ``groups`` (e.g. from :func:`grouping.candidate_groups.candidate_groups`), only
those groups of three tasks or more are predicted, not every subset; each predicted row equals the full HOA's
row of the same network. Without ``groups`` the 2^n subsets are enumerated, which is refused above
:data:`MAX_FULL_TASKS` tasks (a departure: the paper never went beyond five tasks).

Missing pairs: by default a prediction that needs a pair the table lacks is an error naming the pair
(predicting from fewer pairs would silently change the approximation). ``on_missing_pair="skip"`` leaves
such candidates out instead (they are then unavailable to the solver). The paper's code averages over the
pairs present; we do not.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from itertools import combinations
from typing import Literal

from grouping.candidates import FULL, Candidate
from grouping.table import LossTable, TableRow

logger = logging.getLogger(__name__)

MissingPair = Literal["error", "skip"]

MAX_FULL_TASKS = 20
"""Most tasks for which HOA predicts every subset (2^n rows); beyond, pass the candidate ``groups``."""


class MissingPairError(ValueError):
    """A HOA prediction needs pair networks the table does not have (``network``: the label of the network
    that cannot be predicted, ``missing``: the labels of the missing pairs)."""

    def __init__(self, network: str, missing: list[str]) -> None:
        self.network = network
        self.missing = missing
        super().__init__(
            f"HOA cannot predict network {network}: no pair network {', '.join(missing)} (train it, or pass "
            "on_missing_pair='skip' to leave such networks out)"
        )


def higher_order_approximation(
    table: LossTable,
    *,
    capacity: float = FULL,
    keep_measured: bool = False,
    on_missing_pair: MissingPair = "error",
    groups: Iterable[Sequence[str]] | None = None,
) -> LossTable:
    """A new table whose rows of three tasks or more are predicted from the pairs (see the module doc);
    ``groups``: predict only these groups (their rows of fewer than three tasks are ignored: singles and
    pairs are measured), not every subset."""
    if on_missing_pair not in ("error", "skip"):
        raise ValueError(f"on_missing_pair must be 'error' or 'skip', got {on_missing_pair!r}")
    tasks = table.tasks
    if groups is None and len(tasks) > MAX_FULL_TASKS:
        raise ValueError(
            f"HOA over every subset of {len(tasks)} tasks would predict 2^{len(tasks)} networks (at most "
            f"{MAX_FULL_TASKS} tasks); pass groups=..., e.g. from grouping.candidate_groups.candidate_groups"
        )
    wanted = _all_groups(tasks) if groups is None else _given_groups(table, groups)
    pair_loss: dict[tuple[str, str], float] = {}  # (a, b) -> loss of a in the pair network {a, b}
    for cand, row in table.rows.items():
        if cand.size == 2 and cand.capacity == capacity:
            a, b = cand.tasks
            pair_loss[(a, b)] = row.losses[a]
            pair_loss[(b, a)] = row.losses[b]

    rows = [row for cand, row in table.rows.items() if cand.size <= 2 or (keep_measured and cand.size >= 3)]
    measured = {row.candidate for row in rows}
    skipped: list[str] = []
    for group in wanted:
        size = len(group)
        cand = Candidate(group, capacity)
        if cand in measured:
            continue
        missing = sorted(
            {
                Candidate((a, b), capacity).label()
                for a, b in combinations(group, 2)
                if (a, b) not in pair_loss
            }
        )
        if missing:
            if on_missing_pair == "error":
                raise MissingPairError(cand.label(), missing)
            skipped.append(cand.label())
            continue
        losses = {a: sum(pair_loss[(a, b)] for b in group if b != a) / (size - 1) for a in group}
        rows.append(TableRow(cand, losses, predicted=True))
    if skipped:
        logger.info("HOA: %d networks left out for lack of pairs: %s", len(skipped), ", ".join(skipped))
    return LossTable(tasks, rows)


def _all_groups(tasks: Sequence[str]) -> Iterator[tuple[str, ...]]:
    for size in range(3, len(tasks) + 1):
        yield from combinations(tasks, size)


def _given_groups(table: LossTable, groups: Iterable[Sequence[str]]) -> list[tuple[str, ...]]:
    """The groups of three tasks or more, in table task order, deduplicated, in the full HOA's order."""
    out = set()
    for group in groups:
        cand = table.candidate(group)  # ValueError naming an unknown or repeated task
        if cand.size >= 3:
            out.add(tuple(table.task_index(t) for t in cand.tasks))
    return [tuple(table.tasks[i] for i in g) for g in sorted(out, key=lambda g: (len(g), g))]


hoa = higher_order_approximation

__all__ = ["MAX_FULL_TASKS", "MissingPair", "MissingPairError", "higher_order_approximation", "hoa"]
