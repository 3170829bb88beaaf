"""Architectures of the registry (workers.models): forward/backward, the representation cut, FLOPs and cost,
cross-stitch and NDDR initialisation, and independence when the mixing is zero."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch
from torch import nn

from tests.workers.test_models import IMAGE_TASKS, binary, dense, real_flops, reg
from workers.datasets.base import TaskInfo
from workers.models import (
    ARCHITECTURES,
    ColumnsModel,
    CrossStitchUnit,
    MTANModel,
    MultiTaskModel,
    NDDRUnit,
    architecture_cost,
    architectures_for,
    build_model,
    candidate_cost,
    get_architecture,
    make_family,
    multiplier_for_capacity,
)

VECTOR_TASKS = [reg("y1"), reg("y2", 2), binary("b")]
KINDS = {
    "image": ((3, 12, 16), [*IMAGE_TASKS[:3], binary("indoor")]),
    "vector": ((11,), VECTOR_TASKS),
}
CASES = [
    (arch, kind)
    for arch in sorted(ARCHITECTURES)
    for kind in sorted(KINDS)
    if arch in architectures_for(kind)
]
SOFT = [(arch, kind) for arch, kind in CASES if arch != "hard"]


def losses_of(outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: out.float().pow(2).mean() for name, out in outputs.items()}


# ------------------------------------------------------------------------------------------ the registry


def test_registry_names_and_input_kinds() -> None:
    assert sorted(ARCHITECTURES) == ["cross-stitch", "hard", "mtan", "nddr"]
    assert architectures_for("image") == ["cross-stitch", "hard", "mtan", "nddr"]
    assert architectures_for("vector") == ["cross-stitch", "hard", "mtan"]
    assert len(CASES) == 7


def test_unknown_or_inapplicable_architecture_is_a_clear_error() -> None:
    with pytest.raises(
        ValueError, match=r"unknown architecture 'cross_stitch'; choose one of cross-stitch, hard"
    ):
        build_model("vector", (3,), [reg("a")], 1.0, architecture="cross_stitch")
    with pytest.raises(
        ValueError,
        match=r"'nddr' does not apply to vector inputs; for vector inputs choose one of cross-stitch, hard",
    ):
        build_model("vector", (3,), [reg("a")], 1.0, architecture="nddr")
    with pytest.raises(ValueError, match=r"model options for 'cross-stitch': mixng: unknown option"):
        build_model(
            "vector", (3,), [reg("a")], 1.0, architecture="cross-stitch", architecture_options={"mixng": 0}
        )
    with pytest.raises(ValueError, match=r"mixing: Input should be less than or equal to 1"):
        get_architecture("nddr").parse_options({"mixing": 1.5})
    with pytest.raises(ValueError, match=r"'hard' takes no options"):
        get_architecture("hard").parse_options({"mixing": 0.1})
    with pytest.raises(ValueError, match="input_kind: no model family for 'graph'"):
        build_model("graph", (3,), [reg("a")], 1.0, architecture="mtan")


# ------------------------------------------------------------------------------------------ forward, backward


@pytest.mark.parametrize(("architecture", "kind"), CASES)
def test_forward_and_backward(architecture: str, kind: str) -> None:
    """Every head has its task's output shape; every parameter gets a finite gradient; the shared layer
    and the representation are reached by every task's loss."""
    shape, tasks = KINDS[kind]
    torch.manual_seed(0)
    model = build_model(kind, shape, tasks, 0.7, architecture=architecture)
    representation, outputs = model(torch.randn(4, *shape))
    expected = build_model(kind, shape, tasks, 0.7)(torch.randn(4, *shape))[1]  # hard: the reference shapes
    assert {k: v.shape for k, v in outputs.items()} == {k: v.shape for k, v in expected.items()}
    assert representation.shape[0] == 4 and representation.requires_grad
    losses = losses_of(outputs)
    shared = model.shared_parameters()
    own = {id(p) for p in model.parameters()}
    assert shared and all(id(p) in own for p in shared)
    for loss in losses.values():
        (at_z,) = torch.autograd.grad(loss, representation, retain_graph=True)
        assert at_z.abs().sum() > 0
        grads = torch.autograd.grad(loss, shared, retain_graph=True, allow_unused=True)
        assert sum(float(g.abs().sum()) for g in grads if g is not None) > 0
    sum(losses.values()).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
    assert sum(float(p.grad.abs().sum()) for p in model.parameters() if p.grad is not None) > 0


