"""Build a bundle: the chosen networks of one budget, from their checkpoints, as one zip (``docs/bundle.md``).

Each network is rebuilt from its checkpoint (:func:`workers.checkpoint.build_network`), exported with
``torch.export`` (a program whose batch size is free: ``torch.export.load`` runs it without this package's
model code) and checked against the eager network on a probe batch; its state dict and card are kept beside
it. The manifest names which network serves which task, the inputs' preprocessing and the outputs'
transforms (all networks of a bundle must share them: they come from one dataset), the losses and metrics
each network's weights measured on validation and test, and the sha256 of every file.
"""

from __future__ import annotations

import hashlib
import io
import json
import platform
import threading
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import IO, Any

import torch
from torch import nn

from workers.bundle.manifest import MANIFEST, MANIFEST_HASH, BundleManifest, NetworkEntry
from workers.checkpoint import NetworkCard, build_network, read_checkpoint
from workers.models import MultiTaskNetwork

__all__ = ["BundleBuildError", "NetworkSource", "build_bundle", "export_program"]

PROBE_BATCH = 3
"""Samples of the probe batch that checks each exported program against its eager network."""

_EXPORT_LOCK = threading.Lock()
"""``torch.export`` traces through process-wide state (dynamo): one export at a time per process (two bundle
downloads of the API at once would otherwise trace concurrently)."""


class BundleBuildError(ValueError):
    """The networks given cannot make one bundle (the message says which and why)."""


@dataclass(frozen=True)
class NetworkSource:
    """One chosen network: its checkpoint file's bytes and what it serves in the grouping."""

    checkpoint: bytes
    serves: list[str]
    label: str | None = None
    cost: float | None = None
    training_key: str | None = None
    where: str = field(default="checkpoint", compare=False)


