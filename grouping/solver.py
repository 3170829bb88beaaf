"""Choose the networks: the exact grouping for a budget, and the budget curve over a sweep of budgets.

The problem is the one of Standley et al. (ICML 2020), "Which Tasks Should Be Learned Together in Multi-task
Learning?", section 3.3: among the candidates of a *selection* loss table, choose a set with total cost <=
budget (SNT) that minimises ``sum_t w_t * loss(serving network, t)``, every task being served by the chosen
network in which its selection loss is lowest. Networks may overlap: a task trained by a chosen network that
another chosen network serves better is an auxiliary task of the first.

The search is exact, not the paper's unbounded branch and bound: dynamic programming over task partitions
(:mod:`grouping.exact`) for dense tables of at most 20 tasks, or the sparse solver (:mod:`grouping.sparse`:
Lagrangian bounds, local search and HiGHS) for tables of any number of tasks that hold some of the candidates;
``method="auto"`` picks one (:mod:`grouping.engines`). With a time limit the sparse solver returns the best
grouping found and its proven optimality gap. Departures from the paper, all documented in ``docs/solver.md``:

* tie-breaking is deterministic: equal losses (relative tolerance ``1e-9``) -> lower total cost -> fewer
  networks -> the lexicographically smallest list of networks (taken in the order of the first task each
  serves; candidates compared by their task indices in table order, then capacity);
* the reported *scoring* total serves each task by the network chosen on the selection losses by default
  (``serve_by="selection"``); ``serve_by="scoring"`` reproduces the paper's released evaluation, which serves
  each task by the chosen network with the lowest *test* loss;
* an optional ``relative`` objective (see :mod:`grouping.objective`) and per-task weights.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction
from typing import ClassVar, Literal, Protocol

import numpy as np

from grouping.budgets import as_fraction, default_budgets
from grouping.candidates import Candidate
from grouping.engines import ENGINES, Engine, EngineInput, check_time_limit, resolve_method
from grouping.exact import budget_units, cost_units, min_cover_units
from grouping.objective import check_weights, effective_weights, get_objective
from grouping.results import BudgetCurve, Grouping, Network
from grouping.serving import serve_by_table
from grouping.table import LossTable

logger = logging.getLogger(__name__)

ServeBy = Literal["selection", "scoring"]
ObjectiveName = Literal["sum", "relative"]


class InfeasibleBudget(ValueError):
    """No selection within the budget serves every task; ``cheapest`` is the least budget that does."""

    def __init__(self, budget: float, cheapest: float) -> None:
        self.budget = budget
        self.cheapest = cheapest
        super().__init__(
            f"budget {budget:g} SNT cannot serve every task: the cheapest selection that does costs "
            f"{cheapest:g} SNT"
        )


def table_rank(table: LossTable) -> list[tuple[tuple[int, ...], float]]:
    """Tie-breaking key of each row (table order): task indices in table order, then capacity."""
    return [(tuple(table.task_index(t) for t in c.tasks), c.capacity) for c in table]


# -- serving rules (registry) --------------------------------------------------------------------------------
class ServeRule(Protocol):
    name: ClassVar[str]

    def assign(
        self, networks: Sequence[Candidate], selection: LossTable, scoring: LossTable | None
    ) -> dict[str, Candidate] | None:
        """task -> serving network for the scoring total, or None if it cannot be computed."""
        ...


class BySelection:
    """The honest rule (default): the network chosen on the selection losses serves the task."""

    name: ClassVar[str] = "selection"

    def assign(
        self, networks: Sequence[Candidate], selection: LossTable, scoring: LossTable | None
    ) -> dict[str, Candidate] | None:
        return serve_by_table(networks, selection)


class ByScoring:
    """The paper's released evaluation: the chosen network with the lowest *scoring* (test) loss serves."""

    name: ClassVar[str] = "scoring"

    def assign(
        self, networks: Sequence[Candidate], selection: LossTable, scoring: LossTable | None
    ) -> dict[str, Candidate] | None:
        if scoring is None or any(c not in scoring for c in networks):
            return None
        return serve_by_table(networks, scoring)


SERVE_RULES: dict[str, ServeRule] = {r.name: r for r in (BySelection(), ByScoring())}


def get_serve_rule(name: str) -> ServeRule:
    try:
        return SERVE_RULES[name]
    except KeyError:
        raise ValueError(f"unknown serve_by {name!r}; choose one of {', '.join(SERVE_RULES)}") from None


