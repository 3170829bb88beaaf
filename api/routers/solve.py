"""``POST /solve``: groupings from a loss table the user trained elsewhere; no training, no Ray.

Two ways to send the table (one endpoint, chosen by the request's content type):

* ``application/json``: a :class:`api.models.SolveRequest`, whose ``table`` follows the documented loss-table
  schema (``docs/loss-tables.md``, :class:`grouping.schema.LossTableModel`);
* ``multipart/form-data``: the table as a file upload (``file``; the paper's tab-separated format by default,
  or CSV / JSON by the file name's extension or the ``format`` field), an optional ``scoring`` file, and the
  options as form fields (``budgets``, ``tasks``, ``objective``, ``serve_by``, ``weights``, ``hoa``).

The answer is a budget curve in the DESIGN.md shape (``tasks``, ``objective``, ``serve_by``, ``curve``).
"""

from __future__ import annotations

import logging
import os
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from api.models import SolveRequest
from api.routers.common import SettingsDep, error_responses, require_token, unprocessable
from grouping import FORMATS, BudgetCurve, LossTable
from grouping.io import format_for
from grouping.service import SolveOptions, solve_tables
from grouping.validation import format_validation_error

log = logging.getLogger(__name__)

router = APIRouter(tags=["solve"], dependencies=[Depends(require_token)])

SOLVE_CONCURRENCY = max(1, min(4, os.cpu_count() or 1))
"""Solves that run at once (in worker threads); more wait. The solver is CPU-bound Python and numpy: more
threads than cores only trade the GIL back and forth and stretch every solve's latency."""

OPTION_FIELDS = tuple(SolveOptions.model_fields)
FORM_FIELDS = (*OPTION_FIELDS, "tasks", "format")

_FORM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {"type": "string", "format": "binary", "description": "the selection loss table"},
        "scoring": {"type": "string", "format": "binary", "description": "optional scoring (test) table"},
        "format": {
            "type": "string",
            "enum": sorted(FORMATS),
            "description": "default: by file extension, else paper",
        },
        "budgets": {"type": "string", "description": "'1:5:0.5', '2.5' or '1,2,3'; default 1..n by 0.5"},
        "tasks": {"type": "string", "description": "comma-separated names of the columns (paper format)"},
        "objective": {"type": "string", "enum": ["sum", "relative"]},
        "serve_by": {"type": "string", "enum": ["selection", "scoring"]},
        "weights": {"type": "string", "description": "'s=1,d=2' or a JSON object"},
        "hoa": {"type": "boolean", "description": "predict 3+-task networks from pairs first (HOA)"},
        "method": {
            "type": "string",
            "enum": ["auto", "dp", "milp"],
            "description": "exact solver (default auto)",
        },
        "time_limit": {
            "type": "number",
            "description": "seconds for the sweep (sparse solver; default and maximum: the service setting)",
        },
    },
}


def _openapi_body() -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/SolveRequest"}},
                "multipart/form-data": {"schema": _FORM_SCHEMA},
            },
        }
    }


class SolveInput:
    """What both request forms boil down to: the tables and the options of :func:`solve_tables`."""

    def __init__(self, selection: LossTable, scoring: LossTable | None, options: SolveOptions) -> None:
        self.selection = selection
        self.scoring = scoring
        self.options = options


def _options(values: dict[str, Any]) -> SolveOptions:
    """The options in the one grammar (budgets, weights, ...); a 422 naming each bad field."""
    try:
        return SolveOptions.model_validate(values)
    except ValidationError as exc:
        raise unprocessable(format_validation_error(exc)) from None


def _from_json(body: bytes) -> SolveInput:
    if not body.strip():
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, "empty body: send a JSON SolveRequest or a form upload"
        )
    try:
        request = SolveRequest.model_validate_json(body)
    except ValidationError as exc:
        if any(err["type"] == "json_invalid" for err in exc.errors()):
            raise HTTPException(
                status.HTTP_400_BAD_REQUEST, f"the body is not valid JSON: {exc.errors()[0]['msg']}"
            ) from None
        raise unprocessable(format_validation_error(exc)) from None
    return SolveInput(request.table.selection_table(), request.table.scoring_table(), request)


