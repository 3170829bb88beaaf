"""Adaptive: rounds of predict -> solve every budget -> train what the choice needs and what could beat it.

1. **Start** with the cheapest informative measurements (``start="pairs"``): every single (each capacity)
   and every pair at ``low_fidelity``, and the all-task network at full fidelity (``anchor``: it is budget
   1's only grouping and gives every task's full-fidelity loss level at once). ``start="tag"``: TAG's round
   instead (singles and one all-task training with lookahead affinities, :mod:`grouping.strategies.tag`),
   whose predicted pair losses enter the model as pseudo-observations.
2. **Predict** every network's full-fidelity losses with :mod:`grouping.strategies.surrogate` (a Bayesian
   regression on group membership and pair terms that learns from every measured network, at any fidelity,
   and knows its own error). Measured networks keep their measured (mean over seeds) losses.
3. **Solve** every budget on the predicted table (expected losses): the current choice.
4. **Choose the next trainings** by their expected improvement of the budget curve: draw ``samples`` loss
   tables from the posterior (measured networks vary by their seed noise), solve each, and at every budget
   where the sample's optimum beats the choice (by more than ``tolerance``), credit the regret to the
   networks on which the two groupings differ, in proportion to their uncertainty. A network's credit is the
   Monte-Carlo estimate of the improvement of the curve that hinges on it; trainings are ranked by credit
   per estimated cost (:mod:`grouping.strategies.cost`). An unmeasured network is trained at full fidelity;
   with ``seeds="auto"`` a measured one that still decides a choice gets another seed (up to ``max_seeds``).
   The chosen networks not yet measured (what the choice needs) and the networks of an optimistic
   grouping that beats the choice (what could still beat it) follow.
5. **Stop** when every chosen network is measured at full fidelity, no unmeasured network's optimistic
   prediction (mean - ``optimism`` sd) yields a grouping that beats the choice, and no training's expected
   improvement exceeds ``tolerance``; or when the next training would exceed ``max_compute`` (the issue's F:
   a share of the exhaustive plan's estimated cost).

Everything is a function of the measurements and the options (random draws are seeded by ``random_seed`` and
the number of measurements), so a resumed search continues where it stopped and the replay makes the same
choices as the real search on the same trainings.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from grouping.candidates import Candidate, format_capacity
from grouping.objective import effective_weights
from grouping.serving import serve_by_table
from grouping.solver import GroupingSolver
from grouping.strategies.base import (
    Measurement,
    Prediction,
    Problem,
    RequestKey,
    Round,
    Strategy,
    TrainingRequest,
    next_round_index,
    settled_keys,
)
from grouping.strategies.cost import CostModel, exhaustive_plan
from grouping.strategies.measured import mean_affinity, scoring_table, seed_counts, seed_spread
from grouping.strategies.registry import register
from grouping.strategies.surrogate import (
    FittedLossModel,
    LossModel,
    Observation,
    Prior,
    observations,
    pooled_seed_sd,
)
from grouping.strategies.tag import tag_prediction_rows, tag_requests
from grouping.table import LossTable, TableRow


class AdaptiveOptions(BaseModel):
    """Settings of the adaptive strategy (defaults chosen on the paper's tables and the sarcos study part,
    docs/strategies.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_compute: float = Field(0.15, gt=0, description="compute cap F: share of the exhaustive plan's cost")
    start: Literal["pairs", "singles", "anchor", "tag"] = Field(
        "pairs",
        description="first round: low-fidelity singles and pairs, low-fidelity singles, only the all-task "
        "network, or TAG's round",
    )
    low_fidelity: float = Field(
        0.1, gt=0, lt=1, description="fidelity of the start round's singles and pairs"
    )
    anchor: bool = Field(True, description="train the all-task network at full fidelity in the start round")
    batch: int = Field(2, ge=1, le=256, description="trainings per round after the start (run in parallel)")
    samples: int = Field(128, ge=4, le=4096, description="posterior draws per round")
    optimism: float = Field(2.0, ge=0, description="z of the optimistic bound of the stopping rule")
    tolerance: float = Field(0.001, ge=0, description="relative improvement too small to train for")
    seeds: int | Literal["auto"] = Field(
        1, description="seeds per network, or auto: extra seeds where they decide"
    )
    max_seeds: int = Field(3, ge=1, le=32, description="most seeds of one network with seeds='auto'")
    explore_low: bool = Field(
        False, description="also consider training a network at low_fidelity first (value per cost)"
    )
    calibration: Literal["both", "up", "off"] = Field(
        "both", description="scale the model's spread by its leave-one-out error: both ways, only up, or not"
    )
    point: Literal["median", "mean"] = Field(
        "median",
        description="a predicted loss: the posterior median, or mean (the expected total; penalises spread)",
    )
    random_seed: int = Field(0, ge=0)
    lookahead_factor: float = Field(1.5, gt=0, description="estimated cost of a lookahead training (x plain)")
    prior: Prior = Field(default_factory=Prior)

    @model_validator(mode="after")
    def _seeds(self) -> AdaptiveOptions:
        if isinstance(self.seeds, int) and not 1 <= self.seeds <= 32:
            raise ValueError(f"seeds must be 'auto' or 1..32, got {self.seeds}")
        return self


@dataclass(frozen=True)
class Choice:
    """The grouping chosen at one budget on the predicted table."""

    budget: float
    networks: tuple[Candidate, ...]
    total: float


@dataclass(frozen=True)
class State:
    """What one round knows: the fitted model, the predicted table and its spreads, the choices."""

    model: FittedLossModel
    candidates: tuple[Candidate, ...]
    table: LossTable  # expected losses; measured rows as measured
    log_mean: np.ndarray  # (R, n) predictive mean of log losses (measured: log of the measured mean)
    log_sd: np.ndarray  # (R, n) predictive sd (measured: seed noise / sqrt(seeds))
    measured: dict[Candidate, int]  # full-fidelity networks -> seeds measured
    low_measured: frozenset[Candidate]  # networks measured at the low fidelity
    choices: tuple[Choice, ...]
    seed_sd: float


@register
class AdaptiveStrategy(Strategy):
    """See the module doc."""

    name: ClassVar[str] = "adaptive"
    description: ClassVar[str] = "rounds of predict, solve, and train what can still win, under a compute cap"
    Options: ClassVar[type[BaseModel]] = AdaptiveOptions

    def __init__(self, problem: Problem, options: BaseModel | dict | None = None) -> None:
        super().__init__(problem, options)
        o: AdaptiveOptions = self.options  # type: ignore[assignment]
        units = CostModel(lookahead_factor=o.lookahead_factor)
        start = units.total(self.start_requests())
        cap = o.max_compute * units.total(exhaustive_plan(problem))
        if start > cap + 1e-9:
            raise ValueError(
                f"max_compute {o.max_compute:g} is below the start round's estimated cost "
                f"({start / units.total(exhaustive_plan(problem)):.3f} of the exhaustive plan): raise it, or "
                "lower low_fidelity"
            )

    # -- the start round ----------------------------------------------------------------------------------
    def full_seeds(self) -> int:
        o: AdaptiveOptions = self.options  # type: ignore[assignment]
        return 1 if o.seeds == "auto" else int(o.seeds)

    def start_requests(self) -> list[TrainingRequest]:
        o: AdaptiveOptions = self.options  # type: ignore[assignment]
        p = self.problem
        if o.start == "tag":
            return tag_requests(p.model_copy(update={"seeds": self.full_seeds()}), 1.0)
        low = o.low_fidelity
        out = [
            TrainingRequest(tasks=(t,), capacity=c, fidelity=low, seed=p.seed, reason="single, low fidelity")
            for c in p.capacities.single_capacities()
            for t in p.tasks
            if o.start in ("pairs", "singles")
        ]
        if o.start == "pairs":
            out += [
                TrainingRequest(
                    tasks=pair, capacity=c, fidelity=low, seed=p.seed, reason="pair, low fidelity"
                )
                for c in p.capacities.subsets
                for pair in combinations(p.tasks, 2)
            ]
        if o.anchor:
            out += [
                TrainingRequest(
                    tasks=p.tasks,
                    capacity=p.capacities.largest,
                    seed=s,
                    reason="all-task network: budget 1's grouping and every task's full-fidelity level",
                )
                for s in range(p.seed, p.seed + self.full_seeds())
            ]
        return out

    # -- model ---------------------------------------------------------------------------------------------
    def low_fidelities(self) -> tuple[float, ...]:
        o: AdaptiveOptions = self.options  # type: ignore[assignment]
        return (o.low_fidelity,) if o.start in ("pairs", "singles") or o.explore_low else ()

    def fit(self, measured: Sequence[Measurement]) -> tuple[FittedLossModel, float]:
        o: AdaptiveOptions = self.options  # type: ignore[assignment]
        seed_sd = pooled_seed_sd([m for m in measured if m.request.fidelity == 1.0], o.prior.seed_sd)
        lows = self.low_fidelities()
        data = [ob for ob in observations(measured) if ob.fidelity == 1.0 or ob.fidelity in lows]
        if o.start == "tag" and any(m.affinity is not None for m in measured):
            data += self.tag_pseudo_observations(measured)
        model = LossModel(self.problem, o.prior, lows)
        return model.fit(data, seed_sd, calibration=o.calibration), seed_sd

    def tag_pseudo_observations(self, measured: Sequence[Measurement]) -> list[Observation]:
        """TAG's predicted pair losses as observations with noise ``prior.tag_sd`` (not for pairs measured
        at full fidelity)."""
        try:
            table, predicted, _, _ = tag_prediction_rows(self.problem, measured, 1.0, None)
        except ValueError:
            return []
        return [
            Observation(c, 1.0, t, math.log(predicted.loss(c, t)), pseudo=True)
            for c in predicted
            if c.size == 2 and c not in table
            for t in c.tasks
        ]

    def state(self, measured: Sequence[Measurement]) -> State:
        o: AdaptiveOptions = self.options  # type: ignore[assignment]
        if not measured:
            raise ValueError("adaptive: nothing is measured yet, so there is nothing to predict from")
        p = self.problem
        model, seed_sd = self.fit(measured)
        candidates = tuple(p.all_candidates())
        full = [m for m in measured if m.request.fidelity == 1.0]
        counts = seed_counts(full)
        means = _mean_losses(full)
        n = p.n_tasks
        log_mean = np.full((len(candidates), n), np.nan)
        log_sd = np.full((len(candidates), n), np.nan)
        rows = []
        for r, cand in enumerate(candidates):
            losses = {}
            for task in cand.tasks:
                j = p.tasks.index(task)
                if cand in counts:
                    log_mean[r, j] = math.log(means[cand][task])
                    log_sd[r, j] = seed_sd / math.sqrt(counts[cand])
                    losses[task] = means[cand][task]
                else:
                    mu, sd = model.predict(cand, task)
                    log_mean[r, j], log_sd[r, j] = mu, sd
                    # the posterior median of the loss, or its mean under the log-normal (``point="mean"``)
                    losses[task] = math.exp(mu + sd * sd / 2 if o.point == "mean" else mu)
            rows.append(TableRow(cand, losses, predicted=cand not in counts))
        table = LossTable(p.tasks, rows)
        choices = self._choices(table)
        low = frozenset(m.candidate for m in measured if m.request.fidelity == o.low_fidelity)
        return State(model, candidates, table, log_mean, log_sd, counts, low, choices, seed_sd)

    def _solver(self, table: LossTable) -> GroupingSolver:
        p = self.problem
        return GroupingSolver(
            table, weights=p.weights, objective=p.objective, max_budget=max(p.effective_budgets())
        )

    def _choices(self, table: LossTable) -> tuple[Choice, ...]:
        solver = self._solver(table)
        weights = effective_weights(table, self.problem.objective, self.problem.weights)
        out = []
        for budget in self.problem.effective_budgets():
            if solver.optimum(budget) == math.inf:
                continue
            networks, serving = solver.networks(budget)
            total = math.fsum(weights[t] * table.loss(c, t) for t, c in serving.items())
            out.append(Choice(budget, tuple(networks), total))
        return tuple(out)

    # -- prediction ----------------------------------------------------------------------------------------
    def predict(self, measured: Sequence[Measurement]) -> Prediction:
        measured = canonical(measured)
        state = self.state(measured)
        p = self.problem
        uncertainty = {
            c: {t: float(state.log_sd[r, p.tasks.index(t)]) for t in c.tasks}
            for r, c in enumerate(state.candidates)
            if c not in state.measured
        }
        full = [m for m in measured if m.request.fidelity == 1.0]
        return Prediction(
            state.table,
            scoring_table(p, full),
            uncertainty=uncertainty,
            seed_spread=seed_spread(full),
            affinity=mean_affinity(measured),
        )

    # -- rounds --------------------------------------------------------------------------------------------
    def next_round(
        self, measured: Sequence[Measurement], failed: Sequence[TrainingRequest] = ()
    ) -> Round | None:
        o: AdaptiveOptions = self.options  # type: ignore[assignment]
        measured = canonical(measured)
        settled = settled_keys(measured, failed)
        if not any(m.request.round > 1 for m in measured if not m.reused):
            start = self._start_round(settled)
            if start is not None:
                return start
        if not measured:
            return None
        index = next_round_index(measured)
        costs = CostModel.fit(measured, o.lookahead_factor)
        cap = o.max_compute * costs.total(exhaustive_plan(self.problem))
        remaining = cap - costs.spent(measured)
        state = self.state(measured)
        credit, budgets_of = self._credit(state, len(measured))
        needs = self._needs(state)
        challengers = self._challengers(state)
        mean_total = float(np.mean([c.total for c in state.choices])) if state.choices else 1.0
        threshold = o.tolerance * abs(mean_total)

        actions: list[tuple[float, float, TrainingRequest]] = []  # (priority, cost, request)
        seen: set[Candidate] = set()
        for cand, value in sorted(credit.items(), key=lambda kv: -kv[1]):
            if value <= threshold:
                continue
            reason = self._reason(cand, state, budgets_of, value)
            options = []
            req = self._action(cand, state, index, reason, settled)
            if req is not None:
                options.append((value * self._resolved(cand, state, state.seed_sd**2) / costs.cost(req), req))
            low = self._low_action(cand, state, index, reason, settled)
            if low is not None:
                noise = state.seed_sd**2 + o.prior.fidelity_sd**2
                options.append((value * self._resolved(cand, state, noise) / costs.cost(low), low))
            if options:
                priority, best = max(options, key=lambda pr: pr[0])
                actions.append((priority, costs.cost(best), best))
                seen.add(cand)
        for group, label in (
            (needs, "chosen but not measured"),
            (challengers, "its optimistic prediction beats the choice"),
        ):
            for cand, where in group.items():
                if cand in seen:
                    continue
                req = self._action(cand, state, index, f"{label} at {_budget_list(where)} SNT", settled)
                if req is not None:
                    actions.append((0.0, costs.cost(req), req))
                    seen.add(cand)
        if not actions:
            return None
        picked = self._pick(actions, remaining)
        if not picked:
            return None
        why = (
            f"round {index}: {len(picked)} training(s) by expected improvement of the budget curve; "
            f"{costs.spent(measured) / (cap / o.max_compute):.1%} of the exhaustive cost spent "
            f"(cap {o.max_compute:.0%}); " + "; ".join(f"{r.label()}: {r.reason}" for r in picked)
        )
        return Round(index=index, requests=tuple(picked), why=why)

    def _start_round(self, settled: set[str]) -> Round | None:
        """Round 1: the cheap signals the posterior starts from (None once all are settled)."""
        o: AdaptiveOptions = self.options  # type: ignore[assignment]
        start = [r for r in self.start_requests() if r.key() not in settled]
        if not start:
            return None
        low = format_capacity(o.low_fidelity)
        parts = {
            "pairs": [f"singles and pairs at fidelity {low} (cheap; they inform every pair effect)"],
            "singles": [f"singles at fidelity {low}"],
            "anchor": [],
            "tag": ["TAG's singles and all-task training with lookahead affinities"],
        }[o.start]
        if o.anchor and o.start != "tag":
            parts.append("the all-task network at full fidelity (budget 1's grouping, every task's level)")
        return Round(index=1, requests=tuple(start), why="start: " + "; ".join(parts))

    def _pick(
        self, actions: list[tuple[float, float, TrainingRequest]], remaining: float
    ) -> list[TrainingRequest]:
        """The best actions by priority, then cost, that fit the remaining compute (<= `batch` networks)."""
        o: AdaptiveOptions = self.options  # type: ignore[assignment]
        actions.sort(key=lambda a: (-a[0], a[1], a[2].key()))
        picked: list[TrainingRequest] = []
        spend = 0.0
        for _, cost, req in actions:
            if len({r.candidate for r in picked}) >= o.batch:
                break
            extra = [req, *self._more_seeds(req)]
            need = cost * len(extra)
            if spend + need <= remaining + 1e-9:
                picked += extra
                spend += need
        return picked

    def _more_seeds(self, req: TrainingRequest) -> list[TrainingRequest]:
        """With a fixed number of seeds k > 1, the other k - 1 seeds of a first full-fidelity training."""
        k = self.full_seeds()
        if k == 1 or req.seed != self.problem.seed:
            return []
        return [req.model_copy(update={"seed": self.problem.seed + i}) for i in range(1, k)]

    def _resolved(self, cand: Candidate, state: State, noise: float) -> float:
        """Share of ``cand``'s predictive variance a measurement with ``noise`` (log-loss variance per task)
        removes: ``sum_t v_t^2 / (v_t + noise) / sum_t v_t``."""
        r = state.candidates.index(cand)
        v = state.log_sd[r][~np.isnan(state.log_sd[r])] ** 2
        return float((v**2 / (v + noise)).sum() / v.sum()) if v.sum() > 0 else 0.0

    def _low_action(
        self, cand: Candidate, state: State, index: int, reason: str, settled: set[RequestKey]
    ) -> TrainingRequest | None:
        """With ``explore_low``: the network at ``low_fidelity`` if it has no measurement yet."""
        o: AdaptiveOptions = self.options  # type: ignore[assignment]
        if not o.explore_low or cand in state.measured or cand in state.low_measured:
            return None
        req = TrainingRequest(
            tasks=cand.tasks,
            capacity=cand.capacity,
            fidelity=o.low_fidelity,
            seed=self.problem.seed,
            reason=f"low fidelity first: {reason}",
            round=index,
        )
        return None if req.key() in settled else req

    def _action(
        self, cand: Candidate, state: State, index: int, reason: str, settled: set[RequestKey]
    ) -> TrainingRequest | None:
        """The training that would resolve ``cand``: its first full-fidelity training, or (seeds='auto')
        another seed of a measured network below ``max_seeds``; None if there is none."""
        o: AdaptiveOptions = self.options  # type: ignore[assignment]
        seeds = state.measured.get(cand, 0)
        if seeds == 0:
            seed = self.problem.seed
        elif o.seeds == "auto" and seeds < o.max_seeds:
            seed = self.problem.seed + seeds
            reason = f"another seed: {reason}"
        else:
            return None
        req = TrainingRequest(
            tasks=cand.tasks, capacity=cand.capacity, fidelity=1.0, seed=seed, reason=reason, round=index
        )
        return None if req.key() in settled else req

    def _reason(
        self, cand: Candidate, state: State, budgets_of: dict[Candidate, set[float]], value: float
    ) -> str:
        chosen = [c.budget for c in state.choices if cand in c.networks]
        where = _budget_list(sorted(budgets_of.get(cand, set())))
        side = f"chosen at {_budget_list(chosen)} SNT and " if chosen else ""
        return f"{side}decides the choice at {where} SNT (expected improvement {value:.3g})"

    def _needs(self, state: State) -> dict[Candidate, list[float]]:
        out: dict[Candidate, list[float]] = defaultdict(list)
        for choice in state.choices:
            for cand in choice.networks:
                if cand not in state.measured:
                    out[cand].append(choice.budget)
        return dict(out)

    def _challengers(self, state: State) -> dict[Candidate, list[float]]:
        """Unmeasured networks of the groupings that beat the choice when every unmeasured network is at its
        optimistic value (mean - optimism sd)."""
        o: AdaptiveOptions = self.options  # type: ignore[assignment]
        p = self.problem
        rows = []
        for r, cand in enumerate(state.candidates):
            if cand in state.measured:
                rows.append(state.table[cand])
                continue
            losses = {
                t: math.exp(
                    state.log_mean[r, p.tasks.index(t)] - o.optimism * state.log_sd[r, p.tasks.index(t)]
                )
                for t in cand.tasks
            }
            rows.append(TableRow(cand, losses, predicted=True))
        optimistic = LossTable(p.tasks, rows)
        solver = self._solver(optimistic)
        weights = effective_weights(optimistic, p.objective, p.weights)
        out: dict[Candidate, list[float]] = defaultdict(list)
        for choice in state.choices:
            best = solver.optimum(choice.budget)
            reference = math.fsum(
                weights[t] * state.table.loss(c, t)
                for t, c in serve_by_table(choice.networks, state.table).items()
            )
            if best < reference * (1 - o.tolerance):
                for cand in solver.networks(choice.budget)[0]:
                    if cand not in state.measured:
                        out[cand].append(choice.budget)
        return dict(out)

    def _credit(self, state: State, salt: int) -> tuple[dict[Candidate, float], dict[Candidate, set[float]]]:
        """Expected improvement of the budget curve credited to each network (module doc, step 4)."""
        o: AdaptiveOptions = self.options  # type: ignore[assignment]
        p = self.problem
        rng = np.random.default_rng([o.random_seed, salt])
        draws = state.model.sample(state.candidates, o.samples, rng)
        measured_rows = [r for r, c in enumerate(state.candidates) if c in state.measured]
        noise = rng.standard_normal((o.samples, len(measured_rows), p.n_tasks))
        draws[:, measured_rows, :] = state.log_mean[measured_rows] + noise * state.log_sd[measured_rows]
        variance = {c: float(np.nansum(state.log_sd[r] ** 2)) for r, c in enumerate(state.candidates)}
        index = {c: r for r, c in enumerate(state.candidates)}
        credit: dict[Candidate, float] = defaultdict(float)
        budgets_of: dict[Candidate, set[float]] = defaultdict(set)
        for s in range(o.samples):
            values = np.exp(draws[s])
            table = LossTable(
                p.tasks,
                (
                    TableRow(c, {t: float(values[r, p.tasks.index(t)]) for t in c.tasks})
                    for r, c in enumerate(state.candidates)
                ),
            )
            solver = self._solver(table)
            weights = effective_weights(table, p.objective, p.weights)
            winners_at: dict[float, list[Candidate]] = {}  # budgets past saturation share one answer
            for choice in state.choices:
                served = serve_by_table(choice.networks, table)
                mine = math.fsum(weights[t] * values[index[c], p.tasks.index(t)] for t, c in served.items())
                best = solver.optimum(choice.budget)
                regret = mine - best
                if regret <= o.tolerance * abs(mine):
                    continue
                effective = min(choice.budget, solver.saturation_cost())
                if effective not in winners_at:
                    winners_at[effective] = solver.networks(choice.budget)[0]
                winners = winners_at[effective]
                differ = set(choice.networks) ^ set(winners)
                weight = sum(variance[c] for c in differ)
                if weight <= 0:
                    continue
                for cand in differ:
                    credit[cand] += regret * variance[cand] / weight / o.samples
                    budgets_of[cand].add(choice.budget)
        return dict(credit), dict(budgets_of)


def canonical(measured: Sequence[Measurement]) -> list[Measurement]:
    """The measurements in key order: decisions do not depend on the order trainings finished in."""
    return sorted(measured, key=lambda m: (m.request.key(), m.reused))


def _mean_losses(measured: Sequence[Measurement]) -> dict[Candidate, dict[str, float]]:
    by: dict[Candidate, dict[int, Measurement]] = defaultdict(dict)
    for m in measured:
        by[m.candidate].setdefault(m.request.seed, m)
    return {
        c: {t: sum(m.selection[t] for m in runs.values()) / len(runs) for t in c.tasks}
        for c, runs in by.items()
    }


def _budget_list(budgets: Sequence[float]) -> str:
    return ", ".join(f"{b:g}" for b in budgets) if budgets else "-"


__all__ = ["AdaptiveOptions", "AdaptiveStrategy", "Choice", "State"]
