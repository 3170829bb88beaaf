"""Loss weighting: one shared suite that every registered method passes, then pinned values per method.

The model is a tiny hard-parameter-sharing network built here (a 2-layer trunk and one linear head per
task) in float64, so that "equal to plain training" can be checked to round-off.
"""

from __future__ import annotations

import copy
import io
import itertools
import math
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from workers.weighting import WEIGHTINGS, BackwardContext, LossWeighting, make_weighting
from workers.weighting.dtp import EPS
from workers.weighting.min_norm import (
    kkt_violation,
    min_norm_nnls,
    min_norm_simplex,
    min_norm_two,
    min_norm_wolfe,
)
from workers.weighting.pareto import (
    ParetoWeighting,
    active_constraints,
    constraint_values,
    initial_step,
    pareto_step,
    rescale,
)
from workers.weighting.preferences import balanced_index, preference_vectors, simplex_lattice

METHODS = sorted(WEIGHTINGS)
TASKS = ["a", "b", "c"]
TIGHT = {"rtol": 1e-12, "atol": 1e-14}


# --------------------------------------------------------------------------------------------- fixtures


class Tiny(nn.Module):
    """A 2-layer trunk (its last Linear is the "last shared layer") and a linear head per task."""

    def __init__(self, tasks: list[str], seed: int = 0, inputs: int = 5, hidden: int = 8, rep: int = 6):
        super().__init__()
        torch.manual_seed(seed)
        self.tasks = list(tasks)
        self.trunk = nn.Sequential(nn.Linear(inputs, hidden), nn.Tanh(), nn.Linear(hidden, rep), nn.Tanh())
        self.heads = nn.ModuleDict({t: nn.Linear(rep, 1) for t in tasks})
        self.double()

    def losses(self, batch: Batch) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        representation = self.trunk(batch.x)
        losses = {t: F.mse_loss(self.heads[t](representation).squeeze(-1), batch.y[t]) for t in self.tasks}
        return losses, representation

    def context(self, representation: torch.Tensor, epoch: int = 0, step: int = 0) -> BackwardContext:
        return BackwardContext(representation, list(self.trunk[2].parameters()), epoch, step)

    def grads(self) -> list[torch.Tensor | None]:
        return [None if p.grad is None else p.grad.clone() for p in self.parameters()]


@dataclass
class Batch:
    x: torch.Tensor
    y: dict[str, torch.Tensor]


def make_batches(tasks: list[str], n_batches: int, seed: int = 1, size: int = 16) -> list[Batch]:
    """Targets of different shapes and scales per task, so that the methods disagree."""
    generator = torch.Generator().manual_seed(seed)
    directions = torch.randn(len(tasks), 5, generator=generator, dtype=torch.float64)
    batches = []
    for _ in range(n_batches):
        x = torch.randn(size, 5, generator=generator, dtype=torch.float64)
        y = {t: (i + 1.0) * torch.sin(x @ directions[i] * (i + 1)) for i, t in enumerate(tasks)}
        batches.append(Batch(x, y))
    return batches


def plain_grads(model: Tiny, batch: Batch) -> list[torch.Tensor | None]:
    """Gradients of the plain sum of the losses on a copy of ``model``."""
    twin = copy.deepcopy(model)
    twin.zero_grad(set_to_none=True)
    losses, _ = twin.losses(batch)
    torch.stack(list(losses.values())).sum().backward()
    return twin.grads()


@dataclass
class Trace:
    weights: list[dict[str, float]] = field(default_factory=list)
    grads: list[list[torch.Tensor | None]] = field(default_factory=list)


def train(
    model: Tiny,
    weighting: LossWeighting,
    batches: list[Batch],
    epochs: int,
    lr: float = 0.05,
    on_step: object = None,
) -> Trace:
    """A minimal trainer driving the interface as workers/train.py does (Adam; weighting params no decay)."""
    groups = [{"params": list(model.parameters())}]
    own = [p for p in weighting.parameters() if p.requires_grad]
    if own:
        groups.append({"params": own, "weight_decay": 0.0})
    optimizer = torch.optim.Adam(groups, lr=lr)
    trace = Trace()
    step = 0
    for epoch in range(epochs):
        sums = dict.fromkeys(model.tasks, 0.0)
        for batch in batches:
            optimizer.zero_grad(set_to_none=True)
            losses, representation = model.losses(batch)
            expected = on_step(model, batch, weighting) if callable(on_step) else None
            trace.weights.append(weighting.backward(losses, model.context(representation, epoch, step)))
            trace.grads.append(model.grads())
            if expected is not None:
                expected(trace.weights[-1], trace.grads[-1])
            optimizer.step()
            weighting.after_step()
            for t in model.tasks:
                sums[t] += float(losses[t].detach()) / len(batches)
            step += 1
        kpis = {t: math.exp(-v) for t, v in sums.items()}  # a bounded KPI in (0, 1], higher is better
        weighting.epoch_end(epoch, sums, kpis)
    return trace


# ------------------------------------------------------------------------------- the shared suite


@pytest.mark.parametrize("name", METHODS)
def test_registry_name_and_class(name: str) -> None:
    weighting = make_weighting(name, TASKS)
    assert isinstance(weighting, WEIGHTINGS[name])
    assert weighting.name == name
    assert weighting.tasks == TASKS


