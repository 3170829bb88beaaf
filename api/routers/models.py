"""``GET /jobs/{id}/models?budget=B``: the chosen networks of one budget as a bundle (a zip download).

The HTTP face of :func:`search.export.export_bundle` (``docs/bundle.md``). A budget whose networks kept no
weights answers 409 with the way to finalize it (:data:`search.export.FINALIZE_HINT`); a job without a result
404, a budget the job does not have 422. Never a 500: weights that are missing from storage, altered, or
cannot make a bundle are a 409 that says so.
"""

from __future__ import annotations

import io
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status
from fastapi.concurrency import run_in_threadpool

from api.models import ErrorResponse
from api.routers.common import StoreDep, error_responses, require_token, unprocessable
from api.routers.jobs import load_job, result_or_404
from search.export import ExportError, NotFinalizedError, export_bundle
from search.store import Store

router = APIRouter(tags=["jobs"], dependencies=[Depends(require_token)])


def _bundle(store: Store, job_id: str, budget: float) -> tuple[bytes, str]:
    job = load_job(store, job_id)
    result_or_404(job)
    buffer = io.BytesIO()
    try:
        manifest = export_bundle(store, job.id, budget, buffer)
    except NotFinalizedError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except ExportError as exc:
        raise unprocessable(str(exc)) from None
    except ValueError as exc:  # kept weights missing, altered, or unusable: the message says what to do
        raise HTTPException(status.HTTP_409_CONFLICT, f"cannot build the bundle: {exc}") from None
    return buffer.getvalue(), f"job-{job.id}-models-{manifest.budget:g}snt.zip"


@router.get(
    "/jobs/{job_id}/models",
    response_class=Response,
    responses={
        200: {
            "description": "the bundle: a zip of the networks, their preprocessing and manifest.json",
            "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
        },
        **error_responses(401, 404, 422),
        409: {
            "model": ErrorResponse,
            "description": "the budget was not finalized (the message says how), or its kept weights are "
            "missing or altered",
        },
    },
    summary="Download the networks of one budget as a bundle",
)
async def get_models(
    job_id: str,
    budget: Annotated[float, Query(gt=0, allow_inf_nan=False, description="a budget of the job, in SNT")],
    store: StoreDep,
) -> Response:
    """The chosen networks of ``budget`` with their kept weights, preprocessing and a manifest naming which
    network serves which task (``docs/bundle.md``); predict with ``taskgroup predict bundle.zip data.csv``.
    409 when the budget was not finalized (the message says how to finalize it)."""
    content, filename = await run_in_threadpool(_bundle, store, job_id, budget)
    return Response(
        content,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
