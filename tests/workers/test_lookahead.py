"""TAG lookahead affinity: signs and values known by construction, exact restore (parameters, optimiser
state, BatchNorm statistics, gradients, RNG), a training with lookahead bit-identical to one without, a true
mean over lookahead steps."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from pydantic import ValidationError
from torch import nn

from tests.workers.test_train import FakeImages
from workers import train as train_module
from workers.datasets import DATASETS, TaskInfo, TaskKind
from workers.lookahead import AffinityMean, LookaheadAffinity, TrainingSnapshot, lookahead_parameters
from workers.losses import task_loss
from workers.models import MultiTaskModel, make_family
from workers.spec import LookaheadSettings, TrainingResult, TrainingSettings, TrainingSpec
from workers.train import OPTIMIZERS, _param_groups, train_candidate
from workers.weighting import BackwardContext, make_weighting

EVERY = LookaheadSettings(every=1)


def regression(name: str) -> TaskInfo:
    return TaskInfo(name=name, kind=TaskKind.REGRESSION, loss="mse", metric="r2")


# ------------------------------------------------------------------------------- a problem solved by hand
def scalar_problem(
    w: float = 0.0, dropout: float = 0.0
) -> tuple[MultiTaskModel, torch.Tensor, dict[str, Any]]:
    """One shared scalar ``w`` (representation = w for an input of ones), identity heads, MSE to targets
    a = 1, b = 2, c = -1: task i's loss is ``(w - t_i)^2``. From w = 0 a step on a or b raises w (good for a
    and b, bad for c) and a step on c lowers it: a and b help each other, c hurts both and both hurt c."""
    torch.manual_seed(0)
    shared = nn.Linear(1, 1, bias=False)
    encoder = nn.Sequential(shared, nn.Dropout(dropout)) if dropout else nn.Sequential(shared)
    heads = {}
    for name in "abc":
        head = nn.Linear(1, 1)
        with torch.no_grad():
            head.weight.fill_(1.0)
            head.bias.zero_()
        heads[name] = head
    with torch.no_grad():
        shared.weight.fill_(w)
    model = MultiTaskModel(encoder, heads, last_shared=shared)
    inputs = torch.ones(4, 1)
    targets = {name: torch.full((4, 1), value) for name, value in zip("abc", (1.0, 2.0, -1.0), strict=True)}
    return model, inputs, targets


def sgd_by_hand(w: float, lr: float = 0.1) -> dict[str, dict[str, float]]:
    """Z_{i->j} of one plain SGD step from w: w' = w - 2 lr (w - t_i); Z = 1 - (w' - t_j)^2 / (w - t_j)^2."""
    targets = {"a": 1.0, "b": 2.0, "c": -1.0}
    out = {}
    for i, ti in targets.items():
        moved = w - lr * 2 * (w - ti)
        out[i] = {j: 1 - (moved - tj) ** 2 / (w - tj) ** 2 for j, tj in targets.items()}
    return out


def lookahead_on(
    model: MultiTaskModel, optimizer: torch.optim.Optimizer, every: int = 1
) -> LookaheadAffinity:
    return LookaheadAffinity(model, optimizer, [regression(n) for n in "abc"], LookaheadSettings(every=every))


def test_signs_and_values_known_by_construction_sgd_momentum() -> None:
    model, inputs, targets = scalar_problem()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)  # no state yet: first step = SGD
    z = lookahead_on(model, optimizer).measure(inputs, targets)
    # by hand from w = 0: a step on a gives w = 0.2, on b w = 0.4, on c w = -0.2
    expected = {
        "a": {"a": 1 - 0.64 / 1, "b": 1 - 3.24 / 4, "c": 1 - 1.44 / 1},
        "b": {"a": 1 - 0.36 / 1, "b": 1 - 2.56 / 4, "c": 1 - 1.96 / 1},
        "c": {"a": 1 - 1.44 / 1, "b": 1 - 4.84 / 4, "c": 1 - 0.64 / 1},
    }
    for i in "abc":
        for j in "abc":
            assert z[i][j] == pytest.approx(expected[i][j], abs=1e-6), (i, j)
    assert z["a"]["b"] > 0 and z["b"]["a"] > 0  # helps
    assert z["c"]["a"] < 0 and z["c"]["b"] < 0 and z["a"]["c"] < 0 and z["b"]["c"] < 0  # hurts
    assert all(z[i][i] > 0 for i in "abc")


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd"])
def test_signs_with_every_optimizer_of_the_trainer(name: str) -> None:
    model, inputs, targets = scalar_problem()
    weighting = make_weighting("equal", list("abc"))
    settings = TrainingSettings(optimizer=name, learning_rate=0.05, weight_decay=0.01)
    optimizer = OPTIMIZERS[name](_param_groups(model, weighting, settings), settings)
    z = lookahead_on(model, optimizer).measure(inputs, targets)
    assert z["a"]["b"] > 0 and z["b"]["a"] > 0
    assert z["a"]["c"] < 0 and z["b"]["c"] < 0 and z["c"]["a"] < 0 and z["c"]["b"] < 0


def test_momentum_is_part_of_the_lookahead_step() -> None:
    """After a real step on c (w < 0, momentum pointing down), a lookahead step on a still carries that
    momentum: w' = w - lr (0.9 m + g_a) = -0.14, not w - lr g_a = 0.04 as a momentum-free step would give."""
    model, inputs, targets = scalar_problem()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    _, outputs = model(inputs)
    task_loss(regression("c"), outputs["c"], targets["c"]).backward()
    optimizer.step()  # w = -0.2, momentum buffer m = 2
    optimizer.zero_grad(set_to_none=True)
    w, m, lr = -0.2, 2.0, 0.1
    assert model.encoder[0].weight.item() == pytest.approx(w)
    z = lookahead_on(model, optimizer).measure(inputs, targets)
    moved = w - lr * (0.9 * m + 2 * (w - 1.0))  # -0.14: the momentum holds back a's pull
    assert z["a"]["a"] == pytest.approx(1 - (moved - 1) ** 2 / (w - 1) ** 2, abs=1e-6)
    assert z["a"]["a"] == pytest.approx(1 - 1.14**2 / 1.2**2, abs=1e-6)  # 0.0975
    assert z["a"]["a"] < 1 - 0.96**2 / 1.2**2 - 0.2  # momentum-free: 0.36


