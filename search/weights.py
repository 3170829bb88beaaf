"""Kept weights on storage: where a Tune checkpoint lives, reading it back verified, and ``taskgroup gc``.

A training that keeps its weights (``TrainingSpec.keep_weights``) leaves a Tune checkpoint folder in the run's
storage (a local folder by default; ``s3://``, ``gs://`` or another URI with Ray's storage settings)
holding one file, :data:`workers.checkpoint.CHECKPOINT_FILE`. The store's ``checkpoints`` row records the
folder's URI, the file's size and sha256 (``search.store.checkpoints``). Files are reached through
``pyarrow.fs``, the file-system layer Ray Tune itself uses, so every storage Tune can write to can be read
and cleaned here.

Garbage collection (:func:`collect_garbage`): a checkpoint no job needs (the rule is
``Store.checkpoint_needs``: linked to a queued or running job, or chosen at a budget of a succeeded job's
result) has its files deleted, then its row; a row whose file is gone is dropped too (it would claim weights
that no longer exist, and a finalize would skip the training). Run it when no job is finalizing: a job that
starts needing a checkpoint after the check is not seen.
"""

from __future__ import annotations

import hashlib
import logging
from types import MappingProxyType
from typing import Any

import pyarrow.fs as pafs
from pydantic import BaseModel, Field

from search.store import CheckpointRecord, Store

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "network.pt"
"""The weights file in a checkpoint folder (the same name as ``workers.checkpoint.CHECKPOINT_FILE``, repeated
here so that reading and cleaning storage does not import torch; a test checks they agree)."""

_SCHEMES = MappingProxyType({"local": "", "s3": "s3://", "gcs": "gs://", "hdfs": "hdfs://"})
"""pyarrow file-system type -> the URI prefix of its paths (local paths are recorded as they are)."""


class WeightsError(ValueError):
    """Kept weights that cannot be used: their file is missing or differs from what the store recorded."""


def checkpoint_uri(checkpoint: Any) -> str:
    """The URI of a Tune checkpoint folder (``ray.tune.Checkpoint``: its ``path`` on its ``filesystem``): a
    plain absolute path on a local file system, ``s3://bucket/...`` etc. on remote storage."""
    kind = str(getattr(checkpoint.filesystem, "type_name", "local"))
    prefix = _SCHEMES.get(kind)
    if prefix is None:
        log.warning("checkpoint on a %r file system: recording %s://%s", kind, kind, checkpoint.path)
        prefix = f"{kind}://"
    return f"{prefix}{checkpoint.path}"


def _resolve(uri: str) -> tuple[pafs.FileSystem, str]:
    try:
        return pafs.FileSystem.from_uri(uri)
    except (ValueError, OSError) as exc:
        raise WeightsError(f"cannot reach the checkpoint storage {uri}: {exc}") from None


def weights_present(record: CheckpointRecord) -> bool:
    """Whether the checkpoint's weights file exists (at any size: :func:`read_weights` checks the content)."""
    fs, folder = _resolve(record.uri)
    return fs.get_file_info(f"{folder}/{CHECKPOINT_FILE}").type == pafs.FileType.File


def read_weights(record: CheckpointRecord) -> bytes:
    """The checkpoint's weights file, checked against the size and sha256 the store recorded."""
    fs, folder = _resolve(record.uri)
    path = f"{folder}/{CHECKPOINT_FILE}"
    try:
        with fs.open_input_stream(path) as stream:
            data = stream.read()
    except (FileNotFoundError, OSError) as exc:
        raise WeightsError(
            f"the kept weights of training {record.training_key} are missing at {record.uri} ({exc}); "
            "run `taskgroup gc` to forget them, then finalize the budget again"
        ) from None
    digest = hashlib.sha256(data).hexdigest()
    if len(data) != record.size_bytes or digest != record.sha256:
        raise WeightsError(
            f"the kept weights of training {record.training_key} at {record.uri} were altered: sha256 "
            f"{digest[:12]}... ({len(data)} bytes), the store recorded {record.sha256[:12]}... "
            f"({record.size_bytes} bytes); run `taskgroup gc` to forget them, then finalize the budget again"
        )
    return data


def delete_weights(uri: str) -> None:
    """Delete a checkpoint folder and what it holds (nothing happens when it is already gone)."""
    fs, folder = _resolve(uri)
    info = fs.get_file_info(folder)
    if info.type == pafs.FileType.Directory:
        fs.delete_dir(folder)
    elif info.type == pafs.FileType.File:
        fs.delete_file(folder)


class GcItem(BaseModel):
    """One checkpoint ``taskgroup gc`` removes (or would remove, with ``--dry-run``)."""

    training_key: str
    uri: str
    size_bytes: int
    reason: str = Field(description="'no job needs it' or 'its files are missing'")


class GcReport(BaseModel):
    """What a garbage collection removed (or would remove) and what it kept."""

    dry_run: bool
    removed: list[GcItem] = Field(default_factory=list)
    kept: int = Field(0, description="checkpoints some job needs")
    freed_bytes: int = 0


def collect_garbage(store: Store, *, dry_run: bool = False) -> GcReport:
    """Remove the checkpoints no job needs, and the rows whose files are gone (module docstring)."""
    needs = store.checkpoint_needs()
    report = GcReport(dry_run=dry_run)
    for record in store.list_checkpoints():
        if needs.get(record.training_key):
            if weights_present(record):
                report.kept += 1
                continue
            reason = "its files are missing"
        else:
            reason = "no job needs it"
        item = GcItem(**record.model_dump(include={"training_key", "uri", "size_bytes"}), reason=reason)
        report.removed.append(item)
        if reason == "no job needs it":
            report.freed_bytes += record.size_bytes
        if not dry_run:
            delete_weights(record.uri)  # files first: a row never outlives its files unnoticed
            store.delete_checkpoint(record.training_key)
            log.info("gc: removed the checkpoint of %s (%s): %s", record.training_key, record.uri, reason)
    return report


__all__ = [
    "CHECKPOINT_FILE",
    "GcItem",
    "GcReport",
    "WeightsError",
    "checkpoint_uri",
    "collect_garbage",
    "delete_weights",
    "read_weights",
    "weights_present",
]