# -- the solver ----------------------------------------------------------------------------------------------
def _checked_totals(weighted: np.ndarray) -> np.ndarray:
    """The weighted losses, if every total of them is a finite float; ValueError otherwise (a loss of 1e308
    would overflow a sum to infinity, which the solver would read as "no selection fits the budget")."""
    with np.errstate(over="ignore", invalid="ignore"):
        largest = np.nansum(np.nanmax(np.abs(weighted), axis=0))
    if not np.isfinite(largest):
        raise ValueError(
            "the losses (times their weights) are too large to add up in double precision: a total "
            "overflows to infinity; rescale the losses (or the weights), e.g. divide them by a power of 10"
        )
    return weighted


class GroupingSolver:
    """Exact solver for one selection table, every budget up to ``max_budget``.

    ``weights``: per-task weights (default 1). ``objective``: ``"sum"`` (the paper's) or ``"relative"``.
    ``max_budget``: the largest budget to be asked (default: the number of tasks). ``method``: ``"auto"``
    (default), ``"dp"`` or ``"milp"`` (:mod:`grouping.engines`; the chosen one is :attr:`method`).
    ``time_limit``: seconds for each call that solves budgets (a whole :func:`budget_curve` is one call),
    None for no limit; the sparse solver then returns its best grouping with its proven optimality gap. The
    DP ignores it (it has no answer before it ends; ``auto`` uses it only where it takes seconds).
    """

    def __init__(
        self,
        selection: LossTable,
        *,
        weights: Mapping[str, float] | None = None,
        objective: str = "sum",
        max_budget: float | None = None,
        method: str = "auto",
        time_limit: float | None = None,
    ) -> None:
        get_objective(objective)
        self.time_limit = check_time_limit(time_limit)
        self.method = resolve_method(method, selection.n_tasks, len(selection))
        uncovered = selection.uncovered_tasks()
        if uncovered:
            raise ValueError(
                f"task(s) {', '.join(uncovered)} are trained by no network of the selection table, so no "
                "grouping can serve them (add rows that train them, or drop the tasks)"
            )
        self.selection = selection
        self.objective = objective
        self.weights = check_weights(selection.tasks, weights)
        self.task_weights = effective_weights(selection, objective, weights, "selection")
        self.max_budget = float(selection.n_tasks if max_budget is None else max_budget)
        if not self.max_budget > 0:
            raise ValueError(f"budgets must be > 0 SNT, got {max_budget}")
        arrays = selection.arrays()
        self._candidates = arrays.candidates
        keys = table_rank(selection)
        order = sorted(range(len(keys)), key=keys.__getitem__)
        rank = np.empty(len(keys), dtype=np.int64)
        rank[order] = np.arange(len(keys))
        self._rank = rank
        self._arrays = arrays
        self._unit, self._row_units = cost_units(arrays.capacities)
        w = np.array([self.task_weights[t] for t in selection.tasks])
        self._weighted = _checked_totals(arrays.losses * w)
        best_rows = {int(np.nanargmin(column)) for column in self._weighted.T}
        self._saturation = float(sum(as_fraction(arrays.capacities[r]) for r in best_rows))
        self._engine_built: Engine | None = None

    @property
    def _engine(self) -> Engine:
        """The engine of :attr:`method`, built on first use (the DP runs then; ``cheapest_cost`` alone does
        not need it). Its budget axis stops at :meth:`saturation_cost`: larger budgets change nothing, so
        they cost nothing."""
        if self._engine_built is None:
            a = self._arrays
            data = EngineInput(
                n=self.selection.n_tasks,
                masks=a.masks,
                capacities=a.capacities,
                weighted=self._weighted,
                rank=self._rank,
                max_budget=min(self.max_budget, self.saturation_cost()),
                time_limit=self.time_limit,
            )
            self._engine_built = ENGINES[self.method](data)
        return self._engine_built

    def saturation_cost(self) -> float:
        """A budget (SNT) from which the optimum no longer improves: the cost of the networks that serve each
        task with its lowest weighted loss of the whole table (their total is a lower bound of every
        selection's, and they reach it)."""
        return self._saturation

    @property
    def cost_unit(self) -> Fraction:
        """Costs and budgets are counted in this unit (the gcd of the capacities), in SNT."""
        return self._unit

    def cheapest_cost(self) -> float:
        """The least total cost (SNT) of a selection serving every task (a cost-only DP over task subsets, or
        an exact set cover by HiGHS for the sparse solver; cheap)."""
        return float(self._cheapest_units() * self._unit)

    def _cheapest_units(self) -> int:
        if self._engine_built is not None or self.method != "dp":
            return self._engine.cheapest_units()
        return min_cover_units(self.selection.n_tasks, self._arrays.masks, self._row_units)

    def feasible(self, budget: float) -> bool:
        """Whether some selection within ``budget`` serves every task."""
        self._check_budget(budget)
        if self.method == "dp":
            return self._engine.optimum(budget) < math.inf  # runs the DP once for every budget
        return budget_units(budget, self._unit) >= self._cheapest_units()

    def prepare(self, budgets: Iterable[float]) -> None:
        """Solve these budgets at once (the sparse solver goes through them in ascending order, reusing each
        one's work for the next, within one time limit); later queries of them are free."""
        wanted = sorted({min(float(b), self.saturation_cost()) for b in budgets})
        for b in wanted:
            self._check_budget(b)
        self._engine.prepare(wanted)

    def optimum(self, budget: float) -> float:
        """The optimal objective value at ``budget`` (inf if infeasible), straight from the engine (the sparse
        solver's best total when a time limit stopped it: see :meth:`optimality_gap`)."""
        self._check_budget(budget)
        return self._engine.optimum(min(budget, self.saturation_cost()))

    def optimality_gap(self, budget: float) -> float:
        """The proven relative gap of the grouping at ``budget``: 0 when optimal (always for the DP)."""
        return self._choice(budget)[1]

    def _check_budget(self, budget: float) -> None:
        if not (isinstance(budget, int | float) and math.isfinite(budget) and budget > 0):
            raise ValueError(f"a budget must be a finite number of SNT > 0, got {budget!r}")
        if budget > self.max_budget + 1e-12:
            raise ValueError(f"budget {budget:g} exceeds max_budget {self.max_budget:g} given to the solver")

    def networks(self, budget: float) -> tuple[list[Candidate], dict[str, Candidate]]:
        """The chosen networks at ``budget`` (ordered by the first task each serves) and task -> server.

        Raises :class:`InfeasibleBudget` if no selection within the budget serves every task.
        """
        rows = sorted(self._choice(budget)[0], key=lambda r: self._rank[r])
        # a network picked for two blocks is paid once; then every task goes to its lowest-loss network
        chosen = [self._candidates[r] for r in rows]
        serving = serve_by_table(chosen, self.selection)
        used = [c for c in chosen if c in serving.values()]  # drop a network left serving nothing
        first = {c: min(self.selection.task_index(t) for t, s in serving.items() if s == c) for c in used}
        used.sort(key=first.__getitem__)
        return used, serving

    def _choice(self, budget: float) -> tuple[tuple[int, ...], float]:
        """The engine's rows at ``budget`` and their gap; :class:`InfeasibleBudget` if there are none."""
        self._check_budget(budget)
        choice = self._engine.choose(min(budget, self.saturation_cost()))
        if choice is None:
            raise InfeasibleBudget(budget, self.cheapest_cost())
        return choice.rows, choice.gap

    def grouping(
        self, budget: float, scoring: LossTable | None = None, serve_by: str = "selection"
    ) -> Grouping:
        """The best grouping at ``budget``, with its total on ``scoring`` if given."""
        rule = get_serve_rule(serve_by)
        scoring_weights = _scoring_weights(self, scoring)
        return self._grouping(budget, scoring, rule, scoring_weights)

    def _grouping(
        self,
        budget: float,
        scoring: LossTable | None,
        rule: ServeRule,
        scoring_weights: dict[str, float] | None,
    ) -> Grouping:
        networks, serving = self.networks(budget)
        tasks = self.selection.tasks
        selection_total = math.fsum(self.task_weights[t] * self.selection.loss(serving[t], t) for t in tasks)
        credited = rule.assign(networks, self.selection, scoring) if scoring is not None else None
        scoring_total = None
        if (
            credited is not None
            and scoring_weights is not None
            and all(credited[t] in scoring for t in tasks)
        ):
            scoring_total = math.fsum(scoring_weights[t] * scoring.loss(credited[t], t) for t in tasks)  # type: ignore[union-attr]
        else:
            credited = None
        records = []
        for cand in networks:
            row = self.selection[cand]
            scoring_row = scoring.get(cand) if scoring is not None else None
            records.append(
                Network(
                    tasks=list(cand.tasks),
                    capacity=cand.capacity,
                    cost=cand.cost,
                    serves=[t for t in tasks if serving[t] == cand],
                    predicted=row.predicted,
                    label=cand.label(),
                    selection_losses=dict(row.losses),
                    scoring_losses=None if scoring_row is None else dict(scoring_row.losses),
                    scoring_serves=None if credited is None else [t for t in tasks if credited[t] == cand],
                )
            )
        cost = float(sum((as_fraction(c.cost) for c in networks), Fraction(0)))
        return Grouping(
            budget=float(budget),
            cost=cost,
            selection_total=selection_total,
            scoring_total=scoring_total,
            networks=records,
            optimality_gap=self._choice(budget)[1],
        )