def test_mean_is_a_true_mean_over_lookahead_steps() -> None:
    """Three lookahead steps at w = 0, 0.5, 1.0 (plain SGD, no state): the result is the plain average of
    the three hand-computed matrices, for every pair, with the counts and the number of steps."""
    model, inputs, targets = scalar_problem()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    lookahead = lookahead_on(model, optimizer)
    for w in (0.0, 0.5, 1.5):
        with torch.no_grad():
            model.encoder[0].weight.fill_(w)
        lookahead.measure(inputs, targets)
    by_hand = [sgd_by_hand(w) for w in (0.0, 0.5, 1.5)]
    result = lookahead.result()
    assert result.steps == 3 and result.every == 1 and result.seconds > 0
    for i in "abc":
        for j in "abc":
            assert result.affinity[i][j] == pytest.approx(sum(m[i][j] for m in by_hand) / 3, abs=1e-6)
            assert result.samples[i][j] == 3
    # pinned: Z_{a->b} at w = 0, 0.5, 1.5 is 1 - 3.24/4, 1 - 1.96/2.25, 1 - 0.36/0.25 (at 1.5 a step on a
    # pulls w away from b's target 2): 0.19, 0.128888.., -0.44, mean -0.040370..
    assert result.affinity["a"]["b"] == pytest.approx((0.19 + 0.29 / 2.25 - 0.44) / 3, abs=1e-6)


def test_affinity_mean_counts_each_pair() -> None:
    mean = AffinityMean(["a", "b"])
    mean.add({"a": {"a": 1.0, "b": 2.0}, "b": {"a": -1.0}})
    mean.add({"a": {"a": 3.0}})
    mean.add({})
    assert mean.steps == 3
    assert mean.mean() == {"a": {"a": 2.0, "b": 2.0}, "b": {"a": -1.0}}
    assert mean.counts["a"] == {"a": 2, "b": 1}


