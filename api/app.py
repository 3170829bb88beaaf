"""The HTTP service: submit search jobs, follow them, download groupings, solve your own loss tables.

``create_app(settings)`` builds the FastAPI app; its lifespan opens the results store, connects to Ray (a
local cluster, or ``RAY_ADDRESS``) and starts the :class:`~api.manager.JobManager`, which resumes the jobs a
previous run left unfinished. Run it with ``taskgroup serve`` (or ``uvicorn --factory api.app:create_app``),
ONE worker process per store: the manager of each worker would start drivers for the same jobs.

Bad input never yields a 500: validation errors are 422 (400 for a body that is not JSON) with one
``field: problem`` line per error in ``detail``; a body above ``TASKGROUP_MAX_UPLOAD_BYTES`` is 413; a store
that does not answer is 503. OpenAPI docs at ``/docs``.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.metrics import LatencyMiddleware, ServiceMetrics
from api.models import SolveRequest
from api.routers import datasets, health, jobs, metrics, models, report, solve
from api.routers.common import reject_unknown_query
from api.routers.health import package_version
from api.settings import Settings
from grouping.validation import format_errors
from search.dashboard import dashboard_auth_hint
from search.manager import JobManager
from search.spec import JobSpec
from search.store import StoreError, open_store

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class BodyTooLarge(HTTPException):
    """A request body above the configured limit (413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"the request body is larger than {limit} bytes (TASKGROUP_MAX_UPLOAD_BYTES): send a smaller "
            "file, or ask the operator to raise the limit",
        )


class BodyLimitMiddleware:
    """Refuse request bodies above ``limit`` bytes with 413: by Content-Length at once, else while reading
    (a chunked body is counted as it arrives, so an oversized upload is never held in memory whole)."""

    def __init__(self, app: Callable[..., Awaitable[None]], limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                too_large = int(declared) > self.limit
            except ValueError:
                too_large = False
            if too_large:
                await self._reject(send)
                return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await self._reject(send)

    async def _reject(self, send: Send) -> None:
        error = BodyTooLarge(self.limit)
        response = JSONResponse({"detail": error.detail}, status_code=error.status_code)
        await response({"type": "http"}, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


# ---------------------------------------------------------------------- error answers


BODY_TYPE_ERRORS = frozenset({"missing", "model_attributes_type", "dict_type", "model_type"})
BODY_HINT = "send the body as a JSON object with the header 'Content-Type: application/json'"


def describe_errors(errors: list[dict[str, Any]], content_type: str | None = None) -> str:
    """One ``field: problem`` line per validation error (:func:`grouping.validation.format_errors`), with a
    hint on how to send a body when the body itself is missing or not a JSON object."""
    lines = []
    for err in errors:
        if tuple(err.get("loc", ())) == ("body",) and err.get("type") in BODY_TYPE_ERRORS:
            got = f" (got Content-Type {content_type!r})" if content_type else ""
            what = "the body is missing" if err.get("type") == "missing" else "the body is not a JSON object"
            lines.append(f"{what}: {BODY_HINT}{got}")
        else:
            lines.append(format_errors([err]))
    return "; ".join(lines)


def _jsonable_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"loc": [str(p) for p in err.get("loc", ())], "msg": str(err.get("msg", "")), "type": err.get("type")}
        for err in errors
    ]


async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(err.get("type") == "json_invalid" for err in errors):
        err = next(e for e in errors if e.get("type") == "json_invalid")
        position = err.get("loc", ("body", "?"))[-1]
        context = err.get("ctx") or {}
        reason = context.get("error", "invalid JSON")
        return JSONResponse(
            {"detail": f"the body is not valid JSON ({reason} at character {position}): send a JSON object"},
            status_code=status.HTTP_400_BAD_REQUEST,
        )
    return JSONResponse(
        {
            "detail": describe_errors(errors, request.headers.get("content-type")),
            "errors": _jsonable_errors(errors),
        },
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
    )


