"""What a trained network needs around it to serve a user: how raw inputs become its input tensor, and how its
raw outputs become predictions in the user's units.

A dataset describes this with :meth:`workers.datasets.Dataset.preprocessing`, computed from its training split
(nothing from validation or test). A network's checkpoint keeps the description (``workers.checkpoint``) and a
bundle's manifest repeats it (``docs/bundle.md``), so predictions need neither the dataset nor this package's
dataset code.

* Vector inputs (``tabular``, ``planted``): named ``columns``; text columns a featuriser reads (``featurize``,
  e.g. SMILES) become their features first, a value it cannot read being an error naming the row; a missing
  cell is filled with ``fill`` (the training mean, ``missing_inputs: mean``) or refused (``missing_inputs:
  error``); then
  ``(value - center) / scale`` per column, in float64, cast to float32, exactly as the dataset did.
* Image inputs (``taskonomy-mini``): a batch of ``shape`` (channels, height, width); integer pixels (uint8)
  are divided by ``integer_scale``; then ``(value - center) / scale`` per channel.
* Outputs, by task kind: regression and dense maps ``raw * scale + center`` (the target standardisation
  undone); binary the probability of 1 (sigmoid of the logit); multiclass the class value of the largest logit
  (``class_values``); segmentation the class index of every pixel.

Plain data (pydantic, no torch): it crosses into the store's checkpoints and into bundles as JSON.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from workers.datasets.base import TaskInfo, TaskKind
from workers.datasets.featurize import FeaturizeSpec

__all__ = [
    "ClassValue",
    "ImageInputs",
    "InputSpec",
    "Preprocessing",
    "TaskOutput",
    "VectorInputs",
    "identity_outputs",
]

ClassValue = str | int | float | bool


class VectorInputs(BaseModel):
    """Named input columns and their standardisation fitted on the training split."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["vector"] = "vector"
    columns: list[str] = Field(description="input columns, in the order the network reads them")
    center: list[float] = Field(description="subtracted from each column (the training mean)")
    scale: list[float] = Field(description="then divided by (the training standard deviation; 1 if constant)")
    missing_inputs: Literal["mean", "error"] = Field(
        "error", description="a missing cell: filled with `fill` (mean) or refused (error)"
    )
    fill: list[float] | None = Field(None, description="the value of a missing cell (the training mean)")
    featurize: dict[str, FeaturizeSpec] = Field(
        default_factory=dict,
        description="raw text columns the user gives and how they become some of `columns` (e.g. SMILES -> "
        "Morgan fingerprint bits named `smiles:morgan:i`), applied before the standardisation",
    )

    def user_columns(self) -> list[str]:
        """The columns a user gives: ``columns`` with each featurised column's features as its raw column."""
        out: list[str] = []
        for column in self.columns:
            name = self.source(column)
            if name not in out:
                out.append(name)
        return out

    def source(self, column: str) -> str:
        """The raw column an input column comes from (itself unless a featuriser made it)."""
        raw, _, rest = column.partition(":")
        if raw in self.featurize and rest.startswith(f"{self.featurize[raw].method}:"):
            return raw
        return column

    @model_validator(mode="after")
    def _lengths(self) -> VectorInputs:
        n = len(self.columns)
        if len(self.center) != n or len(self.scale) != n or (self.fill is not None and len(self.fill) != n):
            raise ValueError(f"inputs: center, scale and fill need one value per column ({n} columns)")
        if self.missing_inputs == "mean" and self.fill is None:
            raise ValueError("inputs: missing_inputs 'mean' needs the fill values")
        return self


class ImageInputs(BaseModel):
    """The input shape of an image network and its per-channel normalisation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["image"] = "image"
    shape: list[int] = Field(description="one image: channels, height, width")
    integer_scale: float = Field(255.0, gt=0, description="integer pixels (uint8) are divided by this")
    center: list[float] = Field(description="subtracted per channel")
    scale: list[float] = Field(description="then divided by, per channel")


InputSpec = Annotated[VectorInputs | ImageInputs, Field(discriminator="kind")]


class TaskOutput(BaseModel):
    """One task's head: what its raw output is and how it becomes a prediction in the user's units."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: TaskKind
    channels: int = 1
    classes: int = 0
    loss: str
    metric: str
    center: float = Field(0.0, description="regression/dense: prediction = raw * scale + center")
    scale: float = Field(1.0, description="regression/dense: the target's training standard deviation")
    class_values: list[ClassValue] | None = Field(
        None, description="multiclass/segmentation: the value (or name) of each class index"
    )

    def info(self) -> TaskInfo:
        """The task as the trainer and the loss registry see it."""
        return TaskInfo(
            name=self.name,
            kind=self.kind,
            channels=self.channels,
            classes=self.classes,
            loss=self.loss,
            metric=self.metric,
        )


class Preprocessing(BaseModel):
    """A dataset's inputs and every task's output transform (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    inputs: InputSpec
    outputs: dict[str, TaskOutput] = Field(description="task name -> its output transform")


def identity_outputs(tasks: list[TaskInfo]) -> dict[str, TaskOutput]:
    """Outputs in the units the network was trained in (no target standardisation to undo)."""
    return {
        t.name: TaskOutput(
            name=t.name, kind=t.kind, channels=t.channels, classes=t.classes, loss=t.loss, metric=t.metric
        )
        for t in tasks
    }
