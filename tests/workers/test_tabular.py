"""The tabular dataset: CSV/Parquet, kinds, splits, standardisation, masking, fingerprints, errors."""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from workers.datasets import get_dataset
from workers.datasets.featurize import FeaturizeSpec, featurize
from workers.datasets.tabular import TabularDataset
from workers.train import train_candidate

SARCOS_TASKS = {f"tau{i}": "regression" for i in range(1, 8)}


def tabular(**params: Any) -> TabularDataset:
    dataset = get_dataset("tabular", params)
    assert isinstance(dataset, TabularDataset)
    return dataset


def write_csv(tmp_path: Path, frame: pd.DataFrame, name: str = "data.csv") -> str:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return str(path)


@pytest.fixture
def small(tmp_path: Path) -> str:
    """40 rows: two inputs, a regression task with holes, a binary task, a string multiclass task."""
    rng = np.random.default_rng(0)
    n = 40
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    frame = pd.DataFrame(
        {
            "x1": x1,
            "x2": x2,
            "y": 3 * x1 + 10,
            "flag": (x2 > 0).astype(int),
            "colour": np.where(x1 > 0, "red", np.where(x2 > 0, "green", "blue")),
            "split": ["train"] * 24 + ["validation"] * 8 + ["test"] * 8,
        }
    )
    frame.loc[[1, 5, 30], "y"] = np.nan
    return write_csv(tmp_path, frame)


# ------------------------------------------------------------------------------- real data
@pytest.mark.shared_data
def test_sarcos_random_split_standardised(shared_data: Path) -> None:
    dataset = tabular(path=str(shared_data / "real" / "sarcos.csv"), tasks=SARCOS_TASKS)
    splits = dataset.load()
    sizes = {s: len(v) for s, v in splits.items()}
    assert sum(sizes.values()) == 4449
    assert sizes == {"train": round(0.7 * 4449), "validation": round(0.15 * 4449), "test": 4449 - 3114 - 667}
    assert dataset.input_shape() == (21,)  # q, dq, ddq of 7 joints
    assert [t.name for t in dataset.tasks()] == list(SARCOS_TASKS)
    train = splits["train"]
    torch.testing.assert_close(train.inputs.mean(0), torch.zeros(21), atol=1e-4, rtol=0)
    torch.testing.assert_close(train.inputs.std(0, unbiased=False), torch.ones(21), atol=1e-4, rtol=0)
    for task in SARCOS_TASKS:
        assert float(train.targets[task].mean()) == pytest.approx(0.0, abs=1e-4)
        assert float(train.targets[task].std(unbiased=False)) == pytest.approx(1.0, abs=1e-4)
    # Known structure (data README): torques 4 and 7 correlate at 0.96.
    t4 = np.concatenate([s.targets["tau4"][:, 0].numpy() for s in splits.values()])
    t7 = np.concatenate([s.targets["tau7"][:, 0].numpy() for s in splits.values()])
    assert np.corrcoef(t4, t7)[0, 1] == pytest.approx(0.96, abs=0.01)
    # Different seeds, different splits; same seed, same split.
    again = tabular(path=str(shared_data / "real" / "sarcos.csv"), tasks=SARCOS_TASKS).load()
    assert torch.equal(again["test"].inputs, splits["test"].inputs)
    reseeded = tabular(path=str(shared_data / "real" / "sarcos.csv"), tasks=SARCOS_TASKS, seed=1).load()
    assert not torch.equal(reseeded["test"].inputs, splits["test"].inputs)


@pytest.mark.shared_data
def test_sarcos_trains_well(shared_data: Path) -> None:
    spec = {
        "dataset": {
            "name": "tabular",
            "params": {"path": str(shared_data / "real" / "sarcos.csv"), "tasks": SARCOS_TASKS},
        },
        "tasks": ["tau4", "tau7"],
        "threads": 1,
        "settings": {"epochs": 3},
    }
    result = train_candidate(spec)
    # standardised MSE: 1.0 = predicting the mean; inverse dynamics is smooth, a small MLP does far better
    assert all(loss < 0.3 for loss in result.scoring.values())
    assert all(r2 > 0.7 for r2 in result.metrics["scoring"].values())


def arff_to_csv(arff: Path, out: Path, split: str | None = None) -> pd.DataFrame:
    from scipy.io import arff as arff_io

    data, _ = arff_io.loadarff(arff)
    frame = pd.DataFrame(data)
    for column in frame.columns:
        if frame[column].dtype == object:  # nominal attributes come as bytes
            frame[column] = frame[column].str.decode("utf-8").astype(int)
    if split is not None:
        frame["split"] = split
    return frame