@pytest.mark.parametrize("name", METHODS)
def test_one_task_first_step_equals_plain(name: str) -> None:
    model, (batch,) = Tiny(["a"]), make_batches(["a"], 1)
    expected = plain_grads(model, batch)
    losses, representation = model.losses(batch)
    weights = make_weighting(name, ["a"]).backward(losses, model.context(representation))
    assert weights == {"a": 1.0}
    for got, want in zip(model.grads(), expected, strict=True):
        torch.testing.assert_close(got, want, **TIGHT)


@pytest.mark.parametrize("name", METHODS)
def test_one_task_training_reduces_to_plain(name: str) -> None:
    """Over several epochs (so that DWA/DTP/GradNorm state moves) the gradient is the plain gradient.

    For every method but ``uncertainty`` the weight stays exactly 1 and the run equals plain training;
    for ``uncertainty`` the documented property holds: the gradient is ``exp(-s)`` times the plain one.
    """
    batches = make_batches(["a"], 3)
    weighting = make_weighting(name, ["a"])

    def check(model: Tiny, batch: Batch, weighting: LossWeighting):  # type: ignore[no-untyped-def]
        plain = plain_grads(model, batch)

        def compare(weights: dict[str, float], grads: list[torch.Tensor | None]) -> None:
            factor = weights["a"]
            if name == "uncertainty":
                assert factor == pytest.approx(math.exp(-float(weighting.log_vars.detach())), rel=1e-6)
            else:
                assert factor == 1.0
            for got, want in zip(grads, plain, strict=True):
                assert got is not None and want is not None
                torch.testing.assert_close(got, factor * want, rtol=1e-6, atol=1e-12)

        return compare

    model = Tiny(["a"])
    trace = train(model, weighting, batches, epochs=4, on_step=check)
    if name == "uncertainty":
        assert any(w["a"] != 1.0 for w in trace.weights)  # s did learn: the factor is not trivially 1
    else:
        reference = Tiny(["a"])
        train(reference, make_weighting("equal", ["a"]), batches, epochs=4)
        for got, want in zip(model.parameters(), reference.parameters(), strict=True):
            torch.testing.assert_close(got, want, **TIGHT)


@pytest.mark.parametrize("name", METHODS)
def test_weights_finite_non_negative_and_grads_on_model(name: str) -> None:
    """Weights are finite and >= 0, except for a method that declares ``negative_weights`` (Pareto MTL,
    whose own tests check instead that its step solves its min-norm problem)."""
    model = Tiny(TASKS)
    trace = train(model, make_weighting(name, TASKS), make_batches(TASKS, 3), epochs=4)
    signed = WEIGHTINGS[name].negative_weights
    assert signed == (name == "pareto")
    for weights in trace.weights:
        assert list(weights) == TASKS
        assert all(math.isfinite(w) and (signed or w >= 0) for w in weights.values()), weights
    for grads in trace.grads:
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        assert sum(float(g.abs().sum()) for g in grads if g is not None) > 0
    if name != "equal":  # every adaptive method moves its weights away from 1 on these unequal tasks
        assert any(abs(w - 1.0) > 1e-3 for weights in trace.weights for w in weights.values())


@pytest.mark.parametrize("name", METHODS)
def test_deterministic(name: str) -> None:
    runs = []
    for _ in range(2):
        model = Tiny(TASKS, seed=3)
        trace = train(model, make_weighting(name, TASKS), make_batches(TASKS, 2, seed=4), epochs=3)
        runs.append((trace.weights, [p.detach().clone() for p in model.parameters()]))
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1], strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("name", METHODS)
def test_state_dict_round_trip(name: str) -> None:
    """A restored weighting continues exactly as the original (through torch.save, weights_only)."""
    batches = make_batches(TASKS, 2)
    model = Tiny(TASKS)
    original = make_weighting(name, TASKS)
    train(model, original, batches, epochs=3)
    buffer = io.BytesIO()
    torch.save(original.state_dict(), buffer)
    buffer.seek(0)
    restored = make_weighting(name, TASKS)
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    twin = copy.deepcopy(model)
    for weighting, net in ((original, model), (restored, twin)):
        weighting.epoch_end(3, {"a": 0.5, "b": 0.25, "c": 2.0}, {"a": 0.3, "b": 0.6, "c": 0.9})
        net.zero_grad(set_to_none=True)
    out = []
    for weighting, net in ((original, model), (restored, twin)):
        losses, representation = net.losses(batches[0])
        out.append((weighting.backward(losses, net.context(representation, 3, 6)), net.grads()))
    assert out[0][0] == out[1][0]
    for a, b in zip(out[0][1], out[1][1], strict=True):
        assert a is not None and b is not None and torch.equal(a, b)


@pytest.mark.parametrize("name", METHODS)
def test_unknown_or_invalid_option_is_a_clear_error(name: str) -> None:
    with pytest.raises(ValueError, match=rf"weighting_options for '{name}': no_such_option: unknown option"):
        make_weighting(name, TASKS, no_such_option=1.0)


def test_unknown_method_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown method 'gradnrom'; choose one of dtp, dwa, equal"):
        make_weighting("gradnrom", TASKS)


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("gradnorm", {"alpha": -1.0}, r"alpha: Input should be greater than or equal to 0 \(got -1.0\)"),
        ("dwa", {"temperature": 0.0}, r"temperature: Input should be greater than 0"),
        ("dtp", {"alpha": 1.5}, r"alpha: Input should be less than or equal to 1"),
        ("dtp", {"normalize": 0.5}, r"normalize: Input should be a valid boolean"),
        ("mgda", {"normalization": "l1"}, r"normalization: Input should be 'loss\+', 'l2', 'loss' or 'none'"),
        ("uncertainty", {"init": float("nan")}, r"init: "),
        (
            "pareto",
            {"preferences": 4, "preference": 4},
            r"preference: must be below preferences \(4\), got 4",
        ),
        ("pareto", {"preferences": 0}, r"preferences: Input should be greater than or equal to 1"),
        ("pareto", {"preference": 1.5}, r"preference: Input should be a valid integer"),
    ],
)
def test_invalid_option_values(name: str, options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message) as error:
        make_weighting(name, TASKS, **options)
    assert f"known options of '{name}'" in str(error.value)


