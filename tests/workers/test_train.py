"""train_candidate: schedule, early stopping, checkpoint restore, determinism, guards, cache, devices."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
import torch
from pydantic import BaseModel, ConfigDict

from workers.datasets import DATASETS, Dataset, Split, SplitName, TaskInfo, TaskKind, get_dataset
from workers.device import allotted_cpus, choose_device, choose_threads
from workers.models import architectures_for, candidate_cost
from workers.spec import EpochRecord, TrainingResult, TrainingSettings, TrainingSpec, epochs_for
from workers.train import _param_groups, dataset_cache, load_dataset, train_candidate
from workers.weighting import WEIGHTINGS, BackwardContext, LossWeighting

PLANTED = {"name": "planted", "params": {"samples": 128, "evaluation_samples": 128}}


def spec(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "dataset": PLANTED,
        "tasks": ["a1", "b1"],
        "threads": 1,
        "settings": {"epochs": 4, "batch_size": 32},
    }
    base.update(overrides)
    return base


# ------------------------------------------------------------------------------- test datasets
class _FakeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    size: int = 12
    n: int = 24
    poison: bool = False
    unlabelled_validation: bool = False


class FakeImages(Dataset):
    """Tiny image dataset: segmentation of a bright square, its mask as depth-like map, RGB copy."""

    name: ClassVar[str] = "fake-images"
    Params = _FakeParams
    input_kind = "image"

    def tasks(self) -> list[TaskInfo]:
        return [
            TaskInfo(
                name="s", kind=TaskKind.SEGMENTATION, classes=3, loss="cross-entropy", metric="accuracy"
            ),
            TaskInfo(name="d", kind=TaskKind.DENSE, channels=1, loss="l1", metric="mae"),
            TaskInfo(name="a", kind=TaskKind.DENSE, channels=3, loss="l1", metric="mae"),
        ]

    def load(self) -> dict[SplitName, Split]:
        p: _FakeParams = self.params  # type: ignore[assignment]
        gen = torch.Generator().manual_seed(0)
        splits: dict[SplitName, Split] = {}
        for split in ("train", "validation", "test"):
            x = torch.rand(p.n, 3, p.size, p.size, generator=gen)
            seg = (x[:, 0] > 0.33).long() + (x[:, 0] > 0.66).long()
            depth = x[:, 1:2] * 0.5
            if p.poison:
                depth[0, 0, 0, 0] = float("inf")
            if p.unlabelled_validation and split == "validation":
                depth[:] = float("nan")
            splits[split] = Split(x, {"s": seg, "d": depth, "a": x.clone()})
        return splits


@pytest.fixture
def fake_images() -> Iterator[str]:
    DATASETS[FakeImages.name] = FakeImages
    yield FakeImages.name
    DATASETS.pop(FakeImages.name, None)


# ------------------------------------------------------------------------------- the result
def test_result_fields_and_curve_consistency() -> None:
    records: list[EpochRecord] = []
    result = train_candidate(spec(), on_epoch=records.append)
    assert isinstance(result, TrainingResult)
    assert set(result.selection) == set(result.scoring) == {"a1", "b1"}
    assert set(result.metrics) == {"selection", "scoring"}
    assert records == result.curve  # on_epoch saw every record, in order
    assert [r.epoch for r in result.curve] == list(range(1, result.epochs_run + 1))
    assert result.epochs_run <= 4
    best = min(result.curve, key=lambda r: r.validation_loss)
    assert result.best_epoch == best.epoch
    # selection losses are re-evaluated from the restored checkpoint: equal to the best epoch's record
    for task, loss in result.selection.items():
        assert loss == pytest.approx(best.validation_losses[task], rel=1e-6)
    for r in result.curve:
        assert r.validation_loss == pytest.approx(sum(r.validation_losses.values()))
        assert r.weights == {"a1": 1.0, "b1": 1.0}  # equal weighting
    assert all(math.isfinite(v) for v in result.scoring.values())
    assert result.flops_per_sample > 0 and result.parameters > 0
    assert result.device == "cpu"
    assert result.wall_seconds > 0
    assert result.spec.tasks == ["a1", "b1"]


def test_deterministic_for_a_seed_on_cpu() -> None:
    first = train_candidate(spec(seed=7))
    second = train_candidate(spec(seed=7))
    assert first.selection == second.selection
    assert first.scoring == second.scoring
    assert [r.train_loss for r in first.curve] == [r.train_loss for r in second.curve]
    other = train_candidate(spec(seed=8))
    assert other.selection != first.selection


@pytest.mark.parametrize(
    ("fidelity", "epochs", "expected"),
    [(1.0, 20, 20), (0.2, 20, 4), (0.3, 10, 3), (0.01, 20, 1), (0.25, 10, 3)],
)
def test_epochs_for_fidelity(fidelity: float, epochs: int, expected: int) -> None:
    assert epochs_for(fidelity, epochs) == expected


def test_fidelity_caps_the_epochs() -> None:
    result = train_candidate(spec(fidelity=0.5, settings={"epochs": 6, "batch_size": 32, "patience": 100}))
    assert result.epochs_run == 3


def test_early_stopping_follows_patience() -> None:
    """A high learning rate on a tiny training set overfits fast: the run stops `patience` epochs
    after its best validation epoch, before the schedule ends."""
    settings = {"epochs": 60, "batch_size": 16, "learning_rate": 0.03, "patience": 2}
    result = train_candidate(spec(dataset={"name": "planted", "params": {"samples": 32}}, settings=settings))
    assert result.epochs_run < 60
    assert result.epochs_run - result.best_epoch == 2
    best = result.curve[result.best_epoch - 1].validation_loss
    assert all(r.validation_loss >= best for r in result.curve[result.best_epoch :])


def test_half_capacity_halves_flops() -> None:
    full = train_candidate(spec(settings={"epochs": 1}))
    half = train_candidate(spec(capacity=0.5, settings={"epochs": 1}))
    assert half.flops_per_sample / full.flops_per_sample == pytest.approx(0.5, rel=0.1)
    assert half.parameters < full.parameters


def test_image_encoder_decoder_trains_on_fake_images(fake_images: str) -> None:
    settings = {"epochs": 3, "batch_size": 8, "learning_rate": 0.01}
    result = train_candidate(spec(dataset={"name": fake_images}, tasks=["s", "d", "a"], settings=settings))
    assert set(result.selection) == {"s", "d", "a"}
    assert result.curve[-1].train_loss < result.curve[0].train_loss
    assert 0 <= result.metrics["scoring"]["s"] <= 1
    half = train_candidate(
        spec(dataset={"name": fake_images}, tasks=["s", "d", "a"], capacity=0.5, settings={"epochs": 1})
    )
    assert half.flops_per_sample / result.flops_per_sample == pytest.approx(0.5, rel=0.1)


def test_non_finite_loss_names_task_and_epoch(fake_images: str) -> None:
    with pytest.raises(RuntimeError, match=r"task 'd' has a non-finite training loss .* at epoch 1"):
        train_candidate(
            spec(
                dataset={"name": fake_images, "params": {"poison": True}},
                tasks=["s", "d"],
                settings={"epochs": 1},
            )
        )


def test_task_without_validation_labels_is_a_clear_error(fake_images: str) -> None:
    dataset = {"name": fake_images, "params": {"unlabelled_validation": True}}
    with pytest.raises(ValueError, match=r"tasks: \['d'\] have no label in the validation split"):
        train_candidate(spec(dataset=dataset, tasks=["s", "d"], settings={"epochs": 1}))


# ------------------------------------------------------------------------------- bad specs
@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"dataset": {"name": "nope"}}, "dataset"),
        ({"tasks": ["a1", "zz"]}, "tasks"),
        ({"tasks": []}, "tasks"),
        ({"capacity": 0}, "capacity"),
        ({"capacity": -1}, "capacity"),
        ({"fidelity": 0}, "fidelity"),
        ({"fidelity": 1.5}, "fidelity"),
        ({"dataset": {"name": "planted", "params": {"groups": []}}}, "groups"),
        ({"settings": {"weighting": "magic"}}, "weighting"),
        ({"device": "tpu"}, "device"),
    ],
)
def test_bad_specs_raise_value_error_naming_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        train_candidate(spec(**overrides))


def test_accepts_spec_object_and_dict_alike() -> None:
    as_dict = train_candidate(spec(settings={"epochs": 1}))
    as_obj = train_candidate(TrainingSpec.model_validate(spec(settings={"epochs": 1})))
    assert as_dict.selection == as_obj.selection


# ------------------------------------------------------------------------------- data cache
def test_dataset_is_loaded_once_per_fingerprint(monkeypatch: pytest.MonkeyPatch) -> None:
    from workers.datasets.planted import PlantedDataset

    calls = []
    original = PlantedDataset._generate

    def counting(self: PlantedDataset) -> dict[SplitName, Split]:
        calls.append(self.fingerprint())
        return original(self)

    monkeypatch.setattr(PlantedDataset, "_generate", counting)
    dataset_cache.clear()
    ref = {"name": "planted", "params": {"samples": 64, "seed": 123}}
    train_candidate(spec(dataset=ref, settings={"epochs": 1}))
    train_candidate(spec(dataset=ref, tasks=["a2"], settings={"epochs": 1}))
    assert len(calls) == 1
    assert dataset_cache.hits >= 1
    load_dataset({"name": "planted", "params": {"samples": 64, "seed": 124}})
    assert len(calls) == 2


def test_cache_evicts_least_recently_used() -> None:
    from workers.train import DatasetCache

    cache = DatasetCache(maxsize=2)
    refs = [
        {"name": "planted", "params": {"samples": 16, "evaluation_samples": 16, "seed": s}} for s in range(3)
    ]
    first = cache.get(_ref(refs[0]))[1]
    cache.get(_ref(refs[1]))
    assert cache.get(_ref(refs[0]))[1] is first  # hit, now most recent
    cache.get(_ref(refs[2]))  # evicts refs[1]
    assert len(cache) == 2
    misses = cache.misses
    cache.get(_ref(refs[0]))
    assert cache.misses == misses
    cache.get(_ref(refs[1]))
    assert cache.misses == misses + 1


def _ref(data: dict[str, Any]) -> Any:
    from workers.spec import DatasetRef

    return DatasetRef.model_validate(data)


# ------------------------------------------------------------------------------- weighting integration
class _Learnable(LossWeighting):
    """A weighting with its own parameter, to check it gets an optimiser group without weight decay."""

    name = "test-learnable"

    def __init__(self, tasks: list[str]) -> None:
        super().__init__(tasks)
        self.log_scale = torch.nn.Parameter(torch.zeros(len(tasks)))

    def backward(self, losses: dict[str, torch.Tensor], context: BackwardContext) -> dict[str, float]:
        weights = torch.exp(-self.log_scale)
        total = sum(w * losses[t] + s for w, s, t in zip(weights, self.log_scale, self.tasks, strict=True))
        total.backward()
        return {t: float(w.detach()) for t, w in zip(self.tasks, weights, strict=True)}


def test_weighting_parameters_have_no_weight_decay(monkeypatch: pytest.MonkeyPatch) -> None:
    model = torch.nn.Linear(2, 2)
    weighting = _Learnable(["a", "b"])
    groups = _param_groups(model, weighting, TrainingSettings(weight_decay=0.1))
    assert groups[0]["weight_decay"] == 0.1
    assert groups[1]["weight_decay"] == 0.0
    assert groups[1]["params"] == [weighting.log_scale]
    monkeypatch.setitem(WEIGHTINGS, _Learnable.name, _Learnable)
    result = train_candidate(spec(settings={"epochs": 2, "weighting": _Learnable.name, "weight_decay": 0.1}))
    assert any(w != 1.0 for r in result.curve for w in r.weights.values())


def test_weighting_receives_context_and_epoch_hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {"steps": [], "epochs": [], "after": 0}

    class Recording(LossWeighting):
        name = "test-recording"

        def backward(self, losses: dict[str, torch.Tensor], context: BackwardContext) -> dict[str, float]:
            seen["steps"].append(context.step)
            seen["shared"] = context.shared_parameters
            seen["representation_grad"] = context.representation.requires_grad
            torch.stack(list(losses.values())).sum().backward()
            return dict.fromkeys(self.tasks, 1.0)

        def after_step(self) -> None:
            seen["after"] += 1

        def epoch_end(self, epoch: int, train_losses: dict[str, float], kpis: dict[str, float]) -> None:
            seen["epochs"].append((epoch, sorted(train_losses), kpis))

    monkeypatch.setitem(WEIGHTINGS, Recording.name, Recording)
    train_candidate(
        spec(settings={"epochs": 2, "batch_size": 32, "weighting": Recording.name, "patience": 9})
    )
    steps_per_epoch = math.ceil(128 / 32)
    assert seen["steps"] == list(range(2 * steps_per_epoch))
    assert seen["after"] == 2 * steps_per_epoch
    assert [e for e, _, _ in seen["epochs"]] == [0, 1]
    assert all(0.0 <= k <= 1.0 for _, _, kpis in seen["epochs"] for k in kpis.values())
    assert seen["representation_grad"] is True
    assert seen["shared"] and all(isinstance(p, torch.nn.Parameter) for p in seen["shared"])


@pytest.mark.parametrize("method", sorted(set(WEIGHTINGS) - {"test-learnable", "test-recording"}))
def test_every_registered_weighting_trains_both_model_families(method: str, fake_images: str) -> None:
    vector = train_candidate(spec(settings={"epochs": 2, "weighting": method}))
    assert all(math.isfinite(v) for v in vector.selection.values())
    image = train_candidate(
        spec(
            dataset={"name": fake_images},
            tasks=["s", "d"],
            settings={"epochs": 2, "batch_size": 8, "weighting": method},
        )
    )
    assert all(math.isfinite(v) for v in image.selection.values())


# ------------------------------------------------------------------------------- device and threads
def test_threads_follow_omp_num_threads_and_never_exceed_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert allotted_cpus() == 1
    assert choose_threads(None) == 1
    assert choose_threads(8) == 1
    monkeypatch.delenv("OMP_NUM_THREADS")
    import os

    assert allotted_cpus() == len(os.sched_getaffinity(0))
    assert choose_threads(1) == 1
    with pytest.raises(ValueError, match="threads"):
        choose_threads(0)


def test_training_sets_torch_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    before = torch.get_num_threads()
    try:
        train_candidate(spec(threads=None, settings={"epochs": 1}))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_device_choice() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert choose_device("auto").type == expected
    assert choose_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device: 'cuda' requested but CUDA is not available"):
            choose_device("cuda")
    with pytest.raises(ValueError, match="device"):
        choose_device("banana")


# ------------------------------------------------------------------------------- the real image dataset
def test_trains_on_tiny_taskonomy_mini(tmp_path: Any) -> None:
    """End to end on the real renderer at test size: all nine tasks, encoder-decoder, half capacity."""
    params = {
        "resolution": 16,
        "train_images": 16,
        "validation_images": 8,
        "test_images": 8,
        "data_dir": str(tmp_path),
    }
    dataset = {"name": "taskonomy-mini", "params": params}
    tasks = ["s", "d", "n", "k", "e", "a", "o", "r", "c"]
    full = train_candidate(spec(dataset=dataset, tasks=tasks, settings={"epochs": 2, "batch_size": 8}))
    assert set(full.scoring) == set(tasks)
    assert all(math.isfinite(v) for v in [*full.selection.values(), *full.scoring.values()])
    assert 0.0 <= full.metrics["scoring"]["s"] <= 1.0  # pixel accuracy
    half = train_candidate(spec(dataset=dataset, tasks=["s"], capacity=0.5, settings={"epochs": 1}))
    single = train_candidate(spec(dataset=dataset, tasks=["s"], settings={"epochs": 1}))
    assert half.flops_per_sample / single.flops_per_sample == pytest.approx(0.5, rel=0.1)


# ------------------------------------------------------------------------------- architectures
@pytest.fixture
def tiny_tabular(tmp_path: Any) -> dict[str, Any]:
    """60 rows of a CSV: three inputs, a regression, a binary and a multiclass task, a split column."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3))
    frame = pd.DataFrame(
        {
            "x1": x[:, 0],
            "x2": x[:, 1],
            "x3": x[:, 2],
            "y": 2 * x[:, 0] - x[:, 1],
            "flag": (x[:, 2] > 0).astype(int),
            "side": np.where(x[:, 0] > 0.5, "right", np.where(x[:, 0] < -0.5, "left", "middle")),
            "split": ["train"] * 36 + ["validation"] * 12 + ["test"] * 12,
        }
    )
    path = tmp_path / "tiny.csv"
    frame.to_csv(path, index=False)
    tasks = {"y": "regression", "flag": "binary", "side": "multiclass"}
    return {"name": "tabular", "params": {"path": str(path), "tasks": tasks, "split_column": "split"}}


