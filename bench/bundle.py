"""What a bundle weighs and how fast it predicts, on SARCOS-size and Tox21-size tabular data.

    .venv/bin/python bench/bundle.py [--data ../shared/data/real] [--epochs 3] [--rows 200000] [--quick]

For each dataset: trains the networks of a plausible grouping (one torch thread, as a one-CPU Ray trial),
builds the bundle from their checkpoints (seconds, size in bytes and per file kind), loads it (seconds),
checks that its predictions on the held-out test split reproduce the test losses the trainer recorded, and
prints the predict throughput in rows/s on CPU, end to end (a DataFrame in, a DataFrame out, input checks
and imputation included) and for the networks alone, plus the latency of a one-row request.

* SARCOS (``sarcos.csv``: 21 inputs, 7 torque regressions, 4,449 rows): networks tau1,tau2,tau3 /
  tau4,tau7 / tau5,tau6 (full size), the file repeated to ``--rows`` rows for the throughput.
* Tox21 (``tox21.csv``: 7,831 molecules, 12 binary assays with 17% missing labels): 1,024-bit Morgan
  fingerprints (radius 2) from RDKit when it is installed, else random bits of the same shape (said so);
  networks NR-AR,NR-AR-LBD / NR-ER,NR-ER-LBD / the other eight assays.

``--quick`` trains one epoch and predicts 20,000 rows, to check the script itself.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import zipfile  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from workers.bundle import NetworkSource, build_bundle, load_bundle  # noqa: E402
from workers.checkpoint import checkpoint_bytes  # noqa: E402
from workers.datasets import get_dataset  # noqa: E402
from workers.losses import TaskEvaluator  # noqa: E402
from workers.train import TrainedNetwork, load_dataset, train_network  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SARCOS_GROUPS = [["tau1", "tau2", "tau3"], ["tau4", "tau7"], ["tau5", "tau6"]]
TOX21_PAIRS = [["NR-AR", "NR-AR-LBD"], ["NR-ER", "NR-ER-LBD"]]


def tox21_table(source: Path, out: Path, bits: int = 1024) -> tuple[Path, list[str], str]:
    """Tox21 with fingerprint columns f0..f{bits-1}; (csv, task columns, how the features were made)."""
    frame = pd.read_csv(source)
    tasks = [c for c in frame.columns if c != "smiles"]
    try:
        from rdkit import Chem, RDLogger
        from rdkit.Chem import rdFingerprintGenerator

        RDLogger.DisableLog("rdApp.*")
        generator = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=bits)
        molecules = [Chem.MolFromSmiles(s) for s in frame["smiles"]]
        keep = [m is not None for m in molecules]
        features = np.array([generator.GetFingerprintAsNumPy(m) for m in molecules if m is not None])
        frame, how = frame[keep].reset_index(drop=True), f"RDKit Morgan fingerprints r=2, {bits} bits"
    except ImportError:
        features = np.random.default_rng(0).integers(0, 2, (len(frame), bits))
        how = f"random bits ({bits}; RDKit is not installed)"
    table = pd.concat([pd.DataFrame(features, columns=[f"f{i}" for i in range(bits)]), frame[tasks]], axis=1)
    table.to_csv(out, index=False)
    return out, tasks, how


def train_grouping(dataset: dict[str, Any], groups: list[list[str]], epochs: int) -> list[TrainedNetwork]:
    trained = []
    for tasks in groups:
        started = time.perf_counter()
        spec = {"dataset": dataset, "tasks": tasks, "threads": 1, "settings": {"epochs": epochs}}
        trained.append(train_network(spec))
        print(f"  trained {','.join(tasks)} in {time.perf_counter() - started:.1f} s")
    return trained


def reproduction_error(bundle: Any, dataset: dict[str, Any], trained: list[TrainedNetwork]) -> float:
    """Largest relative gap between the bundle's test losses and the trainer's (float tolerance expected)."""
    data, splits = load_dataset(dataset)
    raw = bundle.predict_raw(data.split_frame("test"))
    recorded = {t: v for n in trained for t, v in n.result.scoring.items()}
    gaps = []
    for task, values in raw.items():
        evaluator = TaskEvaluator(data.task(task))
        evaluator.update(torch.from_numpy(values), splits["test"].targets[task])
        gaps.append(abs(evaluator.result().loss - recorded[task]) / abs(recorded[task]))
    return max(gaps)


def rate(fn: Any, rows: int, repeat: int = 3) -> float:
    best = min(_timed(fn) for _ in range(repeat))
    return rows / best


def _timed(fn: Any) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def sizes(path: Path) -> dict[str, int]:
    with zipfile.ZipFile(path) as archive:
        kinds: dict[str, int] = {}
        for info in archive.infolist():
            kind = info.filename.rsplit("/", 1)[-1]
            kinds[kind] = kinds.get(kind, 0) + info.compress_size
    return kinds


def networks_alone(bundle: Any, inputs: np.ndarray) -> None:
    batch = torch.from_numpy(inputs)
    with torch.no_grad():
        for network in bundle.networks.values():
            network.program(batch)


def throughput(bundle: Any, frame: pd.DataFrame) -> None:
    rows = len(frame)
    inputs = bundle.inputs(frame)
    print(f"  predict on {rows:,} rows x {inputs.shape[1]} inputs, CPU, 1 thread:")
    end_to_end = rate(lambda: bundle.predict(frame), rows)
    print(f"    end to end (DataFrame in and out): {end_to_end:,.0f} rows/s")
    print(f"    input checks and preprocessing:    {rate(lambda: bundle.inputs(frame), rows):,.0f} rows/s")
    alone = rate(lambda: networks_alone(bundle, inputs), rows)
    print(f"    the networks alone:                {alone:,.0f} rows/s")
    one = frame.iloc[:1]
    latency = min(_timed(lambda: bundle.predict(one)) for _ in range(20))
    print(f"    one-row request: {latency * 1e3:.1f} ms")


def bench(name: str, dataset: dict[str, Any], groups: list[list[str]], epochs: int, rows: int) -> None:
    print(f"\n{name}: {len(groups)} networks")
    trained = train_grouping(dataset, groups, epochs)
    sources = [
        NetworkSource(checkpoint_bytes(n.card, n.state_dict), list(g))
        for n, g in zip(trained, groups, strict=True)
    ]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bundle.zip"
        build = _timed(lambda: build_bundle(sources, path))
        parts = ", ".join(f"{k} {v / 1e3:.0f} kB" for k, v in sorted(sizes(path).items()))
        print(f"  bundle: {path.stat().st_size / 1e6:.2f} MB built in {build:.1f} s ({parts})")
        started = time.perf_counter()
        bundle = load_bundle(path, device="cpu")
        print(f"  load (hashes checked, programs loaded): {time.perf_counter() - started:.2f} s")
        gap = reproduction_error(bundle, dataset, trained)
        print(f"  test-split losses reproduced to a relative {gap:.1e}")
        frame = get_dataset("tabular", dataset["params"]).split_frame("test")  # type: ignore[attr-defined]
        throughput(bundle, pd.concat([frame] * max(1, rows // len(frame)), ignore_index=True))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "real")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rows", type=int, default=200_000, help="rows predicted for the throughput")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    epochs, rows = (1, 20_000) if args.quick else (args.epochs, args.rows)
    sarcos = {f"tau{i}": "regression" for i in range(1, 8)}
    dataset = {"name": "tabular", "params": {"path": str(args.data / "sarcos.csv"), "tasks": sarcos}}
    bench("SARCOS (4,449 rows, 21 inputs, 7 regressions)", dataset, SARCOS_GROUPS, epochs, rows)
    with tempfile.TemporaryDirectory() as folder:
        csv, tasks, how = tox21_table(args.data / "tox21.csv", Path(folder) / "tox21.csv")
        rest = [t for t in tasks if not any(t in g for g in TOX21_PAIRS)]
        params = {"path": str(csv), "tasks": dict.fromkeys(tasks, "binary")}
        name = f"Tox21 (7,831 molecules, {how}, 12 binary assays)"
        bench(name, {"name": "tabular", "params": params}, [*TOX21_PAIRS, rest], epochs, rows // 4)


if __name__ == "__main__":
    main()