@pytest.mark.shared_data
def test_scene_six_binary_labels_with_a_split_column(shared_data: Path, tmp_path: Path) -> None:
    train = arff_to_csv(shared_data / "real" / "scene-train.arff", tmp_path, "train")
    held_out = arff_to_csv(shared_data / "real" / "scene-test.arff", tmp_path)
    held_out["split"] = np.where(np.arange(len(held_out)) % 2 == 0, "validation", "test")
    frame = pd.concat([train, held_out], ignore_index=True)
    labels = list(frame.columns[-7:-1])
    assert labels == ["Beach", "Sunset", "FallFoliage", "Field", "Mountain", "Urban"]
    path = write_csv(tmp_path, frame, "scene.csv")
    params = {"path": path, "tasks": dict.fromkeys(labels, "binary"), "split_column": "split"}
    dataset = tabular(**params)
    splits = dataset.load()
    assert {s: len(v) for s, v in splits.items()} == {"train": 1211, "validation": 598, "test": 598}
    assert dataset.input_shape() == (294,)
    assert all(t.kind == "binary" and t.metric == "accuracy" for t in dataset.tasks())
    assert set(torch.unique(splits["train"].targets["Beach"]).tolist()) == {0.0, 1.0}
    result = train_candidate(
        {
            "dataset": {"name": "tabular", "params": params},
            "tasks": ["Beach", "Sunset"],
            "threads": 1,
            "settings": {"epochs": 2},
        }
    )
    base_rates = {t: float(splits["test"].targets[t].mean()) for t in ("Beach", "Sunset")}
    for task, accuracy in result.metrics["scoring"].items():
        assert accuracy > max(base_rates[task], 1 - base_rates[task])  # beats the majority class


@pytest.mark.shared_data
def test_wq_fourteen_regression_targets(shared_data: Path, tmp_path: Path) -> None:
    frame = arff_to_csv(shared_data / "real" / "wq.arff", tmp_path)
    targets = list(frame.columns[-14:])
    path = write_csv(tmp_path, frame, "wq.csv")
    dataset = tabular(
        path=path, tasks=dict.fromkeys(targets, "regression"), fractions=(0.6, 0.2, 0.2), seed=3
    )
    splits = dataset.load()
    assert dataset.input_shape() == (16,)
    assert len(dataset.tasks()) == 14
    assert {s: len(v) for s, v in splits.items()} == {"train": 636, "validation": 212, "test": 212}


# ------------------------------------------------------------------------------- kinds and masking
def test_kinds_masking_and_split_column(small: str) -> None:
    dataset = tabular(
        path=small, tasks={"y": "regression", "flag": "binary", "colour": "multiclass"}, split_column="split"
    )
    splits = dataset.load()
    assert {s: len(v) for s, v in splits.items()} == {"train": 24, "validation": 8, "test": 8}
    assert dataset.input_columns == ["x1", "x2"]  # tasks and split column excluded
    kinds = {t.name: (t.kind, t.classes) for t in dataset.tasks()}
    assert kinds == {"y": ("regression", 0), "flag": ("binary", 0), "colour": ("multiclass", 3)}
    assert dataset.classes["colour"] == ["blue", "green", "red"]
    y = splits["train"].targets["y"]
    assert y.shape == (24, 1)
    assert int(torch.isnan(y).sum()) == 2  # rows 1 and 5 are empty
    assert int(torch.isnan(splits["validation"].targets["y"]).sum()) == 1  # row 30
    labelled = y[~torch.isnan(y)]
    assert float(labelled.mean()) == pytest.approx(0.0, abs=1e-5)
    mean, std = dataset.target_scale["y"]
    raw = pd.read_csv(small)["y"].iloc[:24]
    assert mean == pytest.approx(raw.mean()) and std == pytest.approx(raw.std(ddof=0))
    assert splits["train"].targets["colour"].dtype == torch.int64
    result = train_candidate(
        {
            "dataset": {"name": "tabular", "params": dataset.p.model_dump()},
            "tasks": ["y", "flag", "colour"],
            "threads": 1,
            "settings": {"epochs": 2, "batch_size": 8},
        }
    )
    assert all(math.isfinite(v) for v in result.selection.values())


def test_binary_true_false_with_missing_cells(tmp_path: Path) -> None:
    path = tmp_path / "tf.csv"
    path.write_text("x,b,split\n1,True,train\n2,,train\n3,false,train\n4,TRUE,validation\n5,False,test\n")
    splits = tabular(path=str(path), tasks={"b": "binary"}, split_column="split").load()
    assert torch.allclose(
        splits["train"].targets["b"], torch.tensor([1.0, float("nan"), 0.0]), equal_nan=True
    )
    assert splits["validation"].targets["b"].tolist() == [1.0]