@pytest.mark.parametrize("name", METHODS)
def test_bad_tasks_and_losses(name: str) -> None:
    with pytest.raises(ValueError, match="tasks: a loss weighting needs at least one task"):
        make_weighting(name, [])
    with pytest.raises(ValueError, match="tasks: duplicate task names"):
        make_weighting(name, ["a", "a"])
    model, (batch,) = Tiny(TASKS), make_batches(TASKS, 1)
    weighting = make_weighting(name, TASKS)
    losses, representation = model.losses(batch)
    context = model.context(representation)
    with pytest.raises(ValueError, match=r"losses: no loss for task\(s\) \['c'\]"):
        weighting.backward({"a": losses["a"], "b": losses["b"]}, context)
    with pytest.raises(ValueError, match=r"losses: unexpected task\(s\) \['z'\]"):
        weighting.backward({**losses, "z": losses["a"]}, context)
    with pytest.raises(ValueError, match=r"losses\['b'\]: expected a scalar loss, got shape \(2,\)"):
        weighting.backward({**losses, "b": losses["b"].repeat(2)}, context)


def test_learnable_parameters_are_exposed_for_the_no_decay_group() -> None:
    """Only uncertainty (log-variances) and gradnorm (task weights) learn; they are module parameters."""
    learnable = {
        name: [
            (n, tuple(p.shape)) for n, p in make_weighting(name, TASKS).named_parameters() if p.requires_grad
        ]
        for name in METHODS
    }
    assert learnable == {
        "dtp": [],
        "dwa": [],
        "equal": [],
        "gradnorm": [("task_weights", (3,))],
        "mgda": [],
        "pareto": [],
        "uncertainty": [("log_vars", (3,))],
    }


# ------------------------------------------------------------------------------------------------ DWA


def test_dwa_pinned_weights() -> None:
    """Loss ratios [0.5, 0.9, 1.0], T = 2 -> [0.856, 1.045, 1.099] (issue 3), and by hand."""
    dwa = make_weighting("dwa", TASKS)
    dwa.epoch_end(0, {"a": 2.0, "b": 1.0, "c": 4.0}, {})
    assert dwa.weights == [1.0, 1.0, 1.0]  # the first two epochs train with weight 1
    dwa.epoch_end(1, {"a": 1.0, "b": 0.9, "c": 4.0}, {})  # ratios 0.5, 0.9, 1.0
    exps = [math.exp(0.5 / 2), math.exp(0.9 / 2), math.exp(1.0 / 2)]
    by_hand = [3 * e / sum(exps) for e in exps]
    assert dwa.weights == pytest.approx(by_hand, rel=1e-12)
    assert dwa.weights == pytest.approx([0.856, 1.045, 1.099], abs=5e-4)
    assert sum(dwa.weights) == pytest.approx(3.0)


def test_dwa_uses_the_last_two_epochs_and_applies_its_weights() -> None:
    dwa = make_weighting("dwa", TASKS, temperature=1.0)
    for epoch, losses in enumerate([[9.0, 9.0, 9.0], [1.0, 2.0, 4.0], [1.0, 1.0, 1.0]]):
        dwa.epoch_end(epoch, dict(zip(TASKS, losses, strict=True)), {})
    exps = [math.exp(1.0), math.exp(0.5), math.exp(0.25)]  # ratios of the last two epochs only
    assert dwa.weights == pytest.approx([3 * e / sum(exps) for e in exps], rel=1e-12)
    model, (batch,) = Tiny(TASKS), make_batches(TASKS, 1)
    twin = copy.deepcopy(model)
    losses, representation = model.losses(batch)
    assert list(dwa.backward(losses, model.context(representation)).values()) == dwa.weights
    twin_losses, _ = twin.losses(batch)
    sum(w * twin_losses[t] for w, t in zip(dwa.weights, TASKS, strict=True)).backward()
    for got, want in zip(model.grads(), twin.grads(), strict=True):
        torch.testing.assert_close(got, want, **TIGHT)


def test_dwa_guards_a_zero_loss_and_large_temperature() -> None:
    dwa = make_weighting("dwa", ["a", "b"], temperature=1e6)
    dwa.epoch_end(0, {"a": 0.0, "b": 1.0}, {})
    dwa.epoch_end(1, {"a": 0.0, "b": 0.5}, {})
    assert dwa.weights == pytest.approx([1.0, 1.0], abs=1e-6)
    with pytest.raises(ValueError, match=r"train_losses: non-finite value for task\(s\) \['b'\]"):
        dwa.epoch_end(2, {"a": 1.0, "b": float("nan")}, {})
    with pytest.raises(ValueError, match=r"train_losses: no value for task\(s\) \['b'\]"):
        dwa.epoch_end(2, {"a": 1.0}, {})


# ------------------------------------------------------------------------------------------------ DTP