def allowed_methods(app: Any, path: str) -> list[str]:
    """Every method the OpenAPI document lists for ``path`` (Starlette's 405 names only one route's)."""
    patterns = getattr(app.state, "method_patterns", None)
    if patterns is None:
        patterns = [
            (re.compile("^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template)) + "$"), operations)
            for template, operations in app.openapi().get("paths", {}).items()
        ]
        app.state.method_patterns = patterns
    methods: set[str] = set()
    for pattern, operations in patterns:
        if pattern.match(path):
            methods.update(method.upper() for method in operations)
    return sorted(methods)


async def on_http_error(request: Request, exc: Exception) -> Any:
    """HTTP errors as FastAPI answers them, with a complete ``Allow`` header on 405 (RFC 9110)."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
        allow = allowed_methods(request.app, request.url.path)
        return JSONResponse(
            {"detail": f"method {request.method} is not allowed here; allowed: {', '.join(allow)}"},
            status_code=exc.status_code,
            headers={"Allow": ", ".join(allow)},
        )
    return await http_exception_handler(request, exc)


async def on_store_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("results store error on %s %s: %s", request.method, request.url.path, exc)
    return JSONResponse(
        {"detail": f"the results store is not available: {exc}"},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": "5"},
    )


async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return JSONResponse(
        {"detail": f"internal error ({type(exc).__name__}); the service log has the details"},
        status_code=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


# ---------------------------------------------------------------------- life cycle


def _connect_ray(app: FastAPI, settings: Settings) -> None:
    """Connect to Ray (start a local one unless RAY_ADDRESS / one is already up), keeping SIGTERM's handler.

    ``ray.init()`` in the main thread replaces the SIGTERM handler; uvicorn's graceful shutdown needs its own
    (STACK.md), so it is saved before and restored after.
    """
    from search import ray_runner

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main_thread else None
    try:
        info = ray_runner.ensure_ray(
            address=settings.ray_address, dashboard=settings.dashboard, num_cpus=settings.ray_num_cpus
        )
    finally:
        if main_thread and previous is not None:
            signal.signal(signal.SIGTERM, previous)
    app.state.ray_address = info.address
    app.state.dashboard_url = settings.dashboard_url or info.dashboard_url
    app.state.cluster_capacity = ray_runner.cluster_capacity
    _set_dashboard_auth(app, settings)
    log.info("Ray at %s, resources %s", info.address, info.resources)
    if app.state.dashboard_url:
        log.info("Ray dashboard: %s (%s)", app.state.dashboard_url, app.state.dashboard_auth)


def _set_dashboard_auth(app: FastAPI, settings: Settings) -> None:
    """The hint shown next to the dashboard URL: where its token is (:mod:`search.dashboard`), or None when
    the service shows no dashboard."""
    cluster = bool(settings.ray_address or os.environ.get("RAY_ADDRESS"))
    hint = dashboard_auth_hint(cluster=cluster) if app.state.dashboard_url else None
    app.state.dashboard_auth = hint


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    store = open_store(settings.database_url)
    app.state.store = store
    app.state.ray_address = None
    app.state.dashboard_url = settings.dashboard_url
    _set_dashboard_auth(app, settings)
    app.state.cluster_capacity = None
    started_ray = False
    try:
        if settings.run_jobs:
            import ray

            started_ray = not ray.is_initialized()
            _connect_ray(app, settings)
        app.state.solve_limiter = anyio.CapacityLimiter(solve.SOLVE_CONCURRENCY)
        service_metrics: ServiceMetrics = app.state.metrics  # the drivers count their trainings in its folder
        manager = JobManager(
            store, settings.queue(), app.state.ray_address, metrics_dir=service_metrics.open_drivers_dir()
        )
        app.state.manager = manager
        service_metrics.attach(store, manager)
        manager.start()
        app.state.started = time.monotonic()
        log.info("taskgroup service ready (store %s)", store.safe_url)
        yield
        manager.shutdown()
    finally:
        app.state.metrics.detach()
        if started_ray:
            import ray

            ray.shutdown()
        store.close()


BODY_MODELS: tuple[type[BaseModel], ...] = (JobSpec, SolveRequest)
"""Request bodies that routes read themselves (to turn every problem into a 4xx): their schemas are added
to the OpenAPI components, where the routes' ``requestBody`` refers to them."""


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document, with the schemas of :data:`BODY_MODELS` in its components."""
    if app.openapi_schema:
        return app.openapi_schema
    document = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
    )
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for content in operation.get("requestBody", {}).get("content", {}).values():
                schema = content.get("schema", {})
                if "$ref" in schema:  # the route's own body model, not the generic dict it reads
                    content["schema"] = {"$ref": schema["$ref"]}
    components = document.setdefault("components", {}).setdefault("schemas", {})
    for model in BODY_MODELS:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, definition in schema.pop("$defs", {}).items():
            components.setdefault(name, definition)
        components.setdefault(model.__name__, schema)
    app.openapi_schema = document
    return document


def create_app(settings: Settings | None = None) -> FastAPI:
    """The FastAPI app for ``settings`` (default: from the environment, see :mod:`api.settings`)."""
    settings = settings or Settings.from_env()
    app = FastAPI(
        title="taskgrouping",
        version=package_version(),
        summary="Which tasks should be learned together? (Standley et al., ICML 2020) as a service.",
        description=(
            "Submit a search job (a dataset, its tasks, an approximation, budgets): the service trains the "
            "candidate networks on Ray, solves the grouping exactly for every budget and serves the result. "
            "Or POST your own loss table to /solve. When the service has a TASKGROUP_API_TOKEN, every "
            "endpoint but /healthz needs `Authorization: Bearer <token>`."
        ),
        lifespan=lifespan,
        dependencies=[Depends(reject_unknown_query)],
    )
    app.state.settings = settings
    app.state.started = time.monotonic()
    app.openapi = lambda: build_openapi(app)  # type: ignore[method-assign]
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(StoreError, on_store_error)
    app.add_exception_handler(Exception, on_unexpected)
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_upload_bytes)
    app.state.metrics = ServiceMetrics()
    app.add_middleware(LatencyMiddleware, metrics=app.state.metrics)  # outermost: times every answer
    app.include_router(jobs.router)
    app.include_router(solve.router)
    app.include_router(datasets.router)
    app.include_router(health.router)
    app.include_router(report.router)
    app.include_router(models.router)
    app.include_router(metrics.router)
    return app


__all__ = ["BodyLimitMiddleware", "create_app", "describe_errors", "lifespan"]