@pytest.mark.parametrize(("architecture", "kind"), CASES)
def test_representation_separates_shared_from_task_specific(architecture: str, kind: str) -> None:
    """MGDA-UB's cut: for every task, the gradient of its loss on every parameter before the representation
    equals the backward pass of its gradient at the representation (no path goes around it)."""
    shape, tasks = KINDS[kind]
    shape = (3, 8, 8) if kind == "image" else shape  # float64 convolutions are slow on CPU
    torch.manual_seed(1)
    model = build_model(kind, shape, tasks, 0.7, architecture=architecture).double()
    representation, outputs = model(torch.randn(3, *shape, dtype=torch.float64))
    if isinstance(model, MultiTaskModel | MTANModel):
        before = list(model.encoder.parameters())
    else:
        assert isinstance(model, ColumnsModel)
        before = [*model.columns.parameters(), *model.units[:-1].parameters()]
    for loss in losses_of(outputs).values():
        (at_z,) = torch.autograd.grad(loss, representation, retain_graph=True)
        direct = torch.autograd.grad(loss, before, retain_graph=True, allow_unused=True)
        through = torch.autograd.grad(representation, before, at_z, retain_graph=True, allow_unused=True)
        for a, b in zip(direct, through, strict=True):
            a = torch.zeros(1, dtype=torch.float64) if a is None else a
            b = torch.zeros(1, dtype=torch.float64) if b is None else b
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("architecture", "kind"), CASES)
def test_same_seed_same_weights_and_capacity_solving_leaves_the_rng(architecture: str, kind: str) -> None:
    shape, tasks = KINDS[kind]
    family = make_family(kind, shape, tasks, architecture=architecture)
    torch.manual_seed(3)
    expected = torch.rand(3)
    torch.manual_seed(3)
    multiplier_for_capacity(family, 0.37)
    assert torch.equal(torch.rand(3), expected)
    states = []
    for _ in range(2):
        torch.manual_seed(5)
        states.append(family.build(0.5).state_dict())
    assert list(states[0]) == list(states[1])
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_mtan_trunk_is_the_hard_encoder() -> None:
    """Built from the same seed, MTAN's trunk starts from exactly the hard-sharing encoder's weights."""
    for kind, (shape, tasks) in KINDS.items():
        torch.manual_seed(2)
        mtan = build_model(kind, shape, tasks, 1.0, architecture="mtan")
        torch.manual_seed(2)
        hard = build_model(kind, shape, tasks, 1.0)
        assert isinstance(mtan, MTANModel) and isinstance(hard, MultiTaskModel)
        trunk, reference = mtan.encoder.state_dict(), hard.encoder.state_dict()
        assert list(trunk) == list(reference)
        assert all(torch.equal(trunk[k], reference[k]) for k in trunk)


# ------------------------------------------------------------------------------------------ FLOPs and cost


@pytest.mark.parametrize(("architecture", "kind"), SOFT)
@pytest.mark.parametrize("options", [{}, {"wide": True}])
@pytest.mark.parametrize("multiplier", [1.0, 0.61, 1.7])
def test_closed_form_flops_equal_flop_counter_mode(
    architecture: str, kind: str, options: dict[str, bool], multiplier: float
) -> None:
    shape, tasks = KINDS[kind]
    widths: dict[str, int] = {}
    if options:
        widths = (
            {"channels": 6, "blocks": 2} if kind == "image" else {"width": 9, "depth": 3, "head_width": 0}
        )
    family = make_family(kind, shape, tasks, widths, architecture)
    assert family.flops(multiplier) == real_flops(family.build(multiplier), shape)


@pytest.mark.parametrize(("architecture", "kind"), CASES)
@pytest.mark.parametrize("capacity", [1.0, 0.5, 0.25, 2.0])
def test_cost_in_snt_is_the_measured_flops_ratio(architecture: str, kind: str, capacity: float) -> None:
    """cost = FLOPs of the built candidate / FLOPs of the full-size hard network of the same tasks, within
    10% as counted by FlopCounterMode; hard sharing costs exactly its capacity."""
    shape, tasks = KINDS[kind]
    cost = architecture_cost(architecture, kind, shape, tasks, capacity)
    torch.manual_seed(0)
    measured = real_flops(build_model(kind, shape, tasks, capacity, architecture=architecture), shape)
    reference = real_flops(build_model(kind, shape, tasks, 1.0), shape)
    assert abs(cost / (measured / reference) - 1) <= 0.10, (cost, measured / reference)
    if architecture == "hard":
        assert cost == capacity
    else:
        assert cost > capacity  # every soft-sharing network does more work than hard sharing


