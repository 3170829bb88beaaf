"""Pieces shared by the `taskgroup` commands: the store option, reading specs, writing results."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from api.commands import CliError


def add_store_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        metavar="URL",
        help="results store URL (default: $TASKGROUP_DATABASE_URL, else sqlite:///taskgroup.db here)",
    )


def open_cli_store(args: argparse.Namespace) -> Any:
    """The results store named by --db / TASKGROUP_DATABASE_URL; a one-line error if it cannot open."""
    from search.store import open_store

    url = getattr(args, "db", None) or os.environ.get("TASKGROUP_DATABASE_URL")
    try:
        return open_store(url)
    except (ValueError, RuntimeError, OSError) as exc:
        raise CliError(f"cannot open the results store: {exc}") from None


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


def write_result(path: Path, result: dict[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2) + "\n")
    except OSError as exc:
        raise CliError(f"{path}: cannot write: {exc.strerror}") from None
