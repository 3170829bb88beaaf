"""Bundles without Ray or a store: networks trained here, built into a bundle from their checkpoint files.

The promises of issue 13 checked: predictions on the held-out test split reproduce the test losses the trainer
recorded (raw outputs exactly; in the user's units once the target standardisation is undone), an altered,
added or missing file is refused by name, bad rows get an error naming row and column, missing inputs follow
the dataset's ``missing_inputs`` rule, and every architecture survives the export.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from tests.bundles import TABULAR_TASKS, write_smiles_csv, write_tabular_csv
from workers.bundle import (
    BundleBuildError,
    BundleError,
    BundleInputError,
    NetworkSource,
    build_bundle,
    load_bundle,
)
from workers.bundle.inputs import vector_batch
from workers.checkpoint import CheckpointError, NetworkCard, build_network, checkpoint_bytes
from workers.datasets import get_dataset
from workers.datasets.preprocessing import VectorInputs
from workers.losses import TaskEvaluator
from workers.train import TrainedNetwork, load_dataset, train_network

PLANTED = {"name": "planted", "params": {"groups": [2, 1], "samples": 256, "evaluation_samples": 300}}
RTOL = 1e-5


def train(dataset: dict, tasks: list[str], capacity: float = 1.0, **settings: object) -> TrainedNetwork:
    spec = {
        "dataset": dataset,
        "tasks": tasks,
        "capacity": capacity,
        "threads": 1,
        "settings": {"epochs": 3, "batch_size": 32, **settings},
    }
    return train_network(spec)


def source(trained: TrainedNetwork, serves: list[str]) -> NetworkSource:
    return NetworkSource(checkpoint_bytes(trained.card, trained.state_dict), serves, where=",".join(serves))


def losses(raw: dict[str, np.ndarray], dataset: dict, split: str = "test") -> dict[str, float]:
    """Each task's loss of raw outputs against the split's targets, as the trainer measures it."""
    data, splits = load_dataset(dataset)
    result = {}
    for task, values in raw.items():
        evaluator = TaskEvaluator(data.task(task))
        evaluator.update(torch.from_numpy(np.array(values)), splits[split].targets[task])
        result[task] = evaluator.result().loss
    return result


@pytest.fixture(scope="module")
def planted() -> dict[str, TrainedNetwork]:
    return {"a": train(PLANTED, ["a1", "a2"]), "b": train(PLANTED, ["b1"], capacity=0.5)}


@pytest.fixture(scope="module")
def planted_bundle(planted: dict[str, TrainedNetwork], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("planted") / "bundle.zip"
    build_bundle([source(planted["a"], ["a1", "a2"]), source(planted["b"], ["b1"])], path, budget=1.5)
    return path


@pytest.fixture(scope="module")
def tabular(tmp_path_factory: pytest.TempPathFactory) -> dict:
    csv = write_tabular_csv(tmp_path_factory.mktemp("tabular") / "data.csv")
    return {"name": "tabular", "params": {"path": str(csv), "tasks": TABULAR_TASKS}}


@pytest.fixture(scope="module")
def tabular_nets(tabular: dict) -> dict[str, TrainedNetwork]:
    return {"yz": train(tabular, ["y", "z"]), "my": train(tabular, ["m", "y"], capacity=0.5)}


@pytest.fixture(scope="module")
def tabular_bundle(tabular_nets: dict[str, TrainedNetwork], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tabular-bundle") / "bundle.zip"
    sources = [source(tabular_nets["yz"], ["y", "z"]), source(tabular_nets["my"], ["m"])]
    build_bundle(sources, path, job_spec={"tasks": ["y", "z", "m"]})
    return path


# ------------------------------------------------------------------------------ reproducing recorded losses


def test_planted_predictions_reproduce_the_recorded_test_losses(
    planted: dict[str, TrainedNetwork], planted_bundle: Path
) -> None:
    bundle = load_bundle(planted_bundle, device="cpu")
    assert bundle.tasks == ["a1", "a2", "b1"]
    assert bundle.manifest.serving == {"a1": "n0", "a2": "n0", "b1": "n1"}
    _, splits = load_dataset(PLANTED)
    inputs = splits["test"].inputs.numpy()
    measured = losses(bundle.predict_raw(inputs), PLANTED)
    recorded = {**planted["a"].result.scoring, **planted["b"].result.scoring}
    assert measured == pytest.approx(recorded, rel=RTOL)
    frame = pd.DataFrame(inputs, columns=[f"x{i}" for i in range(inputs.shape[1])])
    predictions = bundle.predict(frame)  # by column name; planted has no target scale: user units = raw
    assert list(predictions.columns) == ["a1", "a2", "b1"]
    assert losses({t: predictions[t].to_numpy()[:, None] for t in bundle.tasks}, PLANTED) == pytest.approx(
        recorded, rel=RTOL
    )


def test_tabular_predictions_reproduce_the_recorded_test_losses(
    tabular: dict, tabular_nets: dict[str, TrainedNetwork], tabular_bundle: Path
) -> None:
    bundle = load_bundle(tabular_bundle)
    dataset = get_dataset("tabular", tabular["params"])
    test = dataset.split_frame("test")  # the file's held-out rows, raw units, empty input cells included
    assert test["a"].isna().any()  # so the imputation is exercised too
    measured = losses(bundle.predict_raw(test), tabular)
    recorded = {**tabular_nets["yz"].result.scoring, "m": tabular_nets["my"].result.scoring["m"]}
    assert measured == pytest.approx(recorded, rel=RTOL)


def test_tabular_predictions_come_in_the_users_units(
    tabular: dict, tabular_nets: dict[str, TrainedNetwork], tabular_bundle: Path
) -> None:
    bundle = load_bundle(tabular_bundle)
    dataset = get_dataset("tabular", tabular["params"])
    test = dataset.split_frame("test")
    predictions = bundle.predict(test)
    assert list(predictions.columns) == ["y", "z", "m"] and (predictions.index == test.index).all()
    recorded = tabular_nets["yz"].result
    _, std = dataset.target_scale["y"]  # type: ignore[attr-defined]
    assert std > 5  # the un-standardisation matters
    mse = float(((predictions["y"] - test["y"]) ** 2).mean())
    assert mse / std**2 == pytest.approx(recorded.scoring["y"], rel=RTOL)
    labelled = test["z"].notna()
    p, z = predictions["z"][labelled].to_numpy(), test["z"][labelled].to_numpy()
    assert ((p > 0) & (p < 1)).all()
    bce = float(-(z * np.log(p) + (1 - z) * np.log1p(-p)).mean())
    assert bce == pytest.approx(recorded.scoring["z"], rel=1e-4)
    accuracy = float((predictions["m"] == test["m"]).mean())
    assert set(predictions["m"]) <= {"high", "low", "mid"}
    assert accuracy == pytest.approx(tabular_nets["my"].result.metrics["scoring"]["m"], rel=RTOL)


def test_the_preprocessing_is_the_datasets_own(tabular: dict) -> None:
    dataset = get_dataset("tabular", tabular["params"])
    spec = dataset.preprocessing().inputs
    assert isinstance(spec, VectorInputs) and spec.columns == ["a", "b", "c", "d"]
    assert spec.missing_inputs == "mean" and spec.fill == spec.center
    for split in ("train", "test"):
        rebuilt = vector_batch(dataset.split_frame(split), spec)
        assert np.array_equal(rebuilt, dataset.load()[split].inputs.numpy())  # bit for bit


def test_an_empty_cell_gets_the_training_mean(tabular_bundle: Path, tabular: dict) -> None:
    bundle = load_bundle(tabular_bundle)
    row = get_dataset("tabular", tabular["params"]).split_frame("test").iloc[[0]].copy()
    row["a"] = np.nan
    filled = row.copy()
    filled["a"] = bundle.manifest.input.fill[0]  # type: ignore[union-attr]
    assert bundle.predict(row).equals(bundle.predict(filled))


def test_smiles_bundles_read_raw_smiles_and_reproduce_the_recorded_losses(tmp_path: Path) -> None:
    """A featurised dataset (SMILES -> Morgan bits): the bundle takes the raw SMILES, featurises them as the
    dataset did, and reproduces the recorded test losses; an unreadable SMILES is an error naming its row."""
    csv = write_smiles_csv(tmp_path / "molecules.csv")
    morgan = {"method": "morgan", "options": {"radius": 2, "bits": 128}, "invalid": "drop"}
    params = {
        "path": str(csv),
        "tasks": {"carbons": "regression", "acid": "binary"},
        "featurize": {"smiles": morgan},
    }
    dataset_ref = {"name": "tabular", "params": params}
    trained = train(dataset_ref, ["carbons", "acid"])
    path = tmp_path / "bundle.zip"
    build_bundle([source(trained, ["carbons", "acid"])], path)
    bundle = load_bundle(path)
    spec = bundle.manifest.input
    assert isinstance(spec, VectorInputs) and spec.user_columns() == ["smiles"]
    dataset = get_dataset("tabular", params)
    test = dataset.split_frame("test")
    assert test["smiles"].map(type).eq(str).all()  # raw text, as in the file
    assert not test["smiles"].isin(["C1CC", "not a molecule"]).any()  # the dropped rows are not in a split
    for split in ("train", "test"):  # featurised and standardised bit for bit as the dataset did
        assert np.array_equal(
            vector_batch(dataset.split_frame(split), spec), dataset.load()[split].inputs.numpy()
        )
    assert losses(bundle.predict_raw(test), dataset_ref) == pytest.approx(trained.result.scoring, rel=RTOL)
    predictions = bundle.predict(pd.DataFrame({"smiles": ["CCCO", "CCC(=O)O"]}))
    assert list(predictions.columns) == ["carbons", "acid"] and len(predictions) == 2
    with pytest.raises(
        BundleInputError, match=r"row 2 \(index 1\), column 'smiles': 'C1CC' cannot be read by 'morgan'"
    ):
        bundle.predict(pd.DataFrame({"smiles": ["CCO", "C1CC"]}))
    with pytest.raises(BundleInputError, match=r"column\(s\) \['smiles'\] are missing"):
        bundle.predict(pd.DataFrame({"smile": ["CCO"]}))


# ------------------------------------------------------------------------------ bad inputs


def test_bad_cells_are_named_by_row_and_column(tabular_bundle: Path, tabular: dict) -> None:
    bundle = load_bundle(tabular_bundle)
    test = get_dataset("tabular", tabular["params"]).split_frame("test").reset_index(drop=True)
    text = test.astype({"c": object})
    text.loc[3, "c"] = "abc"
    with pytest.raises(BundleInputError, match=r"row 4 \(index 3\), column 'c': 'abc' is not a number"):
        bundle.predict(text)
    infinite = test.copy()
    infinite.loc[2, "d"] = np.inf
    with pytest.raises(BundleInputError, match=r"row 3 \(index 2\), column 'd': inf is not a finite number"):
        bundle.predict(infinite)
    with pytest.raises(BundleInputError, match=r"column\(s\) \['b'\] are missing"):
        bundle.predict(test.drop(columns=["b"]))
    with pytest.raises(BundleInputError, match="expected a table of 4 columns"):
        bundle.predict(np.zeros((2, 3)))


def test_without_imputation_an_empty_cell_is_an_error() -> None:
    spec = VectorInputs(columns=["u", "v"], center=[0.0, 1.0], scale=[1.0, 2.0], missing_inputs="error")
    frame = pd.DataFrame({"u": [1.0, 2.0, 3.0], "v": [1.0, None, 5.0]}, index=["r1", "r2", "r3"])
    with pytest.raises(BundleInputError, match=r"row 2 \(index 'r2'\), column 'v': empty; this bundle"):
        vector_batch(frame, spec)
    text = pd.DataFrame({"u": ["1", " 2 ", ""], "v": [True, False, True]})  # text numbers, booleans, a hole
    imputing = spec.model_copy(update={"missing_inputs": "mean", "fill": [7.0, 0.0]})
    assert vector_batch(text, imputing).tolist() == [[1.0, 0.0], [2.0, -0.5], [7.0, 0.0]]


# ------------------------------------------------------------------------------ hashes


def _rewrite(path: Path, out: Path, change: Callable[[dict[str, bytes]], None]) -> Path:
    with zipfile.ZipFile(path) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    change(files)
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out


def _flip(name: str) -> Callable[[dict[str, bytes]], None]:
    def change(files: dict[str, bytes]) -> None:
        data = bytearray(files[name])
        data[len(data) // 2] ^= 0x01
        files[name] = bytes(data)

    return change


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_flip("networks/n0/program.pt2"), "file networks/n0/program.pt2 was altered"),
        (_flip("networks/n1/state_dict.pt"), "file networks/n1/state_dict.pt was altered"),
        (_flip("networks/n0/card.json"), "file networks/n0/card.json was altered"),
        (_flip("manifest.json"), "manifest.json was altered"),
        (lambda files: files.pop("networks/n1/card.json"), "file networks/n1/card.json is missing"),
        (lambda files: files.update({"extra.py": b"print(1)"}), "file extra.py is not in the manifest"),
    ],
    ids=["program", "state-dict", "card", "manifest", "removed", "added"],
)
def test_an_altered_bundle_is_refused_naming_the_file(
    planted_bundle: Path, tmp_path: Path, change: Callable[[dict[str, bytes]], None], message: str
) -> None:
    altered = _rewrite(planted_bundle, tmp_path / "altered.zip", change)
    with pytest.raises(BundleError, match=message):
        load_bundle(altered)


def test_not_a_bundle(tmp_path: Path) -> None:
    (tmp_path / "x.zip").write_bytes(b"not a zip")
    with pytest.raises(BundleError, match="not a readable bundle"):
        load_bundle(tmp_path / "x.zip")
    with zipfile.ZipFile(tmp_path / "y.zip", "w") as archive:
        archive.writestr("hello.txt", "hi")
    with pytest.raises(BundleError, match=r"manifest\.json is missing"):
        load_bundle(tmp_path / "y.zip")


def test_the_manifest_records_files_losses_and_versions(
    planted: dict[str, TrainedNetwork], planted_bundle: Path
) -> None:
    with zipfile.ZipFile(planted_bundle) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    manifest = json.loads(files["manifest.json"])
    assert files["manifest.sha256"].decode().strip() == hashlib.sha256(files["manifest.json"]).hexdigest()
    assert set(manifest["files"]) == set(files) - {"manifest.json", "manifest.sha256"}
    assert all(hashlib.sha256(files[n]).hexdigest() == digest for n, digest in manifest["files"].items())
    first, second = manifest["networks"]
    assert first["tasks"] == ["a1", "a2"] and second["capacity"] == 0.5 and manifest["budget"] == 1.5
    assert first["scoring"] == planted["a"].result.scoring
    assert first["selection"] == planted["a"].result.selection
    assert set(first["metrics"]) == {"selection", "scoring"}
    assert manifest["versions"]["torch"] == torch.__version__ and manifest["versions"]["python"]
    assert manifest["input"]["kind"] == "vector" and manifest["outputs"]["a1"]["kind"] == "regression"
    card = NetworkCard.model_validate_json(files[first["files"]["card"]])
    assert card == planted["a"].card  # the card in the bundle rebuilds the network with its state dict
    state = torch.load(io.BytesIO(files[first["files"]["state_dict"]]), weights_only=True)
    assert build_network(card, state).parameter_count() == first["parameters"]


# ------------------------------------------------------------------------------ building


def test_a_bundle_is_one_grouping_of_one_dataset(
    planted: dict[str, TrainedNetwork], tabular_nets: dict[str, TrainedNetwork], tmp_path: Path
) -> None:
    out = tmp_path / "b.zip"
    with pytest.raises(BundleBuildError, match="'a1' is served by both"):
        build_bundle([source(planted["a"], ["a1"]), source(planted["a"], ["a1", "a2"])], out)
    with pytest.raises(BundleBuildError, match=r"serves \['b1'\], but its heads are \['a1', 'a2'\]"):
        build_bundle([source(planted["a"], ["b1"])], out)
    with pytest.raises(BundleBuildError, match="trained on another dataset"):
        build_bundle([source(planted["a"], ["a1"]), source(tabular_nets["yz"], ["y"])], out)
    with pytest.raises(CheckpointError, match="broken: not a readable checkpoint"):
        build_bundle([NetworkSource(b"garbage", ["a1"], where="broken")], out)
    assert not out.exists()


@pytest.mark.parametrize("architecture", ["cross-stitch", "mtan"])
def test_soft_sharing_architectures_export_exactly(architecture: str, tmp_path: Path) -> None:
    trained = train(PLANTED, ["a1", "b1"], model={"architecture": architecture}, epochs=1)
    build_bundle([source(trained, ["a1", "b1"])], tmp_path / "b.zip")
    bundle = load_bundle(tmp_path / "b.zip")
    _, splits = load_dataset(PLANTED)
    assert losses(bundle.predict_raw(splits["test"].inputs), PLANTED) == pytest.approx(
        trained.result.scoring, rel=RTOL
    )


def test_an_image_bundle_reproduces_its_losses(tmp_path: Path) -> None:
    dataset = {
        "name": "taskonomy-mini",
        "params": {
            "resolution": 16,
            "train_images": 6,
            "validation_images": 3,
            "test_images": 4,
            "views_per_scene": 2,
            "data_dir": str(tmp_path / "data"),
        },
    }
    trained = train(dataset, ["s", "d"], epochs=1)
    build_bundle([source(trained, ["s", "d"])], tmp_path / "img.zip")
    bundle = load_bundle(tmp_path / "img.zip")
    _, splits = load_dataset(dataset)
    images = splits["test"].inputs
    assert losses(bundle.predict_raw(images), dataset) == pytest.approx(trained.result.scoring, rel=RTOL)
    predictions = bundle.predict(images)
    assert predictions["s"].shape == (4, 16, 16) and predictions["s"].dtype.kind == "i"
    assert predictions["d"].shape == (4, 1, 16, 16)
    assert bundle.manifest.outputs["s"].class_values is not None
    pixels = np.round(images.numpy() * 255).astype(np.uint8)  # uint8 pixels are divided by 255
    assert np.allclose(bundle.predict(pixels)["d"], predictions["d"], atol=1e-5)
    with pytest.raises(BundleInputError, match=r"expected images of shape \(N, 3, 16, 16\)"):
        bundle.predict(np.zeros((2, 3, 8, 8), dtype=np.float32))