class _Serving(nn.Module):
    """A network's task outputs as a tuple in head order (what the exported program returns)."""

    def __init__(self, network: MultiTaskNetwork) -> None:
        super().__init__()
        self.network = network
        self.names = list(network.task_names)

    def forward(self, inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        _, outputs = self.network(inputs)
        return tuple(outputs[name] for name in self.names)


def export_program(network: MultiTaskNetwork, input_shape: list[int], where: str = "network") -> bytes:
    """``network`` as a saved ``torch.export`` program with a free batch size, checked on a probe batch."""
    serving = _Serving(network).eval()
    example = torch.zeros(2, *input_shape)
    batch = torch.export.Dim("batch", min=1)
    probe = torch.randn(PROBE_BATCH, *input_shape, generator=torch.Generator().manual_seed(0))
    with _EXPORT_LOCK, torch.no_grad():
        try:
            program = torch.export.export(serving, (example,), dynamic_shapes=({0: batch},))
            buffer = io.BytesIO()
            torch.export.save(program, buffer)
            loaded = torch.export.load(io.BytesIO(buffer.getvalue())).module()
            outputs = loaded(probe)
        except Exception as exc:  # torch.export raises many types; the caller gets one, naming the network
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise BundleBuildError(f"{where}: torch.export failed ({type(exc).__name__}: {first})") from exc
        for name, got, want in zip(serving.names, outputs, serving(probe), strict=True):
            if not torch.allclose(got, want, rtol=1e-5, atol=1e-6):
                raise BundleBuildError(f"{where}: the exported program's {name!r} differs from the network")
    return buffer.getvalue()


def _versions() -> dict[str, str | None]:
    def version(package: str) -> str | None:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return None

    found = {p: version(p) for p in ("taskgrouping", "torch", "numpy", "pandas")}
    return {**found, "python": platform.python_version()}


def _check_grouping(cards: list[NetworkCard], sources: list[NetworkSource]) -> None:
    """Every served task is a head of its network and served once; every network shares the dataset."""
    first = cards[0]
    served: dict[str, str] = {}
    for card, source in zip(cards, sources, strict=True):
        if card.fingerprint != first.fingerprint or card.preprocessing != first.preprocessing:
            raise BundleBuildError(
                f"{source.where}: trained on another dataset (fingerprint {card.fingerprint}) than "
                f"{sources[0].where} ({first.fingerprint}); a bundle's networks share one dataset"
            )
        heads = [t.name for t in card.tasks]
        if not source.serves or not set(source.serves) <= set(heads):
            raise BundleBuildError(f"{source.where}: serves {source.serves}, but its heads are {heads}")
        for task in source.serves:
            if task in served:
                raise BundleBuildError(f"task {task!r} is served by both {served[task]} and {source.where}")
            served[task] = source.where


def _entry(index: int, card: NetworkCard, source: NetworkSource, network: MultiTaskNetwork) -> NetworkEntry:
    result, spec = card.result, card.result.spec
    folder = f"networks/n{index}"
    return NetworkEntry(
        id=f"n{index}",
        label=source.label or ",".join(spec.tasks) + (f"@{spec.capacity:g}" if spec.capacity != 1 else ""),
        tasks=[t.name for t in card.tasks],
        serves=list(source.serves),
        capacity=spec.capacity,
        cost=source.cost,
        architecture=spec.settings.model.architecture,
        multiplier=card.multiplier,
        parameters=network.parameter_count(),
        training_key=source.training_key,
        fidelity=spec.fidelity,
        seed=spec.seed,
        best_epoch=result.best_epoch,
        selection=dict(result.selection),
        scoring=dict(result.scoring),
        metrics={k: dict(v) for k, v in result.metrics.items()},
        files={
            "program": f"{folder}/program.pt2",
            "state_dict": f"{folder}/state_dict.pt",
            "card": f"{folder}/card.json",
        },
    )


def _network_files(
    card: NetworkCard, state: dict[str, torch.Tensor], network: MultiTaskNetwork, entry: NetworkEntry
) -> dict[str, bytes]:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return {
        entry.files["program"]: export_program(network, card.input_shape, where=entry.label),
        entry.files["state_dict"]: buffer.getvalue(),
        entry.files["card"]: card.model_dump_json(indent=1).encode(),
    }


def build_bundle(
    sources: list[NetworkSource],
    output: Path | IO[bytes],
    *,
    job_id: str | None = None,
    budget: float | None = None,
    job_spec: dict[str, Any] | None = None,
    grouping: dict[str, Any] | None = None,
) -> BundleManifest:
    """Write the bundle of ``sources`` (the chosen networks of one grouping) to ``output`` (a path or a binary
    file) and return its manifest. :class:`BundleBuildError` when they do not make one grouping (a task served
    twice or by a network without its head, networks of different datasets); a damaged checkpoint is a
    :class:`~workers.checkpoint.CheckpointError` naming it."""
    if not sources:
        raise BundleBuildError("a bundle needs at least one network")
    loaded = [read_checkpoint(s.checkpoint, where=s.where) for s in sources]
    cards = [card for card, _ in loaded]
    _check_grouping(cards, sources)
    files: dict[str, bytes] = {}
    entries = []
    for index, ((card, state), source) in enumerate(zip(loaded, sources, strict=True)):
        network = build_network(card, state)
        entry = _entry(index, card, source, network)
        files.update(_network_files(card, state, network, entry))
        entries.append(entry)
    first = cards[0]
    serving = {task: entry.id for entry in entries for task in entry.serves}
    tasks = [t for t in (job_spec or {}).get("tasks", []) if t in serving]
    tasks += [t for t in serving if t not in tasks]
    manifest = BundleManifest(
        created_at=datetime.now(UTC),
        job_id=job_id,
        budget=budget,
        dataset=first.result.spec.dataset.model_dump(mode="json"),
        fingerprint=first.fingerprint,
        tasks=tasks,
        serving={t: serving[t] for t in tasks},
        input=first.preprocessing.inputs,
        outputs={t: first.preprocessing.outputs[t] for t in tasks},
        networks=entries,
        job_spec=job_spec,
        grouping=grouping,
        versions=_versions(),
        files={name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
    )
    _write_zip(output, manifest, files)
    return manifest


def _write_zip(output: Path | IO[bytes], manifest: BundleManifest, files: dict[str, bytes]) -> None:
    text = json.dumps(manifest.model_dump(mode="json"), indent=1).encode()
    with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(MANIFEST, text)
        archive.writestr(MANIFEST_HASH, hashlib.sha256(text).hexdigest() + "\n")
        for name, data in files.items():
            archive.writestr(name, data)
