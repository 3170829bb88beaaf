"""A loss model that learns from every measured network and knows its own error (adaptive's predictor).

For each task ``a`` the log loss of ``a`` in a network of group ``G`` (``a in G``) at capacity ``c``, trained
at fidelity ``f``, is a Bayesian linear regression on group membership (Standley et al.'s HOA, section 3.4,
as a model: a group's effect on ``a`` is the mean of its pair effects) with a group-size term::

    log L[G, c, f; a] = mu_a                                   log loss of a alone (full size, full fidelity)
                      + h_{a,c}                                capacity c below the largest (prior: a penalty)
                      + omega_a [|G|>=2]                       what sharing does to a on average
                      + mean_{b in G, b != a} w_{ab}           partner b's own effect on a
                      + nu_a * (|G| - 2) / (n - 2)             departure of larger groups from the pair mean
                      + lambda_{a,f} + lambda'_{a,f} [|G|>=2]  low fidelity: offset, and its own sharing shift
                      + delta_{G,a}  (|G| >= 3)                the group's own higher-order effect
                      + noise                                  seed noise (sd / sqrt(seeds)), low fidelity's

with independent Gaussian priors (``Prior``; mu and lambda flat); ``omega_a + w_{ab}`` is the pair effect
``log(L[{a,b}, a] / L[{a}, a])``, split so that a task hurt (or helped) by every partner is one parameter
that a single measured shared network reveals, and the partners' differences another. Tasks are
independent given the data, so the posterior is one small regression per task (closed form).

Predictions at full fidelity carry the posterior spread of the parameters and ``delta``'s. The *seed*
noise is estimated from the networks measured with several seeds (pooled with the prior's value as ten
pseudo-degrees of freedom). With ``calibration``, every predictive variance is scaled by the mean squared
leave-one-out standardised residual of the full-fidelity measurements (pooled with ten pseudo-residuals
of 1): a model that is wrong more often than it says learns to say so, and one that is right more often
grows more confident (``"up"``: only the former).

Low-fidelity measurements (early-stopped, as in the paper's ESA) inform the partner effects through the
offsets ``lambda``: their ordering of networks is trusted up to ``fidelity_sd``, and their sharing level not
at all beyond ``fidelity_sharing_sd`` (the study found early-stopped tables order networks badly,
docs/study.md). This model and its use for choosing trainings are ours; MTG-Net (Song et al., NeurIPS 2022)
learns a gain predictor of groups from measured groups in the same spirit.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from grouping.candidates import Candidate
from grouping.strategies.base import Measurement, Problem

FLAT = 100.0
"""Prior variance of the parameters without a prior (log loss of a task alone, low-fidelity offsets)."""

SEED_PRIOR_DOF = 10.0
"""Weight (pseudo-degrees of freedom) of ``Prior.seed_sd`` against the seed spreads measured."""

CALIBRATION_PRIOR = 10.0
"""Weight (pseudo-observations at 1) of the prior calibration against the leave-one-out residuals."""


class Prior(BaseModel):
    """Prior standard deviations of the loss model, all on log losses (0.05 = about 5%)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sharing_sd: float = Field(0.2, gt=0, description="a task's mean sharing effect omega_a")
    pair_sd: float = Field(0.1, gt=0, description="a partner's own effect w_ab")
    size_sd: float = Field(0.1, gt=0, description="the group-size effect nu_a at the all-task size")
    capacity_mean: float = Field(0.05, description="penalty of halving the capacity (per halving)")
    capacity_sd: float = Field(0.1, gt=0, description="sd of that penalty")
    interaction_sd: float = Field(0.05, ge=0, description="a >= 3-task group's own effect delta")
    seed_sd: float = Field(0.03, gt=0, description="one training's seed noise")
    fidelity_sd: float = Field(0.08, ge=0, description="a low-fidelity row's departure from the model")
    fidelity_sharing_sd: float = Field(0.2, gt=0, description="low-fidelity shift of shared networks")
    tag_sd: float = Field(0.05, gt=0, description="noise of a pair's log loss predicted by TAG")


@dataclass(frozen=True)
class Observation:
    """A network's mean log loss of one task over ``seeds`` trainings at ``fidelity``; ``pseudo``: a pair's
    log loss predicted by TAG, not measured."""

    candidate: Candidate
    fidelity: float
    task: str
    log_loss: float
    seeds: int = 1
    pseudo: bool = False


