"""Load a bundle (every file's sha256 checked first) and predict every task with the network that serves it.

``load_bundle(path).predict(frame)`` on a tabular bundle returns a ``pandas.DataFrame`` with one column per
served task, in the user's units (``workers.bundle.inputs``); on an image bundle, a dict of arrays (task ->
``(N, ...)``). ``predict_raw`` gives the networks' raw outputs (standardised regression, logits): what their
losses were measured on. The device is chosen at run time (``auto``: CUDA when available).
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import torch
from pydantic import ValidationError

from grouping.validation import format_validation_error
from workers.bundle.inputs import image_batch, predictions_frame, user_units, vector_batch
from workers.bundle.manifest import BUNDLE_FORMAT, BUNDLE_VERSION, MANIFEST, MANIFEST_HASH, BundleManifest
from workers.device import choose_device

__all__ = ["Bundle", "BundleError", "load_bundle", "verified_files"]

VECTOR_BATCH = 65_536  # rows per forward pass
IMAGE_BATCH = 64  # images per forward pass


class BundleError(ValueError):
    """A bundle that cannot be used: unreadable, another format, or a missing, added or altered file."""


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verified_files(
    source: Path | IO[bytes], where: str = "bundle"
) -> tuple[BundleManifest, dict[str, bytes]]:
    """The manifest and every listed file of a bundle, after checking each file's sha256 (and the manifest's
    own); a :class:`BundleError` names the first file that is missing, added or altered."""
    try:
        with zipfile.ZipFile(source) as archive:
            contents = {name: archive.read(name) for name in archive.namelist() if not name.endswith("/")}
    except (zipfile.BadZipFile, OSError) as exc:
        raise BundleError(f"{where}: not a readable bundle (zip): {exc}") from None
    for required in (MANIFEST, MANIFEST_HASH):
        if required not in contents:
            raise BundleError(f"{where}: {required} is missing: not a taskgrouping bundle")
    if contents[MANIFEST_HASH].decode(errors="replace").strip() != _digest(contents[MANIFEST]):
        raise BundleError(f"{where}: {MANIFEST} was altered (sha256 differs from {MANIFEST_HASH}); refused")
    try:
        manifest = BundleManifest.model_validate_json(contents[MANIFEST])
    except ValidationError as exc:
        raise BundleError(f"{where}: {MANIFEST} cannot be read: {format_validation_error(exc)}") from None
    if manifest.format != BUNDLE_FORMAT or manifest.format_version > BUNDLE_VERSION:
        raise BundleError(
            f"{where}: bundle format {manifest.format} v{manifest.format_version}; this taskgrouping reads "
            f"{BUNDLE_FORMAT} up to v{BUNDLE_VERSION}: upgrade taskgrouping"
        )
    files = {name: data for name, data in contents.items() if name not in (MANIFEST, MANIFEST_HASH)}
    for name, expected in manifest.files.items():
        if name not in files:
            raise BundleError(f"{where}: file {name} is missing; refused")
        if _digest(files[name]) != expected:
            raise BundleError(f"{where}: file {name} was altered (sha256 differs from the manifest); refused")
    extra = sorted(set(files) - set(manifest.files))
    if extra:
        raise BundleError(f"{where}: file {extra[0]} is not in the manifest (added); refused")
    return manifest, files


@dataclass
class _Network:
    """One loaded network: its exported program on the device, and its output names in order."""

    program: Callable[[torch.Tensor], tuple[torch.Tensor, ...]]
    tasks: list[str]


def _load_program(data: bytes, device: torch.device, where: str) -> Callable[..., Any]:
    try:
        program = torch.export.load(io.BytesIO(data))
        if device.type != "cpu":
            from torch.export.passes import move_to_device_pass

            program = move_to_device_pass(program, device)
        return program.module()
    except Exception as exc:  # torch raises many types for a program it cannot read
        raise BundleError(f"{where}: cannot load its program ({type(exc).__name__}: {exc})") from None


class Bundle:
    """A loaded bundle (use :func:`load_bundle`): its manifest and its networks on ``device``."""

    def __init__(self, manifest: BundleManifest, files: dict[str, bytes], device: torch.device) -> None:
        self.manifest = manifest
        self.device = device
        self.networks: dict[str, _Network] = {}
        for entry in manifest.networks:
            where = f"{entry.files['program']} ({entry.label})"
            program = _load_program(files[entry.files["program"]], device, where)
            self.networks[entry.id] = _Network(program, list(entry.tasks))

    @property
    def tasks(self) -> list[str]:
        """The served tasks, in the order of the prediction columns."""
        return list(self.manifest.tasks)

    def inputs(self, data: Any) -> np.ndarray:
        """``data`` as the float32 batch the networks read (tabular: a DataFrame or a 2-D array; images: an
        ``(N, C, H, W)`` array or tensor); a :class:`~workers.bundle.inputs.BundleInputError` names a bad row
        and column."""
        spec = self.manifest.input
        return vector_batch(data, spec) if spec.kind == "vector" else image_batch(data, spec)

    def predict_raw(self, data: Any, batch_size: int | None = None) -> dict[str, np.ndarray]:
        """Task -> the serving network's raw outputs (the units its losses were measured in)."""
        batch = torch.from_numpy(self.inputs(data))
        size = batch_size or (VECTOR_BATCH if self.manifest.input.kind == "vector" else IMAGE_BATCH)
        wanted: dict[str, list[str]] = {}
        for task, network_id in self.manifest.serving.items():
            wanted.setdefault(network_id, []).append(task)
        parts: dict[str, list[np.ndarray]] = {task: [] for task in self.manifest.serving}
        with torch.no_grad():
            for start in range(0, len(batch), size):
                chunk = batch[start : start + size].to(self.device)
                for network_id, tasks in wanted.items():
                    network = self.networks[network_id]
                    outputs = dict(zip(network.tasks, network.program(chunk), strict=True))
                    for task in tasks:
                        parts[task].append(outputs[task].float().cpu().numpy())
        return {task: _joined(chunks) for task, chunks in parts.items()}

    def predict(self, data: Any, batch_size: int | None = None) -> pd.DataFrame | dict[str, np.ndarray]:
        """Every served task predicted by the network that serves it, in the user's units: a DataFrame with
        one column per task (tabular bundles; the index of ``data`` when it is a DataFrame), else a dict of
        arrays."""
        raw = self.predict_raw(data, batch_size)
        values = {task: user_units(raw[task], self.manifest.outputs[task]) for task in self.tasks}
        if self.manifest.input.kind != "vector":
            return values
        return predictions_frame(values, index=data.index if isinstance(data, pd.DataFrame) else None)


def _joined(chunks: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(chunks) if chunks else np.zeros((0, 1), dtype=np.float32)


def load_bundle(path: Path | str | IO[bytes], device: str = "auto") -> Bundle:
    """Open a bundle, check every file's sha256 (an altered, missing or added file is refused with a
    :class:`BundleError` naming it) and load its networks on ``device`` (``auto``: CUDA when available)."""
    where = str(path) if isinstance(path, str | Path) else "bundle"
    manifest, files = verified_files(Path(path) if isinstance(path, str) else path, where)
    return Bundle(manifest, files, choose_device(device))
