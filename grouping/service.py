"""Solve a loss table: the one service both faces call (``taskgroup solve`` and ``POST /solve``).

Given a selection table (validation losses), an optional scoring table (test losses) and :class:`SolveOptions`
(budgets, objective, per-task weights, serving rule, HOA, solver method and time limit), :func:`solve_tables`
checks that the tables fit together, predicts the higher-order networks from the pairs when asked (HOA,
Standley et al. ICML 2020, section 3.4) and returns the budget curve. Every problem is a ``ValueError``
naming the option or table.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from grouping.affinity import pairwise_affinity
from grouping.budgets import parse_budgets
from grouping.candidate_groups import candidate_groups
from grouping.candidates import FULL
from grouping.hoa import MissingPair, MissingPairError, higher_order_approximation
from grouping.results import BudgetCurve
from grouping.solver import budget_curve
from grouping.table import LossTable
from grouping.weights import parse_weights


class SolveOptions(BaseModel):
    """How to solve a table: budgets, objective, weights, serving rule, HOA (the grammar of every face)."""

    model_config = ConfigDict(extra="forbid")

    budgets: list[float] | None = Field(
        None,
        description="SNT budgets: a list, one number, or text: a sweep 'start:stop[:step]' or '1,2,3'; "
        "default 1..n by 0.5",
    )
    objective: Literal["sum", "relative"] = Field("sum", description="sum (the paper's) or relative")
    serve_by: Literal["selection", "scoring"] = Field(
        "selection", description="which chosen network serves a task in the scoring total"
    )
    weights: dict[str, float] | None = Field(
        None, description="per-task weights of the objective: an object, or text 's=2,d=1'"
    )
    hoa: bool = Field(False, description="predict the 3+-task networks from the pairs first (HOA)")
    method: Literal["auto", "dp", "milp"] = Field(
        "auto",
        description="exact solver: 'dp' (dynamic programme over task subsets, dense tables of at most 20 "
        "tasks), 'milp' (sparse tables of any size: bounds, local search and HiGHS), 'auto' (the DP up to 12 "
        "tasks or for dense tables up to 20, else the MILP)",
    )
    time_limit: float | None = Field(
        None,
        gt=0,
        allow_inf_nan=False,
        description="seconds for the whole budget sweep (sparse solver only; null = no limit): when it "
        "stops the solver, each grouping reports its proven optimality_gap",
    )

    @field_validator("budgets", mode="before")
    @classmethod
    def _budgets(cls, value: Any) -> list[float] | None:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return [float(b) for b in _without_field_name(parse_budgets, value)]

    @field_validator("weights", mode="before")
    @classmethod
    def _weights(cls, value: Any) -> dict[str, float] | None:
        return _without_field_name(parse_weights, value)


def _without_field_name(parse: Any, value: Any) -> Any:
    """``parse(value)``, its ValueError without the leading ``field:`` (pydantic names the field itself)."""
    try:
        return parse(value)
    except ValueError as exc:
        raise ValueError(str(exc).partition(": ")[2] or str(exc)) from None


def aligned_scoring(selection: LossTable, scoring: LossTable | None) -> LossTable | None:
    """The scoring table with its tasks in the selection table's order; ValueError if the task sets differ."""
    if scoring is None or scoring.tasks == selection.tasks:
        return scoring
    if set(scoring.tasks) != set(selection.tasks):
        raise ValueError(
            f"the scoring table's tasks {list(scoring.tasks)} differ from the selection table's "
            f"{list(selection.tasks)}: give both tables the same tasks"
        )
    return LossTable(selection.tasks, scoring.rows.values())


HOA_ALL_SUBSETS = 12
"""Up to this many tasks HOA predicts every subset of three or more (the paper's); above, only the promising
groups of the table's pairwise affinity (:func:`grouping.candidate_groups.candidate_groups`)."""


def predicted_table(
    selection: LossTable, capacity: float = FULL, on_missing_pair: MissingPair = "error"
) -> LossTable:
    """``selection`` with HOA's predictions at ``capacity`` (Standley et al., section 3.4): every subset of
    3+ tasks for up to :data:`HOA_ALL_SUBSETS` tasks; above, only the groups the pairs' affinity makes
    promising, so 2^n subsets are never listed. A missing pair is a ValueError naming it, or with
    ``on_missing_pair="skip"`` the groups that need it are left out."""
    groups = None
    if selection.n_tasks > HOA_ALL_SUBSETS:
        groups = candidate_groups(pairwise_affinity(selection, capacity))
    try:
        return higher_order_approximation(
            selection, capacity=capacity, groups=groups, on_missing_pair=on_missing_pair
        )
    except MissingPairError as exc:
        raise ValueError(
            f"HOA cannot predict network {exc.network}: no pair network {', '.join(exc.missing)} "
            "(HOA needs every pair network of the tasks)"
        ) from None


def solve_tables(
    selection: LossTable,
    scoring: LossTable | None = None,
    options: SolveOptions | None = None,
    *,
    max_tasks: int | None = None,
    max_seconds: float | None = None,
) -> BudgetCurve:
    """The budget curve of ``selection`` (scored on ``scoring``) under ``options``.

    ``max_tasks``, ``max_seconds``: a service's limits (a larger table is refused, a longer time limit too;
    without a time limit of its own a request gets ``max_seconds``); the messages say how to go beyond them.
    """
    options = options or SolveOptions()
    if max_tasks is not None and selection.n_tasks > max_tasks:
        raise ValueError(
            f"the table has {selection.n_tasks} tasks; this service solves at most {max_tasks} "
            "(TASKGROUP_SOLVE_MAX_TASKS): use `taskgroup solve` for larger tables"
        )
    if max_seconds is not None:
        if options.time_limit is not None and options.time_limit > max_seconds:
            raise ValueError(
                f"time_limit: {options.time_limit:g} s is above this service's limit of {max_seconds:g} s "
                "(TASKGROUP_SOLVE_TIME_LIMIT): ask for less, or use `taskgroup solve --time-limit`"
            )
        options = options.model_copy(update={"time_limit": options.time_limit or max_seconds})
    scoring = aligned_scoring(selection, scoring)
    if options.hoa:
        selection = predicted_table(selection)
    return budget_curve(
        selection,
        budgets=options.budgets,
        scoring=scoring,
        weights=options.weights,
        objective=options.objective,
        serve_by=options.serve_by,
        method=options.method,
        time_limit=options.time_limit,
    )


__all__ = ["HOA_ALL_SUBSETS", "SolveOptions", "aligned_scoring", "predicted_table", "solve_tables"]
