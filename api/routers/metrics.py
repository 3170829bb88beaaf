"""``GET /metrics``: the service's Prometheus metrics in the text exposition format (:mod:`api.metrics`).

Behind the API token like every endpoint but ``/healthz`` (Prometheus sends it with ``authorization:
{credentials: ...}`` in its scrape config). The store is read in a worker thread, never on the event loop.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from prometheus_client import CONTENT_TYPE_LATEST

from api.routers.common import error_responses, require_token

router = APIRouter(tags=["service"], dependencies=[Depends(require_token)])


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text format 0.0.4",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        **error_responses(401, 503),
    },
    summary="Prometheus metrics",
)
async def metrics(request: Request) -> Response:
    """Jobs by state, the queue, the drivers running, trainings started / finished / failed / retried /
    reused, training seconds (histogram) and request latency per route template (histogram)."""
    body = await run_in_threadpool(request.app.state.metrics.render)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
