"""Exporting a job's budget and collecting kept weights, without Ray: a tabular job trained in this process
(``tests.bundles``) whose chosen networks kept their weights as a Tune trial keeps them.

The Tune path (a trial reporting its checkpoint, the callback recording it) is ``test_export_ray.py``.
"""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from search.export import FINALIZE_HINT, ExportError, NotFinalizedError, export_bundle, finalize_hint
from search.store import Store, open_store
from search.weights import (
    CHECKPOINT_FILE,
    WeightsError,
    checkpoint_uri,
    collect_garbage,
    read_weights,
    weights_present,
)
from tests.bundles import (
    TABULAR_TASKS,
    TrainedJob,
    keep,
    keep_budget,
    run_in_process,
    tabular_spec,
    write_tabular_csv,
)
from workers import checkpoint
from workers.bundle import load_bundle
from workers.datasets import get_dataset
from workers.losses import TaskEvaluator
from workers.spec import TrainingSpec


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("export")


@pytest.fixture(scope="module")
def store(folder: Path) -> Store:
    return open_store(f"sqlite:///{folder / 'store.db'}")


@pytest.fixture(scope="module")
def done(store: Store, folder: Path) -> TrainedJob:
    """A tabular job over y, z, m (7 trainings) whose budget 3 kept its weights (as a finalize leaves it);
    budget 1 (only the all-task network fits) did not."""
    csv = write_tabular_csv(folder / "data.csv")
    result = run_in_process(store, tabular_spec(csv, TABULAR_TASKS, budgets=[1.0, 3.0]))
    keep_budget(store, result, 3.0, folder / "runs")
    assert len(result.job.result.at(3.0).networks) > 1  # type: ignore[union-attr]
    return result


def test_export_predicts_what_the_store_recorded(store: Store, done: TrainedJob, folder: Path) -> None:
    buffer = io.BytesIO()
    manifest = export_bundle(store, done.job.id, 3.0, buffer)
    grouping = done.job.result.at(3.0)  # type: ignore[union-attr]
    assert manifest.job_id == done.job.id and manifest.budget == 3.0 and manifest.tasks == ["y", "z", "m"]
    assert manifest.job_spec == done.job.spec.model_dump(mode="json")
    chosen = [(n.label, n.serves) for n in grouping.networks]
    assert [(n.label, n.serves) for n in manifest.networks] == chosen
    records = store.get_trainings([n.training_key for n in manifest.networks])  # type: ignore[misc]
    bundle = load_bundle(io.BytesIO(buffer.getvalue()))
    dataset = get_dataset("tabular", done.job.spec.dataset.params)
    test = dataset.split_frame("test")
    raw = bundle.predict_raw(test)
    splits = dataset.load()
    for entry in manifest.networks:
        stored = records[entry.training_key].result  # type: ignore[index]
        assert entry.scoring == stored.scoring  # the bundle's weights are the stored training's
        for task in entry.serves:
            evaluator = TaskEvaluator(dataset.task(task))
            evaluator.update(torch.from_numpy(raw[task]), splits["test"].targets[task])
            assert evaluator.result().loss == pytest.approx(stored.scoring[task], rel=1e-5)


def test_a_budget_without_weights_says_how_to_finalize(store: Store, done: TrainedJob) -> None:
    with pytest.raises(NotFinalizedError) as info:
        export_bundle(store, done.job.id, 1.0, io.BytesIO())
    message = str(info.value)
    assert message.startswith(f"budget 1 of job {done.job.id} was not finalized: network(s) ")
    assert message.endswith(
        f"finalize it: resubmit the job with finalize_budgets: [1], or run: taskgroup search --resume "
        f"{done.job.id} --finalize 1"
    )
    assert finalize_hint("j", 2.5) == FINALIZE_HINT.format(job_id="j", budget="2.5")
    assert info.value.missing == [n.label for n in done.job.result.at(1.0).networks]  # type: ignore[union-attr]


