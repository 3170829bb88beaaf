"""`taskgroup predict bundle.zip data.csv -o predictions.csv`: every task of a bundle predicted on your data,
each by the network that serves it, in your units.

Tabular bundles read a CSV or Parquet file with the bundle's input columns (others are ignored; ``--keep``
copies some, e.g. an id, into the output) and write one column per task (CSV, or Parquet by the output's
suffix; standard output without ``-o``). Image bundles read an ``.npy`` array of ``(N, C, H, W)`` images and
write an ``.npz`` with one array per task. A bad cell is a one-line error naming its row and column."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType
from typing import Any

from api.commands import CliError
from api.commands.common import checked_output


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(name, help="predict every task of a bundle on a data file")
    p.add_argument("bundle", type=Path, help="a bundle from taskgroup export (or GET /jobs/ID/models)")
    p.add_argument(
        "data", type=Path, help="CSV or Parquet rows (tabular bundles), .npy images (image bundles)"
    )
    p.add_argument(
        "-o", "--output", type=Path, help="predictions file (.csv, .parquet, .npz); default stdout"
    )
    p.add_argument("--keep", default="", metavar="COL,...", help="input columns copied into the output")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:N")
    p.add_argument("--batch-size", type=int, default=None, help="rows (or images) per forward pass")
    p.set_defaults(run=run)


def _read_table(path: Path) -> Any:
    import pandas as pd

    if "".join(path.suffixes).lower().endswith((".parquet", ".pq")):
        return pd.read_parquet(path)
    return pd.read_csv(path, skipinitialspace=True)


def _read_array(path: Path) -> Any:
    import numpy as np

    return np.load(path, allow_pickle=False)


READERS: MappingProxyType[str, Callable[[Path], Any]] = MappingProxyType(
    {"vector": _read_table, "image": _read_array}
)
"""The bundle's input kind -> how its data file is read."""


def _write(predictions: Any, output: Path | None, kind: str) -> None:
    import numpy as np

    if kind == "image":
        if output is None or output.suffix != ".npz":
            raise CliError("an image bundle writes its predictions to an .npz file: give -o predictions.npz")
        np.savez_compressed(output, **predictions)
    elif output is None:
        predictions.to_csv(sys.stdout, index=False)
    elif "".join(output.suffixes).lower().endswith((".parquet", ".pq")):
        predictions.to_parquet(output, index=False)
    else:
        predictions.to_csv(output, index=False)


def run(args: argparse.Namespace) -> int:
    from workers.bundle import BundleError, load_bundle

    output = checked_output(args.output)
    if args.batch_size is not None and args.batch_size < 1:
        raise CliError("--batch-size must be at least 1")
    try:
        bundle = load_bundle(args.bundle, device=args.device)
    except (BundleError, ValueError, OSError) as exc:
        raise CliError(str(exc)) from None
    kind = bundle.manifest.input.kind
    try:
        data = READERS[kind](args.data)
    except (OSError, ValueError) as exc:
        raise CliError(f"{args.data}: cannot read: {exc}") from None
    keep = [c.strip() for c in args.keep.split(",") if c.strip()]
    missing = [c for c in keep if kind != "vector" or c not in data.columns]
    if missing:
        raise CliError(f"--keep: column(s) {missing} are not in {args.data}")
    try:
        predictions = bundle.predict(data, batch_size=args.batch_size)
    except ValueError as exc:
        raise CliError(f"{args.data}: {exc}") from None
    if keep:
        predictions = data[keep].join(predictions)
    try:
        _write(predictions, output, kind)
    except OSError as exc:
        raise CliError(f"{output}: cannot write: {exc.strerror}") from None
    if output is not None:
        rows = len(data)
        print(f"{rows} prediction(s) of {', '.join(bundle.tasks)} written to {output}", file=sys.stderr)
    return 0
