"""The dataset interface every built-in dataset implements, and the task description it declares.

A dataset gives shared inputs and one target per task, split into ``train``, ``validation`` and
``test``. The validation split yields the ``selection`` losses and the test split the ``scoring``
losses (Standley et al. 2020 select networks on validation losses and report test losses).

Missing labels: a float target that is NaN, or an integer (class) target that is ``-1``, is missing
and is masked out of that task's loss and metric.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import torch
from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from workers.datasets.preprocessing import Preprocessing


class TaskKind(StrEnum):
    """What a head predicts; the trainer chooses the loss from it (a registry in ``workers.losses``)."""

    REGRESSION = "regression"  # vector of floats per sample, loss MSE (NaN = missing)
    BINARY = "binary"  # one logit per sample, loss BCE-with-logits (NaN = missing)
    MULTICLASS = "multiclass"  # `classes` logits per sample, loss cross-entropy (-1 = missing)
    DENSE = "dense"  # per-pixel map of `channels` floats, loss L1 (as the paper's dense tasks)
    SEGMENTATION = "segmentation"  # per-pixel class map, `classes` logits per pixel, cross-entropy


class TaskInfo(BaseModel):
    """One task of a dataset: its name, kind and output shape, and the loss and metric it reports."""

    model_config = ConfigDict(frozen=True)

    name: str
    kind: TaskKind
    channels: int = 1  # output size per sample (REGRESSION) or per pixel (DENSE)
    classes: int = 0  # number of classes (MULTICLASS, SEGMENTATION)
    loss: str  # human-readable loss name, e.g. "l1", "cross-entropy", "mse"
    metric: str  # human-readable metric name, e.g. "accuracy", "mae", "r2"
    description: str = ""


SplitName = Literal["train", "validation", "test"]
SPLITS: tuple[SplitName, ...] = ("train", "validation", "test")


@dataclass
class Split:
    """One split: ``inputs`` (N, ...) float32 and ``targets[task]`` (N, ...) per task."""

    inputs: torch.Tensor
    targets: dict[str, torch.Tensor]

    def __len__(self) -> int:
        return int(self.inputs.shape[0])


class Dataset(ABC):
    """A named dataset with declared tasks and three splits.

    Subclasses set ``name`` and ``Params`` (a pydantic model of their parameters, validated from the
    job spec) and register themselves in ``workers.datasets.DATASETS``.
    """

    name: ClassVar[str]
    Params: ClassVar[type[BaseModel]]
    input_kind: ClassVar[Literal["image", "vector"]]

    def __init__(self, params: BaseModel) -> None:
        self.params = params

    @abstractmethod
    def tasks(self) -> list[TaskInfo]:
        """Every task the dataset offers (a job picks a subset of them by name)."""

    @abstractmethod
    def load(self) -> dict[SplitName, Split]:
        """The three splits, generated or read (and cached) on first use."""

    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input sample, e.g. (3, 32, 32) or (21,). Default: from the training split."""
        return tuple(self.load()["train"].inputs.shape[1:])

    def fingerprint(self) -> str:
        """A stable hash of what the data is, cheap to compute (no generation): used in training keys.

        Default: the dataset name, its parameters and ``version``. Datasets read from files add the
        file's content hash.
        """
        payload = {"name": self.name, "version": self.version, "params": self.params.model_dump(mode="json")}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]

    version: ClassVar[str] = "1"

    def model_options(self) -> dict[str, Any]:
        """Full-size model widths this dataset suggests (see ``workers.models``); {} = the family defaults."""
        return {}

    def preprocessing(self) -> Preprocessing:
        """How raw inputs become this dataset's input tensors and raw outputs predictions in the user's units
        (:mod:`workers.datasets.preprocessing`), fitted on the training split. Default: the inputs as they are
        (vector columns named ``x0, x1, ...``; images of :meth:`input_shape` with uint8 pixels / 255) and the
        outputs in the units they were trained in. Datasets that standardise (``tabular``) override it."""
        from workers.datasets.preprocessing import ImageInputs, Preprocessing, VectorInputs, identity_outputs

        shape = [int(s) for s in self.input_shape()]
        inputs: ImageInputs | VectorInputs
        if self.input_kind == "image":
            inputs = ImageInputs(shape=shape, center=[0.0] * shape[0], scale=[1.0] * shape[0])
        else:
            inputs = VectorInputs(
                columns=[f"x{i}" for i in range(shape[0])], center=[0.0] * shape[0], scale=[1.0] * shape[0]
            )
        return Preprocessing(inputs=inputs, outputs=identity_outputs(self.tasks()))

    def task(self, name: str) -> TaskInfo:
        for info in self.tasks():
            if info.name == name:
                return info
        known = ", ".join(t.name for t in self.tasks())
        raise ValueError(f"tasks: unknown task {name!r} for dataset {self.name!r}; known tasks: {known}")
