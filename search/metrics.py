"""Prometheus metrics of the job life cycle: what job drivers count, what the service reads at scrape time.

**Counted by the job driver** where it learns of each event (:meth:`search.run.JobRun.train`'s hook on the
Tune callback's events, and the reuse checks): trainings started, finished, failed (after their retries),
retried, reused, and a histogram of the seconds a finished training took. A job runs in a driver process of
its own (:mod:`search.driver`), so these use prometheus-client's multiprocess mode: the service starts each
driver with ``PROMETHEUS_MULTIPROC_DIR`` pointing at a folder of its own (:data:`MULTIPROC_VAR`, set before
the driver imports prometheus-client), every driver writes its counts there, and :class:`DriverCollector`
sums the folder's files at scrape time (a driver that ended keeps its counts until the service restarts;
Prometheus treats a restart as a counter reset). A process without that variable (``taskgroup search``, the
tests) counts in memory, in :data:`REGISTRY`.

**Read at scrape time** by :class:`JobCollector`: jobs by state and the queue, from the store and the job
manager, so the figures are right after a restart and with several drivers.

Names follow Prometheus' conventions (``taskgroup_`` prefix, ``_total`` counters, ``_seconds`` units). No
metric carries a job id: that would make one time series per job; logs carry it (:mod:`search.joblog`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from search.states import JobState

MULTIPROC_VAR = "PROMETHEUS_MULTIPROC_DIR"
"""The environment variable prometheus-client reads, at import, to count in files shared between processes."""

TRAINING_SECONDS_BUCKETS: tuple[float, ...] = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)
"""Upper bounds (seconds) of the training-time histogram: from a planted training (about a second) to a
full-size network trained to convergence (hours)."""

REGISTRY = CollectorRegistry(auto_describe=True)
"""Where this process's driver metrics are registered (in-process counts; the service reads the drivers'
through :class:`DriverCollector` instead)."""

COUNTER_HELP: Mapping[str, str] = MappingProxyType(
    {
        "started": "trainings started as Ray Tune trials (a retried trial starts again)",
        "finished": "trainings that finished and were stored",
        "failed": "trainings that failed after their retries",
        "retried": "failed training attempts that Tune retries",
        "reused": "trainings a job needed and found already trained in the store (by it or another job)",
    }
)
"""One counter ``taskgroup_trainings_<what>_total`` per entry."""

COUNTERS: Mapping[str, Counter] = MappingProxyType(
    {
        what: Counter(f"taskgroup_trainings_{what}", text, registry=REGISTRY)
        for what, text in COUNTER_HELP.items()
    }
)

TRAINING_SECONDS_HELP = "wall time of finished trainings (seconds)"
TRAINING_SECONDS = Histogram(
    "taskgroup_training_seconds", TRAINING_SECONDS_HELP, buckets=TRAINING_SECONDS_BUCKETS, registry=REGISTRY
)

EVENT_COUNTERS: Mapping[str, str] = MappingProxyType(
    {
        "started": "started",
        "succeeded": "finished",
        "failed": "failed",
        "retrying": "retried",
        "reused": "reused",
    }
)
"""A training event's kind (:class:`search.ray_runner.TrainingEvent`) -> the counter it increments; the other
kinds (``epoch``, ``weights``) count nothing."""


def count_event(kind: str, detail: Mapping[str, Any] | None = None) -> None:
    """Count one training event; a finished training's ``wall_seconds`` also goes to the histogram."""
    what = EVENT_COUNTERS.get(kind)
    if what is None:
        return
    COUNTERS[what].inc()
    seconds = (detail or {}).get("wall_seconds")
    if what == "finished" and isinstance(seconds, int | float) and seconds >= 0:
        TRAINING_SECONDS.observe(float(seconds))


def count_reused(trainings: int) -> None:
    """``trainings`` a job found already trained (nothing for 0)."""
    if trainings > 0:
        COUNTERS["reused"].inc(trainings)


class DriverCollector:
    """The drivers' counts summed from the multiprocess folder, with every driver metric present (at 0)
    before a driver has counted anything, so that a dashboard's queries and alerts see the series at once."""

    def __init__(self, path: Path) -> None:
        self.files = MultiProcessCollector(None, str(path))

    def collect(self) -> Iterator[Metric]:
        seen = set()
        for family in self.files.collect():
            seen.add(family.name)
            yield family
        for what, text in COUNTER_HELP.items():
            if f"taskgroup_trainings_{what}" not in seen:
                yield CounterMetricFamily(f"taskgroup_trainings_{what}", text, value=0)
        if "taskgroup_training_seconds" not in seen:
            buckets = [(f"{float(b)}", 0.0) for b in TRAINING_SECONDS_BUCKETS] + [("+Inf", 0.0)]
            yield HistogramMetricFamily(
                "taskgroup_training_seconds", TRAINING_SECONDS_HELP, buckets=buckets, sum_value=0.0
            )


class JobCounts(Protocol):
    """What :class:`JobCollector` reads from the store."""

    def job_counts(self) -> dict[JobState, int]: ...


class JobCollector:
    """Jobs by state (from the store) and the queue (from the job manager), read at every scrape.

    ``waiting()``: the queued jobs that wait for a driver; ``running()``: the jobs whose driver runs here."""

    def __init__(
        self, store: JobCounts, waiting: Callable[[], Iterable[str]], running: Callable[[], Iterable[str]]
    ) -> None:
        self.store = store
        self.waiting = waiting
        self.running = running

    def collect(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily("taskgroup_jobs", "jobs in the results store by state", labels=["state"])
        for state, count in self.store.job_counts().items():
            jobs.add_metric([state.value], count)
        yield jobs
        yield GaugeMetricFamily(
            "taskgroup_queue_length", "queued jobs waiting for a driver", value=len(list(self.waiting()))
        )
        yield GaugeMetricFamily(
            "taskgroup_drivers_running", "job drivers this service runs", value=len(list(self.running()))
        )


__all__ = [
    "COUNTERS",
    "EVENT_COUNTERS",
    "MULTIPROC_VAR",
    "REGISTRY",
    "TRAINING_SECONDS",
    "DriverCollector",
    "JobCollector",
    "count_event",
    "count_reused",
]