def _model(architecture: str, **settings: Any) -> dict[str, Any]:
    return {"epochs": 2, "batch_size": 32, "model": {"architecture": architecture}, **settings}


@pytest.mark.parametrize("architecture", architectures_for("vector"))
def test_every_vector_architecture_trains_on_planted_and_tabular(
    architecture: str, tiny_tabular: dict[str, Any]
) -> None:
    """Two epochs on the planted and a tiny tabular dataset; the FLOPs per sample of the trained network,
    relative to the hard-sharing network's, are the architecture's cost in SNT (within 10%)."""
    planted = train_candidate(spec(tasks=["a1", "a2", "b1"], settings=_model(architecture)))
    hard = train_candidate(spec(tasks=["a1", "a2", "b1"], settings=_model("hard", epochs=1)))
    assert planted.spec.settings.model.architecture == architecture
    assert all(math.isfinite(v) for v in [*planted.selection.values(), *planted.scoring.values()])
    assert planted.curve[-1].train_loss < planted.curve[0].train_loss
    dataset = get_dataset(PLANTED["name"], PLANTED["params"])
    cost = candidate_cost(dataset, ["a1", "a2", "b1"], 1.0, architecture)
    assert planted.flops_per_sample / hard.flops_per_sample == pytest.approx(cost, rel=0.10)
    tabular = train_candidate(
        spec(dataset=tiny_tabular, tasks=["y", "flag", "side"], settings=_model(architecture))
    )
    assert set(tabular.scoring) == {"y", "flag", "side"}
    assert all(math.isfinite(v) for v in [*tabular.selection.values(), *tabular.scoring.values()])