async def _read_upload(form: Any, name: str, required: bool) -> tuple[str, str] | None:
    upload = form.get(name)
    if upload is None or (isinstance(upload, str) and not upload):
        if required:
            raise ValueError(f"{name}: attach the loss table as the form file field {name!r}")
        return None
    if isinstance(upload, str):
        return name, upload  # sent as a plain form field: take its text
    if not isinstance(upload, UploadFile):
        raise ValueError(f"{name}: expected a file upload")
    data = await upload.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{name}: the file is not UTF-8 text") from None
    return upload.filename or name, text


def _parse_table(source: str, text: str, format_name: str | None, tasks: list[str] | None) -> Any:
    if format_name is not None:
        fmt = format_for(source, format_name)
    else:
        try:
            fmt = format_for(source)
        except ValueError:
            fmt = FORMATS["paper"]  # an upload without a known extension: the paper's format
    return fmt.loads(text, source, tasks)


async def _from_form(request: Request) -> SolveInput:
    form = await request.form(max_files=2, max_fields=len(FORM_FIELDS) + 2)
    unknown = sorted(set(form.keys()) - set(FORM_FIELDS) - {"file", "scoring"})
    if unknown:
        known = ", ".join(("file", "scoring", *FORM_FIELDS))
        raise ValueError(f"unknown form field(s) {', '.join(unknown)}; known: {known}")
    options = _options(
        {name: str(form.get(name)).strip() for name in OPTION_FIELDS if str(form.get(name) or "").strip()}
    )
    selection_upload = await _read_upload(form, "file", required=True)
    scoring_upload = await _read_upload(form, "scoring", required=False)
    assert selection_upload is not None
    tasks_text = str(form.get("tasks") or "").strip()
    tasks = [t.strip() for t in tasks_text.split(",")] if tasks_text else None
    format_name = str(form.get("format") or "").strip() or None
    loaded = _parse_table(*selection_upload, format_name, tasks)
    scoring = loaded.scoring
    if scoring_upload is not None:
        scoring = _parse_table(*scoring_upload, format_name, tasks).selection
    return SolveInput(loaded.selection, scoring, options)


def compute(job: SolveInput, max_tasks: int, max_seconds: float | None = None) -> BudgetCurve:
    """Solve the budget curve (CPU-bound: runs in a worker thread)."""
    return solve_tables(job.selection, job.scoring, job.options, max_tasks=max_tasks, max_seconds=max_seconds)


@router.post(
    "/solve",
    response_model=BudgetCurve,
    responses=error_responses(400, 401, 413, 415, 422),
    openapi_extra=_openapi_body(),
    summary="Groupings from your own loss table (no training)",
)
async def solve(request: Request, settings: SettingsDep) -> BudgetCurve:
    """The best grouping for each budget from a loss table you trained elsewhere.

    Send JSON (``SolveRequest``: ``table`` in the loss-table schema, ``budgets``, ``objective``,
    ``serve_by``, ``weights``, ``hoa``) or a form upload (``file`` = the table, the paper's tab-separated
    format unless its extension or ``format`` says CSV/JSON; optional ``scoring`` file; the same options as
    text fields). 422 says what is wrong with the table (file, line, problem) or the options.
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if content_type in ("application/json", ""):
            job = _from_json(await request.body())
        elif content_type == "multipart/form-data":
            job = await _from_form(request)
        else:
            raise HTTPException(
                status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                f"content type {content_type!r} is not accepted: send application/json (a SolveRequest) or "
                "multipart/form-data (a loss-table file upload)",
            )
        limiter = getattr(request.app.state, "solve_limiter", None)
        limits = (settings.solve_max_tasks, settings.solve_time_limit)
        return await anyio.to_thread.run_sync(compute, job, *limits, limiter=limiter)
    except (ValueError, LookupError) as exc:
        raise unprocessable(str(exc)) from None


__all__ = ["SolveInput", "compute", "router"]
