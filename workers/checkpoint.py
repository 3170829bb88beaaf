"""A kept network: one file holding its best weights and the card that says how to rebuild and serve them.

A training with ``spec.keep_weights`` (``workers.spec.TrainingSpec``) writes :data:`CHECKPOINT_FILE` into a
folder that its Ray trial reports as a Tune checkpoint (``search.trainable``); the driver records the folder's
URI, the file's size and its sha256 in the results store. The file is ``torch.save`` of a dict::

    {"format": 1, "card": "<NetworkCard as JSON>", "state_dict": {name: tensor}}

read back with ``torch.load(weights_only=True)`` (no pickled code runs). The :class:`NetworkCard` is
self-contained: the training's spec and result (its losses on validation and test), the input kind and shape,
the tasks, the trunk widths and the capacity multiplier (what :func:`build_network` needs to rebuild the
module), and the dataset's :class:`~workers.datasets.preprocessing.Preprocessing`; exporting a bundle needs
neither the dataset nor a Ray worker.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from grouping.validation import format_validation_error
from workers.datasets.base import TaskInfo
from workers.datasets.preprocessing import Preprocessing
from workers.models import MultiTaskNetwork, make_family
from workers.spec import TrainingResult

__all__ = [
    "CHECKPOINT_FILE",
    "CHECKPOINT_FORMAT",
    "CheckpointError",
    "NetworkCard",
    "SavedCheckpoint",
    "build_network",
    "checkpoint_bytes",
    "read_checkpoint",
    "save_checkpoint",
]

CHECKPOINT_FILE = "network.pt"
"""The one file of a kept network's checkpoint folder."""

CHECKPOINT_FORMAT = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be read (damaged, of another format, or not a checkpoint)."""


class NetworkCard(BaseModel):
    """What a checkpoint's weights are: enough to rebuild the network and serve it (module docstring)."""

    model_config = ConfigDict(extra="forbid")

    result: TrainingResult = Field(description="the training of the weights: spec, losses, metrics")
    fingerprint: str = Field(description="the dataset's fingerprint")
    input_kind: Literal["vector", "image"]
    input_shape: list[int]
    tasks: list[TaskInfo] = Field(description="the network's tasks, in its head order")
    model_options: dict[str, Any] = Field(description="the dataset's full-size trunk widths")
    multiplier: float = Field(description="the width multiplier its capacity asked for")
    preprocessing: Preprocessing


@dataclass(frozen=True)
class SavedCheckpoint:
    """Where a checkpoint file was written, its size in bytes and its sha256 (hex)."""

    path: Path
    size: int
    sha256: str


def checkpoint_bytes(card: NetworkCard, state_dict: dict[str, torch.Tensor]) -> bytes:
    """The checkpoint file's content (tensors copied to the CPU)."""
    buffer = io.BytesIO()
    cpu = {name: tensor.detach().cpu() for name, tensor in state_dict.items()}
    torch.save({"format": CHECKPOINT_FORMAT, "card": card.model_dump_json(), "state_dict": cpu}, buffer)
    return buffer.getvalue()


def save_checkpoint(folder: Path, card: NetworkCard, state_dict: dict[str, torch.Tensor]) -> SavedCheckpoint:
    """Write :data:`CHECKPOINT_FILE` into ``folder`` (made if needed)."""
    data = checkpoint_bytes(card, state_dict)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CHECKPOINT_FILE
    path.write_bytes(data)
    return SavedCheckpoint(path=path, size=len(data), sha256=hashlib.sha256(data).hexdigest())


def read_checkpoint(data: bytes, where: str = "checkpoint") -> tuple[NetworkCard, dict[str, torch.Tensor]]:
    """The card and the state dict of a checkpoint file's bytes; :class:`CheckpointError` naming ``where``."""
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged file
        raise CheckpointError(f"{where}: not a readable checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(f"{where}: checkpoint format {found!r}, expected {CHECKPOINT_FORMAT}")
    try:
        card = NetworkCard.model_validate_json(payload["card"])
    except (ValidationError, KeyError, TypeError) as exc:
        detail = format_validation_error(exc) if isinstance(exc, ValidationError) else repr(exc)
        raise CheckpointError(f"{where}: its card cannot be read: {detail}") from None
    return card, payload["state_dict"]


def build_network(card: NetworkCard, state_dict: dict[str, torch.Tensor] | None = None) -> MultiTaskNetwork:
    """The network the card describes (on the CPU, in eval mode), with ``state_dict`` loaded when given."""
    settings = card.result.spec.settings
    family = make_family(
        card.input_kind,
        tuple(card.input_shape),
        list(card.tasks),
        dict(card.model_options),
        settings.model.architecture,
        settings.model.options,
    )
    network = family.build(card.multiplier)
    if state_dict is not None:
        try:
            network.load_state_dict(state_dict)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise CheckpointError(f"the weights do not fit the network the card describes: {first}") from None
    return network.eval()
