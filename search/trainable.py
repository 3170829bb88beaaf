"""The Ray Tune function trainable: one trial trains one candidate with ``workers.train_network``.

It first lowers its process's scheduling priority to the niceness in ``config["nice"]`` (the driver's
``TASKGROUP_TRAINING_NICE``, :func:`search.settings.training_nice`; 0 = unchanged), so that the HTTP service
on the same machine keeps answering while trainings use every core (:mod:`workers.priority`).

It reports every epoch (so the Ray dashboard and Tune's progress show the training curve) and a final
report carrying the whole ``TrainingResult`` as JSON, which the driver's callback writes to the store.

When the spec keeps its weights (``TrainingSpec.keep_weights``), the final report also carries a Tune
checkpoint: a folder with the one file of :mod:`workers.checkpoint` (the best weights and their card), which
Tune persists into the run's storage (``RunConfig.storage_path``: a local folder by default, a shared or
remote path such as ``s3://`` with Ray's storage settings). The report names the file's sha256 and size
(:data:`WEIGHTS_SHA256`, :data:`WEIGHTS_BYTES`) so the driver records them without reading the file back.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

from ray import tune

from workers.checkpoint import save_checkpoint
from workers.priority import lower_priority
from workers.spec import EpochRecord, TrainingSpec
from workers.train import train_network

RESULT_FIELD = "training_result_json"
NICE_FIELD = "nice"
"""The key of the trial config that holds the niceness a training runs at (set by the driver, the same for
every trial of a run, on every node)."""
WEIGHTS_SHA256 = "weights_sha256"
WEIGHTS_BYTES = "weights_bytes"


def train_trial(config: dict[str, Any]) -> None:
    """Tune trainable: ``config["training"] = {"key": ..., "spec": TrainingSpec as dict}``, ``config["nice"]``
    the niceness to train at (absent: unchanged)."""
    lower_priority(int(config.get(NICE_FIELD, 0)))
    spec = TrainingSpec.model_validate(config["training"]["spec"])

    def on_epoch(record: EpochRecord) -> None:
        metrics: dict[str, Any] = {
            "epoch": record.epoch,
            "train_loss": record.train_loss,
            "validation_loss": record.validation_loss,
        }
        metrics.update({f"validation_loss/{t}": v for t, v in record.validation_losses.items()})
        if all(math.isfinite(v) for v in (record.train_loss, record.validation_loss)):
            tune.report(metrics)

    trained = train_network(spec, on_epoch=on_epoch)
    final: dict[str, Any] = {"done_training": 1, RESULT_FIELD: trained.result.model_dump_json()}
    if not spec.keep_weights:
        tune.report(final)
        return
    with tempfile.TemporaryDirectory(prefix="taskgroup-weights-") as folder:
        saved = save_checkpoint(Path(folder), trained.card, trained.state_dict)
        final.update({WEIGHTS_SHA256: saved.sha256, WEIGHTS_BYTES: saved.size})
        tune.report(final, checkpoint=tune.Checkpoint.from_directory(folder))  # copied into storage here