def test_export_errors(store: Store, done: TrainedJob) -> None:
    with pytest.raises(ExportError, match=r"budget 2 is not a budget of job .*; choose one of: 1, 3"):
        export_bundle(store, done.job.id, 2.0, io.BytesIO())
    with pytest.raises(KeyError, match="job nope not found"):
        export_bundle(store, "nope", 3.0, io.BytesIO())
    queued = store.create_job(done.job.spec)
    with pytest.raises(ExportError, match="has no result \\(it is queued\\)"):
        export_bundle(store, queued.id, 2.0, io.BytesIO())


def test_weights_on_storage_are_verified(store: Store, done: TrainedJob, folder: Path) -> None:
    key = next(k for k in done.trained if store.get_checkpoint(k) is None)  # not one the export uses
    record = keep(store, key, done.trained[key], folder / "verify")
    assert weights_present(record) and len(read_weights(record)) == record.size_bytes
    path = Path(record.uri) / CHECKPOINT_FILE
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match=f"kept weights of training {key} at .* were altered"):
        read_weights(record)
    path.unlink()
    assert not weights_present(record)
    with pytest.raises(WeightsError, match=r"are missing at .*; run `taskgroup gc`"):
        read_weights(record)
    store.delete_checkpoint(key)


def test_checkpoint_file_name_and_uris_agree_with_the_workers() -> None:
    assert CHECKPOINT_FILE == checkpoint.CHECKPOINT_FILE
    local = SimpleNamespace(path="/runs/job/checkpoint_000000", filesystem=SimpleNamespace(type_name="local"))
    remote = SimpleNamespace(path="bucket/runs/checkpoint_000000", filesystem=SimpleNamespace(type_name="s3"))
    gcs = SimpleNamespace(path="bucket/x", filesystem=SimpleNamespace(type_name="gcs"))
    assert checkpoint_uri(local) == "/runs/job/checkpoint_000000"
    assert checkpoint_uri(remote) == "s3://bucket/runs/checkpoint_000000"
    assert checkpoint_uri(gcs) == "gs://bucket/x"


def test_keep_weights_is_not_part_of_the_training_key() -> None:
    from search.keys import training_key

    spec = TrainingSpec(dataset={"name": "planted"}, tasks=["a1"])
    assert training_key(spec, "f") == training_key(spec.model_copy(update={"keep_weights": True}), "f")


def test_gc_removes_what_no_job_needs(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'gc.db'}")
    csv = write_tabular_csv(tmp_path / "data.csv", rows=200)
    spec = tabular_spec(csv, {"y": "regression", "z": "binary"}, budgets=[1.0], training={"epochs": 1})
    job = run_in_process(store, spec)
    kept = keep_budget(store, job, 1.0, tmp_path / "runs")  # the y,z network, chosen at budget 1: needed
    loose = next(k for k in job.trained if k not in kept)  # a single, chosen at no budget
    spare = keep(store, loose, job.trained[loose], tmp_path / "runs")  # chosen at no budget: not needed
    assert {r.training_key for r in store.list_checkpoints()} == {*kept, loose}
    dry = collect_garbage(store, dry_run=True)
    assert [i.training_key for i in dry.removed] == [loose] and dry.kept == len(kept)
    assert dry.freed_bytes == spare.size_bytes and Path(spare.uri).exists()  # nothing removed
    report = collect_garbage(store)
    assert [(i.training_key, i.reason) for i in report.removed] == [(loose, "no job needs it")]
    assert not Path(spare.uri).exists() and store.get_checkpoint(loose) is None
    (Path(store.get_checkpoint(kept[0]).uri) / CHECKPOINT_FILE).unlink()  # a needed row whose file is gone
    report = collect_garbage(store)
    assert [(i.training_key, i.reason) for i in report.removed] == [(kept[0], "its files are missing")]
    assert report.freed_bytes == 0 and store.get_checkpoint(kept[0]) is None
    assert collect_garbage(store).removed == []
