"""``tabular``: the user's own multi-task data from a CSV, Parquet or ARFF file.

One row per sample; some columns are inputs (numeric), the others the tasks, each with a kind:

* ``regression``: a numeric column, standardised with the training split's mean and standard deviation
  (so the MSE of every task is in units of its training variance: 1.0 = as good as predicting the
  mean, and the plain sum of task losses that Standley et al. (2020) train and compare on does not
  favour the task with the largest scale; set ``standardize_targets: false`` to keep raw units);
* ``binary``: values 0/1 (or true/false), BCE on one logit;
* ``multiclass``: any values; the classes are the sorted distinct values seen in the training split
  (a class that appears only in validation or test is treated as a missing label there, with a
  warning).

Missing labels (empty cells) are masked out of that task's loss and metric (NaN for float targets, -1
for class targets). Missing *inputs* are imputed with the training-split mean of the column (the
default, ``missing_inputs: mean``) or rejected (``missing_inputs: error``). Inputs are standardised
with training-split statistics (a constant column becomes 0).

Text columns can become numeric inputs through a featuriser named per column in ``featurize`` (e.g. Morgan
fingerprints of SMILES with RDKit, :mod:`workers.datasets.featurize`).

Splits come from ``split_column`` (values ``train``/``validation``/``test``) or are drawn at random by
``seed`` with ``fractions`` (default 0.7/0.15/0.15). The fingerprint contains the sha256 of the file's
bytes (not its path), so trainings are reused exactly when the data is the same.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from workers.datasets import register
from workers.datasets.base import SPLITS, Dataset, Split, SplitName, TaskInfo, TaskKind
from workers.datasets.featurize import FeaturizeSpec, featurize
from workers.datasets.preprocessing import Preprocessing, VectorInputs, identity_outputs

logger = logging.getLogger(__name__)

__all__ = ["TabularDataset", "TabularParams"]

TabularKind = Literal["regression", "binary", "multiclass"]

_LOSS_METRIC: dict[str, tuple[str, str]] = {
    "regression": ("mse", "r2"),
    "binary": ("bce", "accuracy"),
    "multiclass": ("cross-entropy", "accuracy"),
}


class TabularParams(BaseModel):
    """Parameters of a tabular dataset (everything but the path enters the fingerprint)."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="CSV (.csv, .csv.gz, .txt), Parquet (.parquet, .pq) or ARFF (.arff) file")
    tasks: dict[str, TabularKind] = Field(description="task column -> regression | binary | multiclass")
    inputs: list[str] | None = Field(None, description="input columns; default: every non-task column")
    split_column: str | None = Field(None, description="column with train/validation/test per row")
    fractions: tuple[float, float, float] = Field((0.7, 0.15, 0.15), description="random split fractions")
    seed: int = Field(0, description="seed of the random split")
    missing_inputs: Literal["mean", "error"] = Field("mean", description="impute with the training mean")
    standardize_targets: bool = Field(
        True, description="standardise regression targets on the training split"
    )
    featurize: dict[str, FeaturizeSpec] = Field(
        default_factory=dict,
        description="text column -> featuriser turning it into numeric inputs, e.g. "
        "{'smiles': {'method': 'morgan', 'options': {'bits': 2048}}}",
    )

    @field_validator("path")
    @classmethod
    def _path(cls, path: str) -> str:
        file = Path(path).expanduser()
        if not file.is_file():
            raise ValueError(f"path: file {path!r} not found (give the path of a CSV or Parquet file)")
        return str(file)

    @field_validator("tasks")
    @classmethod
    def _tasks(cls, tasks: dict[str, str]) -> dict[str, str]:
        if not tasks:
            raise ValueError("tasks: name at least one task column with its kind, e.g. {'y': 'regression'}")
        return tasks

    @field_validator("fractions")
    @classmethod
    def _fractions(cls, fractions: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(f <= 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
            raise ValueError(
                f"fractions: train/validation/test fractions must be > 0 and sum to 1, got {fractions}"
            )
        return fractions

    @model_validator(mode="after")
    def _overlap(self) -> TabularParams:
        if self.inputs is not None:
            if not self.inputs:
                raise ValueError(
                    "inputs: give at least one input column (or omit it to use every other column)"
                )
            clash = sorted(set(self.inputs) & set(self.tasks))
            if clash:
                raise ValueError(f"inputs: columns {clash} are also tasks; a column is an input or a task")
        if self.split_column is not None and self.split_column in self.tasks:
            raise ValueError(f"split_column: {self.split_column!r} is also a task column")
        clash = sorted(set(self.featurize) & ({*self.tasks} | {self.split_column}))
        if clash:
            raise ValueError(f"featurize: columns {clash} are tasks or the split column, not inputs")
        for column, spec in self.featurize.items():
            try:
                spec.featurizer()
            except ValueError as exc:
                raise ValueError(f"featurize.{column}: {exc}") from None
        return self


@register
class TabularDataset(Dataset):
    """A CSV/Parquet file with input columns and task columns (see the module docstring)."""

    name = "tabular"
    Params = TabularParams
    input_kind = "vector"
    version = "1"

    def __init__(self, params: BaseModel) -> None:
        super().__init__(params)
        self.p: TabularParams = params  # type: ignore[assignment]
        self._splits: dict[SplitName, Split] | None = None
        self._tasks: list[TaskInfo] | None = None
        self._digest: str | None = None
        self.input_columns: list[str] = []
        self.classes: dict[str, list[object]] = {}
        self.target_scale: dict[str, tuple[float, float]] = {}  # regression task -> (mean, std) of train
        self.input_mean: list[float] = []  # per input column, of the training split (the imputed value)
        self.input_std: list[float] = []  # per input column, of the training split (1 if constant)
        self._rows: dict[SplitName, np.ndarray] | None = None
        self._kept = np.zeros(0, dtype=np.int64)

    # -------------------------------------------------------------------------------- interface
    def tasks(self) -> list[TaskInfo]:
        if self._tasks is None:
            self.load()  # multiclass tasks need their classes from the training split
        assert self._tasks is not None
        return self._tasks

    def fingerprint(self) -> str:
        params = self.p.model_dump(mode="json", exclude={"path"})
        if not params["featurize"]:  # a file without featurisers keeps the fingerprint it had before them
            del params["featurize"]
        payload = {"name": self.name, "version": self.version, "params": params, "sha256": self.file_sha256()}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]

    def file_sha256(self) -> str:
        """sha256 of the file's bytes (read in chunks)."""
        if self._digest is None:
            digest = hashlib.sha256()
            with open(self.p.path, "rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
            self._digest = digest.hexdigest()
        return self._digest

    def input_shape(self) -> tuple[int, ...]:
        return (len(self.load()["train"].inputs[0]),)

    def model_options(self) -> dict[str, int]:
        return {"width": 128, "depth": 2, "head_width": 32}

    def load(self) -> dict[SplitName, Split]:
        if self._splits is None:
            frame = self._read()
            self._kept = frame.index.to_numpy()  # the file's rows kept (a featuriser may drop some)
            self._splits = self._build(frame.reset_index(drop=True))
        return self._splits

    def preprocessing(self) -> Preprocessing:
        """The input columns with their training means (the imputed value) and standard deviations, the
        ``missing_inputs`` rule, each regression target's standardisation (undone on prediction) and each
        multiclass task's class values."""
        self.load()
        inputs = VectorInputs(
            columns=list(self.input_columns),
            center=list(self.input_mean),
            scale=list(self.input_std),
            missing_inputs=self.p.missing_inputs,
            fill=list(self.input_mean) if self.p.missing_inputs == "mean" else None,
            featurize=dict(self.p.featurize),
        )
        outputs = identity_outputs(self.tasks())
        for name, (mean, std) in self.target_scale.items():
            outputs[name] = outputs[name].model_copy(update={"center": mean, "scale": std})
        for name, classes in self.classes.items():
            values = [c.item() if isinstance(c, np.generic) else c for c in classes]
            outputs[name] = outputs[name].model_copy(update={"class_values": values})
        return Preprocessing(inputs=inputs, outputs=outputs)

    def split_frame(self, split: SplitName) -> pd.DataFrame:
        """The file's rows of one split, as read (raw units, inputs and task columns, text a featuriser reads
        still text): e.g. the held-out test rows to check a bundle's predictions against."""
        self.load()
        assert self._rows is not None
        raw = self._read_raw()
        return raw.loc[self._kept[self._rows[split]]]

    # -------------------------------------------------------------------------------- reading
    def _read(self) -> pd.DataFrame:
        """The file with its featurised columns replaced by their features."""
        frame = self._read_raw()
        return featurize(frame, self.p.featurize, self.p.path) if self.p.featurize else frame

    def _read_raw(self) -> pd.DataFrame:
        path = Path(self.p.path)
        suffixes = "".join(path.suffixes).lower()
        try:
            if suffixes.endswith((".parquet", ".pq")):
                frame = pd.read_parquet(path)
            elif suffixes.endswith(".arff"):
                frame = _read_arff(path)
            else:
                frame = pd.read_csv(path, skipinitialspace=True)
        except FileNotFoundError:
            raise ValueError(f"path: file {self.p.path!r} not found") from None
        except (
            pd.errors.ParserError,
            pd.errors.EmptyDataError,
            OSError,
            ValueError,
            NotImplementedError,
        ) as exc:
            raise ValueError(f"path: cannot read {self.p.path!r} as CSV, Parquet or ARFF: {exc}") from None
        frame.columns = [str(c).strip() for c in frame.columns]
        self._check_columns(frame)
        return frame

    def _check_columns(self, frame: pd.DataFrame) -> None:
        columns = set(frame.columns)
        known = ", ".join(frame.columns[:30]) + (" ..." if len(frame.columns) > 30 else "")
        for field, names in (
            ("tasks", list(self.p.tasks)),
            ("inputs", self.p.inputs or []),
            ("split_column", [self.p.split_column] if self.p.split_column else []),
            ("featurize", list(self.p.featurize)),
        ):
            missing = [n for n in names if n not in columns]
            if missing:
                raise ValueError(f"{field}: unknown column(s) {missing} in {self.p.path!r}; columns: {known}")

    # -------------------------------------------------------------------------------- building
    def _split_rows(self, frame: pd.DataFrame) -> dict[SplitName, np.ndarray]:
        n = len(frame)
        if self.p.split_column is not None:
            values = frame[self.p.split_column].astype("string").str.strip().str.lower()
            bad = sorted(set(values.dropna().unique()) - set(SPLITS)) + (
                ["<empty>"] if values.isna().any() else []
            )
            if bad:
                raise ValueError(
                    f"split_column: column {self.p.split_column!r} has values {bad[:5]}; "
                    f"allowed: {', '.join(SPLITS)}"
                )
            rows = {s: np.flatnonzero((values == s).to_numpy()) for s in SPLITS}
        else:
            order = np.random.default_rng(self.p.seed).permutation(n)
            n_train = round(self.p.fractions[0] * n)
            n_val = round(self.p.fractions[1] * n)
            rows = {
                "train": np.sort(order[:n_train]),
                "validation": np.sort(order[n_train : n_train + n_val]),
                "test": np.sort(order[n_train + n_val :]),
            }
        for split, index in rows.items():
            if len(index) == 0:
                raise ValueError(f"split_column/fractions: the {split} split is empty ({n} rows in the file)")
        return rows

    def _inputs(
        self, frame: pd.DataFrame, rows: dict[SplitName, np.ndarray]
    ) -> dict[SplitName, torch.Tensor]:
        excluded = set(self.p.tasks) | ({self.p.split_column} if self.p.split_column else set())
        columns = (
            self._named_inputs(frame)
            if self.p.inputs is not None
            else [c for c in frame.columns if c not in excluded]
        )
        if not columns:
            raise ValueError("inputs: the file has no column left for inputs besides the task columns")
        non_numeric = [c for c in columns if not _is_numeric(frame[c])]
        if non_numeric:
            raise ValueError(
                f"inputs: column(s) {non_numeric[:10]} are not numeric; encode them as numbers or list only "
                "numeric columns in `inputs`"
            )
        self.input_columns = list(columns)
        values = frame[columns].astype("float64").to_numpy()
        train = values[rows["train"]]
        missing_train = np.isnan(train).all(axis=0)
        if missing_train.any():
            empty = [c for c, m in zip(columns, missing_train, strict=True) if m]
            raise ValueError(f"inputs: column(s) {empty[:10]} are empty in the training split")
        if np.isnan(values).any():
            if self.p.missing_inputs == "error":
                holes = [c for c in columns if frame[c].isna().any()]
                raise ValueError(
                    f"inputs: column(s) {holes[:10]} have empty cells; fill them or set missing_inputs: mean"
                )
            logger.info(
                "tabular: imputing %d empty input cells with training means", int(np.isnan(values).sum())
            )
        mean = np.nanmean(train, axis=0)
        std = np.nanstd(train, axis=0)
        std = np.where(std > 1e-12, std, 1.0)
        self.input_mean, self.input_std = mean.tolist(), std.tolist()
        scaled = (np.where(np.isnan(values), mean, values) - mean) / std
        return {s: torch.from_numpy(scaled[index].astype(np.float32)) for s, index in rows.items()}

    def _named_inputs(self, frame: pd.DataFrame) -> list[str]:
        """The ``inputs`` columns, a featurised column standing for all its features."""
        assert self.p.inputs is not None
        out: list[str] = []
        for column in self.p.inputs:
            if column in self.p.featurize:
                prefix = f"{column}:{self.p.featurize[column].method}:"
                out.extend(c for c in frame.columns if c.startswith(prefix))
            else:
                out.append(column)
        return out

    def _target(
        self, frame: pd.DataFrame, column: str, kind: str, rows: dict[SplitName, np.ndarray]
    ) -> tuple[dict[SplitName, torch.Tensor], TaskInfo]:
        series = frame[column]
        for split, index in rows.items():
            if series.iloc[index].isna().all():
                raise ValueError(f"tasks: task column {column!r} has no label in the {split} split")
        loss, metric = _LOSS_METRIC[kind]
        if kind == "multiclass":
            classes = sorted(series.iloc[rows["train"]].dropna().unique().tolist(), key=_sort_key)
            if len(classes) < 2:
                raise ValueError(f"tasks: multiclass column {column!r} has {len(classes)} class in training")
            self.classes[column] = classes
            lookup = {c: i for i, c in enumerate(classes)}
            codes = series.map(lookup)
            unseen = series.notna() & codes.isna()
            if unseen.any():
                logger.warning(
                    "tabular: %d labels of %r are classes unseen in training; treated as missing",
                    int(unseen.sum()),
                    column,
                )
            coded = codes.fillna(-1).astype("int64").to_numpy()
            for split, index in rows.items():
                if (coded[index] == -1).all():
                    raise ValueError(
                        f"tasks: task column {column!r} has no label of a training class in {split}"
                    )
            targets = {s: torch.from_numpy(coded[index]) for s, index in rows.items()}
            info = TaskInfo(
                name=column,
                kind=TaskKind.MULTICLASS,
                classes=len(classes),
                loss=loss,
                metric=metric,
                description=f"column {column!r}: {len(classes)} classes",
            )
            return targets, info
        if kind == "binary" and not _is_numeric(series):
            series = _true_false(series)
        if not _is_numeric(series):
            raise ValueError(f"tasks: {kind} column {column!r} is not numeric")
        values = series.astype("float64").to_numpy()
        if kind == "binary":
            present = values[~np.isnan(values)]
            bad = np.setdiff1d(np.unique(present), [0.0, 1.0])
            if bad.size:
                raise ValueError(
                    f"tasks: binary column {column!r} has values other than 0/1 (e.g. {bad[:5].tolist()}); "
                    "use kind multiclass or recode it"
                )
            targets = {s: torch.from_numpy(values[index].astype(np.float32)) for s, index in rows.items()}
            info = TaskInfo(
                name=column,
                kind=TaskKind.BINARY,
                loss=loss,
                metric=metric,
                description=f"column {column!r}: 0/1",
            )
            return targets, info
        mean, std = 0.0, 1.0
        if self.p.standardize_targets:
            train = values[rows["train"]]
            mean, std = float(np.nanmean(train)), float(np.nanstd(train))
            std = std if std > 1e-12 else 1.0
        self.target_scale[column] = (mean, std)
        scaled = (values - mean) / std
        targets = {
            s: torch.from_numpy(scaled[index].astype(np.float32)).reshape(-1, 1) for s, index in rows.items()
        }
        info = TaskInfo(
            name=column,
            kind=TaskKind.REGRESSION,
            loss=loss,
            metric=metric,
            description=f"column {column!r}" + (" (standardised)" if self.p.standardize_targets else ""),
        )
        return targets, info

    def _build(self, frame: pd.DataFrame) -> dict[SplitName, Split]:
        rows = self._split_rows(frame)
        self._rows = rows
        inputs = self._inputs(frame, rows)
        targets: dict[SplitName, dict[str, torch.Tensor]] = {s: {} for s in SPLITS}
        infos: list[TaskInfo] = []
        for column, kind in self.p.tasks.items():
            per_split, info = self._target(frame, column, kind, rows)
            infos.append(info)
            for split in SPLITS:
                targets[split][column] = per_split[split]
        self._tasks = infos
        return {s: Split(inputs[s], targets[s]) for s in SPLITS}


def _read_arff(path: Path) -> pd.DataFrame:
    """An ARFF file (Weka's format, e.g. Mulan's multi-target sets) as a DataFrame: numeric attributes as
    floats, nominal ones as text, missing values (``?``) as empty cells."""
    from scipy.io import arff

    data, _ = arff.loadarff(path)
    frame = pd.DataFrame(data)
    for column in frame.columns:
        if frame[column].dtype == object:  # nominal: bytes -> text, b"?" -> missing
            text = frame[column].map(lambda v: v.decode() if isinstance(v, bytes) else v)
            frame[column] = text.where(text != "?")
    return frame


def _is_numeric(series: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series))


def _true_false(series: pd.Series) -> pd.Series:
    """``true``/``false`` strings (any case, e.g. from a CSV with empty cells) as 1.0/0.0; else unchanged."""
    text = series.astype("string").str.strip().str.lower()
    if set(text.dropna().unique()) <= {"true", "false"}:
        return text.map({"true": 1.0, "false": 0.0}).astype("float64")
    return series


def _sort_key(value: object) -> tuple[int, object]:
    return (0, value) if isinstance(value, int | float | np.number) else (1, str(value))