def _scoring_weights(solver: GroupingSolver, scoring: LossTable | None) -> dict[str, float] | None:
    """Weights of the scoring total (the objective's scales taken on the scoring table), checked early."""
    if scoring is None:
        return None
    if set(scoring.tasks) != set(solver.selection.tasks):
        raise ValueError(
            f"the scoring table's tasks {list(scoring.tasks)} differ from the selection table's "
            f"{list(solver.selection.tasks)}"
        )
    return effective_weights(scoring, solver.objective, solver.weights, "scoring")


def solve(
    selection: LossTable,
    budget: float,
    *,
    scoring: LossTable | None = None,
    weights: Mapping[str, float] | None = None,
    objective: str = "sum",
    serve_by: str = "selection",
    method: str = "auto",
    time_limit: float | None = None,
) -> Grouping:
    """The best grouping at one budget (see :func:`budget_curve` for the arguments)."""
    solver = GroupingSolver(
        selection,
        weights=weights,
        objective=objective,
        max_budget=budget,
        method=method,
        time_limit=time_limit,
    )
    return solver.grouping(budget, scoring, serve_by)


def split_feasible(
    selection: LossTable,
    budgets: Iterable[float],
    *,
    weights: Mapping[str, float] | None = None,
    objective: str = "sum",
    method: str = "auto",
) -> tuple[list[float], list[float]]:
    """``(feasible, infeasible)``: the budgets at which some selection of the table serves every task, and
    the others (below the cheapest such selection). Used where a table may lack networks (failed
    trainings, an approximation's table) and the budgets it cannot serve are dropped, not refused."""
    cheapest = GroupingSolver(selection, weights=weights, objective=objective, method=method).cheapest_cost()
    wanted = sorted({float(b) for b in budgets})
    feasible = [b for b in wanted if b >= cheapest - 1e-9]
    return feasible, [b for b in wanted if b < cheapest - 1e-9]