def test_dtp_pinned_weights_by_hand() -> None:
    kpis = {"a": 0.2, "b": 0.5, "c": 0.9}
    raw = [0.8 * math.log(5.0), 0.5 * math.log(2.0), 0.1 * -math.log(0.9)]  # -(1-k) log k, gamma 1
    dtp = make_weighting("dtp", TASKS, normalize=False)
    assert dtp.weights == [1.0, 1.0, 1.0]  # before the first KPIs: the equal sum
    dtp.epoch_end(0, {}, kpis)
    assert dtp.weights == pytest.approx(raw, rel=1e-12)
    assert dtp.weights == pytest.approx([1.28755, 0.34657, 0.010536], abs=1e-5)
    normalized = make_weighting("dtp", TASKS)
    normalized.epoch_end(0, {}, kpis)
    assert normalized.weights == pytest.approx([3 * w / sum(raw) for w in raw], rel=1e-12)


def test_dtp_gamma_and_moving_average_by_hand() -> None:
    dtp = make_weighting("dtp", ["a", "b"], gamma=2.0, alpha=0.25, normalize=False)
    dtp.epoch_end(0, {}, {"a": 0.2, "b": 0.8})  # the first KPI initialises the average
    dtp.epoch_end(1, {}, {"a": 0.6, "b": 0.4})
    smoothed = [0.25 * 0.6 + 0.75 * 0.2, 0.25 * 0.4 + 0.75 * 0.8]  # 0.3, 0.7
    assert dtp.kpis == pytest.approx(smoothed, rel=1e-12)
    assert dtp.weights == pytest.approx([-(0.7**2) * math.log(0.3), -(0.3**2) * math.log(0.7)], rel=1e-12)


def test_dtp_clips_kpis_at_zero_and_one_and_rejects_unbounded_ones() -> None:
    dtp = make_weighting("dtp", ["a", "b"], alpha=1.0, normalize=False)
    dtp.epoch_end(0, {}, {"a": 0.0, "b": 1.0})
    assert dtp.weights == pytest.approx([-(1 - EPS) * math.log(EPS), -EPS * math.log(1 - EPS)], rel=1e-9)
    assert all(math.isfinite(w) and w > 0 for w in dtp.weights)
    with pytest.raises(ValueError, match=r"kpis: task\(s\) \['b'\] have a KPI outside \[0, 1\]"):
        dtp.epoch_end(1, {}, {"a": 0.5, "b": 1.2})
    with pytest.raises(ValueError, match=r"kpis: non-finite value for task\(s\) \['a'\]"):
        dtp.epoch_end(1, {}, {"a": float("nan"), "b": 0.5})


# ---------------------------------------------------------------------------------------- uncertainty


def test_uncertainty_loss_value_and_gradients_by_hand() -> None:
    uw = make_weighting("uncertainty", ["a", "b"])
    with torch.no_grad():
        uw.log_vars.copy_(torch.tensor([0.0, math.log(2.0)]))
    losses = {"a": torch.tensor(1.0, requires_grad=True), "b": torch.tensor(3.0, requires_grad=True)}
    value = uw.objective(losses)
    assert float(value.detach()) == pytest.approx(1.0 + 0.0 + 3.0 / 2.0 + math.log(2.0), rel=1e-6)
    weights = uw.backward(losses, BackwardContext(torch.zeros(1), []))
    assert weights == pytest.approx({"a": 1.0, "b": 0.5}, rel=1e-6)
    assert uw.log_vars.grad.tolist() == pytest.approx([1 - 1.0, 1 - 1.5], abs=1e-6)  # d/ds = 1 - e^-s L
    assert float(losses["a"].grad) == pytest.approx(1.0) and float(losses["b"].grad) == pytest.approx(0.5)


def test_uncertainty_learns_log_variance_equal_to_log_loss() -> None:
    """The documented optimum: s* = log L, i.e. the effective weight exp(-s*) = 1 / L."""
    uw = make_weighting("uncertainty", ["a", "b"])
    optimizer = torch.optim.Adam([{"params": uw.parameters(), "weight_decay": 0.0}], lr=0.05)
    for _ in range(600):
        optimizer.zero_grad()
        uw.backward({"a": torch.tensor(4.0), "b": torch.tensor(0.25)}, BackwardContext(torch.zeros(1), []))
        optimizer.step()
    assert uw.log_vars.tolist() == pytest.approx([math.log(4.0), math.log(0.25)], abs=1e-3)


# ------------------------------------------------------------------------------------------ GradNorm


def test_gradnorm_two_steps_by_hand() -> None:
    """Step 1 records L(0); step 2 (other batch, moved weights) checked against the paper's formulas."""
    alpha = 1.5
    model, batches = Tiny(TASKS), make_batches(TASKS, 2)
    gradnorm = make_weighting("gradnorm", TASKS, alpha=alpha)
    losses0, representation = model.losses(batches[0])
    initial = [losses0[t].item() for t in TASKS]
    gradnorm.backward(losses0, model.context(representation))
    model.zero_grad(set_to_none=True)
    with torch.no_grad():
        gradnorm.task_weights.copy_(torch.tensor([0.5, 1.0, 1.5]))
    gradnorm.task_weights.grad = None

    twin = copy.deepcopy(model)
    losses, representation = model.losses(batches[1])
    weights = gradnorm.backward(losses, model.context(representation))
    assert weights == pytest.approx({"a": 0.5, "b": 1.0, "c": 1.5})

    # by hand, on the twin
    twin_losses, _ = twin.losses(batches[1])
    shared = list(twin.trunk[2].parameters())
    norms = []
    for t in TASKS:
        grads = torch.autograd.grad(twin_losses[t], shared, retain_graph=True)
        norms.append(math.sqrt(sum(float((g**2).sum()) for g in grads)))
    w = [0.5, 1.0, 1.5]
    big_g = [wi * ni for wi, ni in zip(w, norms, strict=True)]
    inverse_rate = [twin_losses[t].item() / l0 for t, l0 in zip(TASKS, initial, strict=True)]
    r = [v / (sum(inverse_rate) / 3) for v in inverse_rate]
    target = [sum(big_g) / 3 * ri**alpha for ri in r]
    expected_w_grad = [math.copysign(ni, gi - ti) for ni, gi, ti in zip(norms, big_g, target, strict=True)]
    assert gradnorm.task_weights.grad.tolist() == pytest.approx(expected_w_grad, rel=1e-5)
    sum(wi * twin_losses[t] for wi, t in zip(w, TASKS, strict=True)).backward()
    for got, want in zip(model.grads(), twin.grads(), strict=True):
        torch.testing.assert_close(got, want, **TIGHT)


