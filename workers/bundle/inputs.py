"""A bundle's inputs: a user's rows (or images) as the float32 batch its networks read, exactly as the dataset
built its splits, and the networks' raw outputs as predictions in the user's units.

Vector inputs: the columns the bundle names are taken from a ``pandas.DataFrame`` (other columns are ignored)
or, from a 2-D array, in order. A cell that is not a number (text, an infinity) is an error naming its row and
column; an empty cell (NaN, None) is filled with the training mean when the dataset's rule is
``missing_inputs: mean``, else an error naming its row and column. Never a silent NaN.

Rows are named as ``row N (index L)``: N counts data rows from 1 (a CSV's header is not a row) and L is the
frame's index label.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from workers.datasets.base import TaskKind
from workers.datasets.preprocessing import ImageInputs, TaskOutput, VectorInputs

logger = logging.getLogger(__name__)

__all__ = ["OUTPUTS", "BundleInputError", "image_batch", "predictions_frame", "user_units", "vector_batch"]


class BundleInputError(ValueError):
    """Inputs a bundle cannot predict from; the message names the row and column (or the sample)."""


def _row(frame: pd.DataFrame, position: int) -> str:
    label = frame.index[position]
    label = label.item() if isinstance(label, np.generic) else label
    return f"row {position + 1} (index {label!r})"


def _is_number(dtype: Any) -> bool:
    return bool(pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype))


def _text_column(frame: pd.DataFrame, column: str) -> np.ndarray:
    """A column that is not of a numeric type (text, objects) as float64; a cell that is present but not a
    number is an error naming it."""
    series = frame[column]
    text = series.astype("string").str.strip()
    coerced = pd.to_numeric(text.replace("", pd.NA), errors="coerce")
    bad = np.flatnonzero((text.notna() & (text != "") & coerced.isna()).to_numpy())
    if bad.size:
        position = int(bad[0])
        raise BundleInputError(
            f"{_row(frame, position)}, column {column!r}: {series.iloc[position]!r} is not a number "
            f"({bad.size} such cell(s) in this column); the bundle's inputs are numeric"
        )
    return coerced.to_numpy(dtype="float64", na_value=np.nan)


def _matrix(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """The input columns as one float64 matrix (NaN where a cell is empty); numeric columns are converted
    in one block (a one-row request on 1,024 columns stays fast), text columns one by one."""
    block = frame[columns]
    numeric = [_is_number(dtype) for dtype in block.dtypes]
    if all(numeric):
        values = block.to_numpy(dtype="float64", na_value=np.nan, copy=True)  # ours to change
    else:
        values = np.empty((len(block), len(columns)))
        for index, (column, is_number) in enumerate(zip(columns, numeric, strict=True)):
            values[:, index] = (
                block[column].to_numpy(dtype="float64", na_value=np.nan)
                if is_number
                else _text_column(block, column)
            )
    infinite = np.isinf(values)
    if infinite.any():
        position, index = (int(i) for i in np.argwhere(infinite)[0])
        where, value = f"{_row(frame, position)}, column {columns[index]!r}", values[position, index]
        raise BundleInputError(f"{where}: {value} is not a finite number")
    return values


def _featurized(data: pd.DataFrame, spec: VectorInputs) -> pd.DataFrame:
    """``data`` with the features of its featurised columns added (as the dataset computed them); a value
    the featuriser cannot read is an error naming its row (a prediction is never silently left out)."""
    features = [data]
    for column, how in spec.featurize.items():
        values = how.featurizer().features(data[column])
        unreadable = np.flatnonzero(np.isnan(values).any(axis=1))
        if unreadable.size:
            position = int(unreadable[0])
            raise BundleInputError(
                f"{_row(data, position)}, column {column!r}: {data[column].iloc[position]!r} cannot be read "
                f"by {how.method!r} ({unreadable.size} such cell(s) in this column)"
            )
        names = [f"{column}:{how.method}:{i}" for i in range(values.shape[1])]
        features.append(pd.DataFrame(values, columns=names, index=data.index))
    return pd.concat(features, axis=1) if len(features) > 1 else data


def vector_batch(data: Any, spec: VectorInputs) -> np.ndarray:
    """``data`` (a DataFrame with the bundle's input columns, or a 2-D array of them in order) as the
    standardised float32 matrix the networks read (see the module docstring for missing and bad cells).
    The input columns are the user's: a featurised column is given raw (e.g. SMILES text)."""
    user = spec.user_columns()
    if not isinstance(data, pd.DataFrame):
        array = data.detach().cpu().numpy() if hasattr(data, "numpy") else np.asarray(data)
        if array.ndim != 2 or array.shape[1] != len(user):
            raise BundleInputError(
                f"inputs: expected a table of {len(user)} columns ({', '.join(user[:8])}"
                f"{', ...' if len(user) > 8 else ''}), got an array of shape {tuple(array.shape)}"
            )
        data = pd.DataFrame(array, columns=user)
    missing = [c for c in user if c not in data.columns]
    if missing:
        raise BundleInputError(
            f"inputs: column(s) {missing[:10]} are missing{' ...' if len(missing) > 10 else ''}; the bundle "
            f"reads {len(user)} input columns: {', '.join(user[:30])}"
        )
    if spec.featurize:
        data = _featurized(data, spec)
    values = _matrix(data, list(spec.columns))
    holes = np.isnan(values)
    if holes.any():
        if spec.missing_inputs == "error" or spec.fill is None:
            position, column = (int(i) for i in np.argwhere(holes)[0])
            raise BundleInputError(
                f"{_row(data, position)}, column {spec.columns[column]!r}: empty; this bundle does not "
                f"impute inputs (its dataset had missing_inputs: error): fill the {int(holes.sum())} empty "
                "cell(s)"
            )
        logger.info("bundle: imputing %d empty input cells with training means", int(holes.sum()))
        np.copyto(values, np.broadcast_to(np.asarray(spec.fill), values.shape), where=holes)
    values -= np.asarray(spec.center)  # in place: a large table is not copied again
    values /= np.asarray(spec.scale)
    return values.astype(np.float32)


def image_batch(data: Any, spec: ImageInputs) -> np.ndarray:
    """``data`` (an array or tensor of ``(N, C, H, W)`` images, or one ``(C, H, W)`` image; uint8 pixels are
    divided by ``integer_scale``) as the normalised float32 batch; a NaN or infinite pixel is an error."""
    array = data.detach().cpu().numpy() if hasattr(data, "numpy") else np.asarray(data)
    if array.ndim == len(spec.shape):
        array = array[None]
    if array.ndim != len(spec.shape) + 1 or list(array.shape[1:]) != list(spec.shape):
        raise BundleInputError(
            f"inputs: expected images of shape (N, {', '.join(map(str, spec.shape))}), "
            f"got {tuple(array.shape)}"
        )
    if np.issubdtype(array.dtype, np.integer):
        array = array.astype(np.float64) / spec.integer_scale
    elif not np.issubdtype(array.dtype, np.floating):
        raise BundleInputError(f"inputs: images must be numbers (float or uint8), got dtype {array.dtype}")
    bad = np.argwhere(~np.isfinite(array.reshape(len(array), -1)))
    if bad.size:
        raise BundleInputError(f"inputs: image {int(bad[0][0])} has a NaN or infinite pixel")
    shape = (1, -1) + (1,) * (len(spec.shape) - 1)
    center, scale = np.asarray(spec.center).reshape(shape), np.asarray(spec.scale).reshape(shape)
    return ((array - center) / scale).astype(np.float32)


def _rescaled(raw: np.ndarray, output: TaskOutput) -> np.ndarray:
    values = raw.astype(np.float64) * output.scale + output.center
    return values[:, 0] if values.ndim == 2 and values.shape[1] == 1 else values


def _probability(raw: np.ndarray, output: TaskOutput) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-raw.astype(np.float64).reshape(len(raw))))


