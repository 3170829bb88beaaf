"""``GET /datasets``: the built-in datasets, their tasks and the JSON schema of their parameters."""

from __future__ import annotations

import inspect
import logging

from fastapi import APIRouter, Depends

from api.models import DatasetInfo
from api.routers.common import error_responses, require_token
from api.routers.paths import path_params
from workers.datasets import DATASETS

log = logging.getLogger(__name__)

router = APIRouter(tags=["datasets"], dependencies=[Depends(require_token)])


def dataset_info(name: str) -> DatasetInfo:
    """What a user needs to write a job spec for the dataset ``name``."""
    cls = DATASETS[name]
    doc = inspect.getdoc(cls) or ""
    tasks = None
    note = None
    try:
        tasks = [t.model_dump(mode="json") for t in cls(cls.Params()).tasks()]
    except Exception as exc:  # tasks that depend on required params (a tabular file's columns)
        log.debug("dataset %s has no tasks with default params: %s", name, exc)
        note = "the tasks depend on the dataset's parameters (e.g. the columns of your file)"
    files = path_params(cls.Params)
    if files:
        extra = f"file parameters ({', '.join(files)}) are relative to the service's data directory"
        note = f"{note}; {extra}" if note else extra
    return DatasetInfo(
        name=name,
        description=doc.split("\n\n")[0].replace("\n", " "),
        input_kind=str(getattr(cls, "input_kind", "")),
        tasks=tasks,
        tasks_note=note,
        params_schema=cls.Params.model_json_schema(),
    )


@router.get(
    "/datasets", response_model=list[DatasetInfo], responses=error_responses(401), summary="Built-in datasets"
)
def list_datasets() -> list[DatasetInfo]:
    """Every built-in dataset with its tasks (for its default parameters) and its parameters' schema."""
    return [dataset_info(name) for name in sorted(DATASETS)]