@pytest.mark.parametrize("k", [2, 4, 6])
def test_cross_stitch_of_k_tasks_costs_about_k(k: int) -> None:
    """An MLP with linear heads (the planted dataset's): k columns of 16 -> 32 -> 32 -> 1 plus two k x k
    units over 32 features, against one trunk with k linear heads. By hand: the units add k/32 per
    column layer, so the cost is k to within 20% for up to 6 tasks."""
    tasks = [reg(f"t{i}") for i in range(k)]
    widths = {"width": 32, "depth": 2, "head_width": 0}
    cost = architecture_cost("cross-stitch", "vector", (16,), tasks, 1.0, widths)
    column = 2 * (16 * 32 + 32 * 32 + 32 * 1)
    units = 2 * (2 * k * k * 32)
    hard = 2 * (16 * 32 + 32 * 32 + k * 32 * 1)
    assert cost == pytest.approx((k * column + units) / hard, rel=1e-12)
    assert k <= cost <= 1.2 * k
    assert architecture_cost("cross-stitch", "vector", (16,), tasks, 0.5, widths) == pytest.approx(cost / 2)


def test_one_task_cross_stitch_and_nddr_are_the_hard_network() -> None:
    shape, tasks = KINDS["image"]
    for architecture in ("cross-stitch", "nddr"):
        assert architecture_cost(architecture, "image", shape, tasks[:1], 0.5) == 0.5
        torch.manual_seed(4)
        soft = build_model("image", shape, tasks[:1], 1.0, architecture=architecture)
        torch.manual_seed(4)
        hard = build_model("image", shape, tasks[:1], 1.0)
        assert type(soft) is MultiTaskModel
        x = torch.randn(2, *shape)
        assert torch.equal(soft(x)[1]["s"], hard(x)[1]["s"])


def test_candidate_cost_reads_the_dataset() -> None:
    from workers.datasets import get_dataset

    dataset = get_dataset("planted", {})
    tasks = [t.name for t in dataset.tasks()[:3]]
    infos = [dataset.task(t) for t in tasks]
    assert candidate_cost(dataset, tasks, 0.5) == 0.5
    expected = architecture_cost(
        "mtan", "vector", dataset.input_shape(), infos, 1.0, dataset.model_options(), {"reduction": 4}
    )
    assert candidate_cost(dataset, tasks, 1.0, "mtan", {"reduction": 4}) == expected > 1.0
    with pytest.raises(ValueError, match="capacity"):
        candidate_cost(dataset, tasks, 0.0)


def test_mtan_reduction_narrows_the_attention() -> None:
    shape, tasks = KINDS["vector"]
    costs = [
        architecture_cost("mtan", "vector", shape, tasks, 1.0, None, {"reduction": r}) for r in (1, 8, 64)
    ]
    assert costs[0] > costs[1] > costs[2] > 1.0
    assert architecture_cost("mtan", "vector", shape, tasks, 1.0) == costs[1]  # vector default: 8
    image_shape, image_tasks = KINDS["image"]
    default = architecture_cost("mtan", "image", image_shape, image_tasks)
    assert default == architecture_cost(
        "mtan", "image", image_shape, image_tasks, 1.0, None, {"reduction": 1}
    )


# ------------------------------------------------------------------------------------------ exchange units


@pytest.mark.parametrize("k", [2, 3, 5])
def test_cross_stitch_units_start_as_identity_plus_small_mixing(k: int) -> None:
    tasks = [reg(f"t{i}") for i in range(k)]
    model = build_model("vector", (6,), tasks, 1.0, architecture="cross-stitch")
    assert isinstance(model, ColumnsModel) and len(model.units) == 2  # one per trunk layer
    expected = torch.full((k, k), 0.1 / (k - 1)).fill_diagonal_(0.9)
    for unit in model.units:
        assert isinstance(unit, CrossStitchUnit)
        assert torch.equal(unit.alpha.detach(), expected)
        assert unit.alpha.detach().sum(dim=1) == pytest.approx([1.0] * k)
    custom = build_model(
        "vector", (6,), tasks, 1.0, architecture="cross-stitch", architecture_options={"mixing": 0.3}
    )
    assert custom.units[0].alpha[0, 0].item() == pytest.approx(0.7)