@pytest.mark.parametrize("architecture", architectures_for("image"))
def test_every_image_architecture_trains_on_images(architecture: str, fake_images: str) -> None:
    settings = _model(architecture, batch_size=8, learning_rate=0.01)
    result = train_candidate(spec(dataset={"name": fake_images}, tasks=["s", "d", "a"], settings=settings))
    assert set(result.selection) == {"s", "d", "a"}
    assert all(math.isfinite(v) for v in [*result.selection.values(), *result.scoring.values()])
    half = train_candidate(
        spec(
            dataset={"name": fake_images},
            tasks=["s", "d", "a"],
            capacity=0.5,
            settings=_model(architecture, epochs=1),
        )
    )
    assert half.flops_per_sample / result.flops_per_sample == pytest.approx(0.5, rel=0.1)


@pytest.mark.parametrize("architecture", ["cross-stitch", "mtan"])
@pytest.mark.parametrize("method", ["mgda", "gradnorm", "pareto"])
def test_gradient_based_weightings_train_soft_sharing_networks(architecture: str, method: str) -> None:
    """The methods that read the representation or the shared layer work on every architecture."""
    result = train_candidate(spec(tasks=["a1", "b1", "b2"], settings=_model(architecture, weighting=method)))
    assert all(math.isfinite(v) for v in result.selection.values())
    assert any(w != 1.0 for r in result.curve for w in r.weights.values())


def test_explicit_hard_architecture_is_the_default_training() -> None:
    default = train_candidate(spec(settings={"epochs": 1}))
    explicit = train_candidate(spec(settings={"epochs": 1, "model": {"architecture": "hard", "options": {}}}))
    assert default.selection == explicit.selection and default.scoring == explicit.scoring


def test_bad_architectures_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="unknown architecture 'soft'"):
        train_candidate(spec(settings=_model("soft")))
    with pytest.raises(ValueError, match="'nddr' does not apply to vector inputs"):
        train_candidate(spec(settings=_model("nddr")))