def test_gradnorm_first_step_pushes_the_largest_gradient_down() -> None:
    """At step 0 every r_t = 1, so the target is mean(G): larger-than-average norms get a positive grad."""
    model, (batch,) = Tiny(TASKS), make_batches(TASKS, 1)
    gradnorm = make_weighting("gradnorm", TASKS)
    losses, representation = model.losses(batch)
    shared = list(model.trunk[2].parameters())
    norms = [
        math.sqrt(sum(float((g**2).sum()) for g in torch.autograd.grad(losses[t], shared, retain_graph=True)))
        for t in TASKS
    ]
    gradnorm.backward(losses, model.context(representation))
    mean = sum(norms) / 3
    assert gradnorm.task_weights.grad.tolist() == pytest.approx(
        [n if n > mean else -n for n in norms], rel=1e-5
    )


def test_gradnorm_after_step_renormalises_to_n_tasks() -> None:
    gradnorm = make_weighting("gradnorm", TASKS)
    for before, after in [
        ([1.0, 2.0, 3.0], [0.5, 1.0, 1.5]),
        ([-1.0, 1.0, 2.0], [0.0, 1.0, 2.0]),  # negative weights are clipped to 0 first
        ([0.0, 0.0, 0.0], [1.0, 1.0, 1.0]),
    ]:
        with torch.no_grad():
            gradnorm.task_weights.copy_(torch.tensor(before))
        gradnorm.after_step()
        assert gradnorm.task_weights.tolist() == pytest.approx(after)


def test_gradnorm_needs_the_shared_layer() -> None:
    model, (batch,) = Tiny(TASKS), make_batches(TASKS, 1)
    losses, representation = model.losses(batch)
    with pytest.raises(ValueError, match=r"context\.shared_parameters: gradnorm needs the last shared layer"):
        make_weighting("gradnorm", TASKS).backward(losses, BackwardContext(representation, []))


# ---------------------------------------------------------------------------------------------- MGDA


def closed_form(g1: np.ndarray, g2: np.ndarray) -> float:
    """alpha_1 = clip(((g2 - g1)·g2) / |g1 - g2|^2, 0, 1) (the issue's formula)."""
    return float(np.clip((g2 - g1) @ g2 / ((g1 - g2) @ (g1 - g2)), 0.0, 1.0))


def brute_force_min(gram: np.ndarray) -> float:
    """The smallest |sum alpha g|^2 over the affine minima of every support that are feasible."""
    n, best = gram.shape[0], math.inf
    for k in range(1, n + 1):
        for support in itertools.combinations(range(n), k):
            idx = list(support)
            system = np.block(
                [[gram[np.ix_(idx, idx)], -np.ones((k, 1))], [np.ones((1, k)), np.zeros((1, 1))]]
            )
            v = np.linalg.lstsq(system, np.r_[np.zeros(k), 1.0], rcond=None)[0][:k]
            if np.all(v >= -1e-12) and abs(v.sum() - 1) < 1e-9:
                best = min(best, float(v @ gram[np.ix_(idx, idx)] @ v))
    return best


def test_min_norm_two_matches_the_closed_form() -> None:
    rng = np.random.default_rng(0)
    cases = [rng.normal(size=(2, 4)) for _ in range(50)]
    cases += [np.array([[1.0, 0.0], [2.0, 0.0]]), np.array([[1.0, 0.0], [-1.0, 0.1]])]  # clipped, interior
    for g1, g2 in cases:
        gram = np.array([[g1 @ g1, g1 @ g2], [g1 @ g2, g2 @ g2]])
        expected = closed_form(g1, g2)
        assert min_norm_simplex(gram) == pytest.approx([expected, 1 - expected], abs=1e-12)
        assert min_norm_wolfe(gram) == pytest.approx([expected, 1 - expected], abs=1e-9)
    assert min_norm_two(1.0, 2.0, 4.0).tolist() == [1.0, 0.0]  # g2 = 2 g1: the shorter one alone
    assert min_norm_two(1.0, 1.0, 1.0).tolist() == [0.5, 0.5]  # equal vectors: any split, we take half