def test_unseen_class_is_missing_not_an_error(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "x": range(10),
            "c": ["a", "b"] * 3 + ["a", "b", "a", "zzz"],
            "split": ["train"] * 6 + ["validation"] * 2 + ["test"] * 2,
        }
    )
    dataset = tabular(path=write_csv(tmp_path, frame), tasks={"c": "multiclass"}, split_column="split")
    assert dataset.load()["test"].targets["c"].tolist() == [0, -1]


def test_missing_inputs_imputed_with_training_mean_or_rejected(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "x": [1.0, 3.0, np.nan, 5.0, 7.0, np.nan],
            "y": [1.0, 2, 3, 4, 5, 6],
            "split": ["train", "train", "train", "validation", "test", "test"],
        }
    )
    path = write_csv(tmp_path, frame)
    splits = tabular(path=path, tasks={"y": "regression"}, split_column="split").load()
    # training mean of x is 2 (from 1 and 3), std 1: the hole becomes 0, 5 -> 3, 7 -> 5
    assert splits["train"].inputs[:, 0].tolist() == [-1.0, 1.0, 0.0]
    assert splits["test"].inputs[:, 0].tolist() == [5.0, 0.0]
    with pytest.raises(ValueError, match=r"inputs: column\(s\) \['x'\] have empty cells"):
        tabular(path=path, tasks={"y": "regression"}, split_column="split", missing_inputs="error").load()


def test_parquet_reads_like_csv(tmp_path: Path, small: str) -> None:
    frame = pd.read_csv(small)
    parquet = tmp_path / "data.parquet"
    frame.to_parquet(parquet)
    tasks = {"y": "regression", "flag": "binary"}
    from_csv = tabular(path=small, tasks=tasks, inputs=["x1", "x2"], split_column="split").load()
    from_parquet = tabular(path=str(parquet), tasks=tasks, inputs=["x1", "x2"], split_column="split").load()
    for split in from_csv:
        assert torch.equal(from_csv[split].inputs, from_parquet[split].inputs)


# ------------------------------------------------------------------------------- fingerprint
def test_fingerprint_is_the_content_not_the_path(tmp_path: Path, small: str) -> None:
    copy = tmp_path / "elsewhere.csv"
    shutil.copy(small, copy)
    tasks = {"y": "regression"}
    original = tabular(path=small, tasks=tasks).fingerprint()
    assert tabular(path=str(copy), tasks=tasks).fingerprint() == original
    assert tabular(path=small, tasks=tasks, seed=1).fingerprint() != original
    with open(copy, "a") as handle:
        handle.write("0,0,0,0,red,train\n")
    assert tabular(path=str(copy), tasks=tasks).fingerprint() != original
    assert (
        tabular(path=small, tasks=tasks).file_sha256()
        == __import__("hashlib").sha256(Path(small).read_bytes()).hexdigest()
    )


# ------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"path": "/nonexistent/file.csv"}, r"path: file '/nonexistent/file.csv' not found"),
        ({"tasks": {"nope": "regression"}}, r"tasks: unknown column\(s\) \['nope'\]"),
        ({"inputs": ["x1", "ghost"]}, r"inputs: unknown column\(s\) \['ghost'\]"),
        ({"split_column": "nope"}, r"split_column: unknown column\(s\) \['nope'\]"),
        ({"inputs": ["x1", "colour"]}, r"inputs: column\(s\) \['colour'\] are not numeric"),
        ({"tasks": {"y": "binary"}}, r"tasks: binary column 'y' has values other than 0/1"),
        ({"tasks": {"y": "ordinal"}}, r"tasks"),
        ({"tasks": {}}, r"tasks: name at least one task column"),
        ({"fractions": (0.5, 0.2, 0.2)}, r"fractions"),
        ({"inputs": ["x1", "y"]}, r"inputs: columns \['y'\] are also tasks"),
        ({"tasks": {"colour": "regression"}}, r"tasks: regression column 'colour' is not numeric"),
    ],
)
def test_clear_errors(small: str, params: dict[str, Any], message: str) -> None:
    full = {"path": small, "tasks": {"y": "regression"}, "inputs": ["x1", "x2"], **params}
    with pytest.raises(ValueError, match=message):
        tabular(**full).load()


def test_non_numeric_default_inputs_explain_the_fix(small: str) -> None:
    with pytest.raises(
        ValueError, match=r"inputs: column\(s\) \['colour', 'split'\] are not numeric.*list only"
    ):
        tabular(path=small, tasks={"y": "regression"}).load()


def test_task_empty_in_a_split(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "x": range(6),
            "y": [1.0, 2.0, 3.0, 4.0, np.nan, np.nan],
            "split": ["train"] * 3 + ["validation", "test", "test"],
        }
    )
    with pytest.raises(ValueError, match="tasks: task column 'y' has no label in the test split"):
        tabular(path=write_csv(tmp_path, frame), tasks={"y": "regression"}, split_column="split").load()