def test_unlabelled_tasks_are_skipped_and_counted() -> None:
    model, inputs, targets = scalar_problem()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    lookahead = lookahead_on(model, optimizer)
    lookahead.measure(inputs, targets)
    lookahead.measure(inputs, {**targets, "c": torch.full((4, 1), float("nan"))})  # no label for c
    result = lookahead.result()
    assert result.steps == 2
    assert result.samples["a"] == {"a": 2, "b": 2, "c": 1}
    assert result.samples["c"] == {"a": 1, "b": 1, "c": 1}
    assert result.affinity["c"]["a"] == pytest.approx(sgd_by_hand(0.0)["c"]["a"], abs=1e-6)


# ------------------------------------------------------------------------------- exact restore
IMAGE_TASKS = [
    TaskInfo(name="s", kind=TaskKind.SEGMENTATION, classes=3, loss="cross-entropy", metric="accuracy"),
    TaskInfo(name="d", kind=TaskKind.DENSE, channels=1, loss="l1", metric="mae"),
    TaskInfo(name="a", kind=TaskKind.DENSE, channels=3, loss="l1", metric="mae"),
]


def image_training(optimizer_name: str, real_steps: int = 2) -> tuple[Any, ...]:
    """A conv model (BatchNorm in encoder and decoders) with a learnable weighting, after a few real steps:
    optimiser moments, momentum buffers and BN running statistics are all non-trivial, and the last step's
    gradients are still in ``.grad`` (as at the start of a step in the trainer)."""
    torch.manual_seed(1)
    family = make_family("image", (3, 12, 12), IMAGE_TASKS, {"channels": 4})
    model = family.build(1.0)
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.encoder.modules())
    names = [t.name for t in IMAGE_TASKS]
    weighting = make_weighting("uncertainty", names)
    settings = TrainingSettings(optimizer=optimizer_name, learning_rate=0.01, weight_decay=0.001)
    optimizer = OPTIMIZERS[optimizer_name](_param_groups(model, weighting, settings), settings)
    inputs = torch.rand(6, 3, 12, 12)
    targets = {
        "s": (inputs[:, 0] * 3).long().clamp_max(2),
        "d": inputs[:, 1:2] * 0.5,
        "a": inputs.clone(),
    }
    model.train()
    for step in range(real_steps):
        representation, outputs = model(inputs)
        losses = {t.name: task_loss(t, outputs[t.name], targets[t.name]) for t in IMAGE_TASKS}
        optimizer.zero_grad(set_to_none=True)
        weighting.backward(losses, BackwardContext(representation, model.shared_parameters(), step=step))
        optimizer.step()
    return model, weighting, optimizer, inputs, targets