def test_cross_stitch_unit_mixes_by_hand() -> None:
    unit = CrossStitchUnit(2, 0.25)
    a, b = torch.tensor([[1.0, 2.0]]), torch.tensor([[10.0, 20.0]])
    out = unit(torch.stack([a, b], dim=1))
    assert torch.allclose(out[:, 0], 0.75 * a + 0.25 * b) and torch.allclose(out[:, 1], 0.25 * a + 0.75 * b)


def test_nddr_layers_start_diagonal() -> None:
    unit = NDDRUnit(3, 4, 0.1)
    eye = torch.eye(4)
    for task, conv in enumerate(unit.convs):
        weight = conv.weight.detach()[:, :, 0, 0]
        for column in range(3):
            block = weight[:, 4 * column : 4 * column + 4]
            assert torch.allclose(block, (0.9 if column == task else 0.05) * eye)
    shape, tasks = KINDS["image"]
    model = build_model("image", shape, tasks, 1.0, architecture="nddr")
    assert isinstance(model, ColumnsModel) and len(model.units) == 4  # the stem and three stages


def _independent_twins(kind: str, architecture: str) -> tuple[nn.Module, list[MultiTaskModel]]:
    """A soft network with zero mixing and, per task, a hard single-task network with its column's weights."""
    shape, tasks = KINDS[kind]
    torch.manual_seed(6)
    soft = build_model(
        kind, shape, tasks, 0.8, architecture=architecture, architecture_options={"mixing": 0.0}
    )
    assert isinstance(soft, ColumnsModel)
    singles = []
    for index, task in enumerate(tasks):
        torch.manual_seed(100 + index)  # different initial weights, overwritten below
        single = build_model(kind, shape, [task], 0.8)
        assert isinstance(single, MultiTaskModel)
        single.encoder.load_state_dict(soft.columns[index].state_dict())
        single.heads[0].load_state_dict(soft.heads[index].state_dict())
        singles.append(single)
    return soft, singles


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("train", [True, False])
def test_zero_mixing_cross_stitch_is_independent_single_task_networks(kind: str, train: bool) -> None:
    soft, singles = _independent_twins(kind, "cross-stitch")
    shape, tasks = KINDS[kind]
    x = torch.randn(5, *shape)
    soft.train(train)
    _, outputs = soft(x)
    for single, task in zip(singles, tasks, strict=True):
        single.train(train)
        assert torch.equal(outputs[task.name], single(x)[1][task.name])
    mixed = copy.deepcopy(soft)
    with torch.no_grad():
        for unit in mixed.units:
            unit.alpha.copy_(torch.full_like(unit.alpha, 0.1).fill_diagonal_(0.8))
    assert not torch.equal(mixed(x)[1][tasks[0].name], outputs[tasks[0].name])  # mixing does change them


def test_nddr_with_zero_mixing_keeps_the_columns_apart() -> None:
    """NDDR's layers add BN + ReLU, so zero mixing is not the identity, but no task reads another's column."""
    soft, _ = _independent_twins("image", "nddr")
    shape, tasks = KINDS["image"]
    representation, outputs = soft(torch.randn(3, *shape))
    loss = outputs[tasks[0].name].float().pow(2).mean()
    (at_z,) = torch.autograd.grad(loss, representation)
    assert at_z[:, 0].abs().sum() > 0
    assert at_z[:, 1:].abs().sum() == 0


def test_capacity_scales_soft_networks_like_hard_ones() -> None:
    """Capacity keeps its meaning: a half-size network of any architecture does half its full-size FLOPs."""
    for architecture, kind in SOFT:
        shape, tasks = KINDS[kind]
        full = architecture_cost(architecture, kind, shape, tasks, 1.0)
        assert architecture_cost(architecture, kind, shape, tasks, 0.5) == pytest.approx(full / 2)


def _task_infos(k: int) -> list[TaskInfo]:
    return [dense(f"d{i}") for i in range(k)]


def test_image_cross_stitch_cost_grows_with_tasks() -> None:
    """Decoders are a large share of the hard network, so an image cross-stitch network costs less than k,
    but more with every task."""
    costs = [architecture_cost("cross-stitch", "image", (3, 32, 32), _task_infos(k)) for k in (1, 2, 3, 5)]
    assert costs[0] == 1.0
    assert all(a < b for a, b in itertools.pairwise(costs))
    assert all(c < k for c, k in zip(costs[1:], (2, 3, 5), strict=True))