def observations(measured: Iterable[Measurement]) -> list[Observation]:
    """One observation per (network, fidelity, task): the log of the mean selection loss over seeds.
    ValueError if a loss is not positive (the model works on log losses)."""
    groups: dict[tuple[Candidate, float], dict[int, Measurement]] = defaultdict(dict)
    for m in measured:
        groups[(m.candidate, m.request.fidelity)].setdefault(m.request.seed, m)
    out = []
    for (cand, fidelity), by_seed in groups.items():
        for task in cand.tasks:
            values = [m.selection[task] for m in by_seed.values()]
            mean = sum(values) / len(values)
            if not mean > 0:
                raise ValueError(
                    f"the adaptive loss model works on log losses: task {task!r} has loss {mean} in "
                    f"{cand.label()} (use a positive loss such as a mean squared error or cross-entropy)"
                )
            out.append(Observation(cand, fidelity, task, math.log(mean), len(values)))
    return out


def pooled_seed_sd(measured: Iterable[Measurement], prior_sd: float) -> float:
    """Seed noise of one training's log loss: the pooled sd over networks measured with several seeds (at
    the same fidelity), with ``prior_sd`` counting as :data:`SEED_PRIOR_DOF` degrees of freedom."""
    groups: dict[tuple[Candidate, float], dict[int, Measurement]] = defaultdict(dict)
    for m in measured:
        groups[(m.candidate, m.request.fidelity)].setdefault(m.request.seed, m)
    squares, dof = SEED_PRIOR_DOF * prior_sd**2, SEED_PRIOR_DOF
    for (cand, _), by_seed in groups.items():
        if len(by_seed) < 2:
            continue
        for task in cand.tasks:
            logs = np.log([m.selection[task] for m in by_seed.values()])
            squares += float(((logs - logs.mean()) ** 2).sum())
            dof += len(logs) - 1
    return math.sqrt(squares / dof)


class LossModel:
    """The regression of the module doc for one problem; :meth:`fit` returns a :class:`FittedLossModel`."""

    def __init__(self, problem: Problem, prior: Prior, low_fidelities: Sequence[float] = ()) -> None:
        self.problem = problem
        self.prior = prior
        self.tasks = problem.tasks
        self.n = problem.n_tasks
        self.largest = problem.capacities.largest
        caps = set(problem.capacities.subsets) | set(problem.capacities.singles)
        self.small_caps = tuple(sorted(c for c in caps if c != self.largest))
        self.low = tuple(sorted(set(low_fidelities)))
        # parameters: mu | h per small capacity | omega | w per partner | nu | (lambda, lambda') per low f
        self.p_cap = 1
        self.p_om = self.p_cap + len(self.small_caps)
        self.p_w = self.p_om + 1
        self.p_nu = self.p_w + self.n - 1
        self.p_low = self.p_nu + 1
        self.size = self.p_low + 2 * len(self.low)

    def partners(self, task: str) -> list[str]:
        return [t for t in self.tasks if t != task]

    def features(self, task: str, candidate: Candidate, fidelity: float = 1.0) -> np.ndarray:
        x = np.zeros(self.size)
        x[0] = 1.0
        if candidate.capacity != self.largest:
            x[self.p_cap + self.small_caps.index(candidate.capacity)] = 1.0
        k = candidate.size
        if k >= 2:
            x[self.p_om] = 1.0
            others = self.partners(task)
            for b in candidate.tasks:
                if b != task:
                    x[self.p_w + others.index(b)] = 1.0 / (k - 1)
        if k >= 3:
            x[self.p_nu] = (k - 2) / (self.n - 2)
        if fidelity < 1.0:
            i = self.p_low + 2 * self.low.index(fidelity)
            x[i] = 1.0
            x[i + 1] = 1.0 if k >= 2 else 0.0
        return x

    def prior_moments(self, anchor: float) -> tuple[np.ndarray, np.ndarray]:
        """Prior mean and variance of one task's parameters (``anchor``: prior mean of mu)."""
        pr = self.prior
        mean = np.zeros(self.size)
        var = np.full(self.size, FLAT)
        mean[0] = anchor
        for i, cap in enumerate(self.small_caps):
            mean[self.p_cap + i] = pr.capacity_mean * math.log2(self.largest / cap)
            var[self.p_cap + i] = pr.capacity_sd**2
        var[self.p_om] = pr.sharing_sd**2
        var[self.p_w : self.p_nu] = pr.pair_sd**2
        var[self.p_nu] = pr.size_sd**2
        for i in range(len(self.low)):
            var[self.p_low + 2 * i + 1] = pr.fidelity_sharing_sd**2
        return mean, var

    def noise(self, obs: Observation, seed_sd: float) -> float:
        pr = self.prior
        if obs.pseudo:
            return pr.tag_sd**2
        var = seed_sd**2 / obs.seeds
        if obs.candidate.size >= 3:
            var += pr.interaction_sd**2
        if obs.fidelity < 1.0:
            var += pr.fidelity_sd**2
        return var

    def fit(self, data: Sequence[Observation], seed_sd: float, calibration: str = "both") -> FittedLossModel:
        """The posterior given ``data``; ``calibration``: scale the predictive variances by the pooled
        leave-one-out residuals ``"both"`` ways, only ``"up"``, or ``"off"``."""
        fits: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        squares: list[float] = []
        for task in self.tasks:
            rows = [o for o in data if o.task == task and (o.fidelity == 1.0 or o.fidelity in self.low)]
            anchor = float(np.mean([o.log_loss for o in rows])) if rows else 0.0
            m0, v0 = self.prior_moments(anchor)
            if rows:
                x = np.array([self.features(task, o.candidate, o.fidelity) for o in rows])
                y = np.array([o.log_loss for o in rows])
                d = np.array([self.noise(o, seed_sd) for o in rows])
            else:
                x, y, d = np.zeros((0, self.size)), np.zeros(0), np.zeros(0)
            fits[task] = _posterior(m0, v0, x, y, d)
            if calibration != "off":
                judged = [i for i, o in enumerate(rows) if o.fidelity == 1.0 and not o.pseudo]
                squares += _loo_squares(m0, v0, x, y, d, judged)
        scale = (CALIBRATION_PRIOR + sum(squares)) / (CALIBRATION_PRIOR + len(squares))
        if calibration == "up":
            scale = max(scale, 1.0)
        return FittedLossModel(self, fits, scale)


