"""`taskgroup export JOB_ID --budget B -o bundle.zip`: a budget's chosen networks, with their kept weights,
preprocessing and manifest, as one zip that `taskgroup predict` (or ``workers.bundle.load_bundle``) runs.

A budget that was not finalized is a one-line error that says how to finalize it (``docs/bundle.md``)."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from api.commands import CliError
from api.commands.common import add_store_argument, checked_output, stored_job


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(
        name,
        help="download a budget's networks as a bundle (zip) that predicts every task",
        description="Write the chosen networks of one budget of a succeeded job (their kept weights, "
        "preprocessing and a manifest) to one zip; the budget must have been finalized.",
    )
    p.add_argument("job_id")
    p.add_argument("--budget", type=float, required=True, help="a budget of the job, in SNT")
    p.add_argument(
        "-o", "--output", type=Path, help="the zip to write (default bundle-JOB_ID-BUDGETsnt.zip here)"
    )
    add_store_argument(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from search.export import export_bundle

    output = checked_output(args.output or Path(f"bundle-{args.job_id}-{args.budget:g}snt.zip"))
    assert output is not None
    store, job = stored_job(args, args.job_id)
    handle, temporary = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".part")
    os.close(handle)
    try:
        with open(temporary, "wb") as stream:
            manifest = export_bundle(store, job.id, args.budget, stream)
        os.replace(temporary, output)  # never a half-written bundle under the name asked for
    except (ValueError, LookupError) as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"{output}: cannot write: {exc.strerror}") from None
    finally:
        Path(temporary).unlink(missing_ok=True)
    networks = ", ".join(f"{n.label} -> {','.join(n.serves)}" for n in manifest.networks)
    size = output.stat().st_size
    print(
        f"bundle written to {output} ({size / 1e6:.2f} MB): {len(manifest.networks)} network(s): {networks}"
    )
    example = (
        "images.npy -o predictions.npz" if manifest.input.kind == "image" else "data.csv -o predictions.csv"
    )
    print(f"predict with: taskgroup predict {output} {example}")
    return 0