@pytest.mark.parametrize(("n", "dim"), [(3, 2), (3, 10), (4, 3), (5, 20), (6, 4), (8, 8), (8, 3)])
def test_min_norm_exact_on_random_gradients(n: int, dim: int) -> None:
    """KKT holds; beats every vertex and edge; equals brute force over supports and Wolfe's algorithm."""
    rng = np.random.default_rng(100 * n + dim)
    for trial in range(12):
        vectors = rng.normal(size=(n, dim)) + (rng.normal(size=dim) if trial % 2 else 0.0)  # some far from 0
        gram = vectors @ vectors.T
        alpha = min_norm_simplex(gram)
        value = float(alpha @ gram @ alpha)
        assert alpha.min() >= 0 and alpha.sum() == pytest.approx(1.0, abs=1e-12)
        assert kkt_violation(gram, alpha) < 1e-9
        edges = [
            float(a @ gram[np.ix_([i, j], [i, j])] @ a)
            for i, j in itertools.combinations(range(n), 2)
            for a in [min_norm_two(gram[i, i], gram[i, j], gram[j, j])]
        ]
        assert value <= min(np.diag(gram).min(), min(edges)) + 1e-12
        assert value == pytest.approx(brute_force_min(gram), rel=1e-8, abs=1e-12)
        assert kkt_violation(gram, min_norm_nnls(gram)) < 1e-12  # the primary route on its own
        wolfe = min_norm_wolfe(gram)  # the fallback on its own: an independent exact method
        assert wolfe.min() >= 0 and kkt_violation(gram, wolfe) < 1e-9
        assert value == pytest.approx(float(wolfe @ gram @ wolfe), rel=1e-7, abs=1e-10)


def test_min_norm_degenerate_gradients() -> None:
    g = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])  # a duplicate and a zero gradient
    alpha = min_norm_simplex(g @ g.T)
    assert alpha.tolist() == pytest.approx([0, 0, 0, 1])
    collinear = np.array([[1.0, 1.0], [2.0, 2.0], [-1.0, -1.0]])  # 0 is in the hull
    gram = collinear @ collinear.T
    alpha = min_norm_simplex(gram)
    assert float(alpha @ gram @ alpha) == pytest.approx(0.0, abs=1e-12)
    assert kkt_violation(gram, alpha) < 1e-9
    assert min_norm_simplex(np.zeros((3, 3))).tolist() == pytest.approx([1 / 3] * 3)
    with pytest.raises(ValueError, match="gram: contains NaN"):
        min_norm_simplex(np.full((3, 3), np.nan))


