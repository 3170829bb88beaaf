"""What crosses the boundary into a worker and back: the spec of one training and its result.

These pydantic models are serialised into Ray trials and into the results store, so they hold only
plain data (no tensors, no paths to live objects).
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


def epochs_for(fidelity: float, epochs: int) -> int:
    """Epochs a training at ``fidelity`` runs at most: ``ceil(fidelity * epochs)``, at least 1, robust to
    float error (0.3 * 10 is 3, not 4; 0.28 * 25 is 7). The one rule the plan and the trainer both use."""
    return max(1, math.ceil(round(fidelity * epochs, 9)))


class DatasetRef(BaseModel):
    """A dataset by registry name plus its parameters (validated by the dataset's own ``Params``)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    params: dict[str, Any] = Field(default_factory=dict)


class ModelSettings(BaseModel):
    """The architecture of a candidate network and its own options (``docs/architectures.md``).

    ``architecture`` names an entry of ``workers.models.ARCHITECTURES``: ``hard`` (hard parameter sharing,
    the paper's and the default), ``cross-stitch``, ``mtan`` or ``nddr`` (images only). ``options`` are the
    architecture's own (e.g. ``{"mixing": 0.1}`` for cross-stitch); the trunk widths are the dataset's.
    Both, and whether the architecture applies to the dataset's input kind, are checked when a job is
    submitted (``search.submit``) and when the network is built (``workers.models.make_family``).
    """

    model_config = ConfigDict(extra="forbid")

    architecture: str = Field("hard", description="hard, cross-stitch, mtan, nddr")
    options: dict[str, float | bool | str] = Field(
        default_factory=dict, description="options of the architecture (docs/architectures.md)"
    )

    def is_default(self) -> bool:
        """Hard sharing with no options: what every training was before architectures could be chosen."""
        return self.architecture == "hard" and not self.options


class TrainingSettings(BaseModel):
    """How a candidate is trained; part of the training key, so equal settings mean reusable trainings.

    ``epochs`` is the full schedule (fidelity 1.0); a training at fidelity f runs at most
    :func:`epochs_for` ``(f, epochs)`` epochs, stopping earlier when the validation loss has not improved
    for ``patience`` epochs. The weighting method and its options, and the architecture (``model``) and its
    options, are names of their registries (``workers.weighting``, ``workers.models``); a job's submission
    checks them before anything trains.

    ``model`` sits here, with the weighting, because it is how every candidate of a job is trained and the
    job carries one ``settings`` for all its trainings; it is part of the training key except when it is
    the default (``search.keys``), so trainings stored before architectures keep their keys.
    """

    model_config = ConfigDict(extra="forbid")

    epochs: int = Field(20, ge=1, le=10_000)
    batch_size: int = Field(64, ge=1, le=65_536)
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    learning_rate: float = Field(1e-3, gt=0, le=10)
    weight_decay: float = Field(0.0, ge=0, le=1)
    weighting: str = Field("equal", description="loss weighting method: equal, uncertainty, gradnorm, ...")
    weighting_options: dict[str, float | bool | str] = Field(
        default_factory=dict, description="options of the weighting method (docs/weighting.md)"
    )
    patience: int = Field(5, ge=1, le=10_000)
    model: ModelSettings = Field(
        default_factory=ModelSettings, description="network architecture (docs/architectures.md)"
    )


class LookaheadSettings(BaseModel):
    """Opt-in lookahead inter-task affinity of TAG (Fifty et al., NeurIPS 2021), measured during a training.

    Every ``every`` optimiser steps (steps 0, k, 2k, ... counted across epochs) the trainer takes, for each
    task, a lookahead step of its own optimiser on the shared parameters with that task's loss alone, measures
    every task's loss on the same batch before and after, and restores the training exactly; see
    :mod:`workers.lookahead` and ``docs/tag.md``. Part of the training key (a lookahead training is a
    different training record), although the trained weights are the same as without it.
    """

    model_config = ConfigDict(extra="forbid")

    every: int = Field(
        10, ge=1, le=1_000_000, description="measure the affinity every this many training steps (k)"
    )


class TrainingSpec(BaseModel):
    """One training: a candidate (tasks + capacity) trained at a fidelity and seed on a dataset.

    ``lookahead`` (default None: off) asks for the TAG affinity matrix of the candidate's tasks.

    ``keep_weights`` (default False) asks the Ray trial to keep the best epoch's weights as a Tune checkpoint
    (``search.trainable``), which the driver records in the results store (``checkpoints`` table); the
    trainings a job finalizes keep theirs, the others (the search's many candidates) do not. It is NOT part
    of the training key (``search.keys``): a training with kept weights is the same training, and one that
    succeeded without weights is trained again when its weights are needed (``Store.get_checkpoints`` says
    which keys have them).
    """

    model_config = ConfigDict(extra="forbid")

    dataset: DatasetRef
    tasks: list[str]
    capacity: float = 1.0
    fidelity: float = 1.0
    seed: int = 0
    settings: TrainingSettings = Field(default_factory=TrainingSettings)
    threads: int | None = Field(None, ge=1, description="torch threads; default: the CPUs allotted")
    device: str = Field("auto", description="'auto' picks cuda when available, else cpu")
    lookahead: LookaheadSettings | None = Field(
        None, description="measure TAG's lookahead inter-task affinity during this training (None: off)"
    )
    keep_weights: bool = Field(
        False, description="keep the best weights as a checkpoint (not part of the training key)"
    )

    @field_validator("tasks")
    @classmethod
    def _tasks(cls, tasks: list[str]) -> list[str]:
        if not tasks:
            raise ValueError("tasks: a candidate needs at least one task")
        if len(set(tasks)) != len(tasks):
            raise ValueError(f"tasks: duplicate task names in {tasks}")
        return tasks

    @field_validator("capacity")
    @classmethod
    def _capacity(cls, capacity: float) -> float:
        if not capacity > 0:
            raise ValueError(f"capacity: must be > 0 (1.0 = full size, 0.5 = half), got {capacity}")
        return capacity

    @field_validator("fidelity")
    @classmethod
    def _fidelity(cls, fidelity: float) -> float:
        if not 0 < fidelity <= 1:
            raise ValueError(f"fidelity: must be in (0, 1] (fraction of the full schedule), got {fidelity}")
        return fidelity

    @property
    def max_epochs(self) -> int:
        """Epochs this training runs at most (:func:`epochs_for` of its fidelity and schedule)."""
        return epochs_for(self.fidelity, self.settings.epochs)

    @model_validator(mode="after")
    def _lookahead_needs_tasks(self) -> TrainingSpec:
        if self.lookahead is not None and len(self.tasks) < 2:
            raise ValueError(
                f"lookahead: an inter-task affinity needs at least 2 tasks, got {self.tasks}; "
                "set lookahead to null or add tasks"
            )
        return self


class EpochRecord(BaseModel):
    """One epoch of the training curve."""

    epoch: int
    train_loss: float
    validation_loss: float
    validation_losses: dict[str, float]
    weights: dict[str, float] = Field(default_factory=dict)
    seconds: float


class LookaheadResult(BaseModel):
    """The mean lookahead affinity of one training (TAG, Fifty et al. 2021, eq. 2, averaged).

    ``affinity[i][j]`` is the mean over lookahead steps of ``Z_{i->j} = 1 - L_j(after a step on i) /
    L_j(before)``: positive when a step on task i's loss lowers task j's loss on the same batch.
    ``samples[i][j]`` counts the lookahead steps that measured the pair (all of ``steps`` unless a batch had
    no label for i or j, or L_j(before) was 0 or a value non-finite); a pair never measured is absent from
    ``affinity`` and ``samples``.
    ``seconds``: wall time spent in lookahead (included in the training's ``wall_seconds``).
    """

    every: int
    steps: int
    seconds: float
    affinity: dict[str, dict[str, float]]
    samples: dict[str, dict[str, int]]


class TrainingResult(BaseModel):
    """The outcome of one training: per-task losses on validation (selection) and test (scoring)."""

    spec: TrainingSpec
    selection: dict[str, float]
    scoring: dict[str, float]
    metrics: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="{'selection': {task: metric}, 'scoring': {task: metric}}"
    )
    curve: list[EpochRecord]
    best_epoch: int
    epochs_run: int
    wall_seconds: float
    flops_per_sample: float
    parameters: int
    device: str
    lookahead: LookaheadResult | None = Field(
        None, description="TAG lookahead affinity, when the spec asked for it (spec.lookahead)"
    )
