"""The service's Prometheus metrics: one registry per app, the request-latency middleware, and the text
``GET /metrics`` serves (:mod:`api.routers.metrics`).

The registry holds three sources (see :mod:`search.metrics` for the names and why):

* the latency of every request, a histogram labelled by method, **route template** (``/jobs/{job_id}``,
  never the raw path: one series per route, not per job) and status code, measured by
  :class:`LatencyMiddleware` around the whole app (413s and 404s included; unmatched paths share the
  route label ``unmatched``);
* jobs by state, the queue and the running drivers, read from the store and the job manager at scrape time
  (:class:`search.metrics.JobCollector`);
* the trainings the job drivers counted (started, finished, failed, retried, reused, seconds), summed from
  the multiprocess folder the service gives its drivers (:class:`search.metrics.DriverCollector`).

A registry per app (not prometheus-client's global one) lets tests build several apps in one process.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from search.metrics import DriverCollector, JobCollector

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

UNMATCHED = "unmatched"
"""The route label of a request no route matched (404s of random paths must not make new series)."""

LATENCY_BUCKETS: tuple[float, ...] = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
"""Upper bounds (seconds): from a cached health check to a /solve near its time limit."""


class ServiceMetrics:
    """The app's registry and its request-latency histogram; :meth:`attach` adds the store, the manager and
    the drivers' folder once the app's lifespan has them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.latency = Histogram(
            "taskgroup_http_request_duration_seconds",
            "time to answer an HTTP request, by method, route template and status code",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.drivers_dir: Path | None = None
        self._attached: list[Any] = []

    def open_drivers_dir(self) -> Path:
        """A fresh folder where the job manager's drivers count their trainings (one per service run, so a
        restart starts the counters at 0, which Prometheus reads as a reset); its path."""
        if self.drivers_dir is None:
            self.drivers_dir = Path(tempfile.mkdtemp(prefix="taskgroup-metrics-"))
        return self.drivers_dir

    def attach(self, store: Any, manager: Any) -> None:
        """Read jobs from ``store`` and ``manager``, and the drivers' counts, at every scrape."""
        collectors = [
            JobCollector(store, manager.waiting_jobs, manager.running_jobs),
            DriverCollector(self.open_drivers_dir()),
        ]
        for collector in collectors:
            self.registry.register(collector)
        self._attached += collectors

    def detach(self) -> None:
        """Stop reading the store and remove the drivers' folder (at shutdown)."""
        for collector in self._attached:
            self.registry.unregister(collector)
        self._attached = []
        if self.drivers_dir is not None:
            shutil.rmtree(self.drivers_dir, ignore_errors=True)
            self.drivers_dir = None

    def render(self) -> bytes:
        """The Prometheus text exposition of everything (reads the store: call it off the event loop)."""
        return generate_latest(self.registry)


def route_label(scope: Scope) -> str:
    """The template of the route that handled the request (FastAPI puts it in the scope), or ``unmatched``."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


class LatencyMiddleware:
    """Times every HTTP request, from its arrival to the end of its answer, into ``metrics.latency``."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            self.metrics.latency.labels(
                scope.get("method", "?"), route_label(scope), str(status["code"])
            ).observe(time.perf_counter() - started)


__all__ = ["LATENCY_BUCKETS", "UNMATCHED", "LatencyMiddleware", "ServiceMetrics", "route_label"]
