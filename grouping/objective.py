"""Objectives: how per-task losses add up into the total the solver minimises (a registry by name).

* ``sum`` (the paper's, Standley et al. ICML 2020): ``sum_t w_t L_t``.
* ``relative``: ``sum_t w_t L_t / L*_t`` where ``L*_t`` is task t's loss in its best single-task network of
  the same table (the minimum over the capacities of the network ``{t}``), so that tasks whose losses live on
  different scales count equally; a total of ``n`` means "as good as n single-task networks". Not in the
  paper. Needs a single-task network with a positive loss for every task.

Per-task weights ``w_t`` (default 1) multiply either objective.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Protocol

from grouping.table import LossTable
from grouping.weights import parse_weights


class Objective(Protocol):
    name: ClassVar[str]
    description: ClassVar[str]

    def scales(self, table: LossTable, role: str) -> dict[str, float]:
        """Per-task divisor applied to the losses of ``table`` (``role`` names it in error messages)."""
        ...


class SumObjective:
    name: ClassVar[str] = "sum"
    description: ClassVar[str] = "sum of the (weighted) task losses, as in the paper"

    def scales(self, table: LossTable, role: str) -> dict[str, float]:
        return dict.fromkeys(table.tasks, 1.0)


class RelativeObjective:
    name: ClassVar[str] = "relative"
    description: ClassVar[str] = "each task's loss divided by its loss in its best single-task network"

    def scales(self, table: LossTable, role: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for task in table.tasks:
            singles = table.single_task_losses(task)
            if not singles:
                raise ValueError(
                    f"objective 'relative' needs a single-task network for every task; the {role} table has "
                    f"none for task {task!r} (add a row {{{task}}} or use objective 'sum')"
                )
            ref = min(singles.values())
            if ref <= 0:
                raise ValueError(
                    f"objective 'relative' divides by the best single-task loss, which is {ref} for task "
                    f"{task!r} in the {role} table; it must be > 0 (use objective 'sum')"
                )
            out[task] = ref
        return out


OBJECTIVES: dict[str, Objective] = {o.name: o for o in (SumObjective(), RelativeObjective())}


def get_objective(name: str) -> Objective:
    try:
        return OBJECTIVES[name]
    except KeyError:
        raise ValueError(f"unknown objective {name!r}; choose one of {', '.join(OBJECTIVES)}") from None


def check_weights(tasks: tuple[str, ...], weights: Mapping[str, float] | None) -> dict[str, float]:
    """Per-task weights, default 1; ValueError for unknown tasks, negative or non-finite weights (the
    grammar of :func:`grouping.weights.parse_weights`)."""
    out = dict.fromkeys(tasks, 1.0)
    for task, value in (parse_weights(weights) or {}).items():
        if task not in out:
            raise ValueError(f"weights: unknown task {task!r}; the table's tasks are {', '.join(tasks)}")
        out[task] = value
    return out


def effective_weights(
    table: LossTable, objective: str, weights: Mapping[str, float] | None, role: str = "selection"
) -> dict[str, float]:
    """Multiplier of each task's loss in the total: weight / objective scale."""
    w = check_weights(table.tasks, weights)
    scales = get_objective(objective).scales(table, role)
    return {t: w[t] / scales[t] for t in table.tasks}


__all__ = [
    "OBJECTIVES",
    "Objective",
    "RelativeObjective",
    "SumObjective",
    "check_weights",
    "effective_weights",
    "get_objective",
]