@pytest.mark.parametrize("failure", ["inexact", "iteration limit"])
def test_min_norm_falls_back_to_wolfe_when_nnls_fails(
    failure: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An NNLS answer that fails the KKT check (or an NNLS error) brings in Wolfe's algorithm."""
    from workers.weighting import min_norm

    def broken(gram: np.ndarray) -> np.ndarray:
        if failure == "iteration limit":
            raise RuntimeError("Maximum number of iterations reached.")
        return np.array([1.0, 0.0, 0.0, 0.0])

    vectors = np.random.default_rng(7).normal(size=(4, 3))
    gram = vectors @ vectors.T
    assert kkt_violation(gram, np.array([1.0, 0.0, 0.0, 0.0])) > 1e-3  # the broken answer is wrong
    monkeypatch.setattr(min_norm, "min_norm_nnls", broken)
    with caplog.at_level("WARNING", logger="workers.weighting.min_norm"):
        alpha = min_norm.min_norm_simplex(gram)
    assert kkt_violation(gram, alpha) < 1e-9
    assert float(alpha @ gram @ alpha) == pytest.approx(brute_force_min(gram), rel=1e-8)
    assert ("NNLS failed" in caplog.text) == (failure == "iteration limit")


@pytest.mark.parametrize("normalization", ["none", "l2", "loss", "loss+"])
def test_mgda_two_tasks_on_a_model_by_hand(normalization: str) -> None:
    model, (batch,) = Tiny(["a", "b"]), make_batches(["a", "b"], 1)
    twin = copy.deepcopy(model)
    losses, representation = model.losses(batch)
    weights = make_weighting("mgda", ["a", "b"], normalization=normalization).backward(
        losses, model.context(representation)
    )
    twin_losses, twin_rep = twin.losses(batch)
    g = [
        torch.autograd.grad(twin_losses[t], twin_rep, retain_graph=True)[0].reshape(-1).numpy() for t in "ab"
    ]
    loss = [twin_losses[t].item() for t in "ab"]
    divisor = {
        "none": [1.0, 1.0],
        "l2": [np.linalg.norm(g[0]), np.linalg.norm(g[1])],
        "loss": loss,
        "loss+": [loss[0] * np.linalg.norm(g[0]), loss[1] * np.linalg.norm(g[1])],
    }[normalization]
    alpha_a = closed_form(g[0] / divisor[0], g[1] / divisor[1])
    assert 0.0 < alpha_a < 1.0  # the interior case: a real trade-off
    assert [weights["a"], weights["b"]] == pytest.approx([alpha_a, 1 - alpha_a], abs=1e-10)
    (weights["a"] * twin_losses["a"] + weights["b"] * twin_losses["b"]).backward()
    for got, want in zip(model.grads(), twin.grads(), strict=True):
        torch.testing.assert_close(got, want, **TIGHT)


def test_mgda_min_norm_direction_does_not_increase_any_task_at_the_representation() -> None:
    """Pareto property of the min-norm point: <d, g_t> >= |d|^2 >= 0 for every task (d = sum alpha g)."""
    model, (batch,) = Tiny(TASKS), make_batches(TASKS, 1)
    mgda = make_weighting("mgda", TASKS, normalization="none")
    losses, representation = model.losses(batch)
    gram, _ = mgda.representation_gram(losses, representation)
    alpha = np.array(list(mgda.backward(losses, model.context(representation)).values()))
    assert np.all(gram @ alpha >= alpha @ gram @ alpha - 1e-12)


def test_mgda_needs_the_representation_in_the_graph() -> None:
    model, (batch,) = Tiny(TASKS), make_batches(TASKS, 1)
    losses, representation = model.losses(batch)
    with pytest.raises(ValueError, match=r"context\.representation: mgda needs the shared representation"):
        make_weighting("mgda", TASKS).backward(losses, model.context(representation.detach()))


# --------------------------------------------------------------------------------------------- Pareto MTL


def test_preference_vectors_two_tasks_are_the_papers_evenly_spread_angles() -> None:
    angles = [k * math.pi / 8 for k in range(5)]
    expected = [[math.cos(a), math.sin(a)] for a in angles]
    assert preference_vectors(2, 5) == pytest.approx(np.array(expected), abs=1e-15)
    assert preference_vectors(2, 1) == pytest.approx(np.array([[math.sqrt(0.5), math.sqrt(0.5)]]))
    assert preference_vectors(1, 3).tolist() == [[1.0], [1.0], [1.0]]
    assert balanced_index(preference_vectors(2, 5)) == 2  # the diagonal
    assert balanced_index(preference_vectors(2, 4)) == 1  # two equally balanced: the lower index


def test_preference_vectors_three_tasks_by_hand() -> None:
    """K = 3: the axes; K = 6: the whole H = 2 lattice; K = 5: five of its six points, chosen greedily
    from the most balanced (1, 1, 0), then the farthest in angle, ties to the earlier lattice point."""
    assert simplex_lattice(3, 2).tolist() == [
        [1, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 1, 0], [0, 0.5, 0.5], [0, 0, 1]
    ]  # fmt: skip
    assert preference_vectors(3, 3).tolist() == np.eye(3).tolist()
    lattice = simplex_lattice(3, 2)
    unit = lattice / np.linalg.norm(lattice, axis=1, keepdims=True)
    assert preference_vectors(3, 6) == pytest.approx(unit)
    assert preference_vectors(3, 5) == pytest.approx(unit[[0, 1, 2, 3, 5]])


@pytest.mark.parametrize(("m", "k"), [(3, 2), (3, 7), (4, 5), (5, 12), (8, 30)])
def test_preference_vectors_are_distinct_unit_vectors_of_the_positive_orthant(m: int, k: int) -> None:
    vectors = preference_vectors(m, k)
    assert vectors.shape == (k, m)
    assert np.all(vectors >= 0)
    assert np.linalg.norm(vectors, axis=1) == pytest.approx(np.ones(k))
    assert len({tuple(np.round(v, 12)) for v in vectors}) == k
    assert np.array_equal(vectors, preference_vectors(m, k))  # deterministic


def test_constraints_and_active_set_by_hand() -> None:
    vectors = preference_vectors(2, 2)  # u_0 = (1, 0), u_1 = (0, 1)
    assert constraint_values(np.array([3.0, 4.0]), vectors, 0) == pytest.approx([0.0, (4 - 3) / 5])
    assert active_constraints(np.array([1.0, 2.0]), vectors, 0, 0.0).tolist() == [1]  # L2 > L1: violated
    assert active_constraints(np.array([2.0, 1.0]), vectors, 0, 0.0).tolist() == []
    assert active_constraints(np.array([2.0, 1.0]), vectors, 0, 0.5).tolist() == [1]  # within epsilon
    assert active_constraints(np.array([1.0]), preference_vectors(1, 4), 2, 1.0).tolist() == []  # u_j = u_k


def test_pareto_step_by_hand() -> None:
    """g1 = (1, 0), g2 = (1, 0.1), u_0 = (1, 0), u_1 = (0, 1), following u_0 with L = (1, 2): the constraint
    G_1 = L2 - L1 is violated, grad G_1 = g2 - g1 = (0, 0.1). The min-norm point of {g1, g2, (0, 0.1)} is
    (1/101) g1 + (100/101) (0, 0.1) (g2 is not in its support), so alpha = (1/101 - 100/101, 100/101)."""
    g = np.array([[1.0, 0.0], [1.0, 0.1]])
    gram, vectors = g @ g.T, preference_vectors(2, 2)
    step = pareto_step(gram, np.array([1.0, 2.0]), vectors, 0)
    assert step.active.tolist() == [1]
    assert step.coefficients == pytest.approx([1 / 101, 0.0, 100 / 101], abs=1e-12)
    assert step.weights == pytest.approx([-99 / 101, 100 / 101], abs=1e-12)
    assert rescale(step.weights, 2) == pytest.approx([-198 / 199, 200 / 199], abs=1e-12)
    init = initial_step(gram, np.array([1.0, 2.0]), vectors, 0)
    assert init is not None and init.weights == pytest.approx([-1.0, 1.0])  # grad G_1 alone
    assert initial_step(gram, np.array([2.0, 1.0]), vectors, 0) is None  # feasible: the search is over
    feasible = pareto_step(gram, np.array([2.0, 1.0]), vectors, 0)  # no constraint: MGDA's min-norm point
    assert feasible.active.tolist() == [] and feasible.weights == pytest.approx([1.0, 0.0])
    assert rescale(np.zeros(2), 2).tolist() == [0.0, 0.0]


@pytest.mark.parametrize(("m", "count", "dim"), [(2, 5, 3), (2, 8, 20), (3, 6, 4), (4, 10, 12), (5, 7, 30)])
def test_pareto_step_satisfies_the_kkt_conditions_on_random_gradients(m: int, count: int, dim: int) -> None:
    """The dual of the paper's subproblem (Eq. 12) over the hull of the task gradients and the active
    constraints' gradients: KKT of the min-norm QP; the primal direction d = sum alpha_i g_i satisfies
    v . d >= |d|^2 for every vector v of the hull, with equality on the support (Eq. 14's reduction);
    its norm equals a brute-force enumeration of supports."""
    rng = np.random.default_rng(10 * m + count)
    vectors = preference_vectors(m, count)
    with_constraints = 0
    for trial in range(16):
        g = rng.normal(size=(m, dim)) + (rng.normal(size=dim) if trial % 2 else 0.0)
        g *= rng.uniform(0.1, 10.0, size=(m, 1))  # unequal gradient scales
        gram, losses, k = g @ g.T, rng.uniform(0.1, 5.0, size=m), int(rng.integers(count))
        step = pareto_step(gram, losses, vectors, k, epsilon=float(trial % 3) * 0.1)
        rows = np.vstack([np.eye(m), vectors[step.active] - vectors[k]])
        hull = rows @ g  # the hull's vectors: task gradients, then grad G_j
        assert step.gram == pytest.approx(hull @ hull.T, rel=1e-12, abs=1e-12)
        assert step.coefficients.min() >= 0 and step.coefficients.sum() == pytest.approx(1.0, abs=1e-12)
        assert kkt_violation(step.gram, step.coefficients) < 1e-9
        assert step.weights == pytest.approx(rows.T @ step.coefficients, abs=1e-12)
        d = step.weights @ g
        assert d == pytest.approx(step.coefficients @ hull, abs=1e-9)
        scale = float(np.max(np.diag(step.gram)))
        products = hull @ d
        assert np.all(products >= d @ d - 1e-9 * scale)
        support = step.coefficients > 1e-9
        assert products[support] == pytest.approx(np.full(support.sum(), d @ d), abs=1e-9 * scale)
        assert d @ d == pytest.approx(brute_force_min(step.gram), rel=1e-7, abs=1e-12)
        with_constraints += len(step.active) > 0
    assert with_constraints >= 4  # the constraints really took part


def test_pareto_one_constraint_violated_then_feasible_on_a_model() -> None:
    """On the tiny model: the initial phase descends the violated constraints only, then the main step;
    the model receives the gradient of sum w_t L_t with the rescaled weights of the pure step."""
    model, batches = Tiny(["a", "b"]), make_batches(["a", "b"], 2)
    losses, representation = model.losses(batches[0])
    values = np.array([losses["a"].item(), losses["b"].item()])
    vectors = preference_vectors(2, 5)
    # follow the vector that the current losses violate most: the far side of the quarter circle
    k = 0 if values[1] > values[0] else 4
    pareto = make_weighting("pareto", ["a", "b"], preferences=5, preference=k)
    assert isinstance(pareto, ParetoWeighting) and pareto.searching
    twin = copy.deepcopy(model)
    weights = pareto.backward(losses, model.context(representation))
    twin_losses, twin_rep = twin.losses(batches[0])
    g = np.stack(
        [
            torch.autograd.grad(twin_losses[t], twin_rep, retain_graph=True)[0].reshape(-1).numpy()
            for t in "ab"
        ]
    )
    expected = initial_step(g @ g.T, values, vectors, k)
    assert expected is not None and len(expected.active) > 0
    assert [weights["a"], weights["b"]] == pytest.approx(rescale(expected.weights, 2).tolist(), abs=1e-10)
    assert min(weights.values()) < 0 < max(weights.values())  # a trade: one loss is pushed up
    (weights["a"] * twin_losses["a"] + weights["b"] * twin_losses["b"]).backward()
    for got, want in zip(model.grads(), twin.grads(), strict=True):
        torch.testing.assert_close(got, want, **TIGHT)
    late = make_weighting("pareto", ["a", "b"], preferences=5, preference=k, init_epochs=1)
    model.zero_grad(set_to_none=True)
    losses, representation = model.losses(batches[1])
    late.backward(losses, model.context(representation, epoch=1))  # past init_epochs: the main step
    assert not late.searching


def test_pareto_family_spreads_the_trade_off() -> None:
    """Two conflicting tasks, trained along three of five preference vectors: following u = (1, 0) (task
    a's axis) ends with the largest L_a / L_b, the diagonal in between, u = (0, 1) with the smallest
    (measured: 3.7, 0.77, 0.59)."""
    tasks = ["a", "b"]
    batches = make_batches(tasks, 4, seed=9)
    for batch in batches:
        batch.y["b"] = -batch.y["a"] + 0.1 * batch.y["b"]  # b wants the opposite of a
    ratios = []
    for k in (0, 2, 4):
        model = Tiny(tasks, seed=2)
        train(model, make_weighting("pareto", tasks, preferences=5, preference=k), batches, epochs=15)
        losses, _ = model.losses(batches[0])
        ratios.append(losses["a"].item() / losses["b"].item())
    assert ratios[0] > ratios[1] > ratios[2]


def test_pareto_default_preference_is_the_most_balanced() -> None:
    assert make_weighting("pareto", TASKS).index == balanced_index(preference_vectors(3, 5))
    assert make_weighting("pareto", ["a", "b"]).preference_vector == pytest.approx([math.sqrt(0.5)] * 2)
    assert make_weighting(
        "pareto", ["a", "b"], preferences=7, preference=6
    ).preference_vector == pytest.approx([0.0, 1.0], abs=1e-15)