def test_bad_split_values(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": range(4), "y": range(4), "split": ["train", "valid", "test", "train"]})
    with pytest.raises(ValueError, match=r"split_column: column 'split' has values \['valid'\]"):
        tabular(path=write_csv(tmp_path, frame), tasks={"y": "regression"}, split_column="split").load()


# ------------------------------------------------------------------------------- ARFF and featurisers
TOX21 = [
    "NR-AR",
    "NR-AR-LBD",
    "NR-AhR",
    "NR-Aromatase",
    "NR-ER",
    "NR-ER-LBD",
    "NR-PPAR-gamma",
    "SR-ARE",
    "SR-ATAD5",
    "SR-HSE",
    "SR-MMP",
    "SR-p53",
]


@pytest.mark.shared_data
def test_arff_is_read_directly_like_its_csv(shared_data: Path, tmp_path: Path) -> None:
    frame = arff_to_csv(shared_data / "real" / "wq.arff", tmp_path)
    targets = list(frame.columns[-14:])
    common = {"tasks": dict.fromkeys(targets, "regression"), "fractions": (0.6, 0.2, 0.2), "seed": 3}
    direct = tabular(path=str(shared_data / "real" / "wq.arff"), **common).load()
    via_csv = tabular(path=write_csv(tmp_path, frame, "wq.csv"), **common).load()
    for split in ("train", "validation", "test"):
        assert torch.allclose(direct[split].inputs, via_csv[split].inputs)
        assert all(torch.equal(direct[split].targets[t], via_csv[split].targets[t]) for t in targets)


@pytest.mark.shared_data
def test_tox21_smiles_become_morgan_fingerprints(shared_data: Path) -> None:
    from rdkit import Chem
    from rdkit.Chem import rdFingerprintGenerator

    path = str(shared_data / "real" / "tox21.csv")
    morgan = {"method": "morgan", "options": {"radius": 2, "bits": 256}, "invalid": "drop"}
    dataset = tabular(path=path, tasks=dict.fromkeys(TOX21, "binary"), featurize={"smiles": morgan})
    splits = dataset.load()
    assert dataset.input_shape() == (256,)
    assert sum(len(s) for s in splits.values()) == 7831 - 8  # RDKit cannot read 8 of the SMILES: dropped
    assert dataset.input_columns[:2] == ["smiles:morgan:0", "smiles:morgan:1"]
    every = torch.cat([splits[s].inputs for s in ("train", "validation", "test")])
    assert every.shape[1] == 256 and torch.isfinite(every).all()
    # the features are RDKit's own bits of each molecule
    head = pd.read_csv(path).head(3)
    features = featurize(head, {"smiles": FeaturizeSpec(options={"radius": 2, "bits": 256})}, path)
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=256)
    for row, smiles in enumerate(head["smiles"]):
        expected = generator.GetFingerprintAsNumPy(Chem.MolFromSmiles(smiles))
        assert np.array_equal(features.filter(like="smiles:morgan:").to_numpy()[row], expected)
    assert list(features.columns[:12]) == TOX21  # the SMILES column replaced by its features
    # the missing labels (17% of the cells) stay missing: masked, never zero
    missing = torch.cat([splits[s].targets["NR-Aromatase"] for s in splits]).isnan().float().mean()
    assert 0.2 < float(missing) < 0.3


@pytest.mark.shared_data
def test_featurisers_fail_clearly_and_keep_old_fingerprints(shared_data: Path) -> None:
    path = str(shared_data / "real" / "tox21.csv")
    tasks = {"NR-AR": "binary"}
    with pytest.raises(ValueError, match=r"data rows 1323, 2291, .* set featurize.smiles.invalid: drop"):
        tabular(path=path, tasks=tasks, featurize={"smiles": {"method": "morgan"}}).load()
    with pytest.raises(ValueError, match="unknown featurizer 'ecfp'; choose one of morgan"):
        tabular(path=path, tasks=tasks, featurize={"smiles": {"method": "ecfp"}})
    with pytest.raises(ValueError, match=r"featurize.smiles: options of 'morgan': radius:"):
        tabular(path=path, tasks=tasks, featurize={"smiles": {"options": {"radius": 0}}})
    with pytest.raises(ValueError, match=r"featurize: columns \['NR-AR'\] are tasks"):
        tabular(path=path, tasks=tasks, featurize={"NR-AR": {}})
    sarcos = {"path": str(shared_data / "real" / "sarcos.csv"), "tasks": {"tau1": "regression"}}
    assert tabular(**sarcos).fingerprint() == tabular(**sarcos, featurize={}).fingerprint()
    with_fp = tabular(path=path, tasks=tasks, featurize={"smiles": {"invalid": "drop"}})
    assert with_fp.fingerprint() != tabular(path=path, tasks=tasks, inputs=["NR-AR-LBD"]).fingerprint()