def _posterior(
    m0: np.ndarray, v0: np.ndarray, x: np.ndarray, y: np.ndarray, d: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    precision = np.diag(1.0 / v0) + x.T @ (x / d[:, None])
    rhs = m0 / v0 + x.T @ (y / d)
    cov = np.linalg.inv(precision)
    cov = (cov + cov.T) / 2
    return cov @ rhs, cov


def _loo_squares(
    m0: np.ndarray, v0: np.ndarray, x: np.ndarray, y: np.ndarray, d: np.ndarray, judged: Sequence[int]
) -> list[float]:
    """Squared leave-one-out standardised residuals of the observations ``judged``: each predicted from
    all the others, divided by its predictive variance (1 on average for a well-calibrated model)."""
    out = []
    for i in judged:
        keep = np.arange(len(y)) != i
        mean, cov = _posterior(m0, v0, x[keep], y[keep], d[keep])
        var = float(x[i] @ cov @ x[i]) + d[i]
        out.append((y[i] - float(x[i] @ mean)) ** 2 / var)
    return out


class FittedLossModel:
    """Posterior of the loss model: predictive mean and sd of log losses at full fidelity, and samples."""

    def __init__(
        self, model: LossModel, fits: Mapping[str, tuple[np.ndarray, np.ndarray]], scale: float = 1.0
    ) -> None:
        self.model = model
        self.fits = fits
        self.scale = scale  # calibration factor of every predictive variance

    def _group_var(self, candidate: Candidate) -> float:
        return self.model.prior.interaction_sd**2 if candidate.size >= 3 else 0.0

    def predict(self, candidate: Candidate, task: str) -> tuple[float, float]:
        """Predictive mean and sd of the full-fidelity log loss of ``task`` in ``candidate``."""
        mean, cov = self.fits[task]
        x = self.model.features(task, candidate)
        var = (float(x @ cov @ x) + self._group_var(candidate)) * self.scale
        return float(x @ mean), math.sqrt(max(var, 0.0))

    def sample(self, candidates: Sequence[Candidate], samples: int, rng: np.random.Generator) -> np.ndarray:
        """``(samples, len(candidates), n)`` draws of full-fidelity log losses (NaN where a candidate lacks
        the task): joint over each task's parameters, independent ``delta`` per row."""
        n = self.model.n
        out = np.full((samples, len(candidates), n), np.nan)
        for j, task in enumerate(self.model.tasks):
            rows = [i for i, c in enumerate(candidates) if task in c.tasks]
            if not rows:
                continue
            mean, cov = self.fits[task]
            scale = self.scale
            x = np.array([self.model.features(task, candidates[i]) for i in rows])
            chol = np.linalg.cholesky(cov * scale + 1e-12 * np.eye(len(mean)))
            theta = mean[None, :] + rng.standard_normal((samples, len(mean))) @ chol.T
            group_sd = np.sqrt([self._group_var(candidates[i]) * scale for i in rows])
            noise = rng.standard_normal((samples, len(rows))) * group_sd[None, :]
            out[:, rows, j] = theta @ x.T + noise
        return out


__all__ = [
    "FLAT",
    "SEED_PRIOR_DOF",
    "FittedLossModel",
    "LossModel",
    "Observation",
    "Prior",
    "observations",
    "pooled_seed_sd",
]
