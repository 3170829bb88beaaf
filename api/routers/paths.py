"""The dataset path guard: a job's dataset files must lie in the service's data directory (no traversal)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel

from search.spec import JobSpec
from workers.datasets import DATASETS


def _is_path_field(name: str, annotation: Any) -> bool:
    """A dataset parameter naming a file: ``path``, ``*_path`` or ``*_file``, or typed as a Path."""
    if name == "path" or name.endswith(("_path", "_file", "_dir")):
        return True
    return annotation is Path or Path in get_args(annotation)


def path_params(params_model: type[BaseModel]) -> list[str]:
    """Names of the parameters of a dataset's ``Params`` that name files (see :func:`confine_paths`)."""
    fields = params_model.model_fields.items()
    return [name for name, field in fields if _is_path_field(name, field.annotation)]


def confine_path(value: Any, data_dir: Path, field: str) -> str:
    """The absolute path of ``value`` if it lies inside ``data_dir`` (symlinks resolved), else ValueError.

    A relative path is relative to the data directory. The answer never says what exists outside it.
    """
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{field}: give a file path (relative to the service's data directory) as a string")
    if "\x00" in value:
        raise ValueError(f"{field}: a path cannot contain a NUL character")
    candidate = Path(value).expanduser()
    if not candidate.is_absolute():
        candidate = data_dir / candidate
    try:
        resolved = candidate.resolve(strict=False)
    except (OSError, RuntimeError) as exc:  # a symlink loop, an over-long name
        raise ValueError(f"{field}: cannot resolve path {value!r}: {exc}") from None
    root = data_dir.resolve()
    if not resolved.is_relative_to(root):
        raise ValueError(
            f"{field}: {value!r} is outside the service's data directory; give a path relative to it "
            "(put your file in TASKGROUP_DATA_DIR)"
        )
    return str(resolved)


def confine_paths(spec: JobSpec, data_dir: Path) -> JobSpec:
    """The spec with every file parameter of its dataset made absolute and checked to lie in ``data_dir``.

    No path traversal: ``../x``, absolute paths elsewhere and symlinks leading out are refused.
    """
    cls = DATASETS.get(spec.dataset.name)
    if cls is None:
        return spec  # the unknown dataset is reported by the spec's own validation
    fields = [f for f in path_params(cls.Params) if f in spec.dataset.params]
    if not fields:
        return spec
    params = dict(spec.dataset.params)
    for name in fields:
        params[name] = confine_path(params[name], data_dir, f"dataset.params.{name}")
    dataset = spec.dataset.model_copy(update={"params": params})
    return spec.model_copy(update={"dataset": dataset})


__all__ = ["confine_path", "confine_paths", "path_params"]
