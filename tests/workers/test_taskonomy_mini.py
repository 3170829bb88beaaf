"""The taskonomy-mini dataset: params, tasks, splits, determinism and the on-disk cache."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from workers.datasets import DATASETS, TaskKind, get_dataset
from workers.datasets.taskonomy_mini import DATA_DIR_ENV, TaskonomyMini
from workers.render import NUM_CLASSES

TINY = {"resolution": 16, "train_images": 6, "validation_images": 3, "test_images": 3, "views_per_scene": 3}
CHANNELS = {"d": 1, "n": 3, "k": 1, "e": 1, "a": 3, "o": 1, "r": 1, "c": 2}


def tiny(data_dir: Path, **overrides: object) -> TaskonomyMini:
    dataset = get_dataset("taskonomy-mini", {**TINY, "data_dir": str(data_dir), **overrides})
    assert isinstance(dataset, TaskonomyMini)
    return dataset


def digest(dataset: TaskonomyMini) -> str:
    h = hashlib.sha256()
    for split_name, split in sorted(dataset.load().items()):
        h.update(split_name.encode())
        h.update(split.inputs.numpy().tobytes())
        for task in sorted(split.targets):
            h.update(split.targets[task].numpy().tobytes())
    return h.hexdigest()


def test_registered_with_the_papers_tasks() -> None:
    assert DATASETS["taskonomy-mini"] is TaskonomyMini
    dataset = get_dataset("taskonomy-mini")
    tasks = {t.name: t for t in dataset.tasks()}
    assert list(tasks) == ["s", "d", "n", "k", "e", "a", "o", "r", "c"]
    assert tasks["s"].kind is TaskKind.SEGMENTATION and tasks["s"].classes == NUM_CLASSES
    assert tasks["s"].loss == "cross-entropy"
    for name, channels in CHANNELS.items():
        assert tasks[name].kind is TaskKind.DENSE and tasks[name].channels == channels
        assert tasks[name].loss == "l1" and tasks[name].metric == "mae"
    assert all(t.description for t in tasks.values())
    assert dataset.input_shape() == (3, 32, 32)
    assert dataset.input_kind == "image"


def test_unknown_and_invalid_params_are_rejected_clearly() -> None:
    with pytest.raises(ValueError, match=r"taskonomy-mini.*colour: unknown field"):
        get_dataset("taskonomy-mini", {"colour": "red"})
    with pytest.raises(ValueError, match="resolution"):
        get_dataset("taskonomy-mini", {"resolution": 48})
    with pytest.raises(ValueError, match="train_images"):
        get_dataset("taskonomy-mini", {"train_images": 0})


def test_fingerprint_is_cheap_and_ignores_the_data_dir(tmp_path: Path) -> None:
    a, b = tiny(tmp_path / "a"), tiny(tmp_path / "b")
    assert a.fingerprint() == b.fingerprint()
    assert not (tmp_path / "a").exists()  # no generation, not even a folder
    assert a.fingerprint() != tiny(tmp_path / "a", seed=1).fingerprint()
    assert a.fingerprint() != tiny(tmp_path / "a", resolution=32).fingerprint()
    assert a.fingerprint() != tiny(tmp_path / "a", views_per_scene=2).fingerprint()


def test_splits_have_the_declared_shapes_dtypes_and_ranges(tmp_path: Path) -> None:
    dataset = tiny(tmp_path)
    splits = dataset.load()
    assert set(splits) == {"train", "validation", "test"}
    for name, split in splits.items():
        n = TINY[f"{name}_images"]
        assert len(split) == n
        assert split.inputs.dtype == torch.float32 and tuple(split.inputs.shape) == (n, 3, 16, 16)
        assert split.inputs.min() >= 0.0 and split.inputs.max() <= 1.0
        assert set(split.targets) == {t.name for t in dataset.tasks()}
        seg = split.targets["s"]
        assert seg.dtype == torch.int64 and tuple(seg.shape) == (n, 16, 16)
        assert seg.min() >= 0 and seg.max() < NUM_CLASSES
        for task, channels in CHANNELS.items():
            target = split.targets[task]
            assert target.dtype == torch.float32 and tuple(target.shape) == (n, channels, 16, 16), task
            assert target.min() >= (-1.0 if task == "n" else 0.0) and target.max() <= 1.0, task
        assert torch.equal(split.targets["a"], split.inputs)
        surface = seg != 0
        norms = split.targets["n"].norm(dim=1)
        assert torch.allclose(norms[surface], torch.ones(()), atol=0.02)  # unit normals after 8-bit storage
    scenes = dataset.scenes("train")
    assert scenes.tolist() == [0, 0, 0, 1, 1, 1]


def test_same_seed_same_bytes_different_seed_different(tmp_path: Path) -> None:
    first = digest(tiny(tmp_path / "one"))
    assert digest(tiny(tmp_path / "two")) == first  # generated again, from scratch, elsewhere
    assert digest(tiny(tmp_path / "three", seed=1)) != first


def test_validation_and_test_images_are_not_training_images(tmp_path: Path) -> None:
    splits = tiny(tmp_path).load()
    train = {bytes(x.numpy().tobytes()) for x in splits["train"].inputs}
    for name in ("validation", "test"):
        assert not train & {bytes(x.numpy().tobytes()) for x in splits[name].inputs}


def test_second_load_reads_the_cache_without_generating(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = tiny(tmp_path)
    expected = digest(first)
    assert first.cache_path().is_file() and first.cache_path().parent == tmp_path / "taskonomy-mini"
    assert not list(first.cache_path().parent.glob("*.tmp"))  # the temporary file was renamed

    def refuse(self: TaskonomyMini) -> None:
        raise AssertionError("generated although the cache exists")

    monkeypatch.setattr(TaskonomyMini, "generate", refuse)
    assert digest(tiny(tmp_path)) == expected


def test_data_dir_defaults_to_the_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "env"))
    dataset = get_dataset("taskonomy-mini", TINY)
    assert dataset.cache_path() == tmp_path / "env" / "taskonomy-mini" / f"{dataset.fingerprint()}.npz"
    monkeypatch.delenv(DATA_DIR_ENV)
    assert get_dataset("taskonomy-mini", TINY).cache_path().is_relative_to(Path.home())


def test_an_unreadable_cache_is_regenerated(tmp_path: Path) -> None:
    expected = digest(tiny(tmp_path / "clean"))
    broken = tiny(tmp_path)
    broken.cache_path().parent.mkdir(parents=True)
    broken.cache_path().write_bytes(b"not a zip file")
    assert digest(broken) == expected
    assert digest(tiny(tmp_path)) == expected  # and the good file replaced the broken one


def test_concurrent_loads_generate_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two workers starting together: one generates under the lock, the other waits and reads the file."""
    calls = []
    original = TaskonomyMini.generate

    def counting(self: TaskonomyMini) -> dict[str, np.ndarray]:
        calls.append(1)
        return original(self)

    monkeypatch.setattr(TaskonomyMini, "generate", counting)
    digests: list[str] = []
    threads = [threading.Thread(target=lambda: digests.append(digest(tiny(tmp_path)))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(digests) == 2 and digests[0] == digests[1]
    assert len(calls) == 1
