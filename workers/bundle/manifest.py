"""The bundle's format: its file layout and ``manifest.json`` (plain data; ``docs/bundle.md`` documents it).

A bundle is one zip::

    manifest.json                 the manifest below (BundleManifest)
    manifest.sha256               sha256 of manifest.json (hex)
    networks/<id>/program.pt2     the network as a torch.export program (CPU, any batch size)
    networks/<id>/state_dict.pt   its weights (torch.save of the state dict)
    networks/<id>/card.json       its NetworkCard: rebuild it with workers.checkpoint.build_network

``manifest.files`` holds the sha256 of every file but the two manifest files; ``load_bundle`` refuses a bundle
with a missing, added or altered file, naming it. (The hashes detect damage and edits, not a forger who
rewrites the manifest too: sign the zip where that matters.)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from workers.datasets.preprocessing import InputSpec, TaskOutput

__all__ = [
    "BUNDLE_FORMAT",
    "BUNDLE_VERSION",
    "MANIFEST",
    "MANIFEST_HASH",
    "BundleManifest",
    "NetworkEntry",
]

BUNDLE_FORMAT = "taskgrouping-bundle"
BUNDLE_VERSION = 1
MANIFEST = "manifest.json"
MANIFEST_HASH = "manifest.sha256"


class NetworkEntry(BaseModel):
    """One network of a bundle: what it trains and serves, its files, and the losses its weights measured."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="its folder under networks/")
    label: str = Field(description="readable name, as in the job's grouping")
    tasks: list[str] = Field(description="its heads, in the order of its program's outputs")
    serves: list[str] = Field(description="tasks this network's predictions are used for")
    capacity: float
    cost: float | None = Field(None, description="inference cost in SNT (from the grouping)")
    architecture: str
    multiplier: float = Field(description="the width multiplier of its capacity")
    parameters: int
    training_key: str | None = Field(None, description="the results store's training key of its weights")
    fidelity: float
    seed: int
    best_epoch: int
    selection: dict[str, float] = Field(description="per-task validation loss of these weights")
    scoring: dict[str, float] = Field(description="per-task test loss of these weights")
    metrics: dict[str, dict[str, float]] = Field(description="{'selection': {task: m}, 'scoring': {task: m}}")
    files: dict[str, str] = Field(description="'program', 'state_dict', 'card' -> path in the zip")


class BundleManifest(BaseModel):
    """``manifest.json``: which network serves which task, how inputs and outputs are transformed, and the
    sha256 of every file (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["taskgrouping-bundle"] = BUNDLE_FORMAT
    format_version: int = BUNDLE_VERSION
    created_at: datetime
    job_id: str | None = None
    budget: float | None = None
    dataset: dict[str, Any] = Field(description="the dataset reference (name, params) of the trainings")
    fingerprint: str = Field(description="the dataset's fingerprint the networks were trained on")
    tasks: list[str] = Field(description="the served tasks: one prediction column each")
    serving: dict[str, str] = Field(description="task -> id of the network that serves it")
    input: InputSpec = Field(description="the inputs the networks read, fitted on the training split")
    outputs: dict[str, TaskOutput] = Field(description="served task -> raw output to the user's units")
    networks: list[NetworkEntry]
    job_spec: dict[str, Any] | None = Field(None, description="the job's spec, when exported from a job")
    grouping: dict[str, Any] | None = Field(None, description="the job's grouping record at this budget")
    versions: dict[str, str | None] = Field(description="taskgrouping, torch, numpy, pandas, python")
    files: dict[str, str] = Field(description="path in the zip -> sha256 (hex), every file but the manifest")

    def network(self, network_id: str) -> NetworkEntry:
        """The entry ``network_id`` (KeyError naming the ids there are)."""
        for entry in self.networks:
            if entry.id == network_id:
                return entry
        raise KeyError(f"no network {network_id!r}; networks: {[n.id for n in self.networks]}")