def _class_value(raw: np.ndarray, output: TaskOutput) -> np.ndarray:
    index = raw.argmax(axis=1)
    if output.class_values is None:
        return index
    return np.asarray(output.class_values, dtype=object)[index]


def _class_map(raw: np.ndarray, output: TaskOutput) -> np.ndarray:
    return raw.argmax(axis=1)


OUTPUTS: MappingProxyType[TaskKind, Callable[[np.ndarray, TaskOutput], np.ndarray]] = MappingProxyType(
    {
        TaskKind.REGRESSION: _rescaled,
        TaskKind.BINARY: _probability,
        TaskKind.MULTICLASS: _class_value,
        TaskKind.DENSE: _rescaled,
        TaskKind.SEGMENTATION: _class_map,
    }
)
"""Task kind -> raw network output to prediction in the user's units (see the module docstring)."""


def user_units(raw: np.ndarray, output: TaskOutput) -> np.ndarray:
    """One task's raw outputs as predictions in the user's units."""
    return OUTPUTS[TaskKind(output.kind)](raw, output)


def predictions_frame(columns: dict[str, np.ndarray], index: Any = None) -> pd.DataFrame:
    """One column per task (a multi-channel regression becomes ``task[0]``, ``task[1]``, ...)."""
    flat: dict[str, np.ndarray] = {}
    for task, values in columns.items():
        if values.ndim == 1:
            flat[task] = values
        else:
            flat.update({f"{task}[{i}]": values[:, i] for i in range(values.shape[1])})
    return pd.DataFrame(flat, index=index)
