"""``GET /jobs/{id}/report``: the job's report as an HTML page, or one of its figures as a PNG."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from api.routers.common import StoreDep, error_responses, require_token, unprocessable
from api.routers.jobs import load_job, result_or_404

router = APIRouter(tags=["jobs"], dependencies=[Depends(require_token)])


@router.get(
    "/jobs/{job_id}/report",
    responses={
        **error_responses(401, 404, 422),
        200: {
            "description": "the HTML page, or one figure as a PNG with format=png",
            "content": {
                "text/html": {"schema": {"type": "string"}},
                "image/png": {"schema": {"type": "string", "format": "binary"}},
            },
        },
    },
    summary="The job's report: budget curve, affinity heat map, groupings",
    response_class=Response,
)
async def get_report(
    job_id: str,
    store: StoreDep,
    format: Literal["html", "png"] = Query("html", description="html: the whole page; png: one figure"),
    figure: Literal["curve", "affinity", "lookahead", "groupings"] = Query(
        "curve", description="the figure (format=png); lookahead: a tag job's affinities"
    ),
) -> Response:
    """An HTML page with the figures embedded, or (``format=png``) one figure. 404 until the job succeeded,
    with a message naming its state."""
    from api.report import render_figure, render_html

    result = result_or_404(await run_in_threadpool(load_job, store, job_id))
    try:
        if format == "png":
            png = await run_in_threadpool(render_figure, result, figure)
            return Response(content=png, media_type="image/png")
        page = await run_in_threadpool(render_html, result)
    except ValueError as exc:
        raise unprocessable(str(exc)) from None
    return HTMLResponse(page)
