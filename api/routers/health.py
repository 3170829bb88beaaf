"""``GET /healthz``: is the service up, does the results store answer, is Ray connected? (no auth)."""

from __future__ import annotations

import logging
import time
from importlib.metadata import PackageNotFoundError, version

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.models import Health, HealthComponent

log = logging.getLogger(__name__)

router = APIRouter(tags=["service"])


def package_version() -> str:
    try:
        return version("taskgrouping")
    except PackageNotFoundError:
        return "unknown"


def _store_health(request: Request) -> HealthComponent:
    store = request.app.state.store
    try:
        schema = store.schema_version()
        queued = store.count_jobs("queued")
        running = store.count_jobs("running")
    except Exception as exc:  # a health check reports failures, it never raises them
        return HealthComponent(ok=False, detail=str(exc), info={"url": store.safe_url})
    return HealthComponent(
        ok=True,
        info={
            "url": store.safe_url,
            "schema_version": schema,
            "jobs_queued": queued,
            "jobs_running": running,
        },
    )


def _ray_health(request: Request) -> HealthComponent:
    settings = request.app.state.settings
    if not settings.run_jobs:
        return HealthComponent(ok=True, detail="jobs are not run by this service (TASKGROUP_RUN_JOBS=false)")
    try:
        import ray

        if not ray.is_initialized():
            return HealthComponent(ok=False, detail="not connected to Ray")
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        resources = {k: float(v) for k, v in ray.cluster_resources().items() if "node:" not in k}
        available = {k: float(v) for k, v in ray.available_resources().items() if "node:" not in k}
    except Exception as exc:
        return HealthComponent(ok=False, detail=f"Ray does not answer: {exc}")
    return HealthComponent(
        ok=bool(nodes),
        detail=None if nodes else "the Ray cluster has no live node",
        info={
            "address": request.app.state.ray_address,
            "dashboard_url": request.app.state.dashboard_url,
            "dashboard_auth": getattr(request.app.state, "dashboard_auth", None),
            "nodes": len(nodes),
            "resources": resources,
            "available": available,
        },
    )


@router.get(
    "/healthz",
    response_model=Health,
    responses={503: {"model": Health, "description": "a component does not work"}},
    summary="Service, store and Ray status",
)
def healthz(request: Request) -> JSONResponse:
    """200 when the service, its results store and Ray work; 503 (same body) when one of them does not."""
    queue = request.app.state.manager.status()
    service = HealthComponent(
        ok=queue.alive,
        detail=queue.error or (None if queue.alive else "the job manager is not running"),
        info=queue.model_dump(mode="json"),
    )
    store = _store_health(request)
    ray_status = _ray_health(request)
    ok = service.ok and store.ok and ray_status.ok
    health = Health(
        status="ok" if ok else "degraded",
        version=package_version(),
        uptime_seconds=round(time.monotonic() - request.app.state.started, 1),
        service=service,
        store=store,
        ray=ray_status,
    )
    return JSONResponse(health.model_dump(mode="json"), status_code=200 if ok else 503)