def everything(model: nn.Module, weighting: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Every tensor a lookahead could disturb, cloned: parameters, grads, buffers, optimiser state, RNG."""
    params = [*model.parameters(), *weighting.parameters()]
    state = optimizer.state_dict()
    return {
        "params": [p.detach().clone() for p in params],
        "grads": [None if p.grad is None else p.grad.clone() for p in params],
        "grad_ids": [id(p.grad) for p in params],
        "buffers": {k: v.clone() for k, v in model.state_dict().items()},
        "weighting": {k: v.clone() for k, v in weighting.state_dict().items()},
        "state": {i: {k: v.clone() for k, v in s.items()} for i, s in state["state"].items()},
        "groups": state["param_groups"],
        "rng": torch.get_rng_state(),
    }


def assert_identical(before: dict[str, Any], after: dict[str, Any]) -> None:
    assert all(torch.equal(x, y) for x, y in zip(before["params"], after["params"], strict=True))
    for x, y in zip(before["grads"], after["grads"], strict=True):
        assert (x is None and y is None) or torch.equal(x, y)
    assert before["grad_ids"] == after["grad_ids"]
    assert before["buffers"].keys() == after["buffers"].keys()
    assert all(torch.equal(before["buffers"][k], after["buffers"][k]) for k in before["buffers"])
    assert all(torch.equal(before["weighting"][k], after["weighting"][k]) for k in before["weighting"])
    assert before["state"].keys() == after["state"].keys()
    for index, state in before["state"].items():
        assert state.keys() == after["state"][index].keys()
        assert all(torch.equal(state[k], after["state"][index][k]) for k in state), index
    assert before["groups"] == after["groups"]
    assert torch.equal(before["rng"], after["rng"])


@pytest.mark.parametrize("optimizer_name", ["adam", "sgd", "adamw"])
def test_lookahead_leaves_the_training_bit_identical(optimizer_name: str) -> None:
    model, weighting, optimizer, inputs, targets = image_training(optimizer_name)
    before = everything(model, weighting, optimizer)
    assert before["state"], "the real steps created optimiser state"
    lookahead = LookaheadAffinity(model, optimizer, IMAGE_TASKS, EVERY)
    z = lookahead.measure(inputs, targets)
    assert_identical(before, everything(model, weighting, optimizer))
    assert set(z) == {"s", "d", "a"} and all(
        math.isfinite(v) and v != 0 for r in z.values() for v in r.values()
    )
    assert lookahead.measure(inputs, targets) == z  # repeatable: it starts from the same state


def test_lookahead_at_step_zero_creates_no_optimiser_state() -> None:
    model, weighting, optimizer, inputs, targets = image_training("adam", real_steps=0)
    before = everything(model, weighting, optimizer)
    LookaheadAffinity(model, optimizer, IMAGE_TASKS, EVERY).measure(inputs, targets)
    assert len(optimizer.state) == 0
    assert_identical(before, everything(model, weighting, optimizer))


@pytest.mark.parametrize("optimizer_name", ["adam", "sgd"])
def test_a_lookahead_step_does_change_what_is_restored(optimizer_name: str) -> None:
    """The restore above is not vacuous: the lookahead's step and forward pass change the shared
    parameters, the Adam moments and step counts (or SGD's momentum buffers) and the BN statistics, and
    :class:`TrainingSnapshot` puts every one of them back."""
    model, weighting, optimizer, inputs, targets = image_training(optimizer_name)
    before = everything(model, weighting, optimizer)
    shared = lookahead_parameters(model)
    snapshot = TrainingSnapshot.capture(model, optimizer, shared)
    _, outputs = model(inputs)
    loss = task_loss(IMAGE_TASKS[1], outputs["d"], targets["d"])
    for p in [*model.parameters(), *weighting.parameters()]:
        p.grad = None
    for p, g in zip(shared, torch.autograd.grad(loss, shared, allow_unused=True), strict=True):
        p.grad = g
    optimizer.step()
    torch.rand(1)  # an RNG draw, as a dropout layer would make
    changed = everything(model, weighting, optimizer)
    assert not all(torch.equal(x, y) for x, y in zip(before["params"], changed["params"], strict=True))
    shared_ids = {id(p) for p in shared}
    heads = [i for i, p in enumerate(model.parameters()) if id(p) not in shared_ids]
    assert all(torch.equal(before["params"][i], changed["params"][i]) for i in heads)  # heads not stepped
    moved = [
        k
        for s in before["state"]
        for k in before["state"][s]
        if not torch.equal(before["state"][s][k], changed["state"][s][k])
    ]
    assert set(moved) == (
        {"step", "exp_avg", "exp_avg_sq"} if optimizer_name == "adam" else {"momentum_buffer"}
    )
    assert any(
        not torch.equal(before["buffers"][k], changed["buffers"][k])
        for k in before["buffers"]
        if "running_mean" in k
    )
    assert not torch.equal(before["rng"], changed["rng"])
    snapshot.restore()
    assert_identical(before, everything(model, weighting, optimizer))


def test_same_random_numbers_before_and_after_and_full_precision() -> None:
    """With dropout in the shared encoder and a zero learning rate, the step moves nothing: Z is exactly 0
    only if the 'after' pass draws the same dropout mask as the 'before' pass. Inside a caller's bfloat16
    autocast the lookahead still runs in float32 (the same values as outside)."""
    model, inputs, targets = scalar_problem(w=0.3, dropout=0.5)
    lookahead = lookahead_on(model, torch.optim.SGD(model.parameters(), lr=0.0))
    rng = torch.get_rng_state()
    z = lookahead.measure(inputs, targets)
    assert all(v == 0.0 for row in z.values() for v in row.values())
    assert torch.equal(torch.get_rng_state(), rng)
    model, inputs, targets = scalar_problem(w=0.3)
    lookahead = lookahead_on(model, torch.optim.Adam(model.parameters(), lr=0.01))
    plain = lookahead.measure(inputs, targets)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert lookahead.measure(inputs, targets) == plain


# ------------------------------------------------------------------------------- in the trainer
PLANTED = {"name": "planted", "params": {"groups": [2, 1], "samples": 128, "evaluation_samples": 128}}


@pytest.fixture
def fake_images() -> Iterator[str]:
    DATASETS[FakeImages.name] = FakeImages
    yield FakeImages.name
    DATASETS.pop(FakeImages.name, None)


def record_weights(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, torch.Tensor]]:
    """The model's weights at every evaluation: after each epoch, and the restored best at the end."""
    seen: list[dict[str, torch.Tensor]] = []
    original = train_module.evaluate

    def recording(model: MultiTaskModel, *args: Any, **kwargs: Any) -> Any:
        seen.append({k: v.clone() for k, v in model.state_dict().items()})
        return original(model, *args, **kwargs)

    monkeypatch.setattr(train_module, "evaluate", recording)
    return seen


@pytest.mark.parametrize(
    ("dataset", "tasks", "settings"),
    [
        ("planted", ["a1", "a2", "b1"], {"epochs": 3, "batch_size": 32, "weighting": "gradnorm"}),
        (
            "images",
            ["s", "d", "a"],
            {"epochs": 2, "batch_size": 8, "optimizer": "sgd", "learning_rate": 0.01},
        ),
    ],
)
def test_training_with_lookahead_is_bit_identical_to_without(
    dataset: str,
    tasks: list[str],
    settings: dict[str, Any],
    fake_images: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ref = PLANTED if dataset == "planted" else {"name": fake_images}
    base = {"dataset": ref, "tasks": tasks, "threads": 1, "seed": 3, "settings": settings}
    seen = record_weights(monkeypatch)
    off = train_candidate(base)
    weights_off = list(seen)
    seen.clear()
    on = train_candidate({**base, "lookahead": {"every": 3}})
    weights_on = list(seen)
    assert off.lookahead is None and on.lookahead is not None
    assert len(weights_on) == len(weights_off) == off.epochs_run + 2
    for a, b in zip(weights_off, weights_on, strict=True):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert on.selection == off.selection and on.scoring == off.scoring and on.metrics == off.metrics
    assert [r.model_dump(exclude={"seconds"}) for r in on.curve] == [
        r.model_dump(exclude={"seconds"}) for r in off.curve
    ]
    steps = math.ceil((128 if dataset == "planted" else 24) / settings["batch_size"]) * on.epochs_run
    assert on.lookahead.steps == math.ceil(steps / 3)
    assert on.lookahead.every == 3 and 0 < on.lookahead.seconds < on.wall_seconds
    assert set(on.lookahead.affinity) == set(tasks)
    assert all(
        set(row) == set(tasks) and all(map(math.isfinite, row.values()))
        for row in on.lookahead.affinity.values()
    )
    again = TrainingResult.model_validate_json(on.model_dump_json())  # what the store and Ray carry
    assert again.lookahead == on.lookahead


def test_lookahead_spec_is_validated() -> None:
    base = {"dataset": PLANTED, "tasks": ["a1", "a2"]}
    assert TrainingSpec.model_validate(base).lookahead is None
    assert TrainingSpec.model_validate({**base, "lookahead": {}}).lookahead == LookaheadSettings(every=10)
    with pytest.raises(ValidationError, match="lookahead"):
        TrainingSpec.model_validate({**base, "tasks": ["a1"], "lookahead": {"every": 5}})
    with pytest.raises(ValidationError, match="every"):
        TrainingSpec.model_validate({**base, "lookahead": {"every": 0}})
    with pytest.raises(ValidationError, match="often"):
        TrainingSpec.model_validate({**base, "lookahead": {"often": 3}})
    old = TrainingResult.model_validate_json(
        TrainingResult.model_validate_json(_plain_result_json()).model_dump_json(exclude={"lookahead"})
    )
    assert old.lookahead is None  # results stored before the option existed still read


def _plain_result_json() -> str:
    spec = TrainingSpec.model_validate({"dataset": PLANTED, "tasks": ["a1", "a2"]})
    return TrainingResult(
        spec=spec,
        selection={},
        scoring={},
        curve=[],
        best_epoch=0,
        epochs_run=0,
        wall_seconds=0.0,
        flops_per_sample=0.0,
        parameters=0,
        device="cpu",
    ).model_dump_json()