def budget_curve(
    selection: LossTable,
    budgets: Iterable[float] | None = None,
    scoring: LossTable | None = None,
    weights: Mapping[str, float] | None = None,
    objective: str = "sum",
    serve_by: str = "selection",
    method: str = "auto",
    time_limit: float | None = None,
) -> BudgetCurve:
    """The best grouping for every budget of a sweep, from one dynamic programme or one sparse-solver pass.

    ``budgets``: SNT values (sorted, duplicates dropped); default 1, 1.5, ..., n, starting at the first
    budget that can serve every task. An explicit budget that cannot raises :class:`InfeasibleBudget`.
    ``scoring``: a table on which each chosen grouping is also totalled (``scoring_total``; null where the
    table lacks a chosen network). ``weights``: per-task weights (default 1). ``objective``: ``"sum"`` or
    ``"relative"``. ``serve_by``: which network serves a task in the scoring total, ``"selection"`` (the one
    chosen on selection losses; default) or ``"scoring"`` (the lowest scoring loss, the paper's evaluation).
    ``method``: ``"auto"`` (default), ``"dp"`` or ``"milp"`` (see :class:`GroupingSolver`). ``time_limit``:
    seconds for the whole sweep (shared by its budgets; None = no limit); each record's ``optimality_gap``
    is 0 when proven optimal. The selection total never increases along the curve where every gap is 0.
    """
    rule = get_serve_rule(serve_by)
    get_objective(objective)
    explicit = budgets is not None
    wanted = (
        sorted({float(b) for b in budgets}) if budgets is not None else default_budgets(selection.n_tasks)
    )
    if not wanted:
        raise ValueError("no budgets given")
    for b in wanted:
        if not (math.isfinite(b) and b > 0):
            raise ValueError(f"budgets must be finite numbers of SNT > 0, got {b}")
    solver = GroupingSolver(
        selection,
        weights=weights,
        objective=objective,
        max_budget=max(wanted),
        method=method,
        time_limit=time_limit,
    )
    scoring_weights = _scoring_weights(solver, scoring)
    feasible = [b for b in wanted if solver.feasible(b)]
    if len(feasible) < len(wanted):
        cheapest = solver.cheapest_cost()
        if explicit:
            raise InfeasibleBudget(min(set(wanted) - set(feasible)), cheapest)
        if not feasible:
            raise InfeasibleBudget(max(wanted), cheapest)
        logger.info("default budgets below %g SNT skipped: they cannot serve every task", cheapest)
    solver.prepare(feasible)
    curve = [solver._grouping(b, scoring, rule, scoring_weights) for b in feasible]
    return BudgetCurve(
        tasks=list(selection.tasks),
        objective=objective,
        serve_by=serve_by,
        weights=solver.weights,
        curve=curve,
    )


__all__ = [
    "SERVE_RULES",
    "BudgetCurve",
    "ByScoring",
    "BySelection",
    "Grouping",
    "GroupingSolver",
    "InfeasibleBudget",
    "budget_curve",
    "get_serve_rule",
    "serve_by_table",
    "solve",
    "split_feasible",
]
