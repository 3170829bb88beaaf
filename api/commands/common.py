"""Pieces shared by the `taskgroup` commands: the store option, reading specs, writing results."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from api.commands import CliError

if TYPE_CHECKING:  # the store is imported when a command needs it (`taskgroup solve` never does)
    from pydantic import BaseModel

    from search.store import JobRecord, Store


def add_store_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        metavar="URL",
        help="results store URL (default: $TASKGROUP_DATABASE_URL, else sqlite:///taskgroup.db here)",
    )


def _open(args: argparse.Namespace, create: bool) -> Store:
    """The store of --db / TASKGROUP_DATABASE_URL; a missing store file (``create=False``) raises
    MissingStoreError, every other problem is a one-line CliError."""
    from search.store import MissingStoreError, StoreError, open_store

    url = getattr(args, "db", None) or os.environ.get("TASKGROUP_DATABASE_URL")
    try:
        return open_store(url, create=create)
    except MissingStoreError:
        raise
    except (ValueError, RuntimeError, OSError, StoreError) as exc:
        raise CliError(f"cannot open the results store: {exc}") from None


def open_cli_store(args: argparse.Namespace, *, create: bool = True) -> Store:
    """The results store named by --db / TASKGROUP_DATABASE_URL; a one-line error if it cannot open.
    ``create=False`` for commands that only read: a store that does not exist is an error, not created."""
    from search.store import MissingStoreError

    try:
        return _open(args, create)
    except MissingStoreError as exc:
        raise CliError(f"cannot open the results store: {exc}") from None


def existing_cli_store(args: argparse.Namespace) -> Store | None:
    """The store for listings: None where its file does not exist yet (nothing is created)."""
    from search.store import MissingStoreError

    try:
        return _open(args, create=False)
    except MissingStoreError:
        return None


def stored_job(args: argparse.Namespace, job_id: str) -> tuple[Store, JobRecord]:
    """The store of --db and the job ``job_id`` in it; one-line errors for a store that does not exist (it
    is not created) or a job it does not have."""
    store = existing_cli_store(args)
    if store is None:
        raise CliError(
            f"job {job_id} not found: there is no results store there yet (give --db, or set "
            "TASKGROUP_DATABASE_URL, to the store your searches use)"
        )
    return store, load_job(store, job_id)


def load_job(store: Store, job_id: str) -> JobRecord:
    """The stored job, or a one-line error that says how to list them."""
    try:
        return store.get_job(job_id)
    except KeyError:
        raise CliError(f"job {job_id} not found in the store (list the jobs with: taskgroup jobs)") from None
    except ValueError:
        raise CliError(f"{job_id!r} is not a job id (list the jobs with: taskgroup jobs)") from None


def load_spec_file(path: Path) -> dict[str, Any]:
    """A job spec from a JSON file, with a one-line error naming the file and the problem."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise CliError(f"{path}: cannot read the spec file: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise CliError(f"{path}: a job spec must be a JSON object")
    return data


def checked_output(path: Path | None) -> Path | None:
    """``path`` once its folder exists (made if needed) and a file can be written there: checked before any
    work, so a long run never ends on "cannot write". None stays None."""
    if path is None:
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            raise CliError(f"{path}: is a folder; give a file name for the output")
        existed = path.exists()
        with path.open("a"):
            pass
        if not existed:
            path.unlink()
    except OSError as exc:
        raise CliError(f"{path}: cannot write: {exc.strerror}") from None
    return path


def write_result(path: Path, result: BaseModel) -> None:
    """A result (or curve) as indented JSON, with a one-line error if the file cannot be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result.model_dump(mode="json"), indent=2) + "\n")
    except OSError as exc:
        raise CliError(f"{path}: cannot write: {exc.strerror}") from None
