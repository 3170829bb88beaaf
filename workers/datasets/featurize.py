"""Input transforms of the tabular dataset: turn one column of text into numeric input features (a registry).

A user names them in the dataset's parameters, per column::

    "featurize": {"smiles": {"method": "morgan", "options": {"radius": 2, "bits": 2048}, "invalid": "drop"}}

* ``morgan``: Morgan (extended-connectivity) fingerprints of molecules written as SMILES, computed with RDKit
  (Rogers and Hahn, J. Chem. Inf. Model. 2010), the usual input of MoleculeNet's Tox21 baselines (Wu et al.,
  Chem. Sci. 2018). ``radius`` (2 = ECFP4), ``bits`` (folded length), ``counts`` (occurrence counts instead
  of bits).

A value a featuriser cannot read (an invalid SMILES, an empty cell) is an error naming the file's data rows,
or, with ``invalid: drop``, its row is left out of the dataset (before the split).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from grouping.validation import format_validation_error


class Featurizer(ABC):
    """Turns a column of values into a matrix of numeric features (NaN rows where a value is unreadable)."""

    name: ClassVar[str]
    Options: ClassVar[type[BaseModel]]

    def __init__(self, options: BaseModel) -> None:
        self.options = options

    @abstractmethod
    def features(self, values: pd.Series) -> np.ndarray:
        """(rows, width) float64 features; a row of NaN where the value cannot be read."""

    @abstractmethod
    def width(self) -> int:
        """Number of features per value."""


class MorganOptions(BaseModel):
    """Options of Morgan fingerprints."""

    model_config = ConfigDict(extra="forbid")

    radius: int = Field(2, ge=1, le=6, description="bond radius (2 = ECFP4)")
    bits: int = Field(2048, ge=16, le=16384, description="length of the folded fingerprint")
    counts: bool = Field(False, description="occurrence counts instead of bits")


class MorganFingerprint(Featurizer):
    """Morgan fingerprints of SMILES with RDKit (see the module doc)."""

    name = "morgan"
    Options = MorganOptions

    def width(self) -> int:
        return int(self.options.bits)  # type: ignore[attr-defined]

    def features(self, values: pd.Series) -> np.ndarray:
        from rdkit import Chem, RDLogger
        from rdkit.Chem import rdFingerprintGenerator

        RDLogger.DisableLog("rdApp.*")  # an invalid SMILES is reported by us, per line, not by RDKit's logger
        options: MorganOptions = self.options  # type: ignore[assignment]
        generator = rdFingerprintGenerator.GetMorganGenerator(radius=options.radius, fpSize=options.bits)
        out = np.full((len(values), options.bits), np.nan)
        for row, value in enumerate(values):
            molecule = Chem.MolFromSmiles(value) if isinstance(value, str) and value.strip() else None
            if molecule is None:
                continue
            if options.counts:
                out[row] = generator.GetCountFingerprintAsNumPy(molecule)
            else:
                out[row] = generator.GetFingerprintAsNumPy(molecule)
        return out


FEATURIZERS: Mapping[str, type[Featurizer]] = MappingProxyType({MorganFingerprint.name: MorganFingerprint})


class FeaturizeSpec(BaseModel):
    """How one column becomes input features: the method of :data:`FEATURIZERS`, its options, and what to do
    with a value it cannot read."""

    model_config = ConfigDict(extra="forbid")

    method: str = Field("morgan", description=f"one of {', '.join(FEATURIZERS)}")
    options: dict[str, Any] = Field(default_factory=dict, description="the method's options")
    invalid: Literal["error", "drop"] = Field(
        "error", description="an unreadable value: error, or drop its row"
    )

    @field_validator("method")
    @classmethod
    def _known(cls, method: str) -> str:
        if method not in FEATURIZERS:
            raise ValueError(f"unknown featurizer {method!r}; choose one of {', '.join(FEATURIZERS)}")
        return method

    def featurizer(self) -> Featurizer:
        """The featurizer with its checked options (ValueError naming a bad option)."""
        cls = FEATURIZERS[self.method]
        try:
            return cls(cls.Options.model_validate(self.options))
        except ValidationError as exc:
            raise ValueError(f"options of {self.method!r}: {format_validation_error(exc)}") from None


def featurize(frame: pd.DataFrame, specs: Mapping[str, FeaturizeSpec], source: str) -> pd.DataFrame:
    """``frame`` with every column of ``specs`` replaced by its features (named ``column:method:i``); rows
    with an unreadable value dropped where the spec says so (the index still names the rows kept), else a
    ValueError naming the data rows."""
    for column, spec in specs.items():
        featurizer = spec.featurizer()
        values = featurizer.features(frame[column])
        unreadable = np.isnan(values).any(axis=1)
        if unreadable.any():
            rows = [int(i) + 1 for i in np.flatnonzero(unreadable)]
            shown = ", ".join(map(str, rows[:8])) + (" ..." if len(rows) > 8 else "")
            if spec.invalid == "error":
                raise ValueError(
                    f"featurize.{column}: {len(rows)} value(s) of column {column!r} in {source!r} cannot be "
                    f"read by {spec.method!r} (data rows {shown}, counted from 1 after the header); fix them "
                    f"or set featurize.{column}.invalid: drop"
                )
            keep = ~unreadable
            frame, values = frame.loc[keep], values[keep]  # the index keeps naming the file's rows
        names = [f"{column}:{spec.method}:{i}" for i in range(featurizer.width())]
        features = pd.DataFrame(values, columns=names, index=frame.index)
        frame = pd.concat([frame.drop(columns=[column]), features], axis=1)
    return frame


__all__ = ["FEATURIZERS", "FeaturizeSpec", "Featurizer", "MorganFingerprint", "MorganOptions", "featurize"]
